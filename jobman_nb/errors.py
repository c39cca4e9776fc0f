"""Exceptions raised by jobman_nb.

Every error derives from :class:`JobmanError` and also from the builtin it
refines, so ``except ValueError`` keeps working for callers that do not know
about jobman_nb (``QueryError`` is a ``ValueError``).
"""

from __future__ import annotations

__all__ = [
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
    "JobDirsError",
    "ArgumentError",
    "ArgumentTypeError",
    "NotFoundError",
    "MissingKeyError",
    "MissingFileError",
    "OutputExistsError",
    "NotAFileError",
    "MissingDependencyError",
]


class JobmanError(Exception):
    """Base class of every error raised by jobman_nb."""


class QueryError(JobmanError, ValueError):
    """A query dict (or an ``updates`` dict) is malformed.

    Raised before any SQL runs; the message names the offending part and what
    would have been accepted.
    """


class SchemaError(JobmanError, ValueError):
    """A schema definition (table prefix, field name or type) is invalid."""


class InsertError(JobmanError, RuntimeError):
    """Records could not be saved; nothing of the batch was written."""


class IntegrityError(InsertError):
    """A save violated a constraint, e.g. a duplicate key with ``replace=False``."""


class UpdateError(JobmanError, RuntimeError):
    """An update failed, or a compare-and-swap found an unexpected value."""


class LockTimeoutError(JobmanError, TimeoutError):
    """The write lock of a database file could not be had within the DAO's ``lock_timeout``.

    Another connection (a worker, jobman itself) held it all that time.
    Nothing of the write was done. :attr:`path` is the file and
    :attr:`timeout` the seconds waited.
    """

    def __init__(self, message: str, path: str | None = None, timeout: float | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.timeout = timeout


class ReadOnlyError(JobmanError, PermissionError):
    """A write was attempted on a database opened read-only."""


class ColumnClashError(JobmanError, ValueError):
    """Two different values would get the same DataFrame column name (e.g. a JSON key containing a dot)."""


class CorruptRecordError(JobmanError, ValueError):
    """A stored value cannot be decoded (e.g. invalid JSON text in a JSON column)."""


class PathMapError(JobmanError, ValueError):
    """A path map is malformed (an empty prefix, one prefix with two targets, ``OLD=NEW`` without ``=``)."""


class JobDirsError(JobmanError, ValueError):
    """:func:`~jobman_nb.read_job_dirs` was given bad input (no keys or dirs, a tail size out of range)."""


class ArgumentError(JobmanError, ValueError):
    """An argument has a value that is not accepted (a chunk size, a duration, a frequency, ...)."""


class ArgumentTypeError(JobmanError, TypeError):
    """An argument has a type that is not accepted (e.g. not a job DataFrame)."""


class NotFoundError(JobmanError, LookupError):
    """Something asked for does not exist (e.g. the jobman tables of a database)."""


class MissingKeyError(NotFoundError, KeyError):
    """A named column, table or database is missing; also a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would show the message quoted, as a repr
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class MissingFileError(JobmanError, FileNotFoundError):
    """A file or directory that should exist does not."""


class OutputExistsError(JobmanError, FileExistsError):
    """An output file or directory exists already and would be overwritten."""


class NotAFileError(JobmanError, IsADirectoryError):
    """A path names a directory where a file is expected."""


class MissingDependencyError(JobmanError, ImportError):
    """An optional dependency (an extra such as ``[scale]``) is not installed."""
