"""Job tables to a partitioned Parquet dataset, chunk by chunk, for Dask, DuckDB and friends.

:func:`export_parquet` streams the jobs of one or many databases
(:func:`jobman_nb.open_many`) into a Hive-partitioned Parquet dataset::

    out/db=cluster_a/month=2026-01/part-000000-0.parquet
    out/db=cluster_a/month=2026-02/part-000001-0.parquet
    out/db=cluster_b/month=2026-01/part-000002-0.parquet
    out/_common_metadata

Each chunk of ``chunksize`` jobs is read (:meth:`~jobman_nb.JobmanSqliteDAO.iter_jobs_df`),
converted and written before the next is read, so peak memory is bounded by
the chunk size, not by the number of jobs.

Columns and types are those of the frames (``query_jobs_df``): JSON expanded to
dotted columns, ``created``/``modified`` as ``timestamp[ns, UTC]``, ``status``
dictionary-encoded (a pandas categorical on reading), text, nullable integers
and booleans; ``pandas.read_parquet`` gives back the frame's dtypes. Partition
columns (``db``, ``month``) come back from the directory names.

One schema for the whole dataset
--------------------------------
A JSON key may appear only in later chunks, or only in one cluster's file, and
a key may hold integers in one chunk and floats in another. The schema is
therefore settled *after* the streaming pass, from the schemas of the files
written (a few kilobytes each, kept in memory): every column seen anywhere,
with one type each. Then only the files that differ from it are rewritten,
one file (at most one chunk) at a time; in the common case of a stable
schema nothing is rewritten. Every file of the dataset ends up with the same
columns in the same order and types, and ``_common_metadata`` holds that
schema. The rules, per column:

- missing in a file: all-null, of the common type;
- integers and floats mixed: ``float64``;
- lists (such as ``errors``) stay Parquet lists when their items share a
  type; a column whose values do not share one Parquet type (mixed JSON
  values, lists of objects) is stored as JSON text (``json.loads`` gives the
  values back);
- a column that is null everywhere: text.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._extras import require
from .dao.utils import check_chunksize
from .errors import ArgumentError, ArgumentTypeError, MissingDependencyError, MissingFileError, OutputExistsError
from .explore import JobDatabase
from .multi import DB_COLUMN, ManyDatabases, open_many

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["export_parquet", "export_file", "read_dask", "read_duckdb", "DEFAULT_CHUNKSIZE", "TIME_PARTITIONS"]

#: Jobs read, converted and written at a time.
DEFAULT_CHUNKSIZE = 50_000
#: Partition columns derived from ``created`` (UTC): name -> strftime-like layout.
TIME_PARTITIONS = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}
_LINEAGE_KEYS_PER_QUERY = 5_000  # below SQLite's bound-parameter limit
_LINEAGE_DUPLICATES = ("key", "status", "created", "modified", "worker_key")


@dataclass
class _Piece:
    path: Path
    schema: pa.Schema
    encoded: set[str] = field(default_factory=set)
    untyped: set[str] = field(default_factory=set)  # all-null object columns: written as text, any type goes


# -- sources ----------------------------------------------------------------------------------
def _as_many(source: Any, names: Sequence[str] | None) -> tuple[ManyDatabases, bool]:
    """Return (ManyDatabases, whether we opened it and must close it)."""
    if isinstance(source, ManyDatabases):
        return source, False
    if isinstance(source, JobDatabase):
        name = names[0] if names else source.path.stem
        return ManyDatabases({name: source}, owned=False), False
    if isinstance(source, (str, os.PathLike)):
        return open_many([source], names=names), True
    if isinstance(source, (Mapping, Sequence)):
        return open_many(source, names=names), True
    raise ArgumentTypeError(f"source must be a path, a list of paths, a {{name: path}} dict, a JobDatabase or "
                    f"ManyDatabases; got {type(source).__name__}")


# -- frames to arrow --------------------------------------------------------------------------
def _plain(t: pa.DataType) -> bool:
    """Whether Parquet stores values of this inferred type as they are (else they become JSON text)."""
    import pyarrow as pa

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _plain(t.value_type)
    return (pa.types.is_null(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_string(t) or pa.types.is_large_string(t))


def _json_strings(values: Iterable[Any]) -> list[str | None]:
    return [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values]


def _json_text(values: Iterable[Any]) -> pd.Series:
    import pandas as pd

    from .frames import STRING_DTYPE

    return pd.Series(_json_strings(values), dtype=STRING_DTYPE)


def _to_arrow(frame: pd.DataFrame) -> tuple[pa.Table, set[str], set[str]]:
    """The chunk as an arrow table, and the names of its JSON-text and its all-null object columns."""
    import pandas as pd
    import pyarrow as pa

    from .frames import STRING_DTYPE

    encoded, untyped = set(), set()
    for name in frame.columns:
        col = frame[name]
        if col.dtype != object:
            continue
        if col.isna().all():
            frame[name] = pd.Series(pd.array([None] * len(col), dtype=STRING_DTYPE), index=frame.index)
            untyped.add(name)
            continue
        values = col.astype(object).where(col.notna(), None).tolist()
        try:
            plain = _plain(pa.array(values).type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            plain = False
        if not plain:
            frame[name] = _json_text(values).set_axis(frame.index)
            encoded.add(name)
    return pa.Table.from_pandas(frame, preserve_index=False), encoded, untyped


def _time_partition(created: pd.Series, layout: str) -> pd.Series:
    """``created`` formatted as *layout*, computed once per distinct value of that resolution."""
    days = created.dt.tz_convert("UTC").dt.floor("D")
    labels = {t: t.strftime(layout) for t in days.dropna().unique()}
    return days.map(labels).astype("string")


def _add_partitions(frame: pd.DataFrame, partition_by: Sequence[str]) -> pd.DataFrame:
    for name in partition_by:
        if name in TIME_PARTITIONS:
            if "created" not in frame.columns:
                raise ArgumentError(f"partition_by {name!r} is derived from the 'created' field; the query's "
                                 "'fields' leave it out")
            frame[name] = _time_partition(frame["created"], TIME_PARTITIONS[name])
        elif name not in frame.columns:
            raise ArgumentError(f"cannot partition by {name!r}: not a column of the jobs (nor one of "
                             f"{', '.join([DB_COLUMN, *TIME_PARTITIONS])})")
    return frame


def _with_lineage(frame: pd.DataFrame, db: JobDatabase) -> pd.DataFrame:
    """Add the worker and engine side of each job (see :func:`jobman_nb.job_lineage.lineage`)."""
    import pandas as pd

    from .job_lineage import lineage

    keys = frame["key"].dropna().tolist()
    parts = [lineage(db, {"filters": [{"field": "key", "op": "IN", "arg": keys[i:i + _LINEAGE_KEYS_PER_QUERY]}]})
             for i in range(0, len(keys), _LINEAGE_KEYS_PER_QUERY)]
    lin = pd.concat(parts, ignore_index=True) if parts else lineage(db, {"filters": [
        {"field": "key", "op": "IN", "arg": []}]})
    lin = lin.drop(columns=[c for c in _LINEAGE_DUPLICATES if c != "key"]).set_index("key")
    lin["key"] = lin.index  # a plain column to join on, keeping the frame's row order
    joined = frame.join(lin.drop(columns="key"), on="key")
    return joined


# -- one schema -------------------------------------------------------------------------------
def _unify_types(types: Sequence[pa.DataType]) -> pa.DataType | None:
    """The common type of a column's types (nulls left out), or None if there is none (-> JSON text)."""
    import pyarrow as pa

    unique = list(dict.fromkeys(t for t in types if not pa.types.is_null(t)))
    if not unique:
        return pa.null()
    if len(unique) == 1:
        return unique[0]
    if all(pa.types.is_dictionary(t) for t in unique):
        value = _unify_types([t.value_type for t in unique])
        index = max((t.index_type for t in unique), key=lambda t: t.bit_width)
        return None if value is None else pa.dictionary(index, value)
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in unique):
        return pa.float64()
    if all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in unique):
        return pa.large_string()
    if all(pa.types.is_list(t) or pa.types.is_large_list(t) for t in unique):
        value = _unify_types([t.value_type for t in unique])
        return None if value is None else pa.list_(value)
    return None


