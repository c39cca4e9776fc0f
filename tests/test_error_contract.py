"""One error contract: every error jobman_nb raises is a JobmanError that also inherits the builtin it refines.

``except JobmanError`` catches all of ours; ``except ValueError`` (or
``KeyError``, ``FileNotFoundError``, ...) keeps working. A scan of the source
keeps it true for raises added later.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pandas as pd
import pytest

import jobman_nb
from jobman_nb import errors

PACKAGE = Path(jobman_nb.__file__).parent
BUILTIN_ERRORS = {name for name, obj in vars(builtins).items()
                  if isinstance(obj, type) and issubclass(obj, BaseException)}
# Raising these is not a user-facing error: Python's protocols and bugs.
ALLOWED = {
    "AttributeError": "module __getattr__ (the import protocol needs exactly AttributeError)",
    "AssertionError": "an internal invariant, i.e. a bug",
    "NotImplementedError": "an abstract method",
    "StopIteration": "the iterator protocol",
    "KeyboardInterrupt": "a SIGINT handler handing Ctrl-C on to Python",
}


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return exc.id if isinstance(exc, ast.Name) else None


def test_no_plain_builtin_exception_is_raised_anywhere():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                name = _raised_name(node)
                if name in BUILTIN_ERRORS and name not in ALLOWED:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: raise {name}")
    assert not found, "raise a jobman_nb.errors class instead:\n" + "\n".join(found)


def _modules():
    yield jobman_nb
    for info in pkgutil.walk_packages(jobman_nb.__path__, "jobman_nb."):
        try:
            yield importlib.import_module(info.name)
        except errors.MissingDependencyError:  # an optional extra that is not installed
            continue


def test_every_exception_class_is_a_jobman_error_refining_a_builtin():
    import click

    # the CLI's click exceptions are click's contract (a message and an exit code), not the library's
    classes = {obj for module in _modules() for _, obj in inspect.getmembers(module, inspect.isclass)
               if issubclass(obj, BaseException) and obj.__module__.startswith("jobman_nb")
               and not issubclass(obj, click.ClickException)}
    assert errors.QueryError in classes and len(classes) > 10
    for cls in classes:
        assert issubclass(cls, errors.JobmanError), f"{cls.__module__}.{cls.__qualname__} is no JobmanError"
        if cls is not errors.JobmanError:
            refined = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (Exception, BaseException,
                                                                                       object)]
            assert refined, f"{cls.__qualname__} refines no builtin exception"


def test_every_error_class_is_exported():
    for name in errors.__all__:
        assert getattr(jobman_nb, name) is getattr(errors, name)


def test_frames_and_the_compiler_raise_the_same_error_for_an_unknown_field(dao):
    with pytest.raises(errors.QueryError, match="unknown field 'staus'"):
        dao.query_jobs({"fields": ["staus"]})
    with pytest.raises(errors.QueryError, match="unknown field 'staus'"):  # was a plain ValueError
        jobman_nb.to_frame([{"key": "a", "staus": "PENDING"}], dao.orms["job"].fields)


def test_user_errors_across_the_package_are_jobman_errors(dao, tmp_path):
    cases = [
        (lambda: dao.iter_ents("job", chunksize=0), ValueError),
        (lambda: jobman_nb.SqliteDAO(":memory:", read_only=True), ValueError),
        (lambda: jobman_nb.JobmanSqliteDAO(db_uri=str(tmp_path / "none.sqlite"), read_only=True).query_jobs(),
         FileNotFoundError),
        (lambda: jobman_nb.open_db(tmp_path / "missing.sqlite"), FileNotFoundError),
        (lambda: jobman_nb.analytics.status_counts(pd.DataFrame({"key": ["a"]})), KeyError),
        (lambda: jobman_nb.analytics.status_counts("not a frame"), TypeError),
        (lambda: jobman_nb.find_stale_jobs(dao, older_than="soon"), ValueError),
        (lambda: jobman_nb.vocabulary.op_label("~~"), KeyError),
    ]
    for call, builtin in cases:
        with pytest.raises(errors.JobmanError) as info:
            call()
        assert isinstance(info.value, builtin), (info.value, builtin)


def test_a_missing_key_error_reads_as_its_message():
    assert str(errors.MissingKeyError("the frame has no column 'status'")) == "the frame has no column 'status'"


def test_the_widgets_input_error_is_a_jobman_error():
    from jobman_nb.widgets import _fields as fields

    assert issubclass(fields.InputError, errors.JobmanError) and issubclass(fields.InputError, ValueError)
