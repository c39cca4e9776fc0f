"""Lineage: each jobman job next to its worker job and that worker job's engine job.

jobman hands a job to a worker (the jobman job's ``worker_key`` names the
worker, ``worker_meta.key`` the worker's job); the worker submits it to its
engine (``engine_meta.key`` of the worker job names the engine's job). A
batching worker groups worker jobs into a batch job (``is_batch``,
``batch_meta.subjob_keys``); the subjobs point at the batch through
``parent_batch_key`` and the batch carries the ``engine_meta``.

The join runs in SQLite (one statement per worker, LEFT JOINs on primary
keys), so it stays fast on millions of jobs. Links that point nowhere are kept
and reported in the ``worker.link`` / ``engine.link`` columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .dao.query import Query, check_query, compile_select, compile_where, dumps, quote_identifier
from .frames import epoch_to_utc
from .vocabulary import status_order

if TYPE_CHECKING:
    import pandas as pd

    from .explore import JobDatabase

__all__ = ["lineage", "batch_jobs", "LINKS"]

#: Values of the ``worker.link`` and ``engine.link`` columns.
LINKS = ("ok", "missing", "none")

_TIME_COLUMNS = ("created", "modified", "worker.created", "worker.modified", "engine.created", "engine.modified")
_STATUS_COLUMNS = ("status", "worker.status", "engine.status")


def _meta_key(expr: str) -> str:
    """SQL for ``<json column>.key``, NULL when the text is not JSON or has no key."""
    return f"(CASE WHEN json_valid({expr}) THEN json_extract({expr}, '$.key') END)"


def _link(key_sql: str, found_sql: str) -> str:
    return f"(CASE WHEN {key_sql} IS NULL THEN 'none' WHEN {found_sql} IS NULL THEN 'missing' ELSE 'ok' END)"


def _engines_of(db: JobDatabase, worker_key: str, worker_table: str, worker_cols: Sequence[str]) -> list[str]:
    """Engines the worker's jobs may point at: its conventional engine and any ``engine_key`` values."""
    engines = []
    default = db.engine_for(worker_key)
    if default:
        engines.append(default)
    if "engine_key" in worker_cols:
        for (name,) in db.connection.execute(
                f"SELECT DISTINCT engine_key FROM {quote_identifier(worker_table)} WHERE engine_key IS NOT NULL"):
            if name in db.engines and name not in engines:
                engines.append(name)
    return engines


def _worker_select(db: JobDatabase, worker_key: str, engine_extras: list[str]) -> tuple[str, list[Any]]:
    q = quote_identifier
    wset = next(ts for ts in db.table_sets if ts.role == "worker" and ts.key == worker_key)
    wt = q(wset.job_table)
    wcols = list(wset.job_columns)

    def wcol(alias: str, name: str) -> str:
        return f"{alias}.{q(name)}" if name in wcols else "NULL"

    default = db.engine_for(worker_key)
    # Which engine a worker job went to: its own engine_key, its batch's, else the worker's engine.
    engine_name = f"coalesce({wcol('w', 'engine_key')}, {wcol('b', 'engine_key')}, ?)"
    ekey = f"coalesce({_meta_key(wcol('w', 'engine_meta'))}, {_meta_key(wcol('b', 'engine_meta'))})"
    joins = [f"LEFT JOIN {wt} AS w ON w.key = {_meta_key('j.worker_meta')}"]
    if "parent_batch_key" in wcols:
        joins.append(f"LEFT JOIN {wt} AS b ON b.key = w.parent_batch_key")
    else:
        joins.append(f"LEFT JOIN {wt} AS b ON 0")
    join_params: list[Any] = []
    aliases = []
    for i, name in enumerate(_engines_of(db, worker_key, wset.job_table, wcols)):
        ets = next(ts for ts in db.table_sets if ts.role == "engine" and ts.key == name)
        alias = f"e{i}"
        joins.append(f"LEFT JOIN {q(ets.job_table)} AS {alias} ON {alias}.key = {ekey} AND {engine_name} = ?")
        join_params += [default, name]
        aliases.append((alias, set(ets.job_columns)))

    def ecol(name: str) -> str:
        parts = [f"{a}.{q(name)}" for a, cols in aliases if name in cols]
        return f"coalesce({', '.join(parts)}, NULL)" if parts else "NULL"

    efound = ecol("key")
    columns = [
        "j._pos", "j.key", "j.status", "j.created", "j.modified", "j.worker_key",
        _meta_key("j.worker_meta"),
        _link(_meta_key("j.worker_meta"), "w.key"),
        "w.status", "w.created", "w.modified",
        wcol("w", "parent_batch_key"),
        f"(CASE WHEN w.key IS NOT NULL THEN {engine_name} END)",
        ekey,
        f"(CASE WHEN w.key IS NULL THEN 'none' ELSE {_link(ekey, efound)} END)",
        ecol("status"), ecol("created"), ecol("modified"),
        *(ecol(c) for c in engine_extras),
    ]
    sql = f"SELECT {', '.join(columns)} FROM j0 AS j {' '.join(joins)} WHERE j.worker_key = ?"
    # Bound parameters in textual order: select list, joins, where.
    return sql, [default, *join_params, worker_key]


