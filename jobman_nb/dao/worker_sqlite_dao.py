"""``WorkerSqliteDAO``: a worker's job and kvp tables (jobman uses prefix ``_worker_<key>_``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .jobs_dao_mixin import JobsDaoMixin
from .sqlite_dao import SqliteDAO
from .utils import Schema, TimestampedSchemaMixin, generate_key

__all__ = ["WorkerSqliteDAO"]


class WorkerSqliteDAO(JobsDaoMixin, SqliteDAO):
    """DAO for a worker's jobs.

    Parameters
    ----------
    table_prefix : str, optional
        Prefix of the worker's tables (jobman uses ``'_worker_<worker key>_'``).
    extra_job_fields : dict, optional
        More job fields, ``{name: field info}``.
    **kwargs
        Passed to :class:`~jobman_nb.dao.sqlite_dao.SqliteDAO`.
    """

    class JobSchema(TimestampedSchemaMixin, Schema):
        """Fields for job records."""

        key = {"type": "TEXT", "primary_key": True, "default": generate_key}
        status = {"type": "TEXT"}
        batchable = {"type": "INTEGER", "doc": "Flag to indicate whether a job can be included in a batch."}
        batch_meta = {"type": "JSON", "doc": "Metadata for batch jobs, often includes list of subjobs."}
        is_batch = {"type": "INTEGER", "doc": "Flag to indicate whether a job is a batch job."}
        parent_batch_key = {"type": "TEXT", "doc": "If job is part of batch, the parent batch job's key."}
        engine_key = {"type": "TEXT", "doc": "Key for engine handling the job."}
        engine_meta = {"type": "JSON", "doc": "Metadata to retrieve related state from engine."}

    def __init__(self, table_prefix: str | None = None, extra_job_fields: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        fields = {**self.JobSchema.get_field_infos(), **(extra_job_fields or {})}
        super().__init__(orm_specs=[{"name": "job", "fields": fields}], table_prefix=table_prefix, **kwargs)
