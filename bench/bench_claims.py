"""claim_jobs against a hand-written claim doing the same work, 4 processes, batches of 1 and 100.

Each run copies one prepared file of PENDING jobman jobs (WAL, the DAO's tables and
indexes), starts 4 processes that claim batches until none is left, and times
from the start signal to the last process done. The two sides alternate run by
run on identical copies; the figure is the ratio of the medians of claimed
rows per second (ours / by hand: higher is better, target >= 0.8). Every run
checks that no job was claimed twice and none was left.

It also prints the CPU time the 4 processes spent per claimed row (user + system,
summed over them) and what that gives as rows/s on one idle core
(``1e6 / cpu_us_per_row``): on a loaded machine the wall-clock rate measures the
load, the CPU time much less so. The >= 100,000 rows/s target at batch 100 is
checked against both.

``claim_jobs`` runs with the DAO's defaults (``synchronous=NORMAL`` on a WAL file)
in the NORMAL cases and ``synchronous='FULL'`` in the FULL ones; the hand-written
claim sets the same ``PRAGMA synchronous`` itself.

The hand-written claim is what a user would write with ``sqlite3``::

    UPDATE jobman_job SET status = 'CLAIMED', modified = ?
    WHERE rowid IN (SELECT rowid FROM jobman_job WHERE status = 'PENDING' LIMIT ?)
    RETURNING *

then one dict per row with the four JSON columns decoded by ``json.loads``. A third side,
``bare_update``, runs that UPDATE alone (rows left as tuples, nothing decoded): the ceiling
of the SQL itself, against which the >= 100,000 rows/s target can be judged.

Run from the repository root::

    python bench/bench_claims.py                    # 40,000 jobs at batch 100, 2,000 at batch 1, 3 runs
    python bench/bench_claims.py --jobs 100000 --repeat 5
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
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
TARGET_ROWS_PER_S = 100_000  # at batch 100, on a quiet machine
TARGET_RATIO = 0.8
_LEVELS = {"NORMAL": 1, "FULL": 2}
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
    level = None if synchronous == "NORMAL" else synchronous  # NORMAL is the DAO's default on a WAL file
    with JobmanSqliteDAO(db_uri=path, lock_timeout=600, synchronous=level) as dao:
        assert dao.connection.execute("PRAGMA synchronous").fetchone()[0] == _LEVELS[synchronous]
        query = {**PENDING, "limit": batch}
        start.wait()
        cpu = time.process_time()
        while jobs := dao.claim_jobs(query):
            keys.extend(j["key"] for j in jobs)
        cpu = time.process_time() - cpu
    out.put((keys, cpu))


def _claim_by_hand(path: str, batch: int, synchronous: str, start, out, decode: bool) -> None:
    """Claim batches with the hand-written UPDATE ... RETURNING until none is left; with *decode*,
    a dict per row and the JSON columns decoded, else the rows left as tuples."""
    keys = []
    conn = sqlite3.connect(path, timeout=600, isolation_level=None)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    names = None
    sql = ("UPDATE jobman_job SET status = 'CLAIMED', modified = ? WHERE rowid IN "
           "(SELECT rowid FROM jobman_job WHERE status = 'PENDING' LIMIT ?) RETURNING *")
    start.wait()
    cpu = time.process_time()
    while True:
        cur = conn.execute(sql, (time.time(), batch))
        rows = cur.fetchall()
        if not rows:
            break
        names = names or [d[0] for d in cur.description]
        if not decode:
            at = names.index("key")
            keys.extend(row[at] for row in rows)
            continue
        jobs = []
        for row in rows:
            job = dict(zip(names, row, strict=True))
            for c in JSON_COLUMNS:
                if job[c] is not None:
                    job[c] = json.loads(job[c])
            jobs.append(job)
        keys.extend(j["key"] for j in jobs)
    cpu = time.process_time() - cpu
    conn.close()
    out.put((keys, cpu))


def _by_hand(path: str, batch: int, synchronous: str, start, out) -> None:
    _claim_by_hand(path, batch, synchronous, start, out, decode=True)


def _bare(path: str, batch: int, synchronous: str, start, out) -> None:
    """The UPDATE ... RETURNING alone: rows left as tuples, nothing decoded (the SQL's own ceiling)."""
    _claim_by_hand(path, batch, synchronous, start, out, decode=False)


def _run(target, path: Path, batch: int, synchronous: str, n_jobs: int) -> tuple[float, float]:
    """Claimed rows per second, and CPU microseconds per claimed row (all processes)."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(str(path), batch, synchronous, start, out)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every process has imported and opened its connection
    t0 = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    keys = [k for ks, _ in results for k in ks]
    if len(keys) != len(set(keys)) or len(keys) != n_jobs:
        raise SystemExit(f"{target.__name__}: {len(keys)} claims of {len(set(keys))} jobs, {n_jobs} pending")
    return n_jobs / elapsed, sum(cpu for _, cpu in results) / n_jobs * 1e6


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
            runs: dict[str, list[tuple[float, float]]] = {"claim_jobs": [], "by_hand": [], "bare": []}
            for _ in range(repeat):
                for name, target in (("claim_jobs", _ours), ("by_hand", _by_hand), ("bare", _bare)):
                    path = work / "run.sqlite"
                    _copy(template, path)
                    runs[name].append(_run(target, path, batch, synchronous, n))
            rate = {k: statistics.median(r for r, _ in v) for k, v in runs.items()}
            cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
            ratio = rate["claim_jobs"] / rate["by_hand"]
            case = {"jobs": n,
                    "claim_jobs_rows_per_s": round(rate["claim_jobs"]), "by_hand_rows_per_s": round(rate["by_hand"]),
                    "ratio": round(ratio, 2), "ratio_met": ratio >= TARGET_RATIO,
                    "claim_jobs_cpu_us_per_row": round(cpu["claim_jobs"], 1),
                    "by_hand_cpu_us_per_row": round(cpu["by_hand"], 1),
                    "claim_jobs_rows_per_cpu_s": round(1e6 / cpu["claim_jobs"]),
                    "by_hand_rows_per_cpu_s": round(1e6 / cpu["by_hand"]),
                    # the ceiling: the same UPDATE ... RETURNING with nothing done to its rows
                    "bare_update_rows_per_s": round(rate["bare"]), "bare_update_cpu_us_per_row": round(cpu["bare"], 1),
                    "bare_update_rows_per_cpu_s": round(1e6 / cpu["bare"])}
            if batch == 100:
                case["rows_per_s_target"] = TARGET_ROWS_PER_S
                case["rows_per_s_met"] = rate["claim_jobs"] >= TARGET_ROWS_PER_S
                case["rows_per_cpu_s_met"] = 1e6 / cpu["claim_jobs"] >= TARGET_ROWS_PER_S
            results[f"synchronous={synchronous}, batch {batch}"] = case
    print(json.dumps({"processes": PROCESSES, "repeat": repeat, "python": platform.python_version(),
                      "sqlite": sqlite3.sqlite_version, "load_average": [round(x, 1) for x in os.getloadavg()],
                      "cpus": os.cpu_count(), "cases": results}, indent=2))


if __name__ == "__main__":
    main()
