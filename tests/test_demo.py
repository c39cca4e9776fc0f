"""The demo history: deterministic, linked as jobman links tables, timestamps that agree with statuses."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

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


def test_same_seed_same_records_and_dirs(tmp_path, history):
    again = make_history(tmp_path / "again.sqlite", n_jobs=N, seed=7)
    assert _dump(tmp_path / "again.sqlite") == _dump(history[0])
    assert _tree(again["job_dirs"]) == _tree(history[1]["job_dirs"])


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
    assert set(spec) - {"std_log_file_names"} == {"dir", "entrypoint", "batchable", "resources", "cfg"}
    assert set(spec["resources"]) == {"cpus", "mem_gb", "walltime"}
    assert {"code", "method"} <= set(spec["cfg"])
    codes = Counter(j["job_spec"]["cfg"]["code"] for j in jobs)
    assert len(codes) >= 3
    assert all("basis" not in j["job_spec"]["cfg"] for j in jobs if j["job_spec"]["cfg"]["code"] == "xtb")
    assert len({j["source_key"] for j in jobs}) >= 3


def test_errors_are_what_jobman_records(jobs):
    """null for a failed job, except a batch subjob's generic checkpoint traceback naming its dir."""
    assert all(j["errors"] is None for j in jobs if j["status"] != "FAILED")
    failed = [j for j in jobs if j["status"] == "FAILED"]
    generic = [j for j in failed if j["errors"] is not None]
    assert 0 < len(generic) < len(failed) / 3
    for j in generic:
        assert j["job_spec"]["batchable"]
        (text,) = j["errors"]
        assert text.startswith("Traceback (most recent call last):\n")
        assert text.endswith("Exception: No completed checkpoint file found for job. "
                             f"job_dir was: '{j['job_spec']['dir']}'.\n")


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jobs", "x.sqlite"]  # no partial files left behind


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


# -- job directories --------------------------------------------------------------------------
# What a user greps for in the logs; each failure kind the demo plants in several wordings.
CAUSES = {
    "oom": ("oom-kill", "MemoryError"),
    "scf": ("SCF NOT CONVERGED", "Convergence failure", "SCFConvergenceError", "did not converge"),
    "walltime": ("DUE TO TIME LIMIT",),
    "quota": ("Disk quota exceeded",),
    "node": ("NODE FAILURE", "Node failure"),
}


def _tree(root):
    """Every file under *root*: relative path → (bytes, mtime, mode); and every job dir's mtime and mode."""
    root = Path(root)
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns,
                                       p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file() or p.name.startswith(("job_", "batch."))}


def _local(summary, cluster_dir):
    ((old, new),) = summary["path_map"].items()
    assert cluster_dir.startswith(old + "/")
    return Path(new + cluster_dir[len(old):])


def _read_logs(summary, job):
    """The job's (stdout, stderr) text, following job_spec.std_log_file_names, or None if it has none."""
    d = _local(summary, job["job_spec"]["dir"])
    names = job["job_spec"].get("std_log_file_names", {"stdout": "stdout", "stderr": "stderr"})
    paths = [d / names["stdout"], d / names["stderr"]]
    if not all(p.is_file() for p in paths):
        return None
    return tuple(p.read_bytes().decode("utf-8", "replace") for p in paths)


def _causes(text):
    return {kind for kind, needles in CAUSES.items() if any(n in text for n in needles)}


@pytest.fixture(scope="module")
def dir_jobs(history, jobs):
    """The finished, non-batched jobs whose dirs exist: (job, stdout, stderr, causes found in the logs)."""
    out = []
    for j in jobs:
        if j["status"] in ("COMPLETED", "FAILED") and not j["job_spec"]["batchable"]:
            logs = _read_logs(history[1], j)
            if logs is not None:
                out.append((j, *logs, _causes(logs[0] + logs[1])))
    return out


