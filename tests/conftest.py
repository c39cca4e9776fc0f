"""Shared fixtures: fresh DAOs in memory and on disk, and the jobman 0.0.1 fixture file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
def fixture_path(tmp_path) -> Path:
    """A private copy of the database written by jobman 0.0.1."""
    dest = tmp_path / "jobman-0.0.1-sample.sqlite"
    shutil.copy(FIXTURE_DB, dest)
    return dest


@pytest.fixture(scope="session")
def fixture_expected() -> dict:
    """What jobman 0.0.1's own DAO returns for each table of the fixture, sorted by key."""
    return json.loads(FIXTURE_EXPECTED.read_text())
