"""Benchmarks of jobman_nb against the plain sqlite3 / pandas code a user would write.

Every figure is a ratio to a baseline measured in the same run on the same data
(median of ``--repeat`` runs), so the numbers mean the same on a fast or a
slow, noisy machine. Run from the repository root::

    python bench/run.py              # 100,000 demo jobs
    python bench/run.py --large      # and 1,000,000 (several minutes)
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from jobman_nb import JobmanSqliteDAO
from jobman_nb.demo import make_history

JSON_COLUMNS = ("job_spec", "worker_meta", "errors", "source_meta")


def _median_seconds(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


# -- save_jobs --------------------------------------------------------------------------------
def bench_save(records: list[dict], work: Path, repeat: int) -> tuple[float, float]:
    ours_path, base_path = work / "save_ours.sqlite", work / "save_base.sqlite"

    def setup_ours() -> None:
        _fresh(ours_path)
        JobmanSqliteDAO(db_uri=str(ours_path)).close()  # table, indexes, WAL

    def ours() -> None:
        with JobmanSqliteDAO(db_uri=str(ours_path)) as dao:
            dao.save_jobs(records)

    def setup_base() -> None:
        # An identical table: the same CREATE statements, indexes and journal mode.
        setup_ours()
        _fresh(base_path)
        shutil.copy(ours_path, base_path)

    columns = list(JobmanSqliteDAO.JobSchema.get_field_infos())
    sql = f"INSERT INTO jobman_job ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    def base() -> None:
        conn = sqlite3.connect(base_path, isolation_level=None)
        dumps = json.dumps
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, [tuple(dumps(r.get(c)) if c in JSON_COLUMNS else r.get(c) for c in columns)
                               for r in records])
        conn.execute("COMMIT")
        conn.close()

    return _median_seconds(ours, repeat, setup_ours), _median_seconds(base, repeat, setup_base)


# -- query_jobs / query_jobs_df ---------------------------------------------------------------------
def bench_query(path: Path, repeat: int) -> tuple[float, float]:
    dao = JobmanSqliteDAO(db_uri=str(path), read_only=True)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)

    def base() -> list[dict]:
        cur = conn.execute("SELECT * FROM jobman_job")
        names = [d[0] for d in cur.description]
        loads = json.loads
        out = []
        for row in cur.fetchall():
            rec = dict(zip(names, row, strict=True))
            for c in JSON_COLUMNS:
                if rec[c] is not None:
                    rec[c] = loads(rec[c])
            out.append(rec)
        return out

    result = _median_seconds(dao.query_jobs, repeat), _median_seconds(base, repeat)
    dao.close()
    conn.close()
    return result


def pandas_by_hand(conn: sqlite3.Connection) -> pd.DataFrame:
    """What a user writes: read_sql_query, then json.loads + json_normalize per JSON column."""
    df = pd.read_sql_query("SELECT * FROM jobman_job", conn)
    for column in JSON_COLUMNS:
        parsed = [json.loads(v) if v is not None else None for v in df[column]]
        flat = pd.json_normalize([p if isinstance(p, dict) else {} for p in parsed])
        flat.columns = [f"{column}.{c}" for c in flat.columns]
        df = df.drop(columns=column).join(flat)
    return df


def bench_frame(path: Path, repeat: int) -> tuple[float, float]:
    dao = JobmanSqliteDAO(db_uri=str(path), read_only=True)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    result = (_median_seconds(dao.query_jobs_df, repeat),
              _median_seconds(lambda: pandas_by_hand(conn), repeat))
    dao.close()
    conn.close()
    return result


# -- indexes ------------------------------------------------------------------------------------
def bench_filters(path: Path, work: Path, repeat: int, status: str, code: str) -> dict[str, tuple[float, float]]:
    indexed, bare = work / "indexed.sqlite", work / "bare.sqlite"
    for p in (indexed, bare):
        _fresh(p)
        shutil.copy(path, p)
    with JobmanSqliteDAO(db_uri=str(indexed)) as dao:
        dao.create_index("job", "job_spec.cfg.code")
        dao.connection.execute("ANALYZE")
    conn = sqlite3.connect(bare)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                        "AND tbl_name = 'jobman_job' AND sql IS NOT NULL")]
    for name in names:
        conn.execute(f'DROP INDEX "{name}"')
    conn.close()
    queries = {
        f"status = {s!r}": {"filters": [{"field": "status", "op": "=", "arg": s}], "fields": ["key"]}
        for s in (status, "FAILED")
    }
    queries[f"job_spec.cfg.code = {code!r}"] = {"filters": [{"field": "job_spec.cfg.code", "op": "=", "arg": code}],
                                                "fields": ["key"]}
    out = {}
    with JobmanSqliteDAO(db_uri=str(indexed), read_only=True) as fast, \
            JobmanSqliteDAO(db_uri=str(bare), read_only=True) as slow:
        for label, query in queries.items():
            assert len(fast.query_jobs(query)) == len(slow.query_jobs(query))
            out[label] = (_median_seconds(lambda q=query: fast.query_jobs(q), repeat),
                          _median_seconds(lambda q=query: slow.query_jobs(q), repeat))
    return out


# -- memory ---------------------------------------------------------------------------------------
_MEMORY_SCRIPT = """
import gc, json, re, sqlite3, sys
from jobman_nb import JobmanSqliteDAO
sys.path.insert(0, {bench!r})
from run import pandas_by_hand

