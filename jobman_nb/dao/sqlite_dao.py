"""``SqliteDAO``: records of several entity types in one SQLite file.

Mirrors ``jobman.dao.sqlite_dao.SqliteDAO`` on sqlite-utils, with every write
in one transaction, a busy timeout so concurrent writers wait, WAL for files
it creates, and an optional read-only mode.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlite_utils

from ..errors import (
    ArgumentError,
    InsertError,
    IntegrityError,
    LockTimeoutError,
    MissingFileError,
    QueryError,
    ReadOnlyError,
    UpdateError,
)
from . import history as _history
from . import orm as _orm_module
from . import query as _query
from .orm import ORM, Record
from .utils import check_chunksize, generate_timestamp_fields
from .utils import generate_key as _generate_key

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SqliteDAO", "parse_db_uri"]

Query = _query.Query


class _SerializedCursor(sqlite3.Cursor):
    """A cursor whose calls into SQLite hold its connection's lock (see :class:`_SerializedConnection`)."""

    def execute(self, *args: Any, **kwargs: Any) -> _SerializedCursor:
        with self.connection._jobman_lock:
            return super().execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> _SerializedCursor:
        with self.connection._jobman_lock:
            return super().executemany(*args, **kwargs)

    def executescript(self, *args: Any, **kwargs: Any) -> _SerializedCursor:
        with self.connection._jobman_lock:
            return super().executescript(*args, **kwargs)

    def fetchone(self) -> Any:
        with self.connection._jobman_lock:
            return super().fetchone()

    def fetchmany(self, *args: Any, **kwargs: Any) -> list[Any]:
        with self.connection._jobman_lock:
            return super().fetchmany(*args, **kwargs)

    def fetchall(self) -> list[Any]:
        with self.connection._jobman_lock:
            return super().fetchall()