def _target_schema(pieces: Sequence[_Piece]) -> tuple[pa.Schema, set[str]]:
    """The dataset's schema (with pandas metadata for the frame dtypes) and its JSON-text columns."""
    import pyarrow as pa

    from .frames import arrow_dtype, merge_column_order

    order: list[str] = []
    types: dict[str, list[pa.DataType]] = {}
    json_cols: set[str] = set()
    for piece in pieces:
        order = merge_column_order(order, piece.schema.names)
        for f in piece.schema:
            types.setdefault(f.name, [])
            if f.name not in piece.untyped:
                types[f.name].append(f.type)
        json_cols |= piece.encoded
    fields = []
    for name in order:
        t = _unify_types(types[name])
        if t is None or name in json_cols:
            json_cols.add(name)
            t = pa.large_string()
        elif pa.types.is_null(t):
            t = pa.large_string()
        fields.append(pa.field(name, t))
    schema = pa.schema(fields)
    # Pandas metadata for these types, so pandas.read_parquet restores the frame dtypes.
    empty = schema.empty_table().to_pandas(types_mapper=arrow_dtype)
    meta = pa.Schema.from_pandas(empty, preserve_index=False).metadata
    return schema.with_metadata(meta), json_cols


def _conform_table(table: pa.Table, schema: pa.Schema, encoded: set[str], json_cols: set[str]) -> pa.Table:
    import pyarrow as pa

    arrays = []
    for f in schema:
        if f.name not in table.column_names:
            arrays.append(pa.nulls(len(table), f.type))
            continue
        col = table.column(f.name)
        if col.null_count == len(col) and col.type != f.type:
            # all missing in this piece (written untyped): nulls of the dataset's type
            arrays.append(pa.nulls(len(table), f.type))
            continue
        if f.name in json_cols and f.name not in encoded:
            col = pa.array(_json_strings(col.to_pylist()), f.type)
        elif col.type != f.type:
            col = col.cast(f.type)
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=schema)


