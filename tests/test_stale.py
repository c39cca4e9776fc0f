"""Stale jobs: finding them, and requeuing only what is still as the user saw it."""

from __future__ import annotations

import pandas as pd
import pytest

from jobman_nb import JobmanSqliteDAO, ReadOnlyError
from jobman_nb.explore import open_db
from jobman_nb.stale import default_stale_age, find_stale_jobs, requeue

NOW = 1_800_000_000.0
HOUR = 3600.0


@pytest.fixture
def dao():
    d = JobmanSqliteDAO(db_uri=":memory:")
    jobs = [
        # finished jobs: durations 10 min .. 100 min
        *({"key": f"done{i}", "status": "COMPLETED" if i % 3 else "FAILED", "created": NOW - 50 * HOUR,
           "modified": NOW - 50 * HOUR + 600 * (i + 1)} for i in range(10)),
        {"key": "old_running", "status": "RUNNING", "created": NOW - 30 * HOUR, "modified": NOW - 20 * HOUR,
         "worker_key": "w1"},
        {"key": "old_claimed", "status": "CLAIMED", "created": NOW - 30 * HOUR, "modified": NOW - 10 * HOUR,
         "worker_key": "w2"},
        {"key": "fresh_running", "status": "RUNNING", "created": NOW - 2 * HOUR, "modified": NOW - 0.5 * HOUR},
        {"key": "old_pending", "status": "PENDING", "created": NOW - 40 * HOUR, "modified": NOW - 40 * HOUR},
    ]
    d.save_jobs(jobs, auto_update=False)
    yield d
    d.close()


@pytest.mark.parametrize("older_than", ["2h", pd.Timedelta(hours=2), 7200, 7200.0])
def test_find_stale_jobs(dao, older_than):
    df = find_stale_jobs(dao, older_than, now=NOW)
    assert df["key"].tolist() == ["old_running", "old_claimed"]  # oldest first
    assert df.set_index("key").loc["old_running", "stale_for"] == pd.Timedelta(hours=20)


def test_thresholds_and_filters(dao):
    assert find_stale_jobs(dao, "15h", now=NOW)["key"].tolist() == ["old_running"]
    assert find_stale_jobs(dao, "1min", now=NOW)["key"].tolist() == ["old_running", "old_claimed", "fresh_running"]
    q = {"filters": [{"field": "worker_key", "op": "=", "arg": "w2"}]}
    assert find_stale_jobs(dao, "1h", now=NOW, query=q)["key"].tolist() == ["old_claimed"]
    assert find_stale_jobs(dao, "1h", now=pd.Timestamp(NOW, unit="s", tz="UTC"), statuses=["PENDING"])[
        "key"].tolist() == ["old_pending"]


@pytest.mark.parametrize("bad, error", [("soon", ValueError), (-5, ValueError), (True, TypeError),
                                        ([1], TypeError), (float("nan"), ValueError)])
def test_bad_thresholds(dao, bad, error):
    with pytest.raises(error, match="older_than"):
        find_stale_jobs(dao, bad, now=NOW)


def test_default_threshold_from_history(dao):
    # durations 10..100 min; 3 x the 99th percentile (99.1 min) = 297.3 min, above the 1 h minimum
    age = default_stale_age(dao)
    assert abs(age.total_seconds() - 3 * 60 * (10 + 0.99 * 90)) < 1e-6
    assert default_stale_age(dao, q=0.5, factor=1, minimum=0) == pd.Timedelta(minutes=55)
    assert default_stale_age(dao, minimum="1 day") == pd.Timedelta(days=1)
    df = find_stale_jobs(dao, now=NOW)
    assert df["key"].tolist() == ["old_running", "old_claimed"]


def test_default_threshold_needs_history(make_dao):
    d = make_dao(db_uri=":memory:")
    d.create_job({"key": "r", "status": "RUNNING"})
    with pytest.raises(ValueError, match="no finished jobs"):
        find_stale_jobs(d)


def test_requeue_what_was_seen(dao):
    seen = find_stale_jobs(dao, "2h", now=NOW)
    result = requeue(dao, seen)
    assert result["action"].tolist() == ["requeued", "requeued"]
    assert result["current_status"].tolist() == ["PENDING", "PENDING"]
    assert dao.get_job("old_running")["status"] == "PENDING"
    assert dao.get_job("old_running")["modified"] != NOW - 20 * HOUR  # modified is bumped
    assert dao.get_job("fresh_running")["status"] == "RUNNING"
    again = requeue(dao, seen)
    assert again["action"].tolist() == ["skipped", "skipped"]
    assert again["reason"].tolist() == ["changed", "changed"]


def test_job_that_moved_on_is_never_requeued(dao):
    seen = find_stale_jobs(dao, "2h", now=NOW)
    # after the user looked, a worker finished one job and touched the other (same status, new modified)
    dao.update_jobs({"status": "COMPLETED"}, {"filters": [{"field": "key", "op": "=", "arg": "old_running"}]})
    dao.update_jobs({"worker_key": "w9"}, {"filters": [{"field": "key", "op": "=", "arg": "old_claimed"}]})
    result = requeue(dao, seen).set_index("key")
    assert result.loc["old_running", "action"] == "skipped"
    assert result.loc["old_running", "current_status"] == "COMPLETED"
    assert result.loc["old_claimed", "action"] == "skipped"
    assert result.loc["old_claimed", "current_status"] == "CLAIMED"
    assert dao.get_job("old_running")["status"] == "COMPLETED"
    assert dao.get_job("old_claimed")["status"] == "CLAIMED"


def test_requeue_is_one_transaction(dao):
    seen = find_stale_jobs(dao, "2h", now=NOW)
    bad = pd.concat([seen[["key", "status", "modified"]],
                     pd.DataFrame({"key": [{"not": "hashable"}], "status": ["RUNNING"],
                                   "modified": [seen["modified"].iloc[0]]})], ignore_index=True)
    with pytest.raises(Exception):  # noqa: B017 - any failure must roll everything back
        requeue(dao, bad)
    assert dao.get_job("old_running")["status"] == "RUNNING"


def test_requeue_records_and_queries(dao):
    rec = dao.get_job("old_claimed")
    out = requeue(dao, [rec, {"key": "ghost", "status": "RUNNING", "modified": 1.0},
                        dao.get_job("old_pending")])
    assert out["action"].tolist() == ["requeued", "skipped", "skipped"]
    assert out["reason"].tolist()[1:] == ["missing", "status"]
    out = requeue(dao, {"filters": [{"field": "status", "op": "=", "arg": "RUNNING"},
                                    {"field": "modified", "op": "<", "arg": NOW - 2 * HOUR}]})
    assert out["key"].tolist() == ["old_running"]
    assert dao.get_job("old_running")["status"] == "PENDING"


def test_requeue_bad_input(dao):
    with pytest.raises(KeyError, match="modified"):
        requeue(dao, pd.DataFrame({"key": ["a"], "status": ["RUNNING"]}))
    with pytest.raises(TypeError, match="dict with key, status and modified"):
        requeue(dao, [{"key": "a"}])


def test_read_only_dao(fixture_path):
    with open_db(fixture_path) as db:
        assert find_stale_jobs(db.jobman, "1h").empty  # the fixture's jobs all finished
        with pytest.raises(ReadOnlyError):
            requeue(db.jobman, {"filters": []})
