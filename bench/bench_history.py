"""Cost of job history: writes with the history triggers on, as ratios to the same writes with them off.

Both sides run in the same process on the same records (jobman jobs of a demo
history), alternating on/off each repeat, and the median time of each side is
compared, so the ratio means the same on a fast or a slow, noisy machine. Run
from the repository root::

    python bench/bench_history.py             # 20,000 jobs, 7 repeats
    python bench/bench_history.py --jobs 100000
"""

from __future__ import annotations

import gc
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from jobman_nb import JobmanSqliteDAO
from jobman_nb.demo import make_history

JSON_COLUMNS = ("job_spec", "worker_meta", "errors", "source_meta")


def _fresh(path: Path, history: bool, jobs: list[dict] | None = None) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    dao = JobmanSqliteDAO(db_uri=str(path), history=history)
    if jobs:
        dao.save_jobs(jobs, auto_update=False)
    dao.close()


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _case(work: Path, repeat: int, setup: Callable[[Path, bool], None],
          run: Callable[[Path], Any]) -> dict[str, float]:
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeat):
        for history in (False, True):
            path = work / f"h{int(history)}.sqlite"
            setup(path, history)
            times[history].append(_timed(lambda p=path: run(p)))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    return {"off_s": round(off, 4), "on_s": round(on, 4), "ratio": round(on / off, 2)}


def _dao(path: Path, temp_store_memory: bool) -> JobmanSqliteDAO:
    dao = JobmanSqliteDAO(db_uri=str(path))
    if temp_store_memory:
        # Keeps SQLite's statement journal in memory: save_jobs' upsert compiles the update
        # trigger's clock, so each row of its executemany opens one (see jobman_nb.dao.history).
        dao.connection.execute("PRAGMA temp_store=MEMORY")
    return dao


def _save(records: list[dict], temp_store_memory: bool = False) -> Callable[[Path], Any]:
    def run(path: Path) -> None:
        with _dao(path, temp_store_memory) as dao:
            dao.save_jobs(records)
    return run


def _update(path: Path) -> None:
    with _dao(path, False) as dao:
        dao.update_jobs({"status": "CLAIMED"}, {"filters": [{"field": "status", "op": "!=", "arg": "CLAIMED"}]})


def _jobman_replace(records: list[dict]) -> Callable[[Path], Any]:
    """jobman 0.0.1's write: INSERT OR REPLACE of whole rows, JSON as json.dumps text."""
    cols = list(records[0])
    sql = f"INSERT OR REPLACE INTO jobman_job ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    rows = [[json.dumps(r[c]) if c in JSON_COLUMNS else r[c] for c in cols] for r in records]

    def run(path: Path) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        conn.close()
    return run


@click.command()
@click.option("--jobs", "n_jobs", default=20_000, show_default=True, help="jobman jobs per write")
@click.option("--repeat", default=7, show_default=True, help="runs per side; the median is kept")
def main(n_jobs: int, repeat: int) -> None:
    """Print the history on/off ratios of save_jobs, update_jobs and jobman-style saves as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        demo = make_history(work / "demo.sqlite", n_jobs, seed=0, job_dirs=False)
        with JobmanSqliteDAO(db_uri=demo["path"], read_only=True) as src:
            jobs = src.query_jobs()
        flipped = [{**j, "status": "COMPLETED" if j["status"] != "COMPLETED" else "FAILED"} for j in jobs]
        cases = {
            "save_jobs, new jobs (INSERT)":
                _case(work, repeat, lambda p, h: _fresh(p, h), _save(jobs)),
            "save_jobs over existing jobs, status changes (upsert)":
                _case(work, repeat, lambda p, h: _fresh(p, h, jobs), _save(flipped)),
            "save_jobs, new jobs, writer with temp_store=MEMORY":
                _case(work, repeat, lambda p, h: _fresh(p, h), _save(jobs, True)),
            "save_jobs over existing jobs, writer with temp_store=MEMORY":
                _case(work, repeat, lambda p, h: _fresh(p, h, jobs), _save(flipped, True)),
            "update_jobs, status of every job (one UPDATE)":
                _case(work, repeat, lambda p, h: _fresh(p, h, jobs), _update),
            "jobman 0.0.1 save over existing jobs (INSERT OR REPLACE)":
                _case(work, repeat, lambda p, h: _fresh(p, h, jobs), _jobman_replace(flipped)),
        }
    print(json.dumps({"jobs": n_jobs, "repeat": repeat, "python": platform.python_version(),
                      "sqlite": sqlite3.sqlite_version, "cases": cases}, indent=2))


if __name__ == "__main__":
    main()
