"""make_history: write rate against a bare executemany of the same rows, and peak memory.

    python bench/bench_demo.py                          # 200,000 jobs, median of 3
    python bench/bench_demo.py --jobs 10000000 --repeat 1 --workdir /tmp   # the 10M figure (~9 GB file)

Each side runs in a fresh process (its peak resident memory is that process's
own, from ``wait4``), sides interleaved, median of ``--repeat`` runs:

- **demo**: ``jobman-nb demo PATH --jobs N --no-job-dirs`` (the command a user
  runs), rows per second of wall time, every table's rows counted.
- **bare executemany**: the same rows, prepared by the demo's own generator
  *outside the timed region*, written by plain ``sqlite3``: the same CREATE
  TABLE statements (no secondary indexes), one transaction, one
  ``executemany`` per table and chunk, commit. Only the ``executemany`` calls
  and the commit are timed, so this is the floor of writing these rows.

The ratio is demo rows/s ÷ bare rows/s (target ≥ 0.5); the demo's time also
holds building the rows and creating the indexes after them. Files are
deleted after each run.

Then the job directories: the default demo (``--dirs-jobs``, 10,000 jobs) with
and without its dirs, interleaved; dirs per second = dirs written ÷ the time
they add (the records are the same either way).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BARE = r"""
import sqlite3, sys, time
from jobman_nb.demo import _EVENTS, _Plan, _chunk_rows, _daos
path, n = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(path, isolation_level=None)
daos = _daos(path)
orms = {orm.table: orm for dao in daos for orm in dao.orms.values()}
for orm in orms.values():
    orm.create_table(connection=conn)
for dao in daos:
    dao.close()
sql = {t: orm._insert_sql(list(orm.fields), False) for t, orm in orms.items()}
rows = spent = 0.0
conn.execute("BEGIN")
for h in _Plan(n, 0, 7.0).chunks():
    chunk = _chunk_rows(h, orms, False)
    t0 = time.perf_counter()
    for orm, batch in chunk:
        conn.executemany(sql[orm.table], batch)
    spent += time.perf_counter() - t0
    rows += sum(len(b) for _, b in chunk)
t0 = time.perf_counter()
conn.execute("COMMIT")
spent += time.perf_counter() - t0
conn.close()
print(int(rows), spent)
"""


def _run(cmd: list[str]) -> tuple[str, float, int]:
    """Run *cmd*; return its stdout, wall seconds and peak resident memory (bytes, Linux ru_maxrss in KiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed with exit code {proc.returncode}")
    return out, wall, usage.ru_maxrss * 1024


def _demo(path: Path, n: int, dirs: bool = False) -> tuple[float, float, int]:
    """Rows, seconds and peak memory of ``jobman-nb demo``."""
    import sqlite3

    _, wall, peak = _run([sys.executable, "-c", "from jobman_nb.cli import main; main()", "demo", str(path),
                          "--jobs", str(n), "--force", *([] if dirs else ["--no-job-dirs"])])
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
    finally:
        conn.close()
    return rows, wall, peak


def _bare(path: Path, n: int) -> tuple[float, float, int]:
    out, _, peak = _run([sys.executable, "-c", _BARE, str(path), str(n)])
    rows, spent = out.split()
    return float(rows), float(spent), peak


def _remove(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="Where the files go (default: a temp dir).")
    parser.add_argument("--dirs-jobs", type=int, default=10_000, help="Jobs of the dirs figure (0: skip it).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="bench_demo_") as tmp:
        demo_path, bare_path = Path(tmp) / "demo.sqlite", Path(tmp) / "bare.sqlite"
        demo_rates, bare_rates, demo_peaks, bare_peaks = [], [], [], []
        for i in range(args.repeat):
            for side in (("demo", "bare") if i % 2 == 0 else ("bare", "demo")):  # interleaved
                if side == "demo":
                    rows, secs, peak = _demo(demo_path, args.jobs)
                    demo_rates.append(rows / secs)
                    demo_peaks.append(peak)
                    size = demo_path.stat().st_size
                    _remove(demo_path)
                else:
                    rows, secs, peak = _bare(bare_path, args.jobs)
                    bare_rates.append(rows / secs)
                    bare_peaks.append(peak)
                    _remove(bare_path)
                print(f"  run {i + 1} {side}: {rows:,.0f} rows, {rows / secs:,.0f} rows/s, "
                      f"peak {peak / 2**20:,.0f} MiB", flush=True)
    demo_rate, bare_rate = statistics.median(demo_rates), statistics.median(bare_rates)
    print(f"\n{args.jobs:,} jobs, median of {args.repeat} (file {size / 2**30:.2f} GiB)")
    print(f"write rate  demo / bare executemany: {demo_rate / bare_rate:.2f}x "
          f"({demo_rate:,.0f} vs {bare_rate:,.0f} rows/s)  target >= 0.5x")
    print(f"peak memory demo: {max(demo_peaks) / 2**20:,.0f} MiB (bare executemany process: "
          f"{max(bare_peaks) / 2**20:,.0f} MiB)  target <= 1024 MiB")
    if args.dirs_jobs:
        _dirs_figure(args.dirs_jobs, args.repeat, args.workdir)


def _dirs_figure(n: int, repeat: int, workdir: str | None) -> None:
    import shutil

    with_dirs, without = [], []
    with tempfile.TemporaryDirectory(dir=workdir, prefix="bench_demo_dirs_") as tmp:
        path = Path(tmp) / "demo.sqlite"
        for i in range(repeat):
            for dirs in ((True, False) if i % 2 == 0 else (False, True)):
                _, secs, _ = _demo(path, n, dirs)
                (with_dirs if dirs else without).append(secs)
                if dirs:
                    count = sum(1 for p in Path(tmp, "demo.jobs").rglob("*") if p.is_dir())
                    shutil.rmtree(Path(tmp, "demo.jobs"))
                _remove(path)
    added = statistics.median(with_dirs) - statistics.median(without)
    print(f"\njob dirs, {n:,} jobs (median of {repeat}): {count:,} dirs (and their parents) add {added:.1f} s "
          f"to {statistics.median(without):.1f} s: {count / added:,.0f} dirs/s")


if __name__ == "__main__":
    main()
