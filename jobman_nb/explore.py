"""Open an existing jobman database and discover what lives in it.

:func:`open_db` looks at every table of a SQLite file and groups the
``<prefix>job`` / ``<prefix>kvp`` tables into *table sets*, one per DAO that
jobman would have used: jobman's own (prefix ``jobman_``), each worker's
(``_worker_<key>_``), each engine's (``engine_<key>_``), and any other prefix
that has both a job and a kvp table. Each set gets a DAO of the matching class,
built with the file's extra columns, so every column is queryable.

By default the file is opened with SQLite's read-only mode (``mode=ro``): no
table, index or journal mode is created or changed, the file's bytes stay
identical, and every write method raises :class:`~jobman_nb.errors.ReadOnlyError`.
For a database in rollback-journal mode (jobman's default) no side file is
created either. A database in WAL mode cannot be read without its ``-wal`` and
``-shm`` side files; if no writer holds them open, SQLite creates them next to
the file (the main file is still not changed).
"""

from __future__ import annotations

import os
import re
import sqlite3
import warnings
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .dao import EngineSqliteDAO, JobmanSqliteDAO, SqliteDAO, WorkerSqliteDAO
from .dao.query import quote_identifier
from .errors import ArgumentError, MissingFileError, NotFoundError, SchemaError
from .pathmap import PathMap, PathMapLike, as_path_map
from .vocabulary import declared_field_type

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JobDatabase", "TableSet", "TableKind", "TABLE_KINDS", "kind_of_prefix", "open_db", "path_map_of", "ROLES"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
# Table prefixes and field names a DAO can use (the ORM's rules); other tables and columns are listed, not read.
_DAO_PREFIX = re.compile(r"[A-Za-z0-9_]*\Z")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class TableKind:
    """One kind of jobman table pair: the registry entry that discovery, lineage and the demo read.

    Attributes
    ----------
    role : str
        ``'jobman'``, ``'worker'``, ``'engine'`` or ``'other'``.
    pattern : re.Pattern
        Matches the table prefix; its ``key`` group (if any) is the worker's or engine's key.
    template : str
        The prefix for a key (``'_worker_{key}_'``).
    dao_class : type or None
        The DAO class of the tables (None: chosen from the job table's columns).
    attribute : str or None
        Where an opened :class:`JobDatabase` holds the DAO: ``'jobman'`` (the DAO),
        ``'workers'`` / ``'engines'`` (``{key: DAO}``); every DAO is also in ``daos``.
    """

    role: str
    pattern: re.Pattern[str]
    template: str
    dao_class: type[SqliteDAO] | None
    attribute: str | None

    def prefix_for(self, key: str) -> str:
        """The table prefix of this kind for *key* (``'_worker_cpu_w_'``)."""
        return self.template.format(key=key)


#: Every kind of table pair, in listing order; a prefix takes the first kind whose pattern matches.
TABLE_KINDS: tuple[TableKind, ...] = (
    TableKind("jobman", re.compile(r"jobman_\Z"), "jobman_", JobmanSqliteDAO, "jobman"),
    TableKind("worker", re.compile(r"_worker_(?P<key>.+)_\Z"), "_worker_{key}_", WorkerSqliteDAO, "workers"),
    TableKind("engine", re.compile(r"engine_(?P<key>.+)_\Z"), "engine_{key}_", EngineSqliteDAO, "engines"),
    TableKind("other", re.compile(r"(?P<key>.*?)_?\Z"), "{key}_", None, None),
)
#: Roles of table sets, in listing order.
ROLES: tuple[str, ...] = tuple(k.role for k in TABLE_KINDS)


def kind_of_prefix(prefix: str) -> tuple[TableKind, str]:
    """The :class:`TableKind` of a table prefix and the key it names (``'jobman'`` for jobman's own)."""
    for kind in TABLE_KINDS:
        if m := kind.pattern.match(prefix):
            return kind, m.groupdict().get("key") or kind.role
    raise AssertionError("the 'other' kind matches every prefix")


