"""What a commit waits for on this machine: a disk flush, and SQLite's busy handler.

Prints, as JSON:

- ``fdatasync_ms``: 50 × (write 4 KiB, ``fdatasync``) on a file in ``--dir``: what each commit
  waits for under ``synchronous=FULL`` (and each checkpoint under ``NORMAL``);
- ``busy_wait_ms``: a process holds the write lock of a WAL file for a given time while
  another waits for it in ``BEGIN IMMEDIATE`` with ``sqlite3.connect(timeout=30)`` (SQLite's
  busy handler); the wait beyond the hold is the handler's back-off step (1, 2, 5, 10, 15, 20,
  25, 25, 25, 50, 50, 100 ms when SQLite is built with ``usleep``, whole seconds without).

Medians of 5 per hold time. Run from the repository root::

    python bench/bench_locks.py
    python bench/bench_locks.py --dir /path/on/the/disk/of/your/database
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import click

HOLDS_MS = (1, 3, 10, 30, 100, 200)


def _flush_ms(directory: Path) -> dict[str, float]:
    path = directory / "flush.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for i in range(50):
            os.pwrite(fd, os.urandom(4096), i * 4096)
            t0 = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {"median": round(times[25], 2), "p90": round(times[45], 2), "max": round(times[-1], 2)}


def _holder(path: str, hold_s: float, locked, go) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    go.wait()
    conn.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(hold_s)
    conn.execute("COMMIT")
    conn.close()


def _busy_ms(directory: Path) -> dict[str, dict[str, float]]:
    path = str(directory / "busy.sqlite")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    ctx = mp.get_context("spawn")
    out = {}
    for hold in HOLDS_MS:
        waits = []
        for _ in range(5):
            locked, go = ctx.Event(), ctx.Event()
            proc = ctx.Process(target=_holder, args=(path, hold / 1e3, locked, go))
            proc.start()
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            go.set()
            locked.wait()
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            waits.append((time.perf_counter() - t0) * 1e3)
            conn.execute("COMMIT")
            conn.close()
            proc.join()
        median = statistics.median(waits)
        out[f"held {hold} ms"] = {"waited": round(median, 1), "beyond the hold": round(median - hold, 1)}
    return out


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where to write the test files (default: a temporary directory)")
def main(directory: Path | None) -> None:
    """Print flush latency and busy-handler waits as JSON."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        work = Path(tmp)
        print(json.dumps({"sqlite": sqlite3.sqlite_version, "load_average": [round(x, 1) for x in os.getloadavg()],
                          "fdatasync_ms": _flush_ms(work), "busy_wait_ms": _busy_ms(work)}, indent=2))


if __name__ == "__main__":
    main()