def _unassigned_select(db: JobDatabase, engine_extras: list[str]) -> tuple[str, list[Any]]:
    known = list(db.workers)
    cond = f"(j.worker_key IS NULL OR j.worker_key NOT IN ({', '.join('?' * len(known))}))" if known else "1"
    wkey = _meta_key("j.worker_meta")
    columns = ["j._pos", "j.key", "j.status", "j.created", "j.modified", "j.worker_key", wkey,
               f"(CASE WHEN j.worker_key IS NULL AND {wkey} IS NULL THEN 'none' ELSE 'missing' END)",
               "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "'none'", "NULL", "NULL", "NULL",
               *("NULL" for _ in engine_extras)]
    return f"SELECT {', '.join(columns)} FROM j0 AS j WHERE {cond}", known


def _source_cte(db: JobDatabase, query: Query) -> tuple[str, list[Any]]:
    """``j0``: the chosen jobman jobs, with ``_pos`` giving the result order."""
    table = quote_identifier("jobman_job")
    if not query:
        return f"j0 AS (SELECT *, rowid AS _pos FROM {table})", []
    orm = db.jobman.orms["job"]
    compile_select(query, orm.table, orm.columns)  # the whole query is valid (fields too) before any SQL
    if set(query) <= {"filters", "fields"}:
        where, params = compile_where(query.get("filters"), orm.columns)
        return f"j0 AS (SELECT *, rowid AS _pos FROM {table}{' WHERE ' + where if where else ''})", params
    # order_by/limit/offset: take the rowids in query order, then join them back.
    select = compile_select({k: v for k, v in query.items() if k != "fields"}, orm.table, orm.columns, rowid=True)
    rowids = [r[0] for r in db.connection.execute(select.sql, select.params)]
    return (f"j0 AS (SELECT t.*, s.key AS _pos FROM json_each(?) AS s JOIN {table} AS t ON t.rowid = s.value)",
            [dumps(rowids)])


