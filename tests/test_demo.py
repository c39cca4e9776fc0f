"""The demo history: deterministic, linked as jobman links tables, timestamps that agree with statuses."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest

from jobman_nb import STATUSES, EngineSqliteDAO, JobmanSqliteDAO, WorkerSqliteDAO
from jobman_nb.demo import START, WORKERS, make_history

N = 3_000


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    summary = make_history(path, n_jobs=N, seed=7)
    return path, summary


@pytest.fixture(scope="module")
def jobs(history):
    with JobmanSqliteDAO(db_uri=str(history[0]), read_only=True) as dao:
        return dao.query_jobs()


def _dump(path):
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in names}
    finally:
        conn.close()


def test_same_seed_same_records(tmp_path, history):
    make_history(tmp_path / "again.sqlite", n_jobs=N, seed=7)
    assert _dump(tmp_path / "again.sqlite") == _dump(history[0])


def test_other_seed_other_records(tmp_path, history):
    make_history(tmp_path / "other.sqlite", n_jobs=N, seed=8)
    assert _dump(tmp_path / "other.sqlite")["jobman_job"] != _dump(history[0])["jobman_job"]


def test_summary_matches_file(history, jobs):
    path, summary = history
    assert summary["jobs"] == N == len(jobs)
    assert summary["statuses"] == dict(sorted(Counter(j["status"] for j in jobs).items()))
    dumped = _dump(path)
    assert summary["tables"] == {t: len(dumped[t]) for t in summary["tables"]}
    assert set(summary["tables"]) == set(dumped)


def test_mix_of_statuses(jobs):
    counts = Counter(j["status"] for j in jobs)
    assert set(counts) <= set(STATUSES)
    for status in ("PENDING", "RUNNING", "COMPLETED", "FAILED", "UNKNOWN"):
        assert counts[status] > 0, status
    assert counts["COMPLETED"] > counts["FAILED"] > counts["PENDING"]


def test_timestamps_agree_with_statuses(jobs):
    end = START + 7 * 86_400
    for j in jobs:
        assert START <= j["created"] <= j["modified"] <= end
        if j["status"] in ("COMPLETED", "FAILED"):
            assert j["modified"] > j["created"]
        if j["status"] == "PENDING":
            assert j["modified"] == j["created"]
    pending = [j["created"] for j in jobs if j["status"] == "PENDING"]
    finished = [j["created"] for j in jobs if j["status"] == "COMPLETED"]
    assert sum(pending) / len(pending) > sum(finished) / len(finished)  # the queue holds recent jobs


def test_job_specs(jobs):
    spec = jobs[0]["job_spec"]
    assert set(spec) == {"dir", "entrypoint", "batchable", "resources", "cfg"}
    assert set(spec["resources"]) == {"cpus", "mem_gb", "walltime"}
    assert {"code", "method"} <= set(spec["cfg"])
    codes = Counter(j["job_spec"]["cfg"]["code"] for j in jobs)
    assert len(codes) >= 3
    assert all("basis" not in j["job_spec"]["cfg"] for j in jobs if j["job_spec"]["cfg"]["code"] == "xtb")
    assert len({j["source_key"] for j in jobs}) >= 3


def test_failed_jobs_carry_tracebacks_with_findable_causes(jobs):
    failed = [j for j in jobs if j["status"] == "FAILED"]
    assert all(isinstance(j["errors"], list) and j["errors"] for j in failed)
    assert all(j["errors"] is None for j in jobs if j["status"] != "FAILED")
    assert all(e.startswith("Traceback (most recent call last):") for j in failed for e in j["errors"])
    kinds = Counter(j["errors"][-1].splitlines()[-1].split(":")[0] for j in failed)
    expected = {"MemoryError", "qcrunner.errors.SCFConvergenceError", "jobman.engines.errors.WalltimeExceeded"}
    assert expected <= set(kinds)

    def rate(pred):
        sel = [j for j in jobs if j["status"] in ("COMPLETED", "FAILED") and pred(j)]
        return sum(j["status"] == "FAILED" for j in sel) / len(sel)

    def cfg(j):
        return j["job_spec"]["cfg"]

    scf_prone = rate(lambda j: cfg(j)["method"] == "wb97x-d" and cfg(j).get("basis") == "cc-pvtz")
    assert scf_prone > 2 * rate(lambda j: cfg(j)["code"] != "xtb")
    oom = [j for j in failed if "MemoryError" in j["errors"][-1]]
    assert sum(j["job_spec"]["resources"]["mem_gb"] for j in oom) / len(oom) < sum(
        j["job_spec"]["resources"]["mem_gb"] for j in jobs) / len(jobs)


def test_links_as_jobman_makes_them(history, jobs):
    path = str(history[0])
    engine_keys: dict[str, set[str]] = {}
    worker_jobs: dict[str, dict[str, dict]] = {}
    for worker, engine in WORKERS.items():
        with WorkerSqliteDAO(db_uri=path, table_prefix=f"_worker_{worker}_", read_only=True) as w:
            worker_jobs[worker] = {j["key"]: j for j in w.query_jobs()}
        with EngineSqliteDAO(db_uri=path, table_prefix=f"engine_{engine}_", read_only=True) as e:
            engine_keys[worker] = {j["key"] for j in e.query_jobs()}
    linked = 0
    for j in jobs:
        if j["status"] == "PENDING":
            assert j["worker_key"] is None and j["worker_meta"] is None
            continue
        if j["worker_meta"] is None:
            continue
        wjob = worker_jobs[j["worker_key"]][j["worker_meta"]["key"]]
        assert wjob["key"] == j["key"]  # jobman 0.0.1 keeps the key
        if wjob["engine_meta"] and j["status"] != "UNKNOWN":
            assert wjob["engine_meta"]["key"] in engine_keys[j["worker_key"]]
            linked += 1
    assert linked > N / 2
    unknown = [j for j in jobs if j["status"] == "UNKNOWN"]
    assert any(worker_jobs[j["worker_key"]][j["key"]]["engine_meta"]["key"] not in engine_keys[j["worker_key"]]
               for j in unknown)  # links that point nowhere


def test_batches_list_their_subjobs(history):
    with WorkerSqliteDAO(db_uri=str(history[0]), table_prefix="_worker_gpu_w_", read_only=True) as w:
        batches = w.query_jobs({"filters": [{"field": "is_batch", "op": "=", "arg": 1}]})
        by_key = {j["key"]: j for j in w.query_jobs()}
    assert batches
    for b in batches:
        subjobs = b["batch_meta"]["subjob_keys"]
        assert subjobs
        assert all(by_key[k]["parent_batch_key"] == b["key"] for k in subjobs)


def test_kvps(history):
    with JobmanSqliteDAO(db_uri=str(history[0]), read_only=True) as dao:
        kvps = {k["key"]: k["value"] for k in dao.query_kvps()}
    assert "source_cursors" in kvps


def test_refuses_to_overwrite(history, tmp_path):
    path = tmp_path / "x.sqlite"
    path.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_history(path, n_jobs=10)
    assert path.read_text() == "precious"
    make_history(path, n_jobs=10, overwrite=True)
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
        assert dao.count_ents("job") == 10
    assert [p.name for p in tmp_path.iterdir()] == ["x.sqlite"]  # no partial files left behind


@pytest.mark.parametrize("kwargs, match", [
    ({"n_jobs": 0}, "n_jobs"), ({"n_jobs": 2.5}, "n_jobs"), ({"seed": -1}, "seed"), ({"days": 0}, "days"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_history(tmp_path / "x.sqlite", **kwargs)
    assert not (tmp_path / "x.sqlite").exists()


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no directory"):
        make_history(tmp_path / "nope" / "x.sqlite", n_jobs=10)


def test_json_text_is_what_json_dumps_writes(history):
    """The JSON columns hold exactly the text json.dumps gives (what save_jobs would store)."""
    conn = sqlite3.connect(history[0])
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        checked = 0
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            for column in set(columns) & {"job_spec", "worker_meta", "errors", "source_meta", "batch_meta",
                                          "engine_meta", "value"}:
                for (text,) in conn.execute(f'SELECT "{column}" FROM "{table}"'):
                    assert text == json.dumps(json.loads(text)), (table, column, text)
                    checked += 1
    finally:
        conn.close()
    assert checked > 5 * N


@pytest.mark.parametrize("n_jobs", [1, 2, 5])
def test_tiny_histories(tmp_path, n_jobs):
    summary = make_history(tmp_path / "tiny.sqlite", n_jobs=n_jobs, seed=1)
    assert summary["tables"]["jobman_job"] == n_jobs
    assert set(summary["tables"]) == set(_dump(tmp_path / "tiny.sqlite"))


def test_chunks_join_into_one_history(tmp_path, monkeypatch):
    """Across chunk boundaries creation times stay sorted, keys unique, batches whole, events consistent."""
    import jobman_nb.demo as demo

    monkeypatch.setattr(demo, "_CHUNK", 250)
    summary = make_history(tmp_path / "chunked.sqlite", n_jobs=2_000, seed=3, events=True)
    conn = sqlite3.connect(summary["path"])
    try:
        created = [r[0] for r in conn.execute("SELECT created FROM jobman_job ORDER BY rowid")]
        keys = {r[0] for r in conn.execute("SELECT key FROM jobman_job")}
        last = dict(conn.execute("SELECT job_key, new_status FROM jobman_job_event ORDER BY key"))
        status = dict(conn.execute("SELECT key, status FROM jobman_job"))
        sub = conn.execute("SELECT count(*) FROM _worker_gpu_w_job w JOIN _worker_gpu_w_job b "
                           "ON w.parent_batch_key = b.key AND b.is_batch = 1").fetchone()[0]
        batched = conn.execute("SELECT count(*) FROM _worker_gpu_w_job WHERE parent_batch_key IS NOT NULL")
        assert sub == batched.fetchone()[0] > 0
    finally:
        conn.close()
    assert created == sorted(created) and len(keys) == 2_000
    assert START < created[0] and created[-1] < START + 7 * 86_400
    assert created[1_000] - created[0] > 2 * 86_400  # spread over the days, not piled per chunk
    assert last == status
    assert summary["statuses"] == dict(sorted(Counter(status.values()).items()))
