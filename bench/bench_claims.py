"""claim_jobs against a hand-written claim doing the same work, 4 processes, batches of 1 and 100.

Each run copies one prepared file of PENDING jobman jobs (WAL, the DAO's tables and
indexes), starts 4 processes that claim batches until none is left, and times
from the start signal to the last process done. The two sides alternate run by
run on identical copies; the figure is the ratio of the medians of claimed
rows per second (ours / by hand: higher is better, target >= 0.8). Every run
checks that no job was claimed twice and none was left.

The hand-written claim is what a user would write with ``sqlite3``::

    UPDATE jobman_job SET status = 'CLAIMED', modified = ?
    WHERE rowid IN (SELECT rowid FROM jobman_job WHERE status = 'PENDING' LIMIT ?)
    RETURNING *

then one dict per row with the four JSON columns decoded by ``json.loads``.

Run from the repository root::

    python bench/bench_claims.py                    # 40,000 jobs at batch 100, 2,000 at batch 1, 3 runs
    python bench/bench_claims.py --jobs 100000 --repeat 5
"""

from __future__ import annotations

import json
import multiprocessing as mp
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import click

from jobman_nb import JobmanSqliteDAO

JSON_COLUMNS = ("job_spec", "worker_meta", "errors", "source_meta")
PROCESSES = 4
PENDING = {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}]}


def _prepare(path: Path, n_jobs: int) -> None:
    spec = {"dir": "/scratch/u/jobs/x", "entrypoint": "run.sh", "cfg": {"code": "psi4", "basis": "def2-svp"},
            "resources": {"cpus": 4, "mem_gb": 8}}
    with JobmanSqliteDAO(db_uri=str(path)) as dao:
        dao.save_jobs([{"key": f"job{i:08d}", "status": "PENDING", "job_spec": spec,
                        "worker_meta": {"host": "n1"}, "errors": [], "source_meta": {"tag": i % 7}}
                       for i in range(n_jobs)])
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _ours(path: str, batch: int, synchronous: str, start, out) -> None:
    keys = []
    with JobmanSqliteDAO(db_uri=path, lock_timeout=600) as dao:
        dao.connection.execute(f"PRAGMA synchronous={synchronous}")
        query = {**PENDING, "limit": batch}
        start.wait()
        while jobs := dao.claim_jobs(query):
            keys.extend(j["key"] for j in jobs)
    out.put(keys)


def _by_hand(path: str, batch: int, synchronous: str, start, out) -> None:
    keys = []
    conn = sqlite3.connect(path, timeout=600, isolation_level=None)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    names = None
    sql = ("UPDATE jobman_job SET status = 'CLAIMED', modified = ? WHERE rowid IN "
           "(SELECT rowid FROM jobman_job WHERE status = 'PENDING' LIMIT ?) RETURNING *")
    start.wait()
    while True:
        cur = conn.execute(sql, (time.time(), batch))
        rows = cur.fetchall()
        if not rows:
            break
        names = names or [d[0] for d in cur.description]
        jobs = []
        for row in rows:
            job = dict(zip(names, row, strict=True))
            for c in JSON_COLUMNS:
                if job[c] is not None:
                    job[c] = json.loads(job[c])
            jobs.append(job)
        keys.extend(j["key"] for j in jobs)
    conn.close()
    out.put(keys)


def _run(target, path: Path, batch: int, synchronous: str, n_jobs: int) -> float:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(str(path), batch, synchronous, start, out)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every process has imported and opened its connection
    t0 = time.perf_counter()
    start.set()
    claimed = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    keys = [k for ks in claimed for k in ks]
    if len(keys) != len(set(keys)) or len(keys) != n_jobs:
        raise SystemExit(f"{target.__name__}: {len(keys)} claims of {len(set(keys))} jobs, {n_jobs} pending")
    return n_jobs / elapsed


def _copy(template: Path, path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, path)


@click.command()
@click.option("--jobs", "n_jobs", default=40_000, show_default=True, help="jobs claimed per run at batch 100")
@click.option("--jobs-batch-1", "n_single", default=4_000, show_default=True, help="jobs per run at batch 1")
@click.option("--full/--no-full", default=True, show_default=True,
              help="also run with synchronous=FULL (SQLite's default; a disk flush per claim), 1/10 of the jobs")
@click.option("--repeat", default=3, show_default=True, help="runs per side; medians are kept")
def main(n_jobs: int, n_single: int, full: bool, repeat: int) -> None:
    """Print claimed rows/s of claim_jobs and of the hand-written claim, and their ratio, as JSON.

    Both sides run with the same ``PRAGMA synchronous``: NORMAL (WAL's usual setting: no
    flush per commit, so the claim's own work is measured) and, with --full, FULL.
    """
    results = {}
    cases = [("NORMAL", 100, n_jobs), ("NORMAL", 1, n_single)]
    if full:
        cases += [("FULL", 100, max(n_jobs // 10, 400)), ("FULL", 1, max(n_single // 10, 40))]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for synchronous, batch, n in cases:
            template = work / f"template-{n}.sqlite"
            if not template.exists():
                _prepare(template, n)
            rates: dict[str, list[float]] = {"claim_jobs": [], "by_hand": []}
            for _ in range(repeat):
                for name, target in (("claim_jobs", _ours), ("by_hand", _by_hand)):
                    path = work / "run.sqlite"
                    _copy(template, path)
                    rates[name].append(_run(target, path, batch, synchronous, n))
            ours, hand = statistics.median(rates["claim_jobs"]), statistics.median(rates["by_hand"])
            results[f"synchronous={synchronous}, batch {batch}"] = {
                "jobs": n, "claim_jobs_rows_per_s": round(ours), "by_hand_rows_per_s": round(hand),
                "ratio": round(ours / hand, 2)}
    print(json.dumps({"processes": PROCESSES, "repeat": repeat, "python": platform.python_version(),
                      "sqlite": sqlite3.sqlite_version, "cases": results}, indent=2))


if __name__ == "__main__":
    main()
