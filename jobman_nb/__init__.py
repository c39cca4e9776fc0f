"""jobman_nb: explore and work with jobman job databases from Jupyter.

The DAO layer (:mod:`jobman_nb.dao`) re-implements ``jobman.dao`` on
sqlite-utils; query dicts are the shared language of the DAO, the frames, the
widgets and the CLI. Modules with heavier imports (``widgets`` needs
ipywidgets, ``analytics`` matplotlib for its plots, ...) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .dao import (
    JOB_STATUSES,
    STATUSES,
    EngineSqliteDAO,
    JobmanSqliteDAO,
    SqliteDAO,
    WorkerSqliteDAO,
)
from .dao.query import Query
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    ColumnClashError,
    CorruptRecordError,
    InsertError,
    IntegrityError,
    JobDirsError,
    JobmanError,
    LockTimeoutError,
    MissingDependencyError,
    MissingFileError,
    MissingKeyError,
    NotAFileError,
    NotFoundError,
    OutputExistsError,
    PathMapError,
    QueryError,
    ReadOnlyError,
    SchemaError,
    UpdateError,
)
from .explore import JobDatabase, TableSet, open_db
from .vocabulary import FINISHED

__version__ = "0.1.0"

# name -> module that defines it, imported when first asked for
_LAZY = {
    "analytics": None,
    "frames": None,
    "demo": None,
    "widgets": None,
    "timeline": None,
    "lineage": "job_lineage",
    "batch_jobs": "job_lineage",
    "find_stale_jobs": "stale",
    "requeue": "stale",
    "default_stale_age": "stale",
    "to_frame": "frames",
    "make_history": "demo",
    "open_many": "multi",
    "ManyDatabases": "multi",
    "export_parquet": "export",
    "PathMap": "pathmap",
    "read_job_dirs": "jobdirs",
    "read_tail": "jobdirs",
    "jobdirs": None,
    "causes": None,
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'jobman_nb' has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "SqliteDAO",
    "JobmanSqliteDAO",
    "WorkerSqliteDAO",
    "EngineSqliteDAO",
    "JOB_STATUSES",
    "STATUSES",
    "FINISHED",
    "Query",
    "open_db",
    "JobDatabase",
    "TableSet",
    "lineage",
    "batch_jobs",
    "find_stale_jobs",
    "requeue",
    "default_stale_age",
    "to_frame",
    "make_history",
    "open_many",
    "ManyDatabases",
    "export_parquet",
    "analytics",
    "frames",
    "demo",
    "widgets",
    "timeline",
    "JobmanError",
    "QueryError",
    "SchemaError",
    "InsertError",
    "IntegrityError",
    "UpdateError",
    "ReadOnlyError",
    "CorruptRecordError",
    "ColumnClashError",
    "PathMapError",
    "LockTimeoutError",
    "ArgumentError",
    "ArgumentTypeError",
    "NotFoundError",
    "MissingKeyError",
    "MissingFileError",
    "OutputExistsError",
    "NotAFileError",
    "MissingDependencyError",
    "JobDirsError",
    "PathMap",
    "read_job_dirs",
    "read_tail",
    "jobdirs",
    "causes",
]