def _unify_files(pieces: Sequence[_Piece], schema: pa.Schema, json_cols: set[str]) -> int:
    """Rewrite the files whose columns differ from *schema*; return how many were rewritten."""
    import pyarrow.parquet as pq

    bare = schema.remove_metadata()
    rewritten = 0
    for piece in pieces:
        if piece.schema.remove_metadata().equals(bare) and not ((json_cols - piece.encoded)
                                                                  & set(piece.schema.names)):
            continue
        table = _conform_table(pq.read_table(piece.path), schema, piece.encoded, json_cols)
        partial = piece.path.with_name(piece.path.name + ".partial")
        pq.write_table(table, partial)
        os.replace(partial, piece.path)
        rewritten += 1
    return rewritten


# -- the output directory ---------------------------------------------------------------------
def _is_dataset(path: Path) -> bool:
    """Whether *path* holds nothing but what an export writes (safe to replace)."""
    return all(p.is_dir() or p.suffix == ".parquet" or p.name == "_common_metadata" for p in path.rglob("*"))


def _check_out_dir(out: Path, overwrite: bool) -> None:
    if not out.parent.is_dir():
        raise MissingFileError(f"no directory {out.parent} to write {out.name} into")
    if out.exists():
        if not out.is_dir():
            raise OutputExistsError(f"{out} is a file; export_parquet writes a directory")
        if any(out.iterdir()):
            if not overwrite:
                raise OutputExistsError(f"{out} exists and is not empty; pass overwrite=True (CLI: --force) "
                                      "to replace it")
            if not _is_dataset(out):
                raise OutputExistsError(f"{out} holds files other than Parquet; refusing to replace it")


