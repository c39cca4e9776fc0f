"""The ``jobman-nb`` group, its error handling and the helpers every command shares.

A command module imports :data:`main` from here and decorates its functions
with ``@main.command()``; :mod:`jobman_nb.cli` imports every command module.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from .._where import parse_order, parse_where
from ..errors import JobmanError, QueryError
from ..vocabulary import ColumnKind, column_kind, json_value_kind, value_kind

if TYPE_CHECKING:
    from ..dao.sqlite_dao import SqliteDAO
    from ..explore import JobDatabase

__all__ = ["UsageProblem", "main", "open_database", "resolve", "build_query", "WHERE_HELP", "TABLE_HELP"]


class UsageProblem(click.ClickException):
    """A query or usage error: printed plainly, exit code 2."""

    exit_code = 2


class _Group(click.Group):
    """Turns the library's exceptions into plain one-line errors with the CLI's exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # the reader went away (`jobman-nb query ... | head`): stop quietly, as Unix tools do;
            # point stdout at devnull so flushing it at exit cannot fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except (QueryError, LookupError) as exc:
            raise UsageProblem(str(exc).strip("'\"")) from None
        except (JobmanError, OSError, sqlite3.Error, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:  # a bug: still one line, but say what it was
            raise click.ClickException(f"unexpected {type(exc).__name__}: {exc}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jobman-nb")
def main() -> None:
    """Explore jobman job databases (SQLite) from the command line.

    Commands that only read open the database read-only: the file is never
    changed. Exit codes: 0 ok, 1 runtime error, 2 usage or query error.
    """


@contextmanager
def open_database(path: str, *, write: bool = False) -> Iterator[JobDatabase]:
    """Open *path* with :func:`jobman_nb.open_db`, read-only unless the command writes."""
    from ..explore import open_db

    db = open_db(path, read_only=not write)
    try:
        yield db
    finally:
        db.close()


def resolve(db: JobDatabase, table: str) -> tuple[SqliteDAO, str]:
    """Return the DAO and entity type for ``job``, ``kvp`` or a full table name such as ``_worker_cpu_w_job``."""
    if table in ("job", "kvp"):
        return db.jobman, table
    dao = db.dao_for(table)
    return dao, table[len(dao.table_prefix or ""):]


def build_query(where: Sequence[str] = (), order: Sequence[str] = (), limit: int | None = None,
                offset: int | None = None, fields: Sequence[str] = (), *,
                kind_of: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """The query dict of the ``--where``, ``--order``, ``--limit``, ``--offset`` and field options.

    With *kind_of* (see :func:`field_kinds`) each ``--where`` value is checked
    against the kind of its field.
    """
    query: dict[str, Any] = {}
    if where:
        query["filters"] = [parse_where(w, kind_of) for w in where]
    if order:
        query["order_by"] = [parse_order(o) for o in order]
    if limit is not None:
        query["limit"] = limit
    if offset is not None:
        query["offset"] = offset
    if fields:
        query["fields"] = list(fields)
    return query


def field_kinds(dao: SqliteDAO, ent_type: str, *, timestamps: Collection[str] = (),
                columns: Mapping[str, str] | None = None) -> Callable[[str], str | None]:
    """The :class:`~jobman_nb.vocabulary.ValueKind` of each field of a table, for checking ``--where`` values.

    A column's kind follows the vocabulary's rule (*timestamps* name further
    columns holding epoch seconds); a JSON path's kind comes from the JSON
    types sampled in the table (None when the path was not seen).
    """
    columns = dict(dao.get_orm(ent_type).columns if columns is None else columns)
    sampled: dict[str, dict[str, set[str]]] = {}

    def kind_of(name: str) -> str | None:
        if name in columns:
            return value_kind(column_kind(name, columns[name], timestamp=name in timestamps))
        head = name.partition(".")[0]
        if columns.get(head) != "JSON":
            return None
        if head not in sampled:
            sampled[head] = dao.sample_json_paths(ent_type, head)
        types = sampled[head].get(name)
        return json_value_kind(types) if types else None

    return kind_of


def time_fields(columns: Mapping[str, str]) -> set[str]:
    """The fields of a table (``{name: declared type}``) that hold epoch seconds."""
    return {name for name, declared in columns.items() if column_kind(name, declared) == ColumnKind.TIME}


def split_fields(text: str | None) -> list[str]:
    """``'key, status'`` → ``['key', 'status']``."""
    return [f.strip() for f in (text or "").split(",") if f.strip()]


WHERE_HELP = ("Filter FIELD OP VALUE, e.g. 'status=FAILED', 'job_spec.resources.cpus>=4', "
              "'worker_key in cpu_w,gpu_w', 'errors is not null', 'created>=2026-01-10'. Repeat to AND them.")
TABLE_HELP = "'job' or 'kvp' (jobman's own tables), or any table name that 'jobman-nb info' lists."
