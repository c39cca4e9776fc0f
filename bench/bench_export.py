"""Peak memory of export_parquet against the frame of all jobs, each measured in its own process.

Three child processes on the same demo history (made once, then reused):

- ``imports``: Python with pandas, pyarrow and jobman_nb imported: the floor;
- ``export``: ``export_parquet(db, out)`` with the default chunk size;
- ``frame``: ``dao.query_jobs_df()`` of all jobs, plus the frame's own size
  (``memory_usage(deep=True)``).

Peak resident memory is each child's ``ru_maxrss``. Run from the repository root::

    python bench/bench_export.py                         # 1,000,000 jobs (~1 min to make, once)
    python bench/bench_export.py --jobs 100000 --db /tmp/demo100k.sqlite
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

MIB = 2**20


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _child(kind: str, db: str, chunksize: int) -> dict:
    import pandas  # noqa: F401  - the floor includes the libraries every child loads
    import pyarrow.parquet  # noqa: F401

    from jobman_nb import JobmanSqliteDAO
    from jobman_nb.export import export_parquet

    out: dict = {"kind": kind}
    t0 = time.perf_counter()
    if kind == "export":
        with tempfile.TemporaryDirectory() as tmp:
            summary = export_parquet(db, Path(tmp) / "jobs", chunksize=chunksize, progress=False)
            out.update(jobs=summary["jobs"], files=summary["files"], rewritten=summary["rewritten"],
                       parquet_bytes=sum(p.stat().st_size for p in (Path(tmp) / "jobs").rglob("*.parquet")))
    elif kind == "frame":
        with JobmanSqliteDAO(db_uri=db, read_only=True) as dao:
            df = dao.query_jobs_df()
        out.update(jobs=len(df), frame_bytes=int(df.memory_usage(deep=True).sum()), columns=df.shape[1])
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["peak_bytes"] = _peak_bytes()
    return out


def _run_child(kind: str, db: Path, chunksize: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--db", str(db), "--chunksize", str(chunksize)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@click.command()
@click.option("--jobs", "n_jobs", default=1_000_000, show_default=True, help="Jobs in the demo history.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Demo history to use (made if missing). Default: <tmp>/jobman-bench-<jobs>.sqlite")
@click.option("--chunksize", default=None, type=int, help="Export chunk (default: export_parquet's).")
@click.option("--child", type=click.Choice(["imports", "export", "frame"]), hidden=True)
def main(n_jobs: int, db: Path | None, chunksize: int | None, child: str | None) -> None:
    """Peak memory exporting N demo jobs vs building the frame of all of them."""
    from jobman_nb.export import DEFAULT_CHUNKSIZE

    chunksize = chunksize or DEFAULT_CHUNKSIZE
    if child:
        click.echo(json.dumps(_child(child, str(db), chunksize)))
        return
    db = db or Path(tempfile.gettempdir()) / f"jobman-bench-{n_jobs}.sqlite"
    if not db.exists():
        # In a process of its own: Linux keeps a process's peak RSS across fork+exec, so a parent
        # that grew while making the history would raise every child's ru_maxrss.
        click.echo(f"making {n_jobs:,} demo jobs in {db} (once) ...", err=True)
        subprocess.run([sys.executable, "-c", "import sys; from jobman_nb.demo import make_history; "
                        "make_history(sys.argv[1], n_jobs=int(sys.argv[2]), job_dirs=False)", str(db), str(n_jobs)],
                       check=True)
    results = {k: _run_child(k, db, chunksize) for k in ("imports", "export", "frame")}
    floor = results["imports"]["peak_bytes"]
    exp, frame = results["export"], results["frame"]
    import dask
    import duckdb
    import pandas
    import pyarrow

    report = {
        "jobs": frame["jobs"], "chunksize": chunksize,
        "peak_rss_mib": {k: round(v["peak_bytes"] / MIB) for k, v in results.items()},
        "frame_deep_mib": round(frame["frame_bytes"] / MIB),
        "export_peak_over_frame_peak": round(exp["peak_bytes"] / frame["peak_bytes"], 3),
        "export_above_floor_over_frame_size": round((exp["peak_bytes"] - floor) / frame["frame_bytes"], 3),
        "export_seconds": exp["seconds"], "frame_seconds": frame["seconds"],
        "files": exp["files"], "rewritten": exp["rewritten"], "parquet_mib": round(exp["parquet_bytes"] / MIB),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Linux {platform.release()}",
        "versions": f"Python {platform.python_version()}, pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, "
                    f"dask {dask.__version__}, duckdb {duckdb.__version__}, SQLite {sqlite3.sqlite_version}",
    }
    click.echo(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
