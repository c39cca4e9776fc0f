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
