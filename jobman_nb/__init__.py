"""jobman_nb: explore and work with jobman job databases from Jupyter.

The DAO layer (:mod:`jobman_nb.dao`) re-implements ``jobman.dao`` on
sqlite-utils; query dicts are the shared language of the DAO, the frames, the
widgets and the CLI.
"""

from .dao import (
    JOB_STATUSES,
    STATUSES,
    EngineSqliteDAO,
    JobmanSqliteDAO,
    SqliteDAO,
    WorkerSqliteDAO,
)
from .errors import (
    InsertError,
    IntegrityError,
    JobmanError,
    QueryError,
    ReadOnlyError,
    SchemaError,
    UpdateError,
)

__version__ = "0.1.0"

__all__ = [
    "SqliteDAO",
    "JobmanSqliteDAO",
    "WorkerSqliteDAO",
    "EngineSqliteDAO",
    "JOB_STATUSES",
    "STATUSES",
    "JobmanError",
    "QueryError",
    "SchemaError",
    "InsertError",
    "IntegrityError",
    "UpdateError",
    "ReadOnlyError",
]