def lineage(db: JobDatabase, query: Query | None = None) -> pd.DataFrame:
    """Return one row per jobman job with its worker job and engine job side by side.

    Parameters
    ----------
    db : JobDatabase
        From :func:`jobman_nb.open_db`.
    query : dict, optional
        A query dict over jobman jobs choosing the rows (``filters``, and
        ``order_by``/``limit``/``offset`` for their order and number; ``fields``
        is ignored). Without one, every job in table order.

    Returns
    -------
    pandas.DataFrame
        Columns ``key, status, created, modified, worker_key`` (the jobman job),
        ``worker.key, worker.link, worker.status, worker.created, worker.modified,
        worker.batch_key`` (its worker job; ``batch_key`` is the parent batch job
        of a batched subjob), ``engine_key, engine.key, engine.link,
        engine.status, engine.created, engine.modified`` and ``engine.<column>``
        for columns the engine tables add (e.g. ``engine.remote_status``).
        A link is ``'ok'``, ``'missing'`` (a key is recorded but no such row or
        table exists) or ``'none'`` (nothing recorded yet). Times are UTC
        datetimes; statuses are categoricals.

    Raises
    ------
    LookupError
        If the database has no jobman tables.
    QueryError
        If *query* is malformed.
    """
    import pandas as pd

    query = check_query(query)
    cte, params = _source_cte(db, query)
    engine_extras = sorted({c for ts in db.table_sets if ts.role == "engine" for c in ts.extra_job_fields})
    parts = [_worker_select(db, w, engine_extras) for w in db.workers]
    parts.append(_unassigned_select(db, engine_extras))
    sql = f"WITH {cte} SELECT * FROM ({' UNION ALL '.join(s for s, _ in parts)}) ORDER BY 1"
    params += [p for _, ps in parts for p in ps]
    names = ["_pos", "key", "status", "created", "modified", "worker_key", "worker.key", "worker.link",
             "worker.status", "worker.created", "worker.modified", "worker.batch_key", "engine_key", "engine.key",
             "engine.link", "engine.status", "engine.created", "engine.modified",
             *(f"engine.{c}" for c in engine_extras)]
    cur = db.connection.cursor()
    cur.row_factory = None
    df = pd.DataFrame.from_records(cur.execute(sql, params).fetchall(), columns=names)
    df = df.drop(columns="_pos")
    for col in _TIME_COLUMNS:
        df[col] = epoch_to_utc(df[col])
    for col in _STATUS_COLUMNS:
        df[col] = _status_categorical(df[col])
    for col in ("worker.link", "engine.link"):
        df[col] = pd.Categorical(df[col], categories=LINKS)
    return df


def _status_categorical(values: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.Series(pd.Categorical(values, categories=status_order(values.dropna().unique())),
                     index=values.index, name=values.name)


def batch_jobs(db: JobDatabase, worker_key: str | None = None) -> pd.DataFrame:
    """Return the batch jobs of batching workers, each with its subjobs.

    Parameters
    ----------
    db : JobDatabase
    worker_key : str, optional
        Only this worker's batches.

    Returns
    -------
    pandas.DataFrame
        Columns ``worker_key, key, status, created, modified, subjob_keys``
        (list, from ``batch_meta.subjob_keys``), ``n_subjobs``,
        ``subjobs_found`` (how many of them exist in the worker table),
        ``engine.key``.
    """
    import pandas as pd

    q = quote_identifier
    frames = []
    for key in db.workers:
        if worker_key is not None and key != worker_key:
            continue
        ts = next(t for t in db.table_sets if t.role == "worker" and t.key == key)
        if not ts.job_table or not {"is_batch", "batch_meta"} <= set(ts.job_columns):
            continue
        table = q(ts.job_table)
        sql = (f"SELECT ?, b.key, b.status, b.created, b.modified, "
               f"CASE WHEN json_valid(b.batch_meta) THEN json_extract(b.batch_meta, '$.subjob_keys') END, "
               f"(SELECT count(*) FROM {table} AS s WHERE s.key IN "
               f"(SELECT value FROM json_each(CASE WHEN json_valid(b.batch_meta) "
               f"THEN json_extract(b.batch_meta, '$.subjob_keys') END))), "
               f"{_meta_key('b.engine_meta') if 'engine_meta' in ts.job_columns else 'NULL'} "
               f"FROM {table} AS b WHERE b.is_batch = 1 ORDER BY b.created, b.key")
        frames.extend(db.connection.execute(sql, [key]).fetchall())
    df = pd.DataFrame.from_records(frames, columns=["worker_key", "key", "status", "created", "modified",
                                                    "subjob_keys", "subjobs_found", "engine.key"])
    df["subjob_keys"] = [json.loads(v) if isinstance(v, str) else [] for v in df["subjob_keys"]]
    df.insert(6, "n_subjobs", df["subjob_keys"].map(len).astype("int64"))
    df["subjobs_found"] = df["subjobs_found"].astype("int64")
    for col in ("created", "modified"):
        df[col] = epoch_to_utc(df[col])
    df["status"] = _status_categorical(df["status"])
    return df
