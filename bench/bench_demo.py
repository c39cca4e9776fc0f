"""make_history: write rate against a bare executemany of the same rows, peak memory, and job dirs per second.

    python bench/bench_demo.py                          # 200,000 jobs, median of 3
    python bench/bench_demo.py --jobs 1000000 --dirs-jobs 0
    python bench/bench_demo.py --jobs 0 --dirs-jobs 10000   # only the job dirs
    python bench/bench_demo.py --jobs 1000000 --end-to-end /tmp/e2e   # demo -> export -> DuckDB analytics

**Rows.** Each side runs in a fresh process (its peak resident memory is that
process's own, from ``wait4``). The two processes are started together and
run **time-sliced**: one runs for ``--slice`` seconds while the other is
stopped (SIGSTOP / SIGCONT), in turns, until both end; so both meet the
machine's load at the same moments, at any size (10M jobs included). The
median of ``--repeat`` such runs, who starts alternating:

- **demo**: ``jobman-nb demo PATH --jobs N --no-job-dirs`` (the command a user
  runs): every table's rows over the seconds it ran.
- **bare executemany**: the same rows, prepared by the demo's own generator
  *outside the timed region*, written by plain ``sqlite3``: the same CREATE
  TABLE statements (no secondary indexes), one transaction, one
  ``executemany`` per table and chunk, commit. Only the ``executemany`` calls
  and the commit are timed (the parts of them that fall in its turns), so
  this is the floor of writing these rows.

The ratio is demo rows/s ÷ bare rows/s (target ≥ 0.5); the demo's time also
holds building the rows and creating the indexes after them. Files are
deleted after each run.

**Job dirs** (``--dirs-jobs``, 10,000 jobs), in this process, sides
interleaved, median of ``--repeat``: the demo's dir writer (it makes every
file's contents from the history, then writes them through its thread pool)
against a bare loop writing the same files (read from a first demo tree, not
timed) with ``open()``/``write``/``os.utime``, one file after the other.
"""

from __future__ import annotations

import argparse
import os
import signal
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
rows, spans = 0, []
conn.execute("BEGIN")
for h in _Plan(n, 0, 7.0).chunks():
    chunk = _chunk_rows(h, orms, False)
    t0 = time.monotonic()
    for orm, batch in chunk:
        conn.executemany(sql[orm.table], batch)
    spans.append((t0, time.monotonic()))
    rows += sum(len(b) for _, b in chunk)
t0 = time.monotonic()
conn.execute("COMMIT")
spans.append((t0, time.monotonic()))
conn.close()
print(rows)
for a, b in spans:
    print(a, b)
"""


_ANALYTICS = r"""
import sys, time
import duckdb
from jobman_nb import analytics as an
from jobman_nb.export import read_duckdb
con = duckdb.connect()
t0 = time.perf_counter()
rel = read_duckdb(sys.argv[1], connection=con)
print(f"read_duckdb {time.perf_counter() - t0:.2f} s")
for name, f in [("status_counts", lambda: an.status_counts(rel)),
                ("failure_rate(worker_key)", lambda: an.failure_rate(rel, "worker_key")),
                ("duration_quantiles(job_spec.cfg.code)", lambda: an.duration_quantiles(rel, "job_spec.cfg.code")),
                ("throughput('h')", lambda: an.throughput(rel, "h"))]:
    t0 = time.perf_counter()
    f()
    print(f"{name} {time.perf_counter() - t0:.2f} s", flush=True)
"""


def _run(cmd: list[str]) -> tuple[str, float, int]:
    """Run *cmd*; return its stdout, wall seconds and peak resident memory (bytes, Linux ru_maxrss in KiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd[:4]} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return out, wall, usage.ru_maxrss * 1024


def _end_to_end(n: int, workdir: Path) -> None:
    """demo (no dirs) -> export to a Parquet dataset -> DuckDB analytics, each step in a fresh process."""
    cli = [sys.executable, "-c", "from jobman_nb.cli import main; main()"]
    db, ds = workdir / f"demo-{n}.sqlite", workdir / f"ds-{n}"
    steps = {"jobman-nb demo --no-job-dirs": [*cli, "demo", str(db), "--jobs", str(n), "--force", "--no-job-dirs"],
             "jobman-nb export (dataset)": [*cli, "export", str(db), str(ds), "--force"],
             "read_duckdb + 4 analytics": [sys.executable, "-c", _ANALYTICS, str(ds)]}
    print(f"{n:,} jobs end to end under {workdir} (load average {os.getloadavg()[0]:.1f}):")
    for name, cmd in steps.items():
        out, wall, peak = _run(cmd)
        print(f"  {name}: {wall:,.1f} s, peak {peak / 2**20:,.0f} MiB", flush=True)
        if name.startswith("read_duckdb"):
            print("    " + out.strip().replace("\n", "\n    "))
    size = sum(p.stat().st_size for p in ds.rglob("*.parquet"))
    print(f"  file {db.stat().st_size / 2**30:.2f} GiB, dataset {size / 2**20:,.0f} MiB "
          f"(load average {os.getloadavg()[0]:.1f})")


