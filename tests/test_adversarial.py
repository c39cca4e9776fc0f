"""Adversarial categories at a size CI affords, each printing its counts.

Load and SIGKILL live in test_reliability.py, read-only in test_dao.py and the
query model in test_query_properties.py; here: a full disk, hostile queries
and odd records. A full disk is simulated with ``PRAGMA max_page_count`` on
the DAO's connection (no root, no tmpfs).
"""

from __future__ import annotations

import math
import random
import sqlite3

import pytest

from jobman_nb import InsertError, JobmanError, JobmanSqliteDAO, QueryError, UpdateError


def _report(capsys, line):
    with capsys.disabled():
        print(f"\n[adversarial] {line}")


def test_a_full_disk_refuses_whole_batches_and_loses_nothing(tmp_path, capsys):
    path = str(tmp_path / "full.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"key": f"seed{i}", "status": "PENDING"} for i in range(200)])
        pages = dao.connection.execute("PRAGMA page_count").fetchone()[0]
        dao.connection.execute(f"PRAGMA max_page_count = {pages + 8}")  # the disk fills after ~8 pages
        refused = saved = 0
        for batch in range(20):
            jobs = [{"key": f"b{batch}-{i}", "status": "PENDING", "job_spec": {"pad": "x" * 200}}
                    for i in range(10 * (batch + 1))]
            try:
                dao.save_jobs(jobs)
                saved += len(jobs)
            except InsertError as exc:
                assert "full" in str(exc)
                refused += 1
            assert not dao.connection.in_transaction
        with pytest.raises(UpdateError, match="full"):
            dao.update_jobs({"job_spec": {"pad": "y" * 5_000}})
        assert dao.count_ents("job") == 200 + saved  # every refused batch left nothing behind
        assert dao.count_ents("job", {"filters": [{"field": "job_spec.pad", "op": "LIKE", "arg": "y%"}]}) == 0
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert refused >= 1
    _report(capsys, f"disk full: {refused} batches refused whole, {saved} jobs saved, 1 update refused, 0 lost")


def _hostile(rng, depth=0):
    """A random value that may or may not be a query dict."""
    atoms = [None, 0, -1, 2**70, 1.5, math.nan, math.inf, "", "status", "job_spec.a", "x\x00y", "\ud800", b"k",
             "created", "2026-01-01", "'; DROP TABLE jobman_job; --", '"', "IN", "!=", "BETWEEN", "any", "all",
             True, (), frozenset()]
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(atoms)
    kind = rng.random()
    if kind < 0.4:
        keys = ["filters", "order_by", "limit", "offset", "fields", "field", "op", "arg", "any", "all", "x"]
        return {rng.choice(keys): _hostile(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if kind < 0.7:
        return [_hostile(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    field = rng.choice(["status", "created", "job_spec.a", "job_spec", "key", "nope", 3])
    op = rng.choice(["=", "!=", "<", "IN", "NOT IN", "BETWEEN", "LIKE", "GLOB", "IS", "IS NOT", "~", "!!="])
    return {"filters": [{"field": field, "op": op, "arg": _hostile(rng, depth + 1)}]}


def test_hostile_queries_run_or_raise_query_error_and_change_nothing(capsys):
    rng = random.Random(14)
    ran = refused = 0
    with JobmanSqliteDAO() as dao:
        dao.save_jobs([{"key": f"k{i}", "status": "PENDING", "created": float(i), "job_spec": {"a": i}}
                       for i in range(20)])
        before = dao.query_jobs()
        for _ in range(1_500):
            query = _hostile(rng)
            for call in (dao.query_jobs, lambda q: dao.count_ents("job", q), dao.claim_jobs,
                         lambda q: dao.update_jobs({"status": "PENDING"}, q)):
                try:
                    call(query)
                    ran += 1
                except QueryError:
                    refused += 1
            dao.update_jobs({"status": "PENDING"})  # undo any claim, for the next query
        assert [j["key"] for j in dao.query_jobs()] == [j["key"] for j in before]
        assert dao.connection.execute("SELECT count(*) FROM sqlite_master WHERE name = 'jobman_job'").fetchone()[0]
    assert ran and refused
    _report(capsys, f"hostile queries: {ran + refused} calls, {ran} ran, {refused} QueryError, 0 other errors")


def _nested(depth):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _depth(value):
    n = 0
    while isinstance(value, list):
        n, value = n + 1, value[0] if value else None
    return n


ODD_RECORDS = [
    ("unknown keys are dropped", {"key": "u", "worker_state": {"x": 1}}, lambda r: "worker_state" not in r),
    ("NaN in an INTEGER column is NULL", {"key": "n", "batchable": math.nan}, lambda r: r["batchable"] is None),
    ("non-string JSON keys become strings", {"key": "j", "job_spec": {1: "a", None: "b"}},
     lambda r: r["job_spec"] == {"1": "a", "null": "b"}),
    ("an int key is stored as text", {"key": 7}, lambda r: r["key"] == "7"),
    ("non-ASCII and control characters", {"key": "é\n\t😀", "status": "ünï\x01"}, lambda r: r["status"] == "ünï\x01"),
    ("a 1 MB string", {"key": "big", "source_tag": "x" * 1_000_000}, lambda r: len(r["source_tag"]) == 1_000_000),
    ("JSON nested 500 deep", {"key": "deep", "job_spec": {"a": _nested(500)}},
     lambda r: _depth(r["job_spec"]["a"]) == 500),
    ("a JSON key with a dot", {"key": "dot", "job_spec": {"a.b": 1}}, lambda r: r["job_spec"] == {"a.b": 1}),
]
REFUSED_RECORDS = [
    {"key": b"bytes"}, {"key": 1.5}, {"key": "nan-float", "created": math.nan}, {"key": "big", "batchable": 2**64},
    {"key": "surrogate\ud800"}, {"key": "set", "job_spec": {1, 2}}, {"key": "inf", "job_spec": math.inf},
    "not a dict",
]


def test_odd_records_are_kept_or_refused_whole(capsys):
    kept = refused = 0
    with JobmanSqliteDAO() as dao:
        for _, record, check in ODD_RECORDS:
            dao.save_jobs([record])
            got = dao.get_job(str(record["key"]))
            assert got is not None and check(got), record["key"]
            kept += 1
        count = dao.count_ents("job")
        for record in REFUSED_RECORDS:
            with pytest.raises(InsertError) as info:
                dao.save_jobs([{"key": "fine"}, record])
            assert isinstance(info.value, JobmanError)
            refused += 1
        assert dao.count_ents("job") == count  # each refused batch left nothing
    _report(capsys, f"odd records: {kept} kept as documented, {refused} refused whole with InsertError")