@dataclass(frozen=True)
class TableSet:
    """One DAO's tables found in a file.

    Attributes
    ----------
    prefix : str
        The table prefix (``'jobman_'``, ``'_worker_cpu_w_'``, ...).
    role : str
        ``'jobman'``, ``'worker'``, ``'engine'`` or ``'other'``.
    key : str
        The worker's or engine's key; the prefix without its last ``_`` otherwise.
    job_table, kvp_table : str or None
        The tables present.
    job_columns : dict
        ``{column: declared type}`` of the job table, from ``PRAGMA table_info``.
    extra_job_fields : dict
        Field infos of job columns beyond the DAO's JobSchema.
    """

    prefix: str
    role: str
    key: str
    job_table: str | None
    kvp_table: str | None
    job_columns: dict[str, str] = field(default_factory=dict)
    extra_job_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Job columns no field name can spell (``a.b``, ``1abc``, non-ASCII): left out of the DAO and its frames.
    left_out_columns: tuple[str, ...] = ()

    @property
    def tables(self) -> list[str]:
        """The set's tables that exist."""
        return [t for t in (self.job_table, self.kvp_table) if t]


def _field_type(declared: str) -> str:
    """Map a declared SQL type to a DAO field type (SQLite's affinity rules)."""
    return declared_field_type(declared)


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    return {r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({quote_identifier(table)})")}


def _other_class(columns: Mapping[str, str]) -> type[SqliteDAO]:
    """The DAO class whose job schema best covers an 'other' job table."""
    if "job_spec" in columns:
        return JobmanSqliteDAO
    if "engine_meta" in columns or "batch_meta" in columns:
        return WorkerSqliteDAO
    return EngineSqliteDAO


def _schema_fields(cls: type[SqliteDAO]) -> dict[str, Any]:
    return cls.JobSchema.get_field_infos()  # type: ignore[attr-defined]


def discover(conn: sqlite3.Connection) -> tuple[list[TableSet], list[str], dict[str, str]]:
    """Group the tables of a database into DAO table sets.

    Returns
    -------
    (list of TableSet, list of str, dict)
        The sets (in :data:`ROLES` order, then by key), every other table,
        and ``{table: why it is not read}`` for job/kvp tables no DAO can read.
    """
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    prefixes: dict[str, dict[str, str]] = {}
    for name in tables:
        for ent in ("job", "kvp"):
            if name.endswith(ent) and len(name) > len(ent):
                prefixes.setdefault(name[: -len(ent)], {})[ent] = name
    sets: list[TableSet] = []
    used: set[str] = set()
    unread: dict[str, str] = {}
    for prefix, found in prefixes.items():
        kind, key = kind_of_prefix(prefix)
        role = kind.role
        job_cols = _columns(conn, found["job"]) if "job" in found else {}
        kvp_cols = _columns(conn, found["kvp"]) if "kvp" in found else {}
        job_ok = {"key", "status"} <= set(job_cols)
        kvp_ok = {"key", "value"} <= set(kvp_cols)
        # A known prefix needs one DAO-shaped table; any other prefix needs the pair.
        if not (job_ok and kvp_ok if role == "other" else job_ok or kvp_ok):
            continue
        if not _DAO_PREFIX.match(prefix):
            unread.update({t: f"prefix {prefix!r} is not a DAO table prefix (letters, digits, '_')"
                           for t in found.values()})
            continue
        cls = kind.dao_class or _other_class(job_cols)
        schema = _schema_fields(cls)
        extras = {c: {"type": _field_type(t)} for c, t in job_cols.items()
                  if c not in schema and _FIELD_NAME.match(c)} if job_ok else {}
        left_out = tuple(c for c in job_cols if c not in schema and not _FIELD_NAME.match(c)) if job_ok else ()
        sets.append(TableSet(prefix, role, key, found["job"] if job_ok else None,
                             found["kvp"] if kvp_ok else None, job_cols if job_ok else {}, extras, left_out))
        used.update(t for t, ok in ((found.get("job"), job_ok), (found.get("kvp"), kvp_ok)) if ok and t)
    sets.sort(key=lambda s: (ROLES.index(s.role), s.key))
    return sets, [t for t in tables if t not in used], unread


class JobDatabase:
    """The DAO table sets of one SQLite file; made by :func:`open_db`.

    Attributes
    ----------
    path : pathlib.Path
    read_only : bool
    table_sets : list of TableSet
    other_tables : list of str
        Tables that belong to no DAO.
    daos : dict
        ``{prefix: DAO}`` for every table set.
    workers, engines : dict
        ``{worker key: WorkerSqliteDAO}``, ``{engine key: EngineSqliteDAO}``.
    path_map : PathMap
        How recorded job directories map to local paths (empty: used as recorded);
        every helper that reads job directories of this database uses it.
    """

    def __init__(self, path: Path, table_sets: list[TableSet], other_tables: list[str], *,
                 read_only: bool = True, initialize: bool = False, path_map: PathMapLike = None,
                 unread: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.read_only = read_only
        self.path_map: PathMap = as_path_map(path_map)
        self.table_sets = table_sets
        self.other_tables = other_tables
        #: ``{table: why}`` for job/kvp tables that no DAO can read (listed by :meth:`listing`).
        self.unread: dict[str, str] = dict(unread or {})
        self._connection: sqlite3.Connection | None = None
        self.daos: dict[str, SqliteDAO] = {}
        self.workers: dict[str, WorkerSqliteDAO] = {}
        self.engines: dict[str, EngineSqliteDAO] = {}
        self._jobman: JobmanSqliteDAO | None = None
        for ts in table_sets:
            dao = self._make_dao(ts, initialize)
            self.daos[ts.prefix] = dao
            _PATH_MAPS[dao] = self.path_map
            attribute = kind_of_prefix(ts.prefix)[0].attribute
            if attribute == "jobman":
                self._jobman = dao  # type: ignore[assignment]
            elif attribute is not None:
                getattr(self, attribute)[ts.key] = dao

    def _make_dao(self, ts: TableSet, initialize: bool) -> SqliteDAO:
        common: dict[str, Any] = {"db_uri": str(self.path), "read_only": self.read_only,
                                  "initialize": initialize and not self.read_only,
                                  "include_kvp_orm": ts.kvp_table is not None}
        cls = kind_of_prefix(ts.prefix)[0].dao_class or _other_class(ts.job_columns)
        if cls is JobmanSqliteDAO:
            if ts.extra_job_fields or ts.prefix != "jobman_":
                return _JobmanLikeDAO(ts.prefix, ts.extra_job_fields, **common)
            return JobmanSqliteDAO(**common)
        return cls(table_prefix=ts.prefix, extra_job_fields=ts.extra_job_fields, **common)  # type: ignore[call-arg]

    # -- access -----------------------------------------------------------------------------
    @property
    def jobman(self) -> JobmanSqliteDAO:
        """The DAO of jobman's own tables (``jobman_job``, ``jobman_kvp``)."""
        if self._jobman is None:
            raise NotFoundError(f"{self.path} has no jobman_job/jobman_kvp tables; "
                              f"it holds {', '.join(self.daos) or 'no table sets'}")
        return self._jobman

    def dao_for(self, table: str) -> SqliteDAO:
        """Return the DAO that owns *table* (e.g. ``'_worker_cpu_w_job'``)."""
        for ts in self.table_sets:
            if table in ts.tables:
                return self.daos[ts.prefix]
        known = [t for ts in self.table_sets for t in ts.tables]
        raise NotFoundError(f"no DAO owns table {table!r}; DAO tables are {', '.join(known)}")

    def engine_for(self, worker_key: str) -> str | None:
        """Return the key of the engine a worker submits to, or None if the file has none.

        jobman names a worker's engine ``<worker key>_engine``; that table set is used
        when present.
        """
        name = f"{worker_key}_engine"
        return name if name in self.engines else None

    @property
    def connection(self) -> sqlite3.Connection:
        """A connection of this object's own (read-only when the database is), for cross-table SQL."""
        if self._connection is None:
            self._connection = _connect(self.path, read_only=self.read_only)
        return self._connection

    # -- summaries --------------------------------------------------------------------------
    def listing(self) -> pd.DataFrame:
        """One row per DAO table: table, role, key, rows, columns, extra_columns, first, last.

        ``first`` is the earliest ``created``, ``last`` the latest ``modified``
        (UTC datetimes; NaT for an empty table).
        """
        import pandas as pd

        from .frames import epoch_to_utc

        conn = self.connection
        rows = []
        for ts in self.table_sets:
            for table in ts.tables:
                cols = _columns(conn, table)
                q = quote_identifier(table)
                first = f"min({quote_identifier('created')})" if "created" in cols else "NULL"
                last = f"max({quote_identifier('modified')})" if "modified" in cols else "NULL"
                n, lo, hi = conn.execute(f"SELECT count(*), {first}, {last} FROM {q}").fetchone()
                extras = ", ".join([*ts.extra_job_fields, *(f"{c} (left out: not a field name)"
                                                            for c in ts.left_out_columns)]) \
                    if table == ts.job_table else ""
                rows.append({"table": table, "role": ts.role, "key": ts.key, "rows": n, "columns": len(cols),
                             "extra_columns": extras, "first": lo, "last": hi})
        for table, why in self.unread.items():  # what this file holds that jobman_nb does not read
            n = conn.execute(f"SELECT count(*) FROM {quote_identifier(table)}").fetchone()[0]
            rows.append({"table": table, "role": "not understood", "key": None, "rows": n,
                         "columns": len(_columns(conn, table)), "extra_columns": why, "first": None, "last": None})
        df = pd.DataFrame(rows, columns=["table", "role", "key", "rows", "columns", "extra_columns", "first",
                                         "last"])
        for col in ("first", "last"):
            df[col] = epoch_to_utc(df[col])
        df["rows"] = df["rows"].astype("int64")
        df["columns"] = df["columns"].astype("int64")
        return df

    def lineage(self, query: dict[str, Any] | None = None) -> pd.DataFrame:
        """Return :func:`jobman_nb.job_lineage.lineage` of this database."""
        from .job_lineage import lineage

        return lineage(self, query)

    def read_job_dirs(self, query: dict[str, Any] | None = None, **kwargs: Any) -> pd.DataFrame:
        """Return :func:`jobman_nb.jobdirs.read_job_dirs` of this database's jobman jobs chosen by *query*.

        The database's ``path_map`` and lineage (for batched jobs) are used;
        *kwargs* go to ``read_job_dirs`` (``batch_dirs``, ``tail_bytes``, ...).
        """
        from .jobdirs import read_job_dirs

        return read_job_dirs(self.jobman.query_jobs_df(query), db=self, **kwargs)

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection (DAOs reconnect on next use)."""
        for dao in self.daos.values():
            dao.close()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> JobDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        sets = ", ".join(f"{ts.role} {ts.key!r}" if ts.role != "jobman" else "jobman" for ts in self.table_sets)
        return f"<JobDatabase {self.path} ({mode}): {sets}>"


class _JobmanLikeDAO(JobmanSqliteDAO):
    """A JobmanSqliteDAO on another prefix and/or with extra job columns."""

    def __init__(self, prefix: str, extra_job_fields: Mapping[str, Any], lock_timeout: float = 30,
                 debug: bool | None = None, **kwargs: Any) -> None:
        self.lock_timeout = lock_timeout
        fields = {**self.JobSchema.get_field_infos(), **extra_job_fields}
        SqliteDAO.__init__(self, orm_specs=[{"name": "job", "fields": fields}], table_prefix=prefix,
                           debug=debug, **kwargs)


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30)
    return sqlite3.connect(path, isolation_level=None, timeout=30)


#: The path_map of the database each DAO was opened with (see :func:`path_map_of`).
_PATH_MAPS: weakref.WeakKeyDictionary[SqliteDAO, PathMap] = weakref.WeakKeyDictionary()


def path_map_of(dao: SqliteDAO) -> PathMap:
    """The ``path_map`` that :func:`open_db` was given for the database *dao* belongs to.

    So code handed only a DAO (the widgets) finds the job directories where the
    database's opener said they live.

    Parameters
    ----------
    dao : SqliteDAO
        Any DAO.

    Returns
    -------
    PathMap
        The database's map; an empty one (paths used as recorded) for a DAO not
        made by :func:`open_db`.
    """
    return _PATH_MAPS.get(dao) or PathMap()


def open_db(path: str | os.PathLike[str], read_only: bool = True, *, initialize: bool = False,
            path_map: PathMapLike = None) -> JobDatabase:
    """Open a jobman database file and find every DAO table set in it.

    Parameters
    ----------
    path : str or path-like
        The SQLite file (a ``sqlite:///`` URI is accepted too).
    read_only : bool
        Open with SQLite's read-only mode (default): nothing in the file is
        created or changed, and DAO writes raise :class:`~jobman_nb.errors.ReadOnlyError`.
    initialize : bool
        With ``read_only=False``, also create the DAOs' missing columns and
        indexes (off by default: opening never changes the file unless asked).
    path_map : dict, optional
        ``{recorded prefix: local prefix}``, e.g. ``{"/scratch/alice": "/mnt/cluster/alice"}``:
        where the job directories the database records live on this machine
        (longest prefix first, whole path components only; see
        :class:`~jobman_nb.pathmap.PathMap`). Kept as ``db.path_map``.

    Returns
    -------
    JobDatabase

    Raises
    ------
    FileNotFoundError
        If there is no file at *path*.
    SchemaError
        If the file is not an SQLite database, or holds no jobman table set
        (the message lists the tables found).
    ValueError
        If ``initialize=True`` is combined with ``read_only=True``.
    PathMapError
        If *path_map* is malformed.
    """
    path_map = as_path_map(path_map)
    if initialize and read_only:
        raise ArgumentError("initialize=True writes to the file; pass read_only=False with it")
    text = os.fspath(path)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    p = Path(text).expanduser()
    if not p.exists():
        raise MissingFileError(f"no database file at {p.resolve()}")
    if not p.is_file():
        raise MissingFileError(f"{p.resolve()} is not a file")
    with open(p, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head and head != _SQLITE_MAGIC:
        raise SchemaError(f"{p} is not an SQLite database (it starts with {head[:8]!r}, "
                          f"not {_SQLITE_MAGIC[:15]!r})")
    conn = _connect(p, read_only=read_only)
    try:
        sets, others, unread = discover(conn)
    except sqlite3.DatabaseError as exc:
        raise SchemaError(f"{p} cannot be read as an SQLite database: {exc}") from exc
    finally:
        conn.close()
    if not sets:
        found = ", ".join(others) if others else "no tables at all"
        raise SchemaError(f"{p} holds no jobman tables (no '<prefix>job'/'<prefix>kvp' tables such as "
                          f"jobman_job, _worker_<key>_job, engine_<key>_job); found: {found}")
    for ts in sets:
        if ts.left_out_columns:
            warnings.warn(f"{p}: columns {', '.join(map(repr, ts.left_out_columns))} of {ts.job_table} are left out "
                          "(no field name can spell them: letters, digits and '_', not starting with a digit)",
                          UserWarning, stacklevel=2)
    return JobDatabase(p, sets, others, read_only=read_only, initialize=initialize, path_map=path_map,
                       unread=unread)
