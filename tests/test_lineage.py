"""Lineage: jobman jobs joined to their worker and engine jobs, broken links kept."""

from __future__ import annotations

import pandas as pd
import pytest

from jobman_nb import EngineSqliteDAO, JobmanSqliteDAO, QueryError, WorkerSqliteDAO
from jobman_nb.explore import open_db
from jobman_nb.job_lineage import LINKS, batch_jobs, lineage


@pytest.fixture
def db(tmp_path):
    """A hand-made history with every kind of link, good and broken."""
    path = tmp_path / "lineage.sqlite"
    jobman = JobmanSqliteDAO(db_uri=str(path))
    worker = WorkerSqliteDAO(db_uri=str(path), table_prefix="_worker_bw_")
    engine = EngineSqliteDAO(db_uri=str(path), table_prefix="engine_bw_engine_",
                             extra_job_fields={"remote_status": {"type": "TEXT"}})

    def job(key, status, t, **kw):
        return {"key": key, "status": status, "created": t, "modified": t + 10, **kw}

    jobman.save_jobs([
        job("ok", "RUNNING", 1, worker_key="bw", worker_meta={"key": "ok"}),
        job("lost_worker_job", "RUNNING", 2, worker_key="bw", worker_meta={"key": "nowhere"}),
        job("lost_engine_job", "RUNNING", 3, worker_key="bw", worker_meta={"key": "lost_engine_job"}),
        job("pending", "PENDING", 4),
        job("ghost_worker", "RUNNING", 5, worker_key="ghost", worker_meta={"key": "x"}),
        job("sub1", "RUNNING", 6, worker_key="bw", worker_meta={"key": "sub1"}),
        job("sub2", "RUNNING", 7, worker_key="bw", worker_meta={"key": "sub2"}),
    ], auto_update=False)
    worker.save_jobs([
        job("ok", "RUNNING", 1.5, engine_meta={"key": "e_ok"}),
        job("lost_engine_job", "RUNNING", 3.5, engine_meta={"key": "e_nowhere"}),
        job("sub1", "RUNNING", 6.5, parent_batch_key="batch"),
        job("sub2", "RUNNING", 7.5, parent_batch_key="batch"),
        job("batch", "RUNNING", 8, is_batch=1, batch_meta={"subjob_keys": ["sub1", "sub2", "sub3"]},
            engine_meta={"key": "e_batch"}),
    ], auto_update=False)
    engine.save_jobs([job("e_ok", "EXECUTED", 2, remote_status="R"), job("e_batch", "RUNNING", 9)],
                     auto_update=False)
    for d in (jobman, worker, engine):
        d.close()
    with open_db(path) as opened:
        yield opened


def test_one_row_per_jobman_job_in_table_order(db):
    df = lineage(db)
    assert list(df["key"]) == ["ok", "lost_worker_job", "lost_engine_job", "pending", "ghost_worker", "sub1", "sub2"]
    assert list(df.columns[:5]) == ["key", "status", "created", "modified", "worker_key"]
    assert "engine.remote_status" in df.columns


def test_links(db):
    df = lineage(db).set_index("key")
    links = df[["worker.link", "engine.link"]].astype(str).apply(tuple, axis=1).to_dict()
    assert links == {
        "ok": ("ok", "ok"),
        "lost_worker_job": ("missing", "none"),
        "lost_engine_job": ("ok", "missing"),
        "pending": ("none", "none"),
        "ghost_worker": ("missing", "none"),
        "sub1": ("ok", "ok"),
        "sub2": ("ok", "ok"),
    }
    assert list(df["worker.link"].cat.categories) == list(LINKS)


def test_sides_side_by_side(db):
    row = lineage(db).set_index("key").loc["ok"]
    assert row["worker.key"] == "ok"
    assert row["worker.status"] == "RUNNING"
    assert row["worker.created"] == pd.Timestamp(1.5, unit="s", tz="UTC")
    assert row["engine_key"] == "bw_engine"
    assert row["engine.key"] == "e_ok"
    assert row["engine.status"] == "EXECUTED"
    assert row["engine.modified"] == pd.Timestamp(12, unit="s", tz="UTC")
    assert row["engine.remote_status"] == "R"
    missing = lineage(db).set_index("key").loc["lost_engine_job"]
    assert missing["engine.key"] == "e_nowhere"
    assert pd.isna(missing["engine.status"])


def test_batched_subjobs_reach_the_batch_engine_job(db):
    df = lineage(db).set_index("key")
    assert df.loc["sub1", "worker.batch_key"] == "batch"
    assert df.loc["sub2", "engine.key"] == "e_batch"
    assert df.loc["sub2", "engine.status"] == "RUNNING"


def test_batch_jobs_list_their_subjobs(db):
    df = batch_jobs(db)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["worker_key"], row["key"], row["engine.key"]) == ("bw", "batch", "e_batch")
    assert row["subjob_keys"] == ["sub1", "sub2", "sub3"]
    assert (row["n_subjobs"], row["subjobs_found"]) == (3, 2)
    assert batch_jobs(db, worker_key="other").empty


def test_query_filters_orders_and_limits(db):
    df = lineage(db, {"filters": [{"field": "status", "op": "=", "arg": "RUNNING"}],
                      "order_by": {"field": "created", "direction": "DESC"}, "limit": 3})
    assert list(df["key"]) == ["sub2", "sub1", "ghost_worker"]
    df = db.lineage({"filters": [{"field": "worker_key", "op": "IS", "arg": None}]})
    assert list(df["key"]) == ["pending"]
    with pytest.raises(QueryError, match="unknown field"):
        lineage(db, {"filters": [{"field": "nope", "op": "=", "arg": 1}]})


def test_dtypes(db):
    df = lineage(db)
    for col in ("created", "modified", "worker.created", "worker.modified", "engine.created", "engine.modified"):
        assert str(df[col].dtype) == "datetime64[ns, UTC]", col
    for col in ("status", "worker.status", "engine.status"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col


def test_fixture_lineage(fixture_path, fixture_expected):
    with open_db(fixture_path) as db:
        df = lineage(db)
    assert len(df) == 25
    assert (df["worker.link"] == "ok").all()
    assert (df["worker.status"].astype(str) == df["status"].astype(str)).all()
    completed = df[df["status"] == "COMPLETED"]
    failed = df[df["status"] == "FAILED"]
    assert len(completed) == 19 and (completed["engine.link"] == "ok").all()
    assert set(completed["engine.key"]) == {r["key"] for r in fixture_expected["engine_cpu_w_engine_job"]}
    assert (completed["engine.status"] == "EXECUTED").all()
    # the failed jobs never reached the engine: nothing recorded, shown as such
    assert len(failed) == 6 and (failed["engine.link"] == "none").all()