def _stopped(cmd: list[str]) -> subprocess.Popen:
    """Start *cmd* stopped (SIGSTOP before it runs a line), its stdout to a pipe."""
    # A shell that stops itself, then becomes the command (exec): nothing runs before the first turn.
    proc = subprocess.Popen(["/bin/sh", "-c", 'kill -STOP $$ && exec "$@"', "sh", *cmd], stdout=subprocess.PIPE,
                            text=True)
    os.waitid(os.P_PID, proc.pid, os.WSTOPPED)
    return proc


def _exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _time_sliced(cmds: dict[str, list[str]], slice_s: float) -> dict[str, tuple[str, list[tuple[float, float]], int]]:
    """Run the commands in turns of *slice_s* seconds, one at a time (the others stopped), until each ends.

    Both sides then see the machine's load at the same moments, however long
    they run. Returns, per name, its stdout, the (monotonic) spans it ran in
    and its peak resident memory (bytes).
    """
    procs = {name: _stopped(cmd) for name, cmd in cmds.items()}
    ran: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    outs: dict[str, list[str]] = {name: [] for name in cmds}
    live = list(procs)
    try:
        while live:
            for name in list(live):
                proc = procs[name]
                t0 = time.monotonic()
                os.kill(proc.pid, signal.SIGCONT)
                while time.monotonic() - t0 < slice_s and not _exited(proc.pid):
                    time.sleep(0.02)
                if _exited(proc.pid):
                    ran[name].append((t0, time.monotonic()))
                    live.remove(name)
                    continue
                os.kill(proc.pid, signal.SIGSTOP)
                os.waitid(os.P_PID, proc.pid, os.WSTOPPED)
                ran[name].append((t0, time.monotonic()))
    finally:
        for proc in procs.values():
            if not _exited(proc.pid):
                proc.kill()
                os.kill(proc.pid, signal.SIGCONT)
    result = {}
    for name, proc in procs.items():
        outs[name] = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"{name} ({cmds[name][:3]}) failed with exit code {proc.returncode}")
        result[name] = (outs[name], ran[name], usage.ru_maxrss * 1024)
    return result


def _overlap(spans: list[tuple[float, float]], ran: list[tuple[float, float]]) -> float:
    """Seconds of *spans* that fall inside the slices the process *ran* (both sorted)."""
    total, j = 0.0, 0
    for a, b in spans:
        while j < len(ran) and ran[j][1] <= a:
            j += 1
        k = j
        while k < len(ran) and ran[k][0] < b:
            total += max(0.0, min(b, ran[k][1]) - max(a, ran[k][0]))
            k += 1
    return total


def _rows_in(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
    finally:
        conn.close()


def _remove(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200_000, help="Jobs of the rows figure (0: skip it).")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slice", type=float, default=1.0, help="Seconds each side runs in its turn.")
    parser.add_argument("--workdir", default=None, help="Where the files go (default: a temp dir).")
    parser.add_argument("--dirs-jobs", type=int, default=10_000, help="Jobs of the dirs figure (0: skip it).")
    parser.add_argument("--end-to-end", metavar="DIR", default=None,
                        help="Instead: demo -> export -> DuckDB analytics of --jobs jobs, files kept in DIR.")
    args = parser.parse_args()
    if args.end_to_end:
        _end_to_end(args.jobs, Path(args.end_to_end))
        return
    if args.jobs:
        _rows_figure(args)
    if args.dirs_jobs:
        _dirs_figure(args.dirs_jobs, args.repeat, args.workdir)


def _rows_figure(args: argparse.Namespace) -> None:
    ratios, demo_rates, bare_rates, demo_peaks, bare_peaks = [], [], [], [], []
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="bench_demo_") as tmp:
        demo_path, bare_path = Path(tmp) / "demo.sqlite", Path(tmp) / "bare.sqlite"
        for i in range(args.repeat):
            cmds = {"demo": [sys.executable, "-c", "from jobman_nb.cli import main; main()", "demo", str(demo_path),
                             "--jobs", str(args.jobs), "--force", "--no-job-dirs"],
                    "bare": [sys.executable, "-c", _BARE, str(bare_path), str(args.jobs)]}
            if i % 2:
                cmds = dict(reversed(cmds.items()))  # who starts alternates
            got = _time_sliced(cmds, args.slice)
            _, ran, peak = got["demo"]
            demo_rows, demo_secs = _rows_in(demo_path), sum(b - a for a, b in ran)
            size = demo_path.stat().st_size
            bare_out, bare_ran, bare_peak = got["bare"]
            first, *spans = bare_out.split("\n")
            bare_rows = int(first)
            bare_secs = _overlap([tuple(map(float, line.split())) for line in spans if line.strip()], bare_ran)
            _remove(demo_path)
            _remove(bare_path)
            demo_rates.append(demo_rows / demo_secs)
            bare_rates.append(bare_rows / bare_secs)
            ratios.append(demo_rates[-1] / bare_rates[-1])
            demo_peaks.append(peak)
            bare_peaks.append(bare_peak)
            print(f"  run {i + 1}: demo {demo_rows:,} rows in {demo_secs:,.1f} s ({demo_rates[-1]:,.0f} rows/s, "
                  f"peak {peak / 2**20:,.0f} MiB); bare {bare_rows:,} rows in {bare_secs:,.1f} s "
                  f"({bare_rates[-1]:,.0f} rows/s); ratio {ratios[-1]:.2f}x", flush=True)
    print(f"\n{args.jobs:,} jobs, median of {args.repeat} time-sliced runs (slices of {args.slice:g} s; "
          f"file {size / 2**30:.2f} GiB)")
    print(f"write rate  demo / bare executemany: {statistics.median(ratios):.2f}x "
          f"({statistics.median(demo_rates):,.0f} vs {statistics.median(bare_rates):,.0f} rows/s)  target >= 0.5x")
    print(f"peak memory demo: {max(demo_peaks) / 2**20:,.0f} MiB (bare executemany process: "
          f"{max(bare_peaks) / 2**20:,.0f} MiB)  target <= 1024 MiB")