class _SerializedConnection(sqlite3.Connection):
    """A connection any thread may use: each statement holds ``_jobman_lock``, and so does a whole
    :meth:`SqliteDAO.transaction`, so one thread's statements never run inside another's transaction.

    Opened with ``check_same_thread=False``. SQLite itself is built serialized here
    (``sqlite3.threadsafety == 3``), so the lock is about transactions, not memory safety;
    iterating a cursor row by row (``for row in cursor``) is left unlocked for speed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._jobman_lock = threading.RLock()

    def cursor(self, factory: type[sqlite3.Cursor] = _SerializedCursor) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        return self.cursor().execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        return self.cursor().executemany(*args, **kwargs)

    def executescript(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        return self.cursor().executescript(*args, **kwargs)


#: The values of SQLite's ``PRAGMA synchronous``.
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
#: What jobman_nb's read-write connections to a WAL file use unless told otherwise.
_WAL_SYNCHRONOUS = "NORMAL"


def parse_db_uri(db_uri: str | os.PathLike[str]) -> str | None:
    """Return the file path a jobman ``db_uri`` names, or None for an in-memory database.

    Accepted forms: ``':memory:'``, ``'sqlite://'`` (memory),
    ``'sqlite:///relative/path'``, ``'sqlite:////absolute/path'`` and a plain path.
    """
    uri = os.fspath(db_uri)
    if uri in (":memory:", "sqlite://", "sqlite:///:memory:"):
        return None
    if uri.startswith("sqlite:///"):
        uri = uri[len("sqlite:///"):]
    elif uri.startswith("sqlite://"):
        raise ArgumentError(f"unsupported db_uri {db_uri!r}: use 'sqlite:///relative/path', "
                         "'sqlite:////absolute/path', 'sqlite://' or a plain path")
    if not uri:
        raise ArgumentError(f"db_uri {db_uri!r} names no file")
    return uri


def _lock_of(connection: sqlite3.Connection) -> contextlib.AbstractContextManager[Any]:
    """The lock serializing *connection* across threads (none for a connection made elsewhere)."""
    lock = getattr(connection, "_jobman_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


class SqliteDAO:
    """Data access object for records stored in SQLite.

    Parameters
    ----------
    db_uri : str or path-like
        ``':memory:'``, ``'sqlite://'``, ``'sqlite:///relative/path'``,
        ``'sqlite:////absolute/path'`` or a plain path.
    orm_specs : list of dict, optional
        ``[{'name': ent_type, 'fields': {...}}, ...]``: the entity types.
    table_prefix : str, optional
        Prefix of every table name.
    initialize : bool
        Create missing tables and indexes now (``False`` creates nothing).
    logger : logging.Logger, optional
    include_kvp_orm : bool
        Add the ``kvp`` entity type (key/value pairs).
    debug : bool, optional
        Log every SQL statement at DEBUG level.
    sqlite, orm : module
        The ``sqlite3`` and ORM modules to use (jobman's injection points).
    read_only : bool
        Open the file with SQLite's read-only mode: nothing is created or
        changed, and every write method raises :class:`~jobman_nb.errors.ReadOnlyError`.
    history : bool
        Record every status change of the job table in ``<prefix>job_event``
        (calls :meth:`enable_history` after initializing).
    lock_timeout : float, optional
        Seconds a write waits for another connection's write lock before
        raising :class:`~jobman_nb.errors.LockTimeoutError` (default 30).
    synchronous : {'OFF', 'NORMAL', 'FULL', 'EXTRA'}, optional
        SQLite's ``PRAGMA synchronous`` for this DAO's read-write connections.
        By default a WAL file (what jobman_nb creates) is written with
        ``NORMAL`` and any other file (jobman 0.0.1's rollback journal) with
        SQLite's own default, ``FULL``. See the notes.

    Notes
    -----
    **Durability.** Under ``synchronous=NORMAL`` in WAL mode a commit writes
    the WAL but does not wait for the disk to flush it; the WAL is flushed at
    each checkpoint (every ~1000 pages written, ``wal_autocheckpoint``). The
    file is never corrupted by that and every commit survives a crash of the
    application; what is given up is that the last transactions committed
    before a power loss or an operating-system crash may be rolled back when
    the file is next opened (https://www.sqlite.org/pragma.html#pragma_synchronous,
    https://www.sqlite.org/wal.html). A lost claim leaves its jobs PENDING, to
    be claimed again. On this project's VM a flush takes 4-40 ms, which under
    ``FULL`` caps every writer at a few dozen commits per second. Pass
    ``synchronous='FULL'`` where a commit must survive a power cut. In
    rollback-journal mode ``NORMAL`` may corrupt the file on power loss on
    some file systems, so it is not the default there.

    Attributes
    ----------
    orms : dict
        ``{ent_type: ORM}``.
    """

    InsertError = InsertError
    IntegrityError = IntegrityError
    UpdateError = UpdateError

    #: Seconds a write waits for another process's lock before failing.
    lock_timeout: float = 30.0

    def __init__(self, db_uri: str | os.PathLike[str] = ":memory:",
                 orm_specs: Sequence[Mapping[str, Any]] | None = None, table_prefix: str | None = None,
                 initialize: bool = True, logger: logging.Logger | None = None,
                 include_kvp_orm: bool = True, debug: bool | None = None, sqlite: ModuleType = sqlite3,
                 orm: ModuleType = _orm_module, *, read_only: bool = False, history: bool = False,
                 lock_timeout: float | None = None, synchronous: str | None = None) -> None:
        if lock_timeout is not None:
            self.lock_timeout = lock_timeout
        if synchronous is not None and (not isinstance(synchronous, str)
                                        or synchronous.upper() not in _SYNCHRONOUS):
            raise ArgumentError(f"synchronous must be one of {', '.join(map(repr, _SYNCHRONOUS))} "
                                f"(SQLite's PRAGMA synchronous), got {synchronous!r}")
        self.synchronous = synchronous.upper() if synchronous is not None else None
        self.logger = logger or logging.getLogger(__name__)
        self.db_uri = db_uri
        self.path = parse_db_uri(db_uri)
        self.debug = debug
        self.sqlite = sqlite
        self.orm = orm
        self.table_prefix = table_prefix
        self.read_only = read_only
        if read_only and self.path is None:
            raise ArgumentError("read_only=True needs a database file, not an in-memory database")
        self.orms: dict[str, ORM] = self._generate_orms(orm_specs, table_prefix, include_kvp_orm)
        self._connection: sqlite3.Connection | None = None
        self._db: sqlite_utils.Database | None = None
        # Guards opening and closing the connection; statements and transactions hold the
        # connection's own lock (see _SerializedConnection and transaction()).
        self._open_lock = threading.RLock()
        try:
            if initialize and not read_only:
                self.initialize()
            if history:
                self.enable_history()
        except BaseException:
            self.close()  # a constructor that raises leaves no connection open behind it
            raise

    def _generate_orms(self, orm_specs: Sequence[Mapping[str, Any]] | None, table_prefix: str | None,
                       include_kvp_orm: bool) -> dict[str, ORM]:
        specs = list(orm_specs or [])
        if include_kvp_orm:
            specs.append({"name": "kvp", "fields": self._generate_kvp_fields()})
        orms: dict[str, ORM] = {}
        for spec in specs:
            kwargs = {"logger": self.logger, "table_prefix": table_prefix, **spec}
            orm = self.orm.ORM(**kwargs)
            orms[orm.name] = orm
        return orms

    @staticmethod
    def _generate_kvp_fields() -> dict[str, Any]:
        return {"key": {"type": "TEXT", "primary_key": True}, "value": {"type": "JSON"},
                **generate_timestamp_fields()}

    def __repr__(self) -> str:
        where = self.path or ":memory:"
        mode = ", read-only" if self.read_only else ""
        return f"<{type(self).__name__} {where}{mode}: {', '.join(o.table for o in self.orms.values())}>"

    # -- connection -----------------------------------------------------------------------
    @property
    def connection(self) -> sqlite3.Connection:
        """The ``sqlite3.Connection`` in use (created on first use); any thread may use it.

        One connection serves every thread (``check_same_thread=False``): a
        notebook's widget handlers run on other threads than the cell that made
        the DAO (JupyterLab 4 with ipykernel 7 delivers comm messages on
        subshell threads). Each statement, and each :meth:`transaction` as a
        whole, holds the connection's lock, so a thread never runs inside
        another thread's transaction; an in-memory database stays one database.
        """
        connection = self._connection
        if connection is None:
            with self._open_lock:
                if self._connection is None:
                    self._connection = self.create_connection()
                connection = self._connection
        return connection

    @property
    def db(self) -> sqlite_utils.Database:
        """The ``sqlite_utils.Database`` over :attr:`connection` (usable from any thread too)."""
        db = self._db
        if db is None:
            with self._open_lock:
                if self._db is None:
                    self._db = sqlite_utils.Database(self.connection, recursive_triggers=False,
                                                     execute_plugins=False)
                db = self._db
        return db

    def create_connection(self) -> sqlite3.Connection:
        """Open a new connection: autocommit mode (transactions are explicit), rows as ``sqlite3.Row``.

        The connection may be used from any thread: every statement on it, and every
        :meth:`transaction`, holds its lock (see :attr:`connection`).
        """
        if self.path is None:
            target, uri = ":memory:", False
        elif self.read_only:
            path = Path(self.path).resolve()
            if not path.is_file():
                raise MissingFileError(f"no database file at {path}")
            target, uri = f"{path.as_uri()}?mode=ro", True
        else:
            target, uri = self.path, False
        connection = self.sqlite.connect(target, timeout=self.lock_timeout, isolation_level=None, uri=uri,
                                         check_same_thread=False, factory=_SerializedConnection)
        connection.row_factory = self.sqlite.Row
        if not self.read_only:
            self._set_synchronous(connection)
        if not self.read_only and "job" in self.orms and _history.is_enabled(connection, self.orms["job"].table):
            self._use_memory_temp_store(connection)
        if self.debug:
            connection.set_trace_callback(self.logger.debug)
        return connection

    def _set_synchronous(self, connection: sqlite3.Connection) -> None:
        """Apply :attr:`synchronous`, or NORMAL on a WAL file (see the class notes)."""
        level = self.synchronous
        if level is None and self.path is not None:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                level = _WAL_SYNCHRONOUS
        if level is not None:
            connection.execute(f"PRAGMA synchronous={level}")

    def close(self) -> None:
        """Close the connection (a new one opens on next use); from any thread.

        Waits for a statement or transaction another thread is running on it.
        """
        with self._open_lock:
            connection, self._connection, self._db = self._connection, None, None
            if connection is not None:
                with _lock_of(connection):
                    connection.close()

    def __enter__(self) -> SqliteDAO:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block of writes as one transaction (``BEGIN IMMEDIATE``).

        DAO writes inside the block join it; an exception rolls all of them
        back. Blocks nest (inner ones become savepoints). The block holds the
        connection's lock: other threads' statements on this DAO wait until it
        ends, so they neither join it nor see its uncommitted rows.
        """
        self._check_writable()
        conn = self.connection
        with _lock_of(conn):
            yield from self._transaction_block(conn)

    def _transaction_block(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        if conn.in_transaction:
            name = f"jobman_nb_{id(conn)}_{os.urandom(4).hex()}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            conn.execute(f"RELEASE SAVEPOINT {name}")
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._lock_error(exc) from exc
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            # a file in rollback-journal mode commits under an exclusive lock, which
            # readers can hold off past the timeout: undo the whole block, never half of it
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._lock_error(exc) from exc

    def _lock_error(self, exc: sqlite3.OperationalError) -> Exception:
        """A :class:`LockTimeoutError` for SQLite's "database is locked", else *exc* itself."""
        name = str(getattr(exc, "sqlite_errorname", ""))
        if not (name.startswith("SQLITE_BUSY") or "database is locked" in str(exc)):
            return exc
        where = self.path or ":memory:"
        return LockTimeoutError(
            f"could not get the write lock on {where} within lock_timeout={self.lock_timeout:g} s: another "
            "connection held it all that time; nothing was written (retry, or give a larger lock_timeout)",
            path=where, timeout=self.lock_timeout)

    def check_writable(self) -> None:
        """Raise :class:`~jobman_nb.errors.ReadOnlyError` if this DAO was opened read-only (call before any work)."""
        if self.read_only:
            raise ReadOnlyError(f"the database {self.path} was opened read-only; nothing was written "
                                "(open it with read_only=False to write)")

    _check_writable = check_writable  # the name the DAO's own methods use

    # -- schema ---------------------------------------------------------------------------
    def initialize(self) -> None:
        """Create the tables and indexes (idempotent)."""
        self.ensure_tables()

    def _index_fields(self, orm: ORM) -> list[str]:
        return [f for f in ("status", "created", "modified") if f in orm.fields]

    def ensure_tables(self) -> None:
        """Create missing tables, columns and indexes, in one transaction.

        A database file that holds no tables yet is switched to WAL, so
        notebooks can read while workers write.
        """
        self._check_writable()
        if self._schema_complete():
            return  # nothing to create: take no write lock (many workers open the same file at once)
        if self.path is not None and not self.db.table_names() and self.db.journal_mode != "wal":
            with contextlib.suppress(sqlite3.OperationalError):  # another process got there first
                self.connection.execute("PRAGMA journal_mode=WAL")
            self._set_synchronous(self.connection)
        with self.transaction():
            for orm in self.orms.values():
                orm.create_table(connection=self.connection)
                table = self.db.table(orm.table)
                for name in self._index_fields(orm):
                    table.create_index([name], index_name=f"idx_{orm.table}_{name}", if_not_exists=True)

    def _schema_complete(self) -> bool:
        """Whether every table, column and index :meth:`ensure_tables` makes exists already."""
        conn = self.connection
        objects = {(kind, name) for kind, name in conn.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index')")}
        for orm in self.orms.values():
            if ("table", orm.table) not in objects:
                return False
            if not set(orm.columns) <= set(orm.present_columns(conn)):
                return False
            if any(("index", f"idx_{orm.table}_{name}") not in objects for name in self._index_fields(orm)):
                return False
        return True

    def create_index(self, ent_type: str | None = None, fields: Sequence[str] | str = ()) -> str:
        """Create (if missing) an index on fields or JSON paths of *ent_type*'s table.

        A JSON path such as ``'job_spec.cfg.code'`` gets an expression index
        that filters and order_by on the same path use.

        Parameters
        ----------
        ent_type : str
        fields : str or list of str
            Fields or dotted JSON paths (paths of letters, digits, '_' and '-').

        Returns
        -------
        str
            The index name.
        """
        self._check_writable()
        orm = self._get_orm(ent_type)
        names = [fields] if isinstance(fields, str) else list(fields)
        if not names:
            raise QueryError("create_index: give at least one field")
        exprs = []
        for name in names:
            ref = _query.field_sql(name, orm.columns, "create_index")
            if ref.params:
                raise QueryError(f"create_index: {name!r} has keys that cannot be indexed; "
                                 "use keys of letters, digits, '_' and '-'")
            exprs.append(ref.sql)
        index = f"idx_{orm.table}_" + "_".join(n.replace(".", "__").replace("-", "_") for n in names)
        with self.transaction() as conn:
            conn.execute(f"CREATE INDEX IF NOT EXISTS {_query.quote_identifier(index)} "
                         f"ON {_query.quote_identifier(orm.table)} ({', '.join(exprs)})")
        return index

    # -- entities -------------------------------------------------------------------------
    def get_orm(self, ent_type: Any) -> ORM:
        """The ORM of *ent_type* (its table, columns and field infos).

        Raises
        ------
        QueryError
            If this DAO has no such entity type.
        """
        try:
            return self.orms[ent_type]
        except (KeyError, TypeError):
            raise QueryError(f"unknown ent_type {ent_type!r}; this DAO has {', '.join(map(repr, self.orms))}") from None

    _get_orm = get_orm  # the name the DAO's own methods use

    def generate_key(self) -> str:
        """Return a new record key (a uuid4 string)."""
        return _generate_key()

    def create_ent(self, ent_type: str | None = None, ent: Mapping[str, Any] | None = None) -> Record:
        """Save one new record and return it."""
        return self.save_ents(ent_type=ent_type, ents=[ent if ent is not None else {}])[0]

    def save_ents(self, ent_type: str | None = None, ents: Sequence[Mapping[str, Any]] | None = None,
                  replace: bool = True, *, auto_update: bool = True) -> list[Record]:
        """Save records in one transaction: all of them or none.

        Parameters
        ----------
        ent_type : str
        ents : list of dict
        replace : bool
            Overwrite records whose key exists; if False a key clash raises.
        auto_update : bool
            Set ``modified`` to now (the default). False keeps the records'
            own ``modified`` (filled in only where missing), e.g. to import a history.

        Returns
        -------
        list of dict
            The saved records, with key, created and modified filled in.

        Raises
        ------
        IntegrityError
            On a key clash with ``replace=False``.
        InsertError
            If a value cannot be stored (e.g. not JSON-serializable).
        """
        orm = self._get_orm(ent_type)
        self._check_writable()
        names, rows, records = orm.prepare_records(ents or [], auto_update=auto_update)
        if rows:
            with self.transaction() as conn:
                orm.execute_many(names, rows, replace, conn)
        return records

    def get_ent(self, ent_type: str | None = None, key: Any = None) -> Record | None:
        """Return the record with *key*, or None."""
        orm = self._get_orm(ent_type)
        found = orm.query_objects({"filters": [{"field": orm.primary_key or "key", "op": "=", "arg": key}],
                                   "limit": 1}, connection=self.connection)
        return found[0] if found else None

    def query_ents(self, ent_type: str | None = None, query: Query | None = None) -> list[Record]:
        """Return the records matching a query dict (see ``docs/query-language.md``).

        Raises
        ------
        QueryError
            If the query is malformed (nothing runs).
        """
        return self._get_orm(ent_type).query_objects(query, connection=self.connection)

    def iter_ents(self, ent_type: str | None = None, query: Query | None = None, *,
                  chunksize: int = 50_000) -> Iterator[list[Record]]:
        """Yield the records matching *query* in lists of at most *chunksize*."""
        check_chunksize(chunksize)
        return self._get_orm(ent_type).iter_objects(query, connection=self.connection, chunksize=chunksize)

    def count_ents(self, ent_type: str | None = None, query: Query | None = None, *, cap: int | None = None) -> int:
        """Count the records matching *query* (its order_by is ignored: it cannot change a count).

        Parameters
        ----------
        ent_type : str
        query : dict, optional
        cap : int, optional
            Stop counting at *cap* rows and return ``min(count, cap)``: ask
            "more than n?" with ``count_ents(t, q, cap=n + 1) > n`` without
            scanning the rest of a large table.

        Raises
        ------
        QueryError
            If the query is malformed (nothing runs).
        """
        return self._get_orm(ent_type).count_objects(query, connection=self.connection, cap=cap)

    # -- read primitives (for the layers above: frames, widgets, CLI) ---------------------
    def compile_query(self, ent_type: str | None = None, query: Query | None = None) -> _query.Select:
        """Validate *query* and compile it to a SELECT over *ent_type*'s table (columns the file lacks read as NULL).

        Raises
        ------
        QueryError
            If the query is malformed.
        """
        return self._get_orm(ent_type).compile_query(query, self.connection)

    def iter_rows(self, select: _query.Select, *, chunksize: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """Run a compiled query (:meth:`compile_query`) now; iterate its rows in lists of at most *chunksize*.

        Rows are plain tuples of the stored values (JSON undecoded) in
        ``select.names`` order: the fast path for building frames.
        """
        check_chunksize(chunksize)
        return _orm_module.iter_rows(select, self.connection, chunksize)

    def count_by(self, ent_type: str | None = None, field: str = "status",
                 query: Query | None = None) -> dict[Any, int]:
        """``{value: count}`` of a field or JSON path over the records matching *query* (one GROUP BY).

        Raises
        ------
        QueryError
            If the field or query is malformed.
        """
        return self._get_orm(ent_type).count_by(field, query, connection=self.connection)

    def distinct_values(self, ent_type: str | None = None, field: str = "status", query: Query | None = None, *,
                        limit: int | None = None) -> list[Any]:
        """The distinct values of a field or JSON path among the matching records, sorted, at most *limit*.

        Raises
        ------
        QueryError
            If the field or query is malformed.
        """
        return self._get_orm(ent_type).distinct_values(field, query, connection=self.connection, limit=limit)

    def sample_json_paths(self, ent_type: str | None = None, field: str = "job_spec", *, sample: int = 500,
                          max_paths: int = 300) -> dict[str, set[str]]:
        """Leaf paths of a JSON field found in its first and last *sample* rows: ``{dotted name: JSON types}``.

        Bounded whatever the table's size; the types are SQLite ``json_type``
        names (``'integer'``, ``'text'``, ``'true'``...).

        Raises
        ------
        QueryError
            If *field* is not a JSON field.
        """
        return self._get_orm(ent_type).sample_json_paths(field, self.connection, sample=sample, max_paths=max_paths)

    def validate_query(self, ent_type: str | None = None, query: Query | None = None) -> Query:
        """Check a query dict against *ent_type*'s schema without running it.

        Returns
        -------
        dict
            The query (``{}`` for None).

        Raises
        ------
        QueryError
        """
        orm = self._get_orm(ent_type)
        return _query.validate_query(query, orm.columns, orm.table)

    def update_ents(self, ent_type: str | None = None, updates: Mapping[str, Any] | None = None,
                    query: Query | None = None) -> dict[str, int]:
        """Update the records matching *query* in one transaction.

        ``modified`` is set unless *updates* sets it. Returns ``{'rowcount': n}``.

        Raises
        ------
        QueryError
            If *updates* or *query* is malformed (nothing is written).
        """
        orm = self._get_orm(ent_type)
        self._check_writable()
        update = orm.compile_stamped_update(updates, query)
        params = update.bind()
        with self.transaction() as conn:
            try:
                rowcount = None
                if orm is self.orms.get("job") and "status" in updates:
                    # many status changes with history on: the events in one INSERT ... SELECT
                    rowcount = _history.bulk_update(conn, orm, update.sql, params, updates, query,
                                                    update.stamp("modified", params))
                if rowcount is None:
                    rowcount = conn.execute(update.sql, params).rowcount
            except sqlite3.Error as exc:
                raise orm.invalid_json(conn, exc) or UpdateError(f"cannot update {orm.table}: {exc}") from exc
        return {"rowcount": rowcount}

    # -- DataFrames (jobman_nb.frames; pandas is imported on first use) ---------------------
    def query_ents_df(self, ent_type: str | None = None, query: Query | None = None, *,
                      expand_json: bool = True) -> pd.DataFrame:
        """Return the records matching *query* as a DataFrame (see :func:`jobman_nb.frames.query_ents_df`)."""
        from .. import frames

        return frames.query_ents_df(self, ent_type, query, expand_json=expand_json)

    def iter_ents_df(self, ent_type: str | None = None, query: Query | None = None, *, chunksize: int = 50_000,
                     expand_json: bool = True, progress: bool | None = None) -> Iterator[pd.DataFrame]:
        """Yield the matching records as DataFrames of at most *chunksize* rows."""
        from .. import frames

        return frames.iter_ents_df(self, ent_type, query, chunksize=chunksize, expand_json=expand_json,
                                   progress=progress)

    def query_kvps_df(self, query: Query | None = None) -> pd.DataFrame:
        """Return the kvps matching *query* as a DataFrame (``value`` holds the parsed values)."""
        return self.query_ents_df("kvp", query, expand_json=False)

    # -- job history (jobman_nb.dao.history) ------------------------------------------------
    def _job_orm_for_history(self) -> ORM:
        if "job" not in self.orms:
            raise QueryError(f"job history needs a 'job' entity type; this DAO has {', '.join(map(repr, self.orms))}")
        return self.orms["job"]

    def enable_history(self) -> None:
        """Record every status change of the job table in ``<prefix>job_event``, written by SQLite triggers.

        Creates the event table, its index and the triggers, and snapshots the
        jobs already present, in one transaction; idempotent. Writers that do
        not know about the history (jobman 0.0.1, raw SQL, other processes)
        are recorded too. See :mod:`jobman_nb.dao.history` for the rules.

        Raises
        ------
        ReadOnlyError
            If the DAO is read-only.
        SchemaError
            If the job table does not exist yet.
        """
        self._check_writable()
        orm = self._job_orm_for_history()
        with self.transaction() as conn:
            _history.enable(conn, orm)
        self._use_memory_temp_store(self.connection)

    @staticmethod
    def _use_memory_temp_store(connection: sqlite3.Connection) -> None:
        # With history triggers on, each row of a batch save opens a statement journal (see
        # jobman_nb.dao.history): keeping it in memory rather than a temporary file makes
        # save_jobs ~1.4x instead of ~2x the cost without history. Only on such connections,
        # since it also keeps large sorts and temporary indexes in memory.
        connection.execute("PRAGMA temp_store=MEMORY")

    def disable_history(self) -> None:
        """Drop the history triggers; the recorded events stay.

        Raises
        ------
        ReadOnlyError
            If the DAO is read-only.
        """
        self._check_writable()
        orm = self._job_orm_for_history()
        with self.transaction() as conn:
            _history.disable(conn, orm)

    @property
    def history_enabled(self) -> bool:
        """Whether the job table's history triggers exist (whoever created them)."""
        return _history.is_enabled(self.connection, self._job_orm_for_history().table)

    def query_events(self, query: Query | None = None) -> list[Record]:
        """Return the job events matching a query dict over ``key, job_key, old_status, new_status, time``.

        Raises
        ------
        QueryError
            If the query is malformed or the file has no event table.
        """
        return _history.query_events(self.connection, self._job_orm_for_history(), query)

    def query_events_df(self, query: Query | None = None) -> pd.DataFrame:
        """Return the matching job events as a DataFrame (see :func:`jobman_nb.timeline.events_frame`)."""
        from .. import timeline

        return timeline.events_frame(self.query_events(query))

    # -- key/value pairs ------------------------------------------------------------------
    def create_kvp(self, kvp: Mapping[str, Any] | None = None) -> Record:
        """Save one key/value pair ``{'key': ..., 'value': ...}``."""
        return self.create_ent(ent_type="kvp", ent=kvp)

    def save_kvps(self, kvps: Sequence[Mapping[str, Any]] | None = None, replace: bool = True) -> list[Record]:
        """Save key/value pairs in one transaction."""
        return self.save_ents(ent_type="kvp", ents=kvps, replace=replace)

    def get_kvp(self, key: str | None = None) -> Record | None:
        """Return the kvp record with *key*, or None."""
        return self.get_ent(ent_type="kvp", key=key)

    def query_kvps(self, query: Query | None = None) -> list[Record]:
        """Return the kvp records matching a query dict."""
        return self.query_ents(ent_type="kvp", query=query)

    def update_kvp(self, key: str | None = None, new_value: Any = None, where_prev_value: Any = ...) -> None:
        """Set a kvp's value; with *where_prev_value*, only if it currently holds that value.

        A compare-and-swap: exactly one row must change.

        Raises
        ------
        UpdateError
            If no kvp has *key*, or its value is not *where_prev_value*.
        """
        filters: list[dict[str, Any]] = [{"field": "key", "op": "=", "arg": key}]
        if where_prev_value is not ...:
            filters.append({"field": "value", "op": "=", "arg": where_prev_value})
        result = self.update_ents(ent_type="kvp", updates={"value": new_value}, query={"filters": filters})
        if result["rowcount"] != 1:
            expected = "" if where_prev_value is ... else f" with value {where_prev_value!r}"
            raise UpdateError(f"update_kvp: no kvp {key!r}{expected} (changed {result['rowcount']} rows)")

    def flush(self) -> None:
        """Close the connection and delete the database file (and its WAL files)."""
        self._check_writable()
        self.close()
        if self.path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path + suffix)
