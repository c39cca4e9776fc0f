"""``JobsDaoMixin``: the job methods shared by the jobman, worker and engine DAOs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import UpdateError
from ..vocabulary import JOB_STATUSES, STATUSES
from . import query as _query
from .orm import Record
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
        query = _query.check_query(query)
        select = _query.compile_select(query, orm.table, orm.columns, rowid=True)  # validates, before any SQL
        order = _order_terms(query.get("order_by"), orm.columns)
        fields = query.get("fields")
        target = {k: v for k, v in query.items() if k != "fields"}
        changed = {"status", *(n for n, info in orm.fields.items() if info.get("auto_update") is not None)}
        with self.transaction() as conn:
            read = _query.compile_select({"fields": fields} if fields else {}, orm.table, orm.columns,
                                         orm.present_columns(conn))
            # stamped once the write lock is held, so claims are ordered like their 'modified'
            sql, params = orm.compile_update({"status": JOB_STATUSES.CLAIMED}, target)
            returning = f" RETURNING rowid, {read.columns_sql}"
            cur = conn.cursor()
            cur.row_factory = None
            try:
                if _RETURNING and not any(t.column in changed for t, _ in order):
                    # One statement: the UPDATE returns the rows, with the values they are ordered by.
                    extra = "".join(f", {t.sql}" for t, _ in order)
                    rows = cur.execute(sql + returning + extra, [*params, *read.columns_params,
                                                                 *(p for t, _ in order for p in t.params)]).fetchall()
                    rows = _sorted_like_sqlite(rows, [(len(read.names) + 1 + i, desc)
                                                      for i, (_, desc) in enumerate(order)])
                    return orm.decode_rows([r[1:len(read.names) + 1] for r in rows], read)
                # Ordered by a value the claim changes (or SQLite < 3.35): choose the rows first.
                rowids = [r[0] for r in cur.execute(select.sql, select.params)]
                if not rowids:
                    return []
                sql, params = orm.compile_update({"status": JOB_STATUSES.CLAIMED}, {})
                in_rowids = "rowid IN (SELECT value FROM json_each(?))"
                if _RETURNING:
                    rows = cur.execute(f"{sql} WHERE {in_rowids}{returning}",
                                       [*params, _query.dumps(rowids), *read.columns_params]).fetchall()
                else:
                    cur.execute(f"{sql} WHERE {in_rowids}", [*params, _query.dumps(rowids)])
                    rows = cur.execute(f"SELECT rowid, {read.columns_sql} FROM {_query.quote_identifier(orm.table)} "
                                       f"WHERE {in_rowids}", [*read.columns_params, _query.dumps(rowids)]).fetchall()
            except sqlite3.Error as exc:
                raise orm.invalid_json(conn, exc) or UpdateError(f"claim_jobs: cannot update {orm.table}: {exc}") \
                    from exc
        position = {rowid: i for i, rowid in enumerate(rowids)}
        rows.sort(key=lambda r: position[r[0]])
        return orm.decode_rows([r[1:] for r in rows], read)

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
