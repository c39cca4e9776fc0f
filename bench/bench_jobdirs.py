"""Job directories read per second by ``read_job_dirs``, against a bare loop reading the same files.

Makes N job dirs shaped like jobman's (a checkpoint, ``JOBMAN-JOB_SPEC.json``,
``entrypoint.sh``, ``stdout`` of a few KB, ``stderr``; a third failed with a
Slurm oom-kill line, every 500th with a 2 MB stdout), then times four sides,
interleaved, ``--repeat`` times each after one warm-up pass (so all read from
the page cache: this measures the reader, not the disk):

- ``bare``: a plain loop, one thread: ``os.scandir`` the dir, then open, fstat
  and ``pread`` the last ``tail_bytes`` of ``stdout`` and ``stderr`` and decode
  them: the system calls any reader must make, with the least Python around
  them (no path map, no checks, no causes, no frame). It is the floor;
- ``reader``: ``read_job_dirs(jobs, path_map=..., max_workers=1)``;
- ``bare pool`` / ``reader pool``: the same with ``--workers`` threads
  (chunks of 256 dirs per task).

Each side reports dirs/s (wall) and dirs per CPU-second (``time.process_time``,
all threads): on a shared machine the wall figure mostly measures the load,
the CPU figure what the code costs. Ratios are of medians, to ``bare`` of the
same run. Then the peak memory of one pooled read (``tracemalloc`` peak, in a
separate pass, and the process's peak RSS). Run from the repository root::

    python bench/bench_jobdirs.py                                   # 100,000 dirs in a temp dir
    python bench/bench_jobdirs.py --dirs 100000 --workdir /tmp/jd100k   # made once, reused next time
"""

from __future__ import annotations

import gc
import os
import resource
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from jobman_nb import read_job_dirs

STDOUT = "".join(f"  SCF ITER {k}  E= -231.41{k % 10}  dE= 1.0e-0{k % 9}\n" for k in range(60)) + \
    " ****ORCA TERMINATED NORMALLY****\n"
OOM = ("slurmstepd: error: Detected 1 oom-kill event(s) in StepId={i}.batch. Some of your processes may have been "
       "killed by the cgroup out-of-memory handler.\n")
SPEC = b'{"cfg": {"code": "orca"}, "resources": {"mem_gb": 4}}'
ENTRYPOINT = b"#!/bin/bash\norca input.inp\n"
LAYOUT = "1"  # bump when make_dirs writes something else: a reused --workdir is remade
TAIL = 16384
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_CLOEXEC


def _rel(i: int) -> str:
    return f"{i // 1000:03d}/job_{i:06d}"


def _write(name: str, data: bytes, dir_fd: int) -> None:
    fd = os.open(name, _WRITE, 0o644, dir_fd=dir_fd)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


