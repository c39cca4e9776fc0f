"""Every entry point validates the whole query before any SQL runs, so a bad query takes no lock.

SQLite's trace callback on the DAO's connection records every statement; a
second connection checks that the write lock is free and nothing changed.
"""

from __future__ import annotations

import sqlite3

import pytest

import jobman_nb
from jobman_nb import JobmanSqliteDAO, QueryError

BAD_QUERIES = {
    "fields not a list": {"fields": 30.0},
    "unknown field in fields": {"fields": ["key", "staus"]},
    "field listed twice": {"fields": ["key", "key"]},
    "bad filter": {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}, {"field": "nope", "op": "="}]},
    "bad order": {"filters": [], "order_by": {"field": "status", "direction": "UP"}},
    "bad offset": {"limit": 1, "offset": -1},
    "unknown key": {"filter": []},
}

ENTRY_POINTS = {
    "query_jobs": lambda d, q: d.query_jobs(q),
    "query_ents": lambda d, q: d.query_ents("job", q),
    "query_kvps": lambda d, q: d.query_kvps(q),
    "iter_ents": lambda d, q: d.iter_ents("job", q),  # raises at the call, before the first next()
    "count_ents": lambda d, q: d.count_ents("job", q),
    "count_ents cap": lambda d, q: d.count_ents("job", q, cap=3),
    "count_by": lambda d, q: d.count_by("job", "status", q),
    "distinct_values": lambda d, q: d.distinct_values("job", "status", q),
    "compile_query": lambda d, q: d.compile_query("job", q),
    "validate_query": lambda d, q: d.validate_query("job", q),
    "claim_jobs": lambda d, q: d.claim_jobs(q),
    "update_jobs": lambda d, q: d.update_jobs({"status": "FAILED"}, q),
    "query_jobs_df": lambda d, q: d.query_jobs_df(q),
    "iter_jobs_df": lambda d, q: d.iter_jobs_df(q),
    "find_stale_jobs": lambda d, q: jobman_nb.find_stale_jobs(d, query=q),
    "requeue": lambda d, q: jobman_nb.requeue(d, q),
}


@pytest.fixture(scope="module")
def db_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("validate") / "jobs.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"key": f"j{i}", "status": s, "job_spec": {"i": i}}
                       for i, s in enumerate(["PENDING", "RUNNING", "CLAIMED", "COMPLETED"] * 3)])
        dao.save_kvps([{"key": "k", "value": 1}])
    return path


def _snapshot(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT key, status, modified FROM jobman_job ORDER BY key").fetchall()
    finally:
        conn.close()


def _lock_is_free(path):
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


@pytest.mark.parametrize("bad", list(BAD_QUERIES))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_bad_query_raises_before_any_sql(db_file, entry, bad):
    before = _snapshot(db_file)
    with JobmanSqliteDAO(db_uri=db_file) as dao:
        statements: list[str] = []
        dao.connection.set_trace_callback(statements.append)
        with pytest.raises(QueryError):
            ENTRY_POINTS[entry](dao, BAD_QUERIES[bad])
        assert statements == []  # not even BEGIN IMMEDIATE, nor a PRAGMA
        assert not dao.connection.in_transaction
        assert _lock_is_free(db_file)
    assert _snapshot(db_file) == before


def test_claim_jobs_with_bad_fields_takes_no_lock_while_another_writer_holds_it(db_file):
    # the case: claim_jobs({'fields': 30.0}) used to take the write lock, select and
    # update, then raise; with the lock held elsewhere it now raises QueryError, not a lock error
    holder = sqlite3.connect(db_file, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with JobmanSqliteDAO(db_uri=db_file, lock_timeout=0.05) as dao, pytest.raises(QueryError, match="fields"):
            dao.claim_jobs({"fields": 30.0})
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("bad", list(BAD_QUERIES))
def test_lineage_validates_before_sql(db_file, bad):
    with jobman_nb.open_db(db_file) as db:
        statements: list[str] = []
        db.jobman.connection.set_trace_callback(statements.append)
        with pytest.raises(QueryError):
            db.lineage(BAD_QUERIES[bad])
        assert statements == []


def test_good_queries_still_run_everywhere(db_file):
    good = {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}], "fields": ["key", "status"],
            "order_by": {"field": "key"}, "limit": 2}
    with JobmanSqliteDAO(db_uri=db_file) as dao:
        assert [r["key"] for r in dao.query_jobs(good)] == ["j0", "j4"]
        assert [r["key"] for chunk in dao.iter_ents("job", good, chunksize=1) for r in chunk] == ["j0", "j4"]
        assert dao.count_ents("job", good) == 2
