"""``EngineSqliteDAO``: an engine's job and kvp tables (jobman uses prefix ``engine_<key>_``)."""

from __future__ import annotations

from .jobs_dao_mixin import PrefixedJobsDAO
from .utils import Schema, TimestampedSchemaMixin, generate_key

__all__ = ["EngineSqliteDAO"]


class EngineSqliteDAO(PrefixedJobsDAO):
    """DAO for an engine's jobs.

    Parameters
    ----------
    table_prefix : str, optional
        Prefix of the engine's tables (jobman uses ``'engine_<engine key>_'``).
    extra_job_fields : dict, optional
        More job fields, ``{name: field info}`` (e.g. a remote status).
    **kwargs
        Passed to :class:`~jobman_nb.dao.sqlite_dao.SqliteDAO`.
    """

    class JobSchema(TimestampedSchemaMixin, Schema):
        """Fields for job records."""

        key = {"type": "TEXT", "primary_key": True, "default": generate_key}
        status = {"type": "TEXT"}