def test_dirs_are_laid_out_as_jobman_leaves_them(history, jobs):
    summary = history[1]
    assert summary["job_dirs"] == str(history[0].with_name("demo.jobs"))
    assert summary["path_map"] == {"/scratch": summary["job_dirs"]}
    missing = 0
    for j in jobs:
        spec = j["job_spec"]
        d = _local(summary, spec["dir"])
        if not d.is_dir():
            assert j["status"] == "COMPLETED" and j["purgeable"]  # purged after they finished
            missing += 1
            continue
        files = {p.name for p in d.iterdir()}
        assert {"JOBMAN-JOB_SPEC.json", "entrypoint.sh"} <= files
        on_file = json.loads((d / "JOBMAN-JOB_SPEC.json").read_text())
        assert on_file == {k: v for k, v in spec.items() if k not in ("dir", "entrypoint")}
        assert not {"JOBMAN-COMPLETED", "JOBMAN-FAILED"} <= files
        if j["status"] == "COMPLETED":
            assert {"JOBMAN-COMPLETED", "results.json"} <= files
        if j["status"] == "PENDING":
            assert not files & {"JOBMAN.ENTRYPOINT.sh", "stdout", "stderr", "JOBMAN-COMPLETED", "JOBMAN-FAILED"}
        if spec["batchable"] and j["status"] != "PENDING":
            assert not files & {"stdout", "stderr", "job.out", "job.err", "JOBMAN.ENTRYPOINT.sh"}
        if j["status"] in ("COMPLETED", "FAILED") and not spec["batchable"]:
            names = spec.get("std_log_file_names", {"stdout": "stdout", "stderr": "stderr"})
            assert {names["stdout"], names["stderr"], "JOBMAN.ENTRYPOINT.sh"} <= files
            assert f'pushd "{spec["dir"]}"' in (d / "JOBMAN.ENTRYPOINT.sh").read_text()
    assert 0 < missing < N / 20
    assert sum(1 for j in jobs if "std_log_file_names" in j["job_spec"]) > N / 20  # custom log names


def test_batches_hold_their_subjobs_logs(history, jobs):
    summary = history[1]
    batch_root = _local(summary, "/scratch/jobman/gpu_w/scratch")
    batches = sorted(batch_root.iterdir())
    assert batches
    subjob_dirs = {j["job_spec"]["dir"] for j in jobs if j["job_spec"]["batchable"]}
    listed = set()
    for b in batches:
        files = {p.name for p in b.iterdir()}
        assert {"entrypoint.sh", "JOBMAN.ENTRYPOINT.sh", "subjob_commands.sh", "stdout", "stderr"} <= files
        commands = (b / "subjob_commands.sh").read_text().splitlines()
        dirs = [line.split()[1] for line in commands]
        assert len(dirs) == len(commands) > 0
        assert (b / "stdout").read_text().count("running on ") == len(dirs)  # every subjob printed there
        listed.update(dirs)
    assert listed <= subjob_dirs and len(listed) > len(subjob_dirs) / 2


def test_every_failed_job_names_one_cause_in_its_logs(dir_jobs):
    failed = [(j, causes) for j, _, _, causes in dir_jobs if j["status"] == "FAILED"]
    assert len(failed) > 100
    assert all(len(causes) == 1 for _, causes in failed), [c for _, c in failed if len(c) != 1][:5]
    assert not [j["key"] for j, _, _, causes in dir_jobs if j["status"] == "COMPLETED" and causes]
    kinds = Counter(next(iter(c)) for _, c in failed)
    assert set(kinds) == set(CAUSES), kinds


def test_the_logs_hold_the_correlations(dir_jobs):
    """What an analysis of the dirs should find: each cause goes with the spec values that make it."""
    def rate(kind, pred):
        sel = [causes for j, _, _, causes in dir_jobs if pred(j)]
        return sum(kind in c for c in sel) / len(sel)

    def cfg(j):
        return j["job_spec"]["cfg"]

    heavy = [j for j, *_ in dir_jobs if cfg(j)["code"] != "xtb"]
    oom = [j for j, _, _, c in dir_jobs if "oom" in c]
    mean_mem = sum(j["job_spec"]["resources"]["mem_gb"] for j in heavy) / len(heavy)
    assert sum(j["job_spec"]["resources"]["mem_gb"] for j in oom) / len(oom) < mean_mem / 2
    assert rate("scf", lambda j: cfg(j)["method"] == "wb97x-d" and cfg(j).get("basis") == "cc-pvtz") > 5 * rate(
        "scf", lambda j: cfg(j)["code"] != "xtb" and cfg(j)["method"] != "wb97x-d")
    assert rate("quota", lambda j: j["source_key"] == "adhoc_dave") > 10 * max(
        rate("quota", lambda j: j["source_key"] != "adhoc_dave"), 1e-3)


def test_the_flaky_nodes_show_in_the_logs(dir_jobs):
    def node(stdout):
        first = stdout.splitlines()[0]
        assert first.startswith("running on ")
        return first.split()[2]

    hpc = [(node(out), causes) for j, out, _, causes in dir_jobs if j["worker_key"] == "hpc_w"]
    failing = Counter(n for n, c in hpc if "node" in c)
    ran = Counter(n for n, _ in hpc)
    assert len(ran) > 20  # node names vary
    worst = [n for n, _ in failing.most_common(2)]
    others = [n for n in ran if n not in worst]
    rate_worst = sum(failing[n] for n in worst) / sum(ran[n] for n in worst)
    rate_others = sum(failing[n] for n in others) / sum(ran[n] for n in others)
    assert rate_worst > 0.3 and rate_others == 0