# -- the export -------------------------------------------------------------------------------
def export_parquet(source: Any, out_dir: str | os.PathLike[str], *, query: dict[str, Any] | None = None,
                   chunksize: int = DEFAULT_CHUNKSIZE, partition_by: Sequence[str] = (DB_COLUMN, "month"),
                   lineage: bool = False, names: Sequence[str] | None = None, overwrite: bool = False,
                   progress: bool | None = None) -> dict[str, Any]:
    """Write the jobs of one or many databases to a partitioned Parquet dataset.

    The files are read-only sources (opened as :func:`jobman_nb.open_many`
    opens them). Jobs stream through in chunks; the dataset is written next
    to *out_dir* and moved into place only when complete.

    Parameters
    ----------
    source : path, list of paths, dict, JobDatabase or ManyDatabases
        The database(s); a ``{name: path}`` dict (or *names*) sets the ``db``
        values, which default to the file stems.
    out_dir : path
        The dataset directory to create.
    query : dict, optional
        A query dict choosing the jobs (checked on every file first).
    chunksize : int
        Jobs read, converted and written at a time; bounds the memory used.
    partition_by : list of str
        Hive partition columns, outermost first: ``'db'``, ``'year'``,
        ``'month'`` or ``'day'`` (of ``created``, UTC, e.g. ``'2026-01'``),
        or a text column of the jobs such as ``'worker_key'``. Empty for one
        flat directory of files.
    lineage : bool
        Add each job's worker and engine side (``worker.status``,
        ``engine.status``, their created/modified times, links; see
        :func:`jobman_nb.job_lineage.lineage`), joined per chunk in SQLite.
    names : list of str, optional
        Database names, one per path.
    overwrite : bool
        Replace *out_dir* if it exists (only if it holds nothing but Parquet
        files).
    progress : bool, optional
        A tqdm progress bar over the jobs (None: shown on a terminal or in a
        notebook).

    Returns
    -------
    dict
        ``out_dir``, ``jobs`` (written), ``databases`` (``{name: jobs}``),
        ``files``, ``rewritten`` (files brought to the common schema
        afterwards), ``columns`` (the common schema's column names) and
        ``partition_by``.

    Raises
    ------
    QueryError
        If the query does not fit some file (nothing is written).
    FileExistsError
        If *out_dir* exists and is not empty, without *overwrite*.
    ImportError
        Never for the core: pyarrow is a dependency (Dask and DuckDB, which
        read the result, are the ``scale`` extra).
    """
    import pandas as pd
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    check_chunksize(chunksize)
    if isinstance(partition_by, str):
        partition_by = [partition_by]
    partition_by = list(partition_by)
    if len(set(partition_by)) != len(partition_by) or not all(isinstance(p, str) and p for p in partition_by):
        raise ArgumentError(f"partition_by must be distinct column names, got {partition_by!r}")
    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    many, owned = _as_many(source, names)
    try:
        counts = many.count_jobs(query)  # validates the query on every file
        tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            pieces, jobs = _stream(many, query, tmp, chunksize, partition_by, lineage,
                                   tqdm(total=int(counts.sum()), unit="jobs", desc=f"export {out.name}",
                                        disable=None if progress is None else not progress, leave=False))
            if not pieces:  # nothing matched: one empty file still carries the columns
                first = next(iter(many.databases.values()))
                frame = first.jobman.query_jobs_df({**(query or {}), "limit": 0})
                frame.insert(0, DB_COLUMN, pd.Categorical([], categories=many.names))
                frame = frame.drop(columns=[p for p in partition_by if p in frame.columns])
                table, encoded, untyped = _to_arrow(frame)
                pq.write_table(table, tmp / "part-000000-0.parquet")
                pieces = [_Piece(tmp / "part-000000-0.parquet", table.schema, encoded, untyped)]
            schema, json_cols = _target_schema(pieces)
            rewritten = _unify_files(pieces, schema, json_cols)
            pq.write_metadata(schema, tmp / "_common_metadata")
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if owned:
            many.close()
    return {"out_dir": str(out), "jobs": jobs, "databases": {k: int(v) for k, v in counts.items()},
            "files": len(pieces), "rewritten": rewritten, "columns": schema.names, "partition_by": partition_by}


