"""``WorkerSqliteDAO``: a worker's job and kvp tables (jobman uses prefix ``_worker_<key>_``)."""

from __future__ import annotations

from .jobs_dao_mixin import PrefixedJobsDAO
from .utils import Schema, TimestampedSchemaMixin, generate_key

__all__ = ["WorkerSqliteDAO"]


class WorkerSqliteDAO(PrefixedJobsDAO):
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
