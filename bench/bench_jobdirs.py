"""Job directories read per second by ``read_job_dirs``: one thread (the baseline) vs the thread pool.

Makes N job dirs shaped like jobman's (a checkpoint, ``JOBMAN-JOB_SPEC.json``,
``entrypoint.sh``, ``stdout`` of a few KB, ``stderr``; a third failed with a
Slurm oom-kill line, every 500th with a 2 MB stdout), then reads them all with
``max_workers=1`` and with the pool, sides interleaved, ``--repeat`` times
each after one warm-up pass (so both read from the page cache: this measures
the reader, not the disk). Prints the medians, their ratio, dirs/s, and the
peak memory of one pooled read (``tracemalloc`` peak, in a separate pass, and
the process's peak RSS). Run from the repository root::

    python bench/bench_jobdirs.py                     # 100,000 dirs under a temp dir
    python bench/bench_jobdirs.py --dirs 20000 --root /dev/shm/jd --keep
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
from pathlib import Path

import click

from jobman_nb import read_job_dirs

STDOUT = "".join(f"  SCF ITER {k}  E= -231.41{k % 10}  dE= 1.0e-0{k % 9}\n" for k in range(60)) + \
    " ****ORCA TERMINATED NORMALLY****\n"
OOM = ("slurmstepd: error: Detected 1 oom-kill event(s) in StepId={i}.batch. Some of your processes may have been "
       "killed by the cgroup out-of-memory handler.\n")


def make_dirs(root: Path, n: int) -> list[dict]:
    jobs = []
    big = STDOUT * (2_000_000 // len(STDOUT))
    for i in range(n):
        d = root / f"{i // 1000:03d}" / f"job_{i:06d}"
        d.mkdir(parents=True)
        failed = i % 3 == 0
        (d / ("JOBMAN-FAILED" if failed else "JOBMAN-COMPLETED")).touch()
        (d / "JOBMAN-JOB_SPEC.json").write_text('{"cfg": {"code": "orca"}, "resources": {"mem_gb": 4}}')
        (d / "entrypoint.sh").write_text("#!/bin/bash\norca input.inp\n")
        (d / "stdout").write_text(big if i % 500 == 0 else STDOUT)
        (d / "stderr").write_text(OOM.format(i=i) if failed else "")
        jobs.append({"key": f"k{i}", "status": "FAILED" if failed else "COMPLETED",
                     "job_spec": {"dir": f"/scratch/bench/{d.relative_to(root)}"}})
    return jobs


def _seconds(fn) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@click.command()
@click.option("--dirs", "n", default=100_000, show_default=True, help="How many job dirs.")
@click.option("--repeat", default=3, show_default=True, help="Timed runs per side (medians).")
@click.option("--workers", default=16, show_default=True, help="Threads of the pooled side.")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Where to make the dirs (default: a temp dir).")
@click.option("--keep", is_flag=True, help="Keep the temp dir (a --root is always kept, and reused on the next run).")
def main(n: int, repeat: int, workers: int, root: Path | None, keep: bool) -> None:
    made_tmp = root is None
    root = Path(tempfile.mkdtemp(prefix="bench_jobdirs_")) if root is None else root
    try:
        marker = root / f".made-{n}"
        if marker.exists():
            jobs = [{"key": f"k{i}", "status": "FAILED" if i % 3 == 0 else "COMPLETED",
                     "job_spec": {"dir": f"/scratch/bench/{i // 1000:03d}/job_{i:06d}"}} for i in range(n)]
        else:
            t0 = time.perf_counter()
            jobs = make_dirs(root, n)
            marker.touch()
            print(f"made {n:,} dirs under {root} in {time.perf_counter() - t0:.0f} s")
        pm = {"/scratch/bench": str(root)}

        def one() -> None:
            read_job_dirs(jobs, path_map=pm, max_workers=1)

        def pool() -> None:
            read_job_dirs(jobs, path_map=pm, max_workers=workers)

        check = read_job_dirs(jobs, path_map=pm, max_workers=workers)  # warm-up (page cache, imports)
        assert check["exists"].all() and check["cause"].notna().sum() == len(range(0, n, 3)), "bad read"
        times: dict[str, list[float]] = {"one thread": [], f"pool ({workers})": []}
        for _ in range(repeat):  # interleaved: both sides see the same machine load
            times["one thread"].append(_seconds(one))
            times[f"pool ({workers})"].append(_seconds(pool))
        base = statistics.median(times["one thread"])
        print(f"\n{n:,} job dirs, {os.cpu_count()} cores, median of {repeat}")
        for side, ts in times.items():
            med = statistics.median(ts)
            print(f"  {side:<12} {n / med:>10,.0f} dirs/s   ({med:.2f} s; {med / base:.2f}x the one-thread time)")
        del check
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
        if made_tmp and not keep:  # a --root given is the caller's: never deleted
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
