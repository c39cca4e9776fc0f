"""Cost of job history: writes with the history triggers on, as ratios to the same writes with them off.

Both sides run in the same process on the same records (jobman jobs of a demo
history), alternating on/off each repeat, and the median time of each side is
compared, so the ratio means the same on a fast or a slow, noisy machine. Run
from the repository root::

    python bench/bench_history.py             # 20,000 jobs, 7 repeats
    python bench/bench_history.py --jobs 100000
    python bench/bench_history.py --floor     # also: where update_jobs' cost with history goes

Each case gives the wall-clock ratio and the CPU-time ratio (``time.process_time``, the
process's user + system time): on a loaded machine the wall clock mostly measures the load.

``--floor`` runs one ``UPDATE jobman_job SET status = ?, modified = ?`` over every job (what
``update_jobs`` runs) with raw ``sqlite3`` on files with history, changed one way each, against
the same UPDATE on a file without history: the triggers as they are; without the event
table's ``job_key`` index; with the events written by one ``INSERT ... SELECT`` before the
UPDATE and no update trigger (the floor of any design that writes an event row and its index
entry per job); the same without the index; and that set-based write with the update trigger
dropped and re-created around it inside the transaction (a design that keeps the trigger for
every other writer).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
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


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of ``fn()``."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _ratios(times: dict[Any, list[tuple[float, float]]], base: Any, side: Any) -> dict[str, float]:
    wall = {k: statistics.median(t for t, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    return {"off_s": round(wall[base], 4), "on_s": round(wall[side], 4), "ratio": round(wall[side] / wall[base], 2),
            "cpu_ratio": round(cpu[side] / cpu[base], 2)}


def _case(work: Path, repeat: int, setup: Callable[[Path, bool], None],
          run: Callable[[Path], Any]) -> dict[str, float]:
    times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(repeat):
        for history in (False, True):
            path = work / f"h{int(history)}.sqlite"
            setup(path, history)
            times[history].append(_timed(lambda p=path: run(p)))
    return _ratios(times, False, True)


_FLOOR = {
    "history off": "off",
    "history on: the triggers as they are": "triggers",
    "no job_key index on the events": "no_index",
    "events by one INSERT ... SELECT, no update trigger": "set_based",
    "events by one INSERT ... SELECT, no update trigger, no job_key index": "set_based_no_index",
    "events by one INSERT ... SELECT, update trigger dropped and re-created in the transaction": "swap",
}


def _floor_run(path: Path, variant: str) -> Callable[[], None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA temp_store=MEMORY")
    trigger = "jobman_job_event_on_update"
    if variant in ("no_index", "set_based_no_index"):
        conn.execute("DROP INDEX idx_jobman_job_event_job_key")
    if variant in ("set_based", "set_based_no_index"):
        conn.execute(f"DROP TRIGGER {trigger}")
    events = ("INSERT INTO jobman_job_event (job_key, old_status, new_status, time) "
              "SELECT key, status, ?, ? FROM jobman_job WHERE status IS NOT ? ORDER BY rowid")

    def run() -> None:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        if variant == "swap":
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                               (trigger,)).fetchone()[0]
            conn.execute(f"DROP TRIGGER {trigger}")
        if variant in ("set_based", "set_based_no_index", "swap"):
            conn.execute(events, ("CLAIMED", now, "CLAIMED"))
        conn.execute("UPDATE jobman_job SET status = ?, modified = ? WHERE status IS NOT ?",
                     ("CLAIMED", now, "CLAIMED"))
        if variant == "swap":
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.close()
    return run


def _floor(work: Path, repeat: int, jobs: list[dict]) -> dict[str, dict[str, float]]:
    templates = {}
    for history in (False, True):
        templates[history] = work / f"floor-template-{int(history)}.sqlite"
        _fresh(templates[history], history, jobs)
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in _FLOOR.values()}
    for _ in range(repeat):
        for variant in times:
            path = work / "floor.sqlite"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            shutil.copy(templates[variant != "off"], path)
            times[variant].append(_timed(_floor_run(path, variant)))
    return {name: _ratios(times, "off", variant) for name, variant in _FLOOR.items() if variant != "off"}


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
@click.option("--floor/--no-floor", default=False, show_default=True,
              help="also measure where update_jobs' cost with history goes (see the module docstring)")
def main(n_jobs: int, repeat: int, floor: bool) -> None:
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
        result = {"jobs": n_jobs, "repeat": repeat, "python": platform.python_version(),
                  "sqlite": sqlite3.sqlite_version, "load_average": [round(x, 1) for x in os.getloadavg()],
                  "cases": cases}
        if floor:
            result["update_jobs_floor"] = _floor(work, repeat, jobs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
