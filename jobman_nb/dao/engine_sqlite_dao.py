"""``EngineSqliteDAO``: an engine's job and kvp tables (jobman uses prefix ``engine_<key>_``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .jobs_dao_mixin import JobsDaoMixin
from .sqlite_dao import SqliteDAO
from .utils import Schema, TimestampedSchemaMixin, generate_key

__all__ = ["EngineSqliteDAO"]


class EngineSqliteDAO(JobsDaoMixin, SqliteDAO):
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

    def __init__(self, table_prefix: str | None = None, extra_job_fields: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        fields = {**self.JobSchema.get_field_infos(), **(extra_job_fields or {})}
        super().__init__(orm_specs=[{"name": "job", "fields": fields}], table_prefix=table_prefix, **kwargs)
