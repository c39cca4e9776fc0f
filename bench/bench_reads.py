"""Reads against what a user would write by hand, as ratios measured in the same run.

- ``frame``: ``dao.query_jobs_df()`` over a bare ``fetchall()`` of ``SELECT *`` (target <= 2.0).
- ``first chunk``: the time to the first chunk of ``dao.iter_jobs_df(chunksize=50_000)`` over
  the time to read that chunk alone, ``query_jobs_df({'limit': 50_000})`` (target <= 2.0).
- ``duckdb``: each analytics helper on ``export.read_duckdb(dataset)`` over the same question
  in hand-written DuckDB SQL on the same files (target <= 2.0), and on ``export.read_dask``
  (dask's groupby on the local scheduler) over the same SQL, for the record.

Sides alternate, medians of ``--repeat`` runs. Run from the repository root::

    python bench/bench_reads.py --jobs 200000
    python bench/bench_reads.py --db /tmp/demo1m.sqlite      # an existing demo history
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


def _first_chunk(dao: JobmanSqliteDAO) -> None:
    chunks = dao.iter_jobs_df(chunksize=50_000, progress=False)
    next(chunks)
    chunks.close()


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


@click.command()
@click.option("--jobs", "n_jobs", default=200_000, show_default=True, help="demo jobs (ignored with --db)")
@click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="an existing jobman file to read")
@click.option("--repeat", default=3, show_default=True)
def main(n_jobs: int, db_path: str | None, repeat: int) -> None:
    """Print the read ratios as JSON."""
    import duckdb

    out: dict[str, Any] = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                           "duckdb": duckdb.__version__, "repeat": repeat}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if db_path is None:
            db_path = str(work / "demo.sqlite")
            make_history(db_path, n_jobs=n_jobs, seed=0, job_dirs=False)
        conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
        out["jobs"] = conn.execute("SELECT count(*) FROM jobman_job").fetchone()[0]
        with JobmanSqliteDAO(db_uri=db_path, read_only=True) as dao:
            out["frame / fetchall"] = _pair(dao.query_jobs_df,
                                            lambda: conn.execute("SELECT * FROM jobman_job").fetchall(), repeat)
            out["first chunk / that chunk alone"] = _pair(lambda: _first_chunk(dao),
                                                          lambda: dao.query_jobs_df({"limit": 50_000}), repeat)
        conn.close()
        export_parquet(db_path, work / "ds", progress=False)
        con = duckdb.connect()
        rel = read_duckdb(work / "ds", connection=con)
        ddf = read_dask(work / "ds")
        files = str(work / "ds" / "**" / "*.parquet")
        con.execute(f"CREATE VIEW jobs AS SELECT * FROM read_parquet('{files}', hive_partitioning = true)")
        for name, sql in HAND_SQL.items():
            out[f"duckdb {name} / SQL"] = _pair(lambda f=OURS[name]: f(rel), lambda s=sql: con.execute(s).fetchall(),
                                                repeat)
            out[f"dask {name} / SQL"] = _pair(lambda f=OURS[name]: f(ddf), lambda s=sql: con.execute(s).fetchall(),
                                              repeat)
        con.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