def _stream(many: ManyDatabases, query: dict[str, Any] | None, tmp: Path, chunksize: int,
            partition_by: list[str], lineage: bool, bar: Any) -> tuple[list[_Piece], int]:
    import pyarrow as pa
    import pyarrow.dataset as pds

    pieces: list[_Piece] = []
    jobs = 0
    partitioning = pds.partitioning(pa.schema([(p, pa.string()) for p in partition_by]), flavor="hive") \
        if partition_by else None
    with bar:
        for seq, chunk in enumerate(many.iter_jobs_df(query, chunksize=chunksize, progress=False)):
            if lineage:
                chunk = _with_lineage(chunk, many[chunk[DB_COLUMN].iat[0]])
            chunk = _add_partitions(chunk, partition_by)
            for p in partition_by:  # directory names are text
                chunk[p] = chunk[p].astype("string")
            table, encoded, untyped = _to_arrow(chunk)
            written: list[Any] = []
            pds.write_dataset(table, tmp, format="parquet", partitioning=partitioning,
                              basename_template=f"part-{seq:06d}-{{i}}.parquet",
                              existing_data_behavior="overwrite_or_ignore", max_partitions=100_000,
                              file_visitor=written.append)
            file_schema = pa.schema([f for f in table.schema if f.name not in partition_by],
                                    metadata=table.schema.metadata)
            pieces.extend(_Piece(Path(w.path), file_schema, encoded, untyped) for w in written)
            jobs += len(chunk)
            bar.update(len(chunk))
            del chunk, table
    return pieces, jobs


# -- one file ---------------------------------------------------------------------------------
def export_file(dao: Any, ent_type: str, out: str | os.PathLike[str], *, query: dict[str, Any] | None = None,
                kind: str = "parquet", chunksize: int = DEFAULT_CHUNKSIZE, progress: bool | None = None) -> int:
    """Write the records of one DAO table matching *query* to one Parquet or CSV file, chunk by chunk.

    Columns are those of the frames (``query_ents_df``), with the dataset's
    schema rule (see the module docstring): every column seen in any chunk,
    one type each, JSON text where values share no Parquet type. A CSV cell
    holds :func:`jobman_nb.encode.text_cell` text. The file is written beside
    *out* and moved into place when complete.

    Parameters
    ----------
    dao : SqliteDAO
    ent_type : str
    out : path
        The file to write (replaced if it exists).
    query : dict, optional
    kind : {'parquet', 'csv'}
    chunksize : int
        Records read, converted and written at a time (a Parquet row group each).
    progress : bool, optional
        tqdm progress bars on stderr (None: when stderr is a terminal).

    Returns
    -------
    int
        The number of records written.

    Raises
    ------
    QueryError
        If the query is malformed (nothing is written).
    """
    import sys
    import tempfile

    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    if kind not in ("parquet", "csv"):
        raise ArgumentError(f"kind must be 'parquet' or 'csv', got {kind!r}")
    check_chunksize(chunksize)
    out = Path(out)
    total = dao.count_ents(ent_type, query)  # validates the query first
    disable = None if progress is None else not progress
    if kind == "csv":
        from .encode import text_frame
    with tempfile.TemporaryDirectory(prefix=".jobman-nb-export-", dir=out.parent) as tmp:
        pieces: list[_Piece] = []

        def add(frame: pd.DataFrame) -> None:
            table, encoded, untyped = _to_arrow(text_frame(frame) if kind == "csv" else frame)
            path = Path(tmp) / f"{len(pieces):06d}.parquet"
            pq.write_table(table, path)
            pieces.append(_Piece(path, table.schema, encoded, untyped))

        with tqdm(total=total, unit="rows", desc=f"reading {dao.orms[ent_type].table}", file=sys.stderr,
                  leave=False, disable=disable) as bar:
            for frame in dao.iter_ents_df(ent_type, query, chunksize=chunksize, progress=False):
                add(frame)
                bar.update(len(frame))
        if not pieces:  # nothing matched: the file still carries the columns
            add(dao.query_ents_df(ent_type, {**(query or {}), "limit": 0}))
        schema, json_cols = _target_schema(pieces)
        partial = Path(tmp) / ("out." + kind)
        writer: Any = pq.ParquetWriter(partial, schema) if kind == "parquet" else None
        try:
            for i, piece in enumerate(tqdm(pieces, desc=f"writing {out.name}", unit="chunk", file=sys.stderr,
                                           leave=False, disable=disable)):
                table = _conform_table(pq.read_table(piece.path), schema, piece.encoded, json_cols)
                if writer is not None:
                    writer.write_table(table)
                else:
                    table.to_pandas().to_csv(partial, mode="w" if i == 0 else "a", header=i == 0, index=False)
        finally:
            if writer is not None:
                writer.close()
        partial.replace(out)
    return total