def test_walltime_kills_come_at_the_walltime(dir_jobs):
    from datetime import datetime

    killed = [(j, out, err) for j, out, err, c in dir_jobs if "walltime" in c]
    assert killed
    for j, out, err in killed:
        started = out.splitlines()[0].split()[4].rstrip("Z")
        cancelled = err.split("CANCELLED AT ")[1].split()[0]
        ran = (datetime.fromisoformat(cancelled) - datetime.fromisoformat(started)).total_seconds()
        assert abs(ran - j["job_spec"]["resources"]["walltime"]) <= 2
        assert j["status"] == "FAILED"


def test_some_logs_are_not_utf8(history):
    root = Path(history[1]["job_dirs"])
    raw = [p.read_bytes() for p in root.rglob("stderr")][:2_000]
    bad = 0
    for data in raw:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
    assert bad > 0


def test_job_dirs_options(tmp_path):
    none = make_history(tmp_path / "a.sqlite", n_jobs=50, seed=1, job_dirs=False)
    assert none["job_dirs"] is None and none["path_map"] is None and none["dirs"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite"]
    there = make_history(tmp_path / "b.sqlite", n_jobs=50, seed=1, job_dirs=tmp_path / "elsewhere")
    assert there["job_dirs"] == str(tmp_path / "elsewhere") and there["dirs"] > 40
    assert _dump(tmp_path / "a.sqlite") == _dump(tmp_path / "b.sqlite")  # dirs or not, the same records
    again = make_history(tmp_path / "b.sqlite", n_jobs=20, seed=1, job_dirs=tmp_path / "elsewhere",
                         overwrite=True)
    assert len(_tree(tmp_path / "elsewhere")) < len(_tree(there["job_dirs"])) or again["dirs"] < there["dirs"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not the job dirs of a demo"):
        make_history(tmp_path / "c.sqlite", n_jobs=10, job_dirs=mine, overwrite=True)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_history(tmp_path / "d.sqlite", n_jobs=10, job_dirs=tmp_path / "elsewhere")
    assert (mine / "thesis.tex").read_text() == "precious" and not (tmp_path / "c.sqlite").exists()
    with pytest.raises(ValueError, match="job_dirs"):
        make_history(tmp_path / "e.sqlite", n_jobs=10, job_dirs=3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial files or dirs


def test_demo_command_job_dirs_flags(tmp_path):
    from click.testing import CliRunner

    from jobman_nb.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["demo", str(tmp_path / "x.sqlite"), "--jobs", "30"])
    assert result.exit_code == 0, result.output
    assert f"--path-map /scratch={tmp_path / 'x.jobs'}" in result.output
    assert (tmp_path / "x.jobs").is_dir()
    result = runner.invoke(main, ["demo", str(tmp_path / "y.sqlite"), "--jobs", "30", "--no-job-dirs"])
    assert result.exit_code == 0 and not (tmp_path / "y.jobs").exists()
    result = runner.invoke(main, ["demo", str(tmp_path / "z.sqlite"), "--jobs", "30", "--job-dirs",
                                  str(tmp_path / "zd")])
    assert result.exit_code == 0 and (tmp_path / "zd").is_dir()
    result = runner.invoke(main, ["demo", str(tmp_path / "w.sqlite"), "--no-job-dirs", "--job-dirs", "q"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_the_writer_threads_write_what_one_thread_writes(tmp_path, monkeypatch):
    """The dirs are written by a pool of threads, a few dirs a task: the same tree as one thread, in order."""
    import jobman_nb.demo as demo

    pooled = make_history(tmp_path / "pooled.sqlite", n_jobs=600, seed=5)
    monkeypatch.setattr(demo, "_DIR_THREADS", 3)
    monkeypatch.setattr(demo, "_DIR_BATCH", 2)  # many small tasks, and a short queue to wait on
    small = make_history(tmp_path / "small.sqlite", n_jobs=600, seed=5)
    monkeypatch.setattr(demo, "_DIR_THREADS", 1)
    serial = make_history(tmp_path / "serial.sqlite", n_jobs=600, seed=5)
    assert pooled["dirs"] == small["dirs"] == serial["dirs"] > 500
    tree = _tree(serial["job_dirs"])
    assert len(tree) > 3_000
    assert _tree(pooled["job_dirs"]) == tree
    assert _tree(small["job_dirs"]) == tree
