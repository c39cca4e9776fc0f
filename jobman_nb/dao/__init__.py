"""jobman's DAO layer on sqlite-utils: same modules, classes, methods and keywords as ``jobman.dao``."""

from .engine_sqlite_dao import EngineSqliteDAO
from .jobman_sqlite_dao import JobmanSqliteDAO
from .jobs_dao_mixin import JOB_STATUSES, STATUSES, JobsDaoMixin
from .orm import ORM
from .sqlite_dao import SqliteDAO
from .worker_sqlite_dao import WorkerSqliteDAO

__all__ = ["ORM", "SqliteDAO", "JobsDaoMixin", "JobmanSqliteDAO", "WorkerSqliteDAO", "EngineSqliteDAO",
           "JOB_STATUSES", "STATUSES"]
