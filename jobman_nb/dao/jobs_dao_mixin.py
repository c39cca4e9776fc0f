"""``JobsDaoMixin``: the job methods shared by the jobman, worker and engine DAOs."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UpdateError
from ..vocabulary import JOB_STATUSES, STATUSES
from . import query as _query
from .orm import ORM, Record, StampedUpdate
from .sqlite_dao import SqliteDAO
from .utils import Schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JobsDaoMixin", "JOB_STATUSES", "STATUSES"]

Query = _query.Query


class JobsDaoMixin:
    """Common methods used by DAOs that work with jobs (entity type ``'job'``)."""

    JOB_STATUSES = JOB_STATUSES

    def create_job(self, job: Mapping[str, Any] | None = None) -> Record:
        """Create a job record.

        Parameters
        ----------
        job : dict
            A job dict; its fields depend on the DAO's JobSchema.

        Returns
        -------
        dict
            The saved job record.
        """
        return self.create_ent(ent_type="job", ent=job)

    def save_jobs(self, jobs: Sequence[Mapping[str, Any]] | None = None, replace: bool = True, *,
                  auto_update: bool = True) -> list[Record]:
        """Save jobs in one transaction (all or none).

        Parameters
        ----------
        jobs : list of dict
        replace : bool
            If True overwrite existing records; if False a key collision raises
            ``IntegrityError`` and nothing is saved.
        auto_update : bool
            If False keep the jobs' own ``modified`` (to import a history).

        Returns
        -------
        list of dict
            The saved jobs.
        """
        return self.save_ents(ent_type="job", ents=jobs, replace=replace, auto_update=auto_update)

    def query_jobs(self, query: Query | None = None) -> list[Record]:
        """Return the jobs matching a query dict (see ``docs/query-language.md``)."""
        return self.query_ents(ent_type="job", query=query)

    def update_jobs(self, updates: Mapping[str, Any] | None = None, query: Query | None = None) -> dict[str, int]:
        """Update the jobs matching a query dict.

        Returns
        -------
        dict
            ``{'rowcount': n}``, the number of jobs updated.
        """
        return self.update_ents(ent_type="job", updates=updates, query=query)

    def claim_jobs(self, query: Query | None = None) -> list[Record]:
        """Atomically claim the jobs matching *query*: set them CLAIMED and return them.

        Selecting and marking happen in one write transaction, so two
        processes claiming from the same file never get the same job. The
        query's order_by and limit choose which jobs are claimed.

        A claim is one ``UPDATE ... RETURNING`` between ``BEGIN IMMEDIATE`` and
        ``COMMIT``; the rows are sorted and their JSON decoded after the commit,
        so the write lock is held only for the SQL. The statement is compiled
        once per query and table schema, and reused.

        Parameters
        ----------
        query : dict
            A query dict per :meth:`query_jobs` (e.g. PENDING jobs, limit 25).

        Returns
        -------
        list of dict
            The claimed jobs, in query order, with status CLAIMED.
        """
        orm = self._get_orm("job")
        self._check_writable()
        key = (_plan_key(query), _RETURNING)
        plans = self.__dict__.setdefault("_claim_plans", {})
        plan = plans.get(key) if key[0] is not None else None
        if plan is None:
            plan = _ClaimPlan.compile(orm, query)  # validates, before any SQL
        with self.transaction() as conn:
            if plan.read is None or not plan.complete:
                # compiled for the columns the file has; one it lacks reads as NULL until another process adds it
                version = conn.execute("PRAGMA schema_version").fetchone()[0]
                if plan.read is None or plan.schema_version != version:
                    plan = plan.for_schema(orm, conn, version)
                    if key[0] is not None:
                        if len(plans) >= _MAX_PLANS:
                            plans.clear()
                        plans[key] = plan
            cur = conn.cursor()
            cur.row_factory = None
            try:
                rows = plan.run(cur)
            except sqlite3.Error as exc:
                plans.pop(key, None)  # compiled again next time (e.g. a column was dropped)
                raise orm.invalid_json(conn, exc) or UpdateError(f"claim_jobs: cannot update {orm.table}: {exc}") \
                    from exc
        # committed: the write lock is free while the rows are put in order and decoded
        return orm.decode_rows(plan.in_query_order(rows), plan.read)

    def query_jobs_df(self, query: Query | None = None, *, expand_json: bool = True) -> pd.DataFrame:
        """Return the jobs matching *query* as a DataFrame, JSON fields expanded to dotted columns."""
        return self.query_ents_df("job", query, expand_json=expand_json)

    def iter_jobs_df(self, query: Query | None = None, *, chunksize: int = 50_000, expand_json: bool = True,
                     progress: bool | None = None) -> Iterator[pd.DataFrame]:
        """Yield the jobs matching *query* as DataFrames of at most *chunksize* rows."""
        return self.iter_ents_df("job", query, chunksize=chunksize, expand_json=expand_json, progress=progress)

    def get_job(self, key: str | None = None) -> Record | None:
        """Return the job with *key*, or None if there is none."""
        return self.get_ent(ent_type="job", key=key)

    def get_jobs_for_status(self, status: str | None = None) -> list[Record]:
        """Return the jobs that have *status*."""
        return self.query_jobs(query={"filters": [self.generate_status_filter(status=status)]})

    def generate_status_filter(self, status: str | None = None) -> dict[str, Any]:
        """Return the filter ``{'field': 'status', 'op': '=', 'arg': status}``."""
        return {"field": "status", "op": "=", "arg": status}


class PrefixedJobsDAO(JobsDaoMixin, SqliteDAO):
    """A worker's or an engine's DAO: its ``JobSchema`` plus ``extra_job_fields``, under a table prefix.

    Parameters
    ----------
    table_prefix : str, optional
        Prefix of the tables (jobman uses ``'_worker_<key>_'`` and ``'engine_<key>_'``).
    extra_job_fields : dict, optional
        More job fields, ``{name: field info}`` (e.g. an engine's remote status).
    **kwargs
        Passed to :class:`~jobman_nb.dao.sqlite_dao.SqliteDAO`.
    """

    JobSchema: type[Schema]

    def __init__(self, table_prefix: str | None = None, extra_job_fields: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        fields = {**self.JobSchema.get_field_infos(), **(extra_job_fields or {})}
        super().__init__(orm_specs=[{"name": "job", "fields": fields}], table_prefix=table_prefix, **kwargs)


#: ``UPDATE ... RETURNING`` (SQLite 3.35+): a claim is one statement.
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
#: Compiled claims kept per DAO (the cache is emptied when it is full).
_MAX_PLANS = 64
_IN_ROWIDS = "rowid IN (SELECT value FROM json_each(?))"


_SCALARS = frozenset({str, bool, int, float, type(None)})


def _plan_key(value: Any, depth: int = 0) -> Any:
    """A hashable copy of a query dict that tells apart every value the compiler could.

    None if it holds other values, or nests deeper than any query the compiler accepts
    (then the claim is compiled, which refuses it with a QueryError, instead of recursing here).
    """
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if depth > _PLAN_KEY_DEPTH:
        return None
    if kind is dict or (kind not in (list, tuple) and isinstance(value, Mapping)):
        items = []
        for k, v in value.items():
            item = _plan_key(v, depth + 1) if type(k) is str else None
            if item is None:
                return None
            items.append((k, item))
        return (dict, tuple(items))
    if kind is list or kind is tuple:
        items = [_plan_key(v, depth + 1) for v in value]
        return None if None in items else (kind, tuple(items))
    return None


#: Containers nested deeper than this in a claim query are not cached (a query dict nests a
#: filter group in a dict and a list: MAX_NESTING groups are about twice as deep).
_PLAN_KEY_DEPTH = 4 * _query.MAX_NESTING + 8


@dataclass(frozen=True)
class _ClaimPlan:
    """The statements of one claim query, compiled against one version of the file's schema."""

    query: Query
    #: True when the UPDATE itself chooses the rows and returns them (one statement).
    one_statement: bool
    select: _query.Select
    order: tuple[tuple[_query.FieldRef, bool], ...]
    schema_version: int | None = None
    read: _query.Select | None = None
    #: Whether the file has every column the records read (then no schema change can make the plan stale).
    complete: bool = False
    update: StampedUpdate | None = None
    #: The statement that claims and returns the rows, and its parameters after the update's.
    claim_sql: str = ""
    returning_params: tuple[Any, ...] = ()

    @classmethod
    def compile(cls, orm: ORM, query: Query | None) -> _ClaimPlan:
        query = _query.check_query(query)
        select = _query.compile_select(query, orm.table, orm.columns, rowid=True)  # validates the whole query
        order = tuple(_order_terms(query.get("order_by"), orm.columns))
        changed = {"status", *(n for n, info in orm.fields.items() if info.get("auto_update") is not None)}
        one = _RETURNING and not any(t.column in changed for t, _ in order)
        return cls(query, one, select, order)

    def for_schema(self, orm: ORM, conn: sqlite3.Connection, version: int) -> _ClaimPlan:
        """This plan compiled against the columns *conn*'s table has now."""
        fields = self.query.get("fields")
        present = orm.present_columns(conn)
        read = _query.compile_select({"fields": fields} if fields else {}, orm.table, orm.columns, present)
        target = {k: v for k, v in self.query.items() if k != "fields"}
        update = orm.compile_stamped_update({"status": JOB_STATUSES.CLAIMED}, target if self.one_statement else {})
        returning = f" RETURNING rowid, {read.columns_sql}"
        params: tuple[Any, ...] = tuple(read.columns_params)
        if self.one_statement:  # the rows come back with the values they are ordered by
            sql = update.sql + returning + "".join(f", {t.sql}" for t, _ in self.order)
            params += tuple(p for t, _ in self.order for p in t.params)
        elif _RETURNING:
            sql = f"{update.sql} WHERE {_IN_ROWIDS}{returning}"
        else:
            sql = f"{update.sql} WHERE {_IN_ROWIDS}"
        return dataclasses.replace(self, schema_version=version, read=read, complete=set(orm.columns) <= set(present),
                                   update=update, claim_sql=sql, returning_params=params)

    def run(self, cur: sqlite3.Cursor) -> list[tuple]:
        """Claim the rows (inside the caller's write transaction): rowid, the read columns, the order values."""
        assert self.read is not None and self.update is not None
        # stamped once the write lock is held, so claims are ordered like their 'modified'
        params = self.update.bind()
        if self.one_statement:
            return cur.execute(self.claim_sql, [*params, *self.returning_params]).fetchall()
        # Ordered by a value the claim changes (or SQLite < 3.35): choose the rows first.
        rowids = [r[0] for r in cur.execute(self.select.sql, self.select.params)]
        if not rowids:
            return []
        chosen = _query.dumps(rowids)
        if _RETURNING:
            rows = cur.execute(self.claim_sql, [*params, chosen, *self.returning_params]).fetchall()
        else:
            cur.execute(self.claim_sql, [*params, chosen])
            rows = cur.execute(f"SELECT rowid, {self.read.columns_sql} FROM {_query.quote_identifier(self.read.table)} "
                               f"WHERE {_IN_ROWIDS}", [*self.returning_params, chosen]).fetchall()
        position = {rowid: i for i, rowid in enumerate(rowids)}
        rows.sort(key=lambda r: position[r[0]])
        return rows

    def in_query_order(self, rows: list[tuple]) -> list[tuple]:
        """The claimed rows' read columns, in the query's order."""
        assert self.read is not None
        width = len(self.read.names) + 1
        if self.one_statement:
            rows = _sorted_like_sqlite(rows, [(width + i, desc) for i, (_, desc) in enumerate(self.order)])
        return [r[1:width] for r in rows]


def _order_terms(order_by: Any, columns: Mapping[str, str]) -> list[tuple[_query.FieldRef, bool]]:
    """The (field, descending) terms of a query's order_by (already validated)."""
    if order_by is None:
        return []
    items = [order_by] if isinstance(order_by, Mapping) else order_by
    return [(_query.field_sql(item["field"], columns), str(item.get("direction", "ASC")).upper() == "DESC")
            for item in items]


def _sqlite_key(value: Any) -> tuple[int, Any]:
    """Sort key giving SQLite's order of values: NULL, numbers, text (BINARY), blobs."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)  # code point order is UTF-8 byte order
    return (3, bytes(value))


def _sorted_like_sqlite(rows: list[tuple], terms: Sequence[tuple[int, bool]]) -> list[tuple]:
    """*rows* (rowid first) in the order of ORDER BY *terms* (column index, descending), ties by rowid.

    ``UPDATE ... RETURNING`` returns rows in no promised order; the claim returns them in query order.
    """
    rows = sorted(rows, key=lambda r: r[0])
    for index, descending in reversed(terms):  # stable sorts, last key first
        rows.sort(key=lambda r: _sqlite_key(r[index]), reverse=descending)
    return rows
