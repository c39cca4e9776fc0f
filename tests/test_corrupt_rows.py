"""A row holding invalid JSON: JSON paths over it raise CorruptRecordError naming the table and the record.

Chosen over "such rows never match": SQLite would have to validate every row's
JSON before each path (json_valid), doubling the cost of JSON filters and
defeating expression indexes on paths; and reading such a row already raises
CorruptRecordError when its JSON is decoded. A query without JSON paths still
reads every other column of the file.
"""

from __future__ import annotations

import sqlite3

import pytest

import jobman_nb
from jobman_nb import CorruptRecordError, JobmanSqliteDAO

PATH_FILTER = {"filters": [{"field": "job_spec.cpus", "op": ">=", "arg": 2}]}


@pytest.fixture
def corrupt_path(tmp_path):
    path = str(tmp_path / "corrupt.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"key": f"ok{i}", "status": "PENDING", "job_spec": {"cpus": i}} for i in range(4)])
    conn = sqlite3.connect(path)  # another tool writes text that is not JSON
    conn.execute("INSERT INTO jobman_job (key, status, job_spec) VALUES ('bad', 'PENDING', '{cpus: 4')")
    conn.commit()
    conn.close()
    return path


CALLS = {
    "query_jobs": lambda d: d.query_jobs(PATH_FILTER),
    "iter_ents": lambda d: list(d.iter_ents("job", PATH_FILTER)),
    "count_ents": lambda d: d.count_ents("job", PATH_FILTER),
    "count_by": lambda d: d.count_by("job", "status", PATH_FILTER),
    "distinct_values": lambda d: d.distinct_values("job", "job_spec.cpus"),
    "order by a path": lambda d: d.query_jobs({"order_by": {"field": "job_spec.cpus"}, "fields": ["key"]}),
    "a path as a field": lambda d: d.query_jobs({"fields": ["key", "job_spec.cpus"]}),
    "query_jobs_df": lambda d: d.query_jobs_df(PATH_FILTER),
    "update_jobs": lambda d: d.update_jobs({"status": "X"}, PATH_FILTER),
    "claim_jobs": lambda d: d.claim_jobs(PATH_FILTER),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_a_json_path_over_invalid_json_names_table_and_record(corrupt_path, call):
    with JobmanSqliteDAO(db_uri=corrupt_path) as dao:
        with pytest.raises(CorruptRecordError, match=r"jobman_job: record 'bad' holds invalid JSON in 'job_spec'"):
            CALLS[call](dao)
        assert not dao.connection.in_transaction
        assert dao.count_ents("job", {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}]}) == 5
    with JobmanSqliteDAO(db_uri=corrupt_path, read_only=True) as check:  # writes rolled back
        assert check.count_ents("job", {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}]}) == 5


def test_the_same_through_open_db_read_only(corrupt_path):
    with jobman_nb.open_db(corrupt_path) as db:
        with pytest.raises(CorruptRecordError, match="record 'bad'"):
            db.jobman.query_jobs_df(PATH_FILTER)
        # without JSON paths the other columns read fine, and the good rows with them
        assert sorted(db.jobman.query_jobs_df({"fields": ["key", "status"]})["key"]) == \
            ["bad", "ok0", "ok1", "ok2", "ok3"]