def _read_tree(root: Path) -> list[tuple[Path, list[tuple[str, bytes, float, int]], float]]:
    """Every job dir under *root* (a dir holding files), with its files' bytes, mtimes and modes."""
    out = []
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        files = [(f.name, f.read_bytes(), f.stat().st_mtime, f.stat().st_mode & 0o777)
                 for f in sorted(d.iterdir()) if f.is_file()]
        if files:
            out.append((d.relative_to(root), files, d.stat().st_mtime))
    return out


def _bare_dirs(root: Path, tree: list[tuple[Path, list[tuple[str, bytes, float, int]], float]]) -> int:
    """The bare loop: make each dir, write its files with open(), stamp their mtimes, then the dir's."""
    for rel, files, mtime in tree:
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        for name, data, t, mode in files:
            path = d / name
            with open(path, "wb") as fh:
                fh.write(data)
            if mode != 0o644:
                os.chmod(path, mode)
            os.utime(path, (t, t))
        os.utime(d, (mtime, mtime))
    return len(tree)


def _demo_dirs(root: Path, chunks: list) -> int:
    """The demo's own dir writer over the chunks' jobs: the files' contents made, then written by its pool."""
    from jobman_nb.demo import _DirWriter

    writer = _DirWriter(root)
    try:
        for h in chunks:
            writer.chunk(h)
        writer.finish()
    finally:
        writer.close()
    return writer.dirs


def _dirs_figure(n: int, repeat: int, workdir: str | None) -> None:
    """Dirs per second of the demo's writer against a bare loop writing the same files, in this process."""
    import shutil

    from jobman_nb.demo import _Plan

    chunks = list(_Plan(n, 0, 7.0).chunks())  # the records' side, not timed
    rates: dict[str, list[float]] = {"demo": [], "bare": []}
    with tempfile.TemporaryDirectory(dir=workdir, prefix="bench_demo_dirs_") as tmp:
        first = Path(tmp, "first")
        _demo_dirs(first, chunks)
        tree = _read_tree(first)  # the same files, for the bare loop (not timed)
        shutil.rmtree(first)
        for i in range(repeat):
            for side in (("demo", "bare") if i % 2 == 0 else ("bare", "demo")):  # interleaved
                root = Path(tmp, f"{side}{i}")
                t0 = time.perf_counter()
                count = _demo_dirs(root, chunks) if side == "demo" else _bare_dirs(root, tree)
                secs = time.perf_counter() - t0
                rates[side].append(count / secs)
                print(f"  dirs run {i + 1} {side}: {count:,} dirs in {secs:.1f} s, {count / secs:,.0f} dirs/s",
                      flush=True)
                shutil.rmtree(root)
    demo_rate, bare_rate = statistics.median(rates["demo"]), statistics.median(rates["bare"])
    files = sum(len(f) for _, f, _ in tree)
    print(f"\njob dirs, {n:,} jobs: {len(tree):,} dirs, {files:,} files "
          f"({sum(len(b) for _, f, _ in tree for _, b, _, _ in f) / 2**20:,.0f} MiB), median of {repeat}")
    print(f"dirs/s  demo writer / bare loop of the same files: {demo_rate / bare_rate:.2f}x "
          f"({demo_rate:,.0f} vs {bare_rate:,.0f} dirs/s; the demo also makes the contents)")


if __name__ == "__main__":
    main()
