"""``JobmanSqliteDAO``: jobman's own job and kvp tables (prefix ``jobman_``)."""

from __future__ import annotations

from typing import Any

from .jobs_dao_mixin import JobsDaoMixin
from .sqlite_dao import SqliteDAO
from .utils import Schema, TimestampedSchemaMixin, generate_key

__all__ = ["JobmanSqliteDAO"]


class JobmanSqliteDAO(JobsDaoMixin, SqliteDAO):
    """DAO for JobMan.

    Parameters
    ----------
    lock_timeout : float
        Seconds a write waits for another process's lock (SQLite busy timeout).
    debug : bool, optional
    **kwargs
        Passed to :class:`~jobman_nb.dao.sqlite_dao.SqliteDAO` (``db_uri``, ...).
    """

    class JobSchema(TimestampedSchemaMixin, Schema):
        """Fields for job records."""

        key = {"type": "TEXT", "primary_key": True, "default": generate_key}
        job_spec = {"type": "JSON", "doc": "dict of job metadata/parameters: often batchable, dir, cfg, resources."}
        status = {"type": "TEXT"}
        batchable = {"type": "INTEGER", "doc": "Flag to indicate whether a job can be included in a batch."}
        worker_key = {"type": "TEXT", "doc": "Key for worker handling the job."}
        worker_meta = {"type": "JSON", "doc": "Metadata to retrieve related state from worker."}
        errors = {"type": "JSON"}
        source_key = {"type": "TEXT", "doc": "Key for source that provided this job."}
        source_meta = {"type": "JSON", "doc": "Metadata from source, to correlate jobman records with its own."}
        source_tag = {"type": "TEXT", "doc": "A tag that the source can set, e.g. for post-processing."}
        purgeable = {"type": "INTEGER", "doc": "Whether a job can be purged from the db."}

    def __init__(self, lock_timeout: float = 30, debug: bool | None = None, **kwargs: Any) -> None:
        self.lock_timeout = lock_timeout
        super().__init__(orm_specs=[{"name": "job", "fields": self.JobSchema}], table_prefix="jobman_",
                         debug=debug, **kwargs)

    def generate_source_key_filter(self, source_key: str | None = None) -> dict[str, Any]:
        """Return the filter ``{'field': 'source_key', 'op': '=', 'arg': source_key}``."""
        return {"field": "source_key", "op": "=", "arg": source_key}