def status(field):
    with open("/proc/self/status") as f:
        return int(re.search(field + r":\\s+(\\d+) kB", f.read()).group(1)) * 1024

path, how = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(path)
dao = JobmanSqliteDAO(db_uri=path, read_only=True)
dao.query_jobs_df({{"limit": 10}})  # warm up: modules loaded on first use are not the frame's cost
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current resident size
before = status("VmRSS")
if how == "ours":
    df = dao.query_jobs_df()
else:
    df = pandas_by_hand(conn)
peak = status("VmHWM")
print(json.dumps({{"peak": peak - before, "frame": int(df.memory_usage(deep=True).sum())}}))
"""


def bench_memory(path: Path, how: str) -> dict[str, int]:
    # A fresh process per measurement; Linux's VmHWM (reset after imports) is its peak resident size.
    script = _MEMORY_SCRIPT.format(bench=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", script, str(path), how], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# -- the run ----------------------------------------------------------------------------------------
def _versions() -> str:
    from importlib.metadata import version

    import pyarrow

    import jobman_nb

    return (f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, pandas {pd.__version__}, pyarrow {pyarrow.__version__}, "
            f"sqlite-utils {version('sqlite-utils')}, jobman_nb {jobman_nb.__version__}")


def _line(label: str, ours: float, base: float, target: str) -> None:
    click.echo(f"  {label:<52} {ours / base:6.2f}x   (target {target}; {ours:.2f}s vs {base:.2f}s)")


@click.command()
@click.option("--large", is_flag=True, help="Also run 1,000,000 jobs (several minutes).")
@click.option("--sizes", default=None, help="Comma-separated job counts, e.g. 1000,20000 (overrides --large).")
@click.option("--repeat", default=3, show_default=True, help="Runs per timing; the median is reported.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where demo histories are written (default: a temp dir, removed afterwards).")
def main(large: bool, sizes: str | None, repeat: int, workdir: Path | None) -> None:
    """Print each benchmark as a ratio of jobman_nb's time to its baseline's."""
    counts = [int(s) for s in sizes.split(",")] if sizes else [100_000] + ([1_000_000] if large else [])
    click.echo(_versions())
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="jobman_nb-bench-")
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for n in counts:
            path = workdir / f"demo-{n}.sqlite"
            if not path.exists():
                make_history(path, n_jobs=n, seed=0, job_dirs=False)
            with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
                records = dao.query_jobs()
                counts = dao.query_jobs_df({"fields": ["status", "job_spec.cfg.code"]})
            statuses = counts["status"].value_counts()
            rare = statuses[statuses > 0].idxmin()  # a selective filter, e.g. what is running now
            code = counts["job_spec.cfg.code"].value_counts().idxmin()
            click.echo(f"\n{n:,} demo jobs (median of {repeat}; ratio = jobman_nb / baseline)")
            _line("save_jobs vs executemany + json.dumps", *bench_save(records, workdir, repeat), "<= 1.3x")
            del records
            gc.collect()
            _line("query_jobs vs fetchall + json.loads", *bench_query(path, repeat), "<= 1.5x")
            _line("query_jobs_df vs read_sql_query + json_normalize", *bench_frame(path, repeat), "<= 0.35x")
            for label, (fast, slow) in bench_filters(path, workdir, repeat, rare, code).items():
                click.echo(f"  {'filter ' + label:<52} {slow / fast:6.1f}x faster with indexes "
                           f"({fast:.4f}s vs {slow:.4f}s)")
            ours, base = bench_memory(path, "ours"), bench_memory(path, "base")
            click.echo(f"  {'query_jobs_df peak memory / frame memory':<52} {ours['peak'] / ours['frame']:6.2f}x"
                       f"   (target <= 3x; peak {ours['peak'] / 2**20:.0f} MiB, frame {ours['frame'] / 2**20:.0f} MiB)")
            click.echo(f"  {'  by hand: peak memory / its frame memory':<52} {base['peak'] / base['frame']:6.2f}x"
                       f"   (peak {base['peak'] / 2**20:.0f} MiB, frame {base['frame'] / 2**20:.0f} MiB)")
            click.echo(f"  {'  query_jobs_df peak / by-hand peak':<52} {ours['peak'] / base['peak']:6.2f}x")
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
