"""Shared fixtures: fresh DAOs in memory and on disk, and the jobman 0.0.1 fixture file.

Tests close what they open (Python 3.13 turns an unclosed sqlite3 connection into a
ResourceWarning, which ``filterwarnings = error`` makes a failure of whichever test is
running when it is collected): use the ``dao`` / ``file_dao`` fixtures, ``make_dao(...)``
for any other DAO, ``connect(path)`` for a raw sqlite3 connection, or ``with DAO(...) as dao:``.
``with sqlite3.connect(...)`` does *not* close the connection (it only commits).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobman_nb import JobmanSqliteDAO

DATA = Path(__file__).parent / "data"
FIXTURE_DB = DATA / "jobman-0.0.1-sample.sqlite"
FIXTURE_EXPECTED = DATA / "jobman-0.0.1-sample.expected.json"


@pytest.fixture
def dao():
    """A fresh in-memory JobmanSqliteDAO."""
    d = JobmanSqliteDAO(db_uri=":memory:")
    yield d
    d.close()


@pytest.fixture
def file_dao(tmp_path):
    """A fresh JobmanSqliteDAO on a file in a temp dir."""
    d = JobmanSqliteDAO(db_uri=str(tmp_path / "jobs.sqlite"))
    yield d
    d.close()


@pytest.fixture
def make_dao() -> Iterator[Callable[..., Any]]:
    """``make_dao(**kwargs)`` opens a JobmanSqliteDAO, ``make_dao(cls, **kwargs)`` any DAO class;
    every DAO made is closed when the test ends."""
    opened: list[Any] = []

    def make(cls: type = JobmanSqliteDAO, /, **kwargs: Any) -> Any:
        d = cls(**kwargs)
        opened.append(d)
        return d

    yield make
    for d in opened:
        d.close()


@pytest.fixture
def connect() -> Iterator[Callable[..., sqlite3.Connection]]:
    """``connect(path, **kwargs)``: a raw ``sqlite3.connect`` closed when the test ends."""
    opened: list[sqlite3.Connection] = []

    def open_(database: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = sqlite3.connect(database, **kwargs)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()


@pytest.fixture
def fixture_path(tmp_path) -> Path:
    """A private copy of the database written by jobman 0.0.1."""
    dest = tmp_path / "jobman-0.0.1-sample.sqlite"
    shutil.copy(FIXTURE_DB, dest)
    return dest


@pytest.fixture(scope="session")
def fixture_expected() -> dict:
    """What jobman 0.0.1's own DAO returns for each table of the fixture, sorted by key."""
    return json.loads(FIXTURE_EXPECTED.read_text())


# -- analytics beyond memory ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def exported_dataset(tmp_path_factory) -> Path:
    """Two demo histories (900 + 600 jobs over 40 days) exported once as a Parquet dataset, for
    the Dask and DuckDB tests; never write to it."""
    from jobman_nb.demo import make_history
    from jobman_nb.export import export_parquet

    d = tmp_path_factory.mktemp("exported")
    paths = [d / "east.sqlite", d / "west.sqlite"]
    make_history(paths[0], n_jobs=900, seed=5, days=40)
    make_history(paths[1], n_jobs=600, seed=6, days=40)
    export_parquet(paths, d / "jobs", chunksize=250, progress=False)
    return d / "jobs"


# -- the command line ---------------------------------------------------------------------------
CLI_DEMO_JOBS = 1_500


@pytest.fixture(scope="session")
def cli_demo(tmp_path_factory) -> Path:
    """A demo history written once by ``jobman-nb demo`` (1,500 jobs, seed 3); never write to it."""
    from jobman_nb.demo import make_history

    path = tmp_path_factory.mktemp("cli") / "demo.sqlite"
    make_history(path, n_jobs=CLI_DEMO_JOBS, seed=3, progress=False)
    return path


@pytest.fixture
def cli_demo_copy(cli_demo, tmp_path) -> Path:
    """A private copy of :func:`cli_demo`, for commands that write."""
    dest = tmp_path / "demo.sqlite"
    shutil.copy(cli_demo, dest)
    return dest


@pytest.fixture
def cli():
    """Run ``jobman-nb ARGS...`` in-process; the result has ``exit_code``, ``stdout`` and ``stderr`` apart."""
    import inspect

    from click.testing import CliRunner

    from jobman_nb.cli import main

    # click < 8.2 mixes stderr into stdout unless told not to; 8.2 keeps them apart always
    kwargs = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}

    def run(*args, env=None, input=None):
        return CliRunner(**kwargs).invoke(main, [str(a) for a in args], env={"COLUMNS": "100", **(env or {})},
                                          input=input)

    return run


CAMPAIGN = DATA / "campaign"


@pytest.fixture(scope="session")
def campaign(tmp_path_factory):
    """The real jobman 0.0.1 run (database + every job dir) unpacked to a temp dir, once per session.

    Returns a dict: ``root`` (the unpacked ``solvation/``), ``db`` (its jobman.sqlite), ``path_map``
    (recorded root -> ``root``), ``truth`` (what each job planted, by label). Tests only read it.
    """
    import tarfile

    dest = tmp_path_factory.mktemp("campaign")
    with tarfile.open(CAMPAIGN / "solvation.tar.gz") as tar:
        tar.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dest)
    truth = json.loads((CAMPAIGN / "solvation.truth.json").read_text())
    root = dest / "solvation"
    return {"root": root, "db": root / "jobman.sqlite", "path_map": {truth["root"]: str(root)},
            "truth": truth["jobs"]}
