"""Files written by jobman 0.0.1 read back exactly; files we write look like jobman's."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest

from jobman_nb.dao.engine_sqlite_dao import EngineSqliteDAO
from jobman_nb.dao.jobman_sqlite_dao import JobmanSqliteDAO
from jobman_nb.dao.worker_sqlite_dao import WorkerSqliteDAO


def _by_key(records):
    return sorted(records, key=lambda r: r["key"])


def _table_schema(path, table):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [(r[1], r[2].upper(), r[5]) for r in conn.execute(f"PRAGMA table_info({table})")]


@pytest.mark.parametrize("read_only", [False, True])
def test_fixture_reads_back_exactly(fixture_path, fixture_expected, read_only, make_dao):
    kwargs = {"db_uri": str(fixture_path), "read_only": read_only}
    jobman = make_dao(**kwargs)
    worker = make_dao(WorkerSqliteDAO, table_prefix="_worker_cpu_w_", **kwargs)
    engine = make_dao(EngineSqliteDAO, table_prefix="engine_cpu_w_engine_", **kwargs)
    assert _by_key(jobman.query_jobs()) == fixture_expected["jobman_job"]
    assert _by_key(jobman.query_kvps()) == fixture_expected["jobman_kvp"]
    assert _by_key(worker.query_jobs()) == fixture_expected["_worker_cpu_w_job"]
    assert _by_key(engine.query_jobs()) == fixture_expected["engine_cpu_w_engine_job"]


def test_fixture_order_by_works(fixture_path, fixture_expected, make_dao):
    # jobman 0.0.1 emitted "ORDER BY" without a space: every ordered query failed.
    dao = make_dao(db_uri=str(fixture_path))
    failed = dao.query_jobs({"filters": [dao.generate_status_filter("FAILED")],
                             "order_by": {"field": "created", "direction": "DESC"}})
    expected = sorted((r for r in fixture_expected["jobman_job"] if r["status"] == "FAILED"),
                      key=lambda r: r["created"], reverse=True)
    assert [r["key"] for r in failed] == [r["key"] for r in expected]
    assert len(failed) == 6


def test_fixture_json_text_null_reads_as_none_and_matches_is_null(fixture_path, make_dao, connect):
    dao = make_dao(db_uri=str(fixture_path), read_only=True)
    raw = connect(fixture_path).execute("SELECT count(*) FROM jobman_job WHERE errors = 'null'").fetchone()[0]
    assert raw == 25  # stored as the JSON text 'null', not SQL NULL
    assert all(j["errors"] is None for j in dao.query_jobs())
    assert len(dao.query_jobs({"filters": [{"field": "errors", "op": "IS", "arg": None}]})) == 25
    assert dao.query_jobs({"filters": [{"field": "errors", "op": "IS NOT", "arg": None}]}) == []


def test_initialize_on_jobman_file_keeps_columns_and_data(fixture_path, fixture_expected, make_dao):
    before = _table_schema(fixture_path, "jobman_job")
    dao = make_dao(db_uri=str(fixture_path))  # initialize=True: adds indexes only
    assert _table_schema(fixture_path, "jobman_job") == before
    assert _by_key(dao.query_jobs()) == fixture_expected["jobman_job"]
    indexes = {r[1] for r in dao.connection.execute("PRAGMA index_list(jobman_job)")}
    assert {"idx_jobman_job_status", "idx_jobman_job_created", "idx_jobman_job_modified"} <= indexes


@pytest.mark.parametrize(
    ("make", "table"),
    [
        (lambda uri: JobmanSqliteDAO(db_uri=uri), "jobman_job"),
        (lambda uri: JobmanSqliteDAO(db_uri=uri), "jobman_kvp"),
        (lambda uri: WorkerSqliteDAO(db_uri=uri, table_prefix="_worker_cpu_w_"), "_worker_cpu_w_job"),
        (lambda uri: EngineSqliteDAO(db_uri=uri, table_prefix="engine_cpu_w_engine_"), "engine_cpu_w_engine_job"),
    ],
)
def test_written_tables_have_jobmans_columns_and_types(tmp_path, fixture_path, make, table):
    path = str(tmp_path / "ours.sqlite")
    make(path).close()
    assert _table_schema(path, table) == _table_schema(fixture_path, table)


def test_written_records_are_readable_the_way_jobman_reads_them(tmp_path, connect):
    """jobman 0.0.1 reads with SELECT * and json.loads of JSON columns: it must get our records back."""
    path = str(tmp_path / "ours.sqlite")
    dao = JobmanSqliteDAO(db_uri=path)
    saved = dao.save_jobs([
        {"status": "PENDING", "job_spec": {"dir": "/x", "resources": {"cpus": 4}}, "source_meta": {"i": 1}},
        {"status": "FAILED", "errors": ["Traceback ...\nValueError: boom"], "job_spec": None},
    ])
    dao.close()
    conn = connect(path)
    conn.row_factory = sqlite3.Row
    rows = {r["key"]: dict(r) for r in conn.execute("SELECT * FROM jobman_job")}
    json_fields = ["job_spec", "worker_meta", "errors", "source_meta"]
    for job in saved:
        row = rows[job["key"]]
        for f in json_fields:
            assert isinstance(row[f], str)  # JSON columns hold JSON text
            assert json.loads(row[f]) == job[f]
        assert isinstance(row["created"], float)
        assert len(row["key"]) == 36


def test_new_file_uses_wal_but_existing_jobman_file_keeps_its_journal(tmp_path, fixture_path, make_dao):
    new = make_dao(db_uri=str(tmp_path / "new.sqlite"))
    assert new.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    old = make_dao(db_uri=str(fixture_path))
    assert old.connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