def read_dask(out_dir: str | os.PathLike[str], **kwargs: Any) -> Any:
    """Open an exported dataset as a dask DataFrame (``dask.dataframe.read_parquet``).

    Parameters
    ----------
    out_dir : path or URL
        The dataset directory written by :func:`export_parquet` (or a copy on
        shared or object storage that the Dask workers can read).
    **kwargs
        Passed on to ``dask.dataframe.read_parquet`` (e.g. ``columns=``,
        ``filters=[("db", "==", "cluster_a")]``).

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy; the analytics helpers accept it.

    Raises
    ------
    MissingDependencyError
        If dask is not installed (an ``ImportError`` naming the ``scale`` extra).
    """
    dd = require("dask.dataframe", "export.read_dask")
    import pandas as pd

    from .frames import STRING_DTYPE

    ddf = dd.read_parquet(os.fspath(out_dir), **kwargs)
    # pandas 2 reads Parquet strings with python storage; the frames use pyarrow (a no-op on pandas 3)
    strings = {c: STRING_DTYPE for c, t in ddf.dtypes.items()
               if isinstance(t, pd.StringDtype) and t != STRING_DTYPE}
    return ddf.astype(strings) if strings else ddf


def read_duckdb(out_dir: str | os.PathLike[str], *, connection: Any = None) -> Any:
    """Open an exported dataset as a DuckDB relation (lazy; queries run inside DuckDB).

    The relation scans the Parquet files found under *out_dir* when it is called.

    :func:`~jobman_nb.analytics.status_counts`, :func:`~jobman_nb.analytics.failure_rate`,
    :func:`~jobman_nb.analytics.duration_quantiles` and :func:`~jobman_nb.analytics.throughput`
    accept the relation and run as SQL in DuckDB, giving the answers they give on
    the pandas frame of the same jobs; only the small result comes back. Any other
    SQL works too (``rel.query("jobs", "SELECT ... FROM jobs")``, ``rel.filter(...)``).

    Parameters
    ----------
    out_dir : path
        The dataset directory written by :func:`export_parquet`.
    connection : duckdb.DuckDBPyConnection, optional
        The connection to read on (default: DuckDB's default connection).

    Returns
    -------
    duckdb.DuckDBPyRelation
        One row per job; the partition columns (``db``, ``month``, ...) as text.
        Times are DuckDB's ``TIMESTAMP WITH TIME ZONE``, to the microsecond (the
        stored epoch seconds are floats, good to a fraction of a microsecond), so
        durations agree with pandas' to within a microsecond.

    Raises
    ------
    ImportError
        If duckdb is not installed (the ``scale`` extra).
    FileNotFoundError
        If *out_dir* holds no Parquet files.
    """
    try:
        import duckdb
    except ImportError as exc:
        raise MissingDependencyError("reading the dataset with DuckDB needs the 'scale' extra: "
                          "pip install 'jobman_nb[scale]'") from exc
    root = Path(out_dir)
    files = sorted(os.fspath(f) for f in root.rglob("*.parquet")) if root.is_dir() else []
    if not files:
        raise MissingFileError(f"no exported dataset (Parquet files) under {os.fspath(out_dir)!r}")
    con = connection if connection is not None else duckdb.default_connection()
    # The files go in as a list of quoted literals, not as a glob in a bound parameter: DuckDB
    # before 2.0 runs a statement with parameters at once and hands back its whole result (the
    # dataset in memory), where literals keep the relation a lazy Parquet scan; and a glob reads
    # brackets and backslashes in the directory's own name as pattern syntax (found nothing).
    return con.sql(f"SELECT * FROM read_parquet([{', '.join(map(_duckdb_string, files))}], "
                   "hive_partitioning = true, hive_types_autocast = false)")


def _duckdb_string(text: str) -> str:
    """*text* as a DuckDB string literal (whose only escape is the doubled quote)."""
    if "\0" in text:
        raise ArgumentError(f"path {text!r} holds a NUL character")
    return "'" + text.replace("'", "''") + "'"
