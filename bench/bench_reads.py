"""Reads against what a user would write by hand, as ratios measured in the same run.

- ``frame``: ``dao.query_jobs_df()`` over a bare ``fetchall()`` of ``SELECT *`` (target <= 2.0),
  in wall time and in CPU time (the process's, all threads), with its peak memory over the
  frame's own size in a fresh process (target <= 3.0).
- ``first chunk``: the time to the first chunk of ``dao.iter_jobs_df(chunksize=50_000)`` over
  the time to read that chunk alone, ``query_jobs_df({'limit': 50_000})`` (target <= 2.0).
- ``duckdb``: each analytics helper on ``export.read_duckdb(dataset)`` over the same question
  in hand-written DuckDB SQL on the same files (target <= 2.0), and on ``export.read_dask``
  (dask's groupby on the local scheduler) over the same SQL, for the record.

Sides alternate (which goes first alternates too), medians of ``--repeat`` runs. Run from the
repository root::

    python bench/bench_reads.py --jobs 200000
    python bench/bench_reads.py --db /tmp/demo1m.sqlite      # an existing demo history
    python bench/bench_reads.py --jobs 200000 --jobs 1000000 --workdir /tmp/jb --only frames --repeat 5

``--workdir`` keeps the demo histories (``demo-<N>.sqlite``, made once: 1M jobs take minutes)
for the next run. ``--dataset DIR`` runs only the DuckDB/Dask figures on an exported dataset::

    python bench/bench_reads.py --dataset /tmp/demo1m/ds --repeat 5
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from jobman_nb import JobmanSqliteDAO
from jobman_nb import analytics as an
from jobman_nb.demo import make_history
from jobman_nb.export import export_parquet, read_dask, read_duckdb


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _pair(ours: Callable[[], Any], base: Callable[[], Any], repeat: int) -> dict[str, float]:
    a, b = [], []
    for _ in range(repeat):
        a.append(_timed(ours))
        b.append(_timed(base))
    ours_s, base_s = statistics.median(a), statistics.median(b)
    return {"ours_s": round(ours_s, 3), "baseline_s": round(base_s, 3), "ratio": round(ours_s / base_s, 2)}


# -- frames: query_jobs_df and iter_jobs_df (the frames engineer's section) ----------------------
def _timed_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of one call (CPU: this process, every thread)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _sides(ours: Callable[[], Any], base: Callable[[], Any], repeat: int, target: float) -> dict[str, Any]:
    """Both sides *repeat* times, interleaved, the first side alternating; ratios of the medians."""
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "base": []}
    for i in range(repeat):
        for side in (("ours", "base") if i % 2 == 0 else ("base", "ours")):
            runs[side].append(_timed_cpu(ours if side == "ours" else base))
    med = {side: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for side, r in runs.items()}
    wall, cpu = med["ours"][0] / med["base"][0], med["ours"][1] / med["base"][1]
    return {"ratio": round(wall, 2), "cpu_ratio": round(cpu, 2), "target": f"<= {target}", "met": wall <= target,
            "ours_s": round(med["ours"][0], 3), "baseline_s": round(med["base"][0], 3),
            "ours_cpu_s": round(med["ours"][1], 3), "baseline_cpu_s": round(med["base"][1], 3),
            "wall_ratios_by_run": [round(a[0] / b[0], 2) for a, b in zip(runs["ours"], runs["base"], strict=True)]}


def _first_chunk(dao: JobmanSqliteDAO) -> None:
    chunks = dao.iter_jobs_df(chunksize=50_000, progress=False)
    next(chunks)
    chunks.close()


def _frame_memory(db_path: str) -> dict[str, Any]:
    # bench/run.py's measure: a fresh process, VmHWM reset after imports and a warm-up
    sys.path.insert(0, str(Path(__file__).parent))
    from run import bench_memory

    mem = bench_memory(Path(db_path), "ours")
    ratio = mem["peak"] / mem["frame"]
    return {"ratio": round(ratio, 2), "target": "<= 3.0", "met": ratio <= 3.0,
            "peak_mib": round(mem["peak"] / 2**20), "frame_mib": round(mem["frame"] / 2**20)}


def bench_frames(db_path: str, repeat: int) -> dict[str, Any]:
    """query_jobs_df over a bare fetchall, its peak memory, iter_jobs_df's first chunk over that chunk alone."""
    out: dict[str, Any] = {"load_average_before": [round(x, 1) for x in os.getloadavg()]}
    conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
    try:
        with JobmanSqliteDAO(db_uri=db_path, read_only=True) as dao:
            def fetchall() -> list[tuple]:
                return conn.execute("SELECT * FROM jobman_job").fetchall()

            fetchall()
            dao.query_jobs_df()  # both warm: the file in the page cache, modules loaded
            out["frame / fetchall"] = _sides(dao.query_jobs_df, fetchall, repeat, 2.0)
            out["first chunk / that chunk alone"] = _sides(lambda: _first_chunk(dao),
                                                           lambda: dao.query_jobs_df({"limit": 50_000}), repeat, 2.0)
    finally:
        conn.close()
    out["frame peak memory / frame"] = _frame_memory(db_path)
    out["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
    return out


HAND_SQL = {
    "status_counts": "SELECT status, count(*) FROM jobs GROUP BY status",
    "failure_rate(worker_key)": """SELECT worker_key, count(*) FILTER (WHERE status = 'FAILED') AS failed,
        count(*) FILTER (WHERE status = 'COMPLETED') AS completed FROM jobs
        WHERE status IN ('COMPLETED', 'FAILED') GROUP BY worker_key""",
    "duration_quantiles(job_spec.cfg.code)": """SELECT "job_spec.cfg.code", count(*),
        avg(epoch_ns(modified) - epoch_ns(created)), min(epoch_ns(modified) - epoch_ns(created)),
        quantile_cont(epoch_ns(modified) - epoch_ns(created), 0.5),
        quantile_cont(epoch_ns(modified) - epoch_ns(created), 0.9),
        quantile_cont(epoch_ns(modified) - epoch_ns(created), 0.99), max(epoch_ns(modified) - epoch_ns(created))
        FROM jobs WHERE status IN ('COMPLETED', 'FAILED') GROUP BY 1""",
    "throughput('h')": """SELECT date_trunc('hour', modified AT TIME ZONE 'UTC'), status, count(*) FROM jobs
        WHERE status IN ('COMPLETED', 'FAILED') GROUP BY 1, 2""",
}
OURS = {
    "status_counts": lambda df: an.status_counts(df),
    "failure_rate(worker_key)": lambda df: an.failure_rate(df, "worker_key"),
    "duration_quantiles(job_spec.cfg.code)": lambda df: an.duration_quantiles(df, "job_spec.cfg.code"),
    "throughput('h')": lambda df: an.throughput(df, "h"),
}


def bench_duckdb(db_path: str, work: Path, repeat: int) -> dict[str, Any]:
    """Each analytics helper on DuckDB and on Dask over hand-written DuckDB SQL, on the exported dataset."""
    export_parquet(db_path, work / "ds", progress=False)
    return bench_dataset(work / "ds", repeat)


def bench_dataset(ds: Path, repeat: int) -> dict[str, Any]:
    """The DuckDB and Dask figures on an exported dataset *ds*."""
    import duckdb

    out: dict[str, Any] = {}
    con = duckdb.connect()
    rel = read_duckdb(ds, connection=con)
    ddf = read_dask(ds)
    files = str(ds / "**" / "*.parquet")
    con.execute(f"CREATE VIEW jobs AS SELECT * FROM read_parquet('{files}', hive_partitioning = true)")
    for name, sql in HAND_SQL.items():
        out[f"duckdb {name} / SQL"] = _pair(lambda f=OURS[name]: f(rel), lambda s=sql: con.execute(s).fetchall(),
                                            repeat)
        out[f"dask {name} / SQL"] = _pair(lambda f=OURS[name]: f(ddf), lambda s=sql: con.execute(s).fetchall(),
                                          repeat)
    con.close()
    return out


@click.command()
@click.option("--jobs", "n_jobs", multiple=True, type=int, default=[200_000], show_default=True,
              help="demo jobs (repeatable; ignored with --db)")
@click.option("--db", "db_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="an existing jobman file to read (repeatable)")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="make the demo histories here once (demo-<N>.sqlite) and reuse them")
@click.option("--only", type=click.Choice(["frames", "duckdb"]), default=None, help="run one section")
@click.option("--dataset", "datasets", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="an exported Parquet dataset: only the DuckDB/Dask figures, on it (repeatable)")
@click.option("--repeat", default=3, show_default=True)
def main(n_jobs: tuple[int, ...], db_paths: tuple[str, ...], workdir: str | None, only: str | None,
         datasets: tuple[str, ...], repeat: int) -> None:
    """Print the read ratios as JSON."""
    import duckdb
    import pandas
    import pyarrow

    out: dict[str, Any] = {"machine": f"{platform.platform()}, {os.cpu_count()} cpus",
                           "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                           "pandas": pandas.__version__, "pyarrow": pyarrow.__version__,
                           "duckdb": duckdb.__version__, "repeat": repeat}
    if datasets:
        for ds in datasets:
            figures = bench_dataset(Path(ds), repeat)
            con = duckdb.connect()
            jobs = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
                               [str(Path(ds) / "**" / "*.parquet")]).fetchall()[0][0]
            con.close()
            out[f"{jobs} jobs"] = {"dataset": ds, **figures}
        print(json.dumps(out, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not db_paths:
            keep = Path(workdir) if workdir else work
            keep.mkdir(parents=True, exist_ok=True)
            db_paths = tuple(str(keep / f"demo-{n}.sqlite") for n in n_jobs)
            for n, path in zip(n_jobs, db_paths, strict=True):
                if not Path(path).exists():
                    make_history(path, n_jobs=n, seed=0, job_dirs=False)
        for i, db_path in enumerate(db_paths):
            conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
            jobs = conn.execute("SELECT count(*) FROM jobman_job").fetchone()[0]
            conn.close()
            figures: dict[str, Any] = {"db": db_path}
            if only in (None, "frames"):
                figures.update(bench_frames(db_path, repeat))
            if only in (None, "duckdb"):
                (work / str(i)).mkdir()
                figures.update(bench_duckdb(db_path, work / str(i), repeat))
            out[f"{jobs} jobs"] = figures
            print(json.dumps({f"{jobs} jobs": figures}), file=sys.stderr)  # as each size finishes
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