def _make_group(root: Path, group: int, n: int) -> None:
    """Dirs ``group*1000 .. group*1000+999`` (below *n*), each file written relative to its dir's descriptor."""
    parent = root / f"{group:03d}"
    parent.mkdir(exist_ok=True)
    pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    stdout, big = STDOUT.encode(), (STDOUT * (2_000_000 // len(STDOUT))).encode()
    try:
        for i in range(group * 1000, min(n, group * 1000 + 1000)):
            name = f"job_{i:06d}"
            os.mkdir(name, dir_fd=pfd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=pfd)
            try:
                failed = i % 3 == 0
                _write("JOBMAN-FAILED" if failed else "JOBMAN-COMPLETED", b"", fd)
                _write("JOBMAN-JOB_SPEC.json", SPEC, fd)
                _write("entrypoint.sh", ENTRYPOINT, fd)
                _write("stdout", big if i % 500 == 0 else stdout, fd)
                _write("stderr", OOM.format(i=i).encode() if failed else b"", fd)
            finally:
                os.close(fd)
    finally:
        os.close(pfd)


def make_dirs(root: Path, n: int, threads: int = 8) -> None:
    """Write the *n* job dirs under *root*, a thousand per parent, *threads* parents at a time.

    Creating files is system calls (the GIL is released), so threads overlap them; each file is
    one open/write/close relative to its dir's descriptor (no path walks, no Python file objects).
    """
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda g: _make_group(root, g, n), range((n + 999) // 1000)))


def jobs_of(n: int) -> list[dict]:
    return [{"key": f"k{i}", "status": "FAILED" if i % 3 == 0 else "COMPLETED",
             "job_spec": {"dir": f"/scratch/bench/{_rel(i)}"}} for i in range(n)]


def bare_read(paths: list[str]) -> list[tuple]:
    """The floor: list each dir, read the tails of its two logs. No checks, no causes, no frame."""
    rows = []
    for path in paths:
        with os.scandir(path) as it:
            names = [e.name for e in it]
        tails = []
        for log in ("stdout", "stderr"):
            fd = os.open(f"{path}/{log}", _READ)
            try:
                size = os.fstat(fd).st_size
                tails.append(os.pread(fd, TAIL, max(0, size - TAIL)).decode("utf-8", "replace"))
            finally:
                os.close(fd)
        rows.append((names, tails))
    return rows


def bare_pool(paths: list[str], workers: int) -> list[tuple]:
    chunks = [paths[i:i + 256] for i in range(0, len(paths), 256)]
    with ThreadPoolExecutor(workers) as pool:
        return [row for part in pool.map(bare_read, chunks) for row in part]


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


@click.command()
@click.option("--dirs", "n", default=100_000, show_default=True, help="How many job dirs.")
@click.option("--repeat", default=3, show_default=True, help="Timed runs per side (medians).")
@click.option("--workers", default=16, show_default=True, help="Threads of the pooled sides.")
@click.option("--workdir", "--root", "workdir", type=click.Path(path_type=Path), default=None,
              help="Where the dirs live: made there once (with a marker) and reused by later runs; never deleted. "
                   "Default: a temp dir, deleted at the end.")
@click.option("--keep", is_flag=True, help="Keep the temp dir (print its path; pass it as --workdir next time).")
@click.option("--make-threads", default=8, show_default=True, help="Threads writing the dirs.")
def main(n: int, repeat: int, workers: int, workdir: Path | None, keep: bool, make_threads: int) -> None:
    made_tmp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="bench_jobdirs_")) if workdir is None else workdir
    try:
        marker = root / f".made-{n}-v{LAYOUT}"
        if not marker.exists():
            root.mkdir(parents=True, exist_ok=True)
            if any(p.name != marker.name for p in root.iterdir()):
                raise click.UsageError(f"{root} holds something other than a tree made for --dirs {n}: "
                                       "give an empty or new --workdir")
            t0 = time.perf_counter()
            make_dirs(root, n, make_threads)
            marker.touch()
            print(f"made {n:,} dirs under {root} in {time.perf_counter() - t0:.0f} s ({make_threads} threads)")
        else:
            print(f"reusing the {n:,} dirs under {root}")
        jobs = jobs_of(n)
        paths = [f"{root}/{_rel(i)}" for i in range(n)]
        pm = {"/scratch/bench": str(root)}
        sides: dict[str, Callable[[], object]] = {
            "bare": lambda: bare_read(paths),
            "reader": lambda: read_job_dirs(jobs, path_map=pm, max_workers=1),
            f"bare pool ({workers})": lambda: bare_pool(paths, workers),
            f"reader pool ({workers})": lambda: read_job_dirs(jobs, path_map=pm, max_workers=workers),
        }
        check = read_job_dirs(jobs, path_map=pm, max_workers=workers)  # warm-up (page cache, imports)
        assert check["exists"].all() and check["cause"].notna().sum() == len(range(0, n, 3)), "bad read"
        assert check["note"].isna().all(), "unexpected notes"
        del check
        bare_read(paths)
        load0 = os.getloadavg()
        wall: dict[str, list[float]] = {s: [] for s in sides}
        cpu: dict[str, list[float]] = {s: [] for s in sides}
        for _ in range(repeat):  # interleaved: every side sees the same machine load
            for side, fn in sides.items():
                w, c = _timed(fn)
                wall[side].append(w)
                cpu[side].append(c)
        load1 = os.getloadavg()
        print(f"\n{n:,} job dirs, {os.cpu_count()} cores, median of {repeat}, load average (1 min) "
              f"{load0[0]:.1f} before and {load1[0]:.1f} after")
        base_w, base_c = statistics.median(wall["bare"]), statistics.median(cpu["bare"])
        for side in sides:
            w, c = statistics.median(wall[side]), statistics.median(cpu[side])
            print(f"  {side:<18} {n / w:>9,.0f} dirs/s {n / c:>9,.0f} dirs/CPU-s   "
                  f"time {w / base_w:5.2f}x bare, CPU {c / base_c:5.2f}x bare   ({w:.2f} s wall, {c:.2f} s CPU)")
        gc.collect()
        tracemalloc.start()
        frame = read_job_dirs(jobs, path_map=pm, max_workers=workers)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        frame_mib = frame.memory_usage(deep=True).sum() / 2**20
        print(f"  peak Python allocations of one pooled read: {peak / 2**20:,.0f} MiB "
              f"(the frame itself: {frame_mib:,.0f} MiB; {peak / 2**20 / frame_mib:.2f}x); "
              f"process peak RSS {rss:,.0f} MiB")
    finally:
        if made_tmp and not keep:  # a --workdir given is the caller's: never deleted
            shutil.rmtree(root, ignore_errors=True)
        elif made_tmp:
            print(f"kept {root}")


if __name__ == "__main__":
    main()
