"""QueryBuilder clicks on a large demo history, as ratios to the bare SQL of the same page.

Each click goes through the widget API (set the form's query, ``run()``), which is
what a click on Run, next or a column header does. "rows" is until ``run()``
returns (the page is shown); "count" until the count below the buttons arrived
(``qb.count``). The baseline is the SELECT of the same page, compiled by
jobman_nb's query compiler and run with plain ``sqlite3`` ``fetchall()`` on the
same file: what the builder did before (and what SQLite's own plan costs).
Sides are interleaved; medians of ``--repeat`` runs. Run from the repository root::

    python bench/bench_widgets.py                          # 1,000,000 jobs in a temp dir
    python bench/bench_widgets.py --db /tmp/demo1m.sqlite  # an existing demo file
    python bench/bench_widgets.py --in-values 100000       # a form holding a 100,000-value IN list

``--in-values N`` times the form itself rather than SQLite: opening a builder on a query
whose filter is ``key IN [N values]``, assigning that query again, and changing the limit
(which collects the form), each as a ratio to the bare ``dao.compile_query`` of the same
query (validating and compiling N values is work the form cannot skip). The table is a
file of 100 jobs (so the count runs on its thread, as in use): only the form's cost grows
with N.
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobman_nb import JobmanSqliteDAO, demo
from jobman_nb.dao.query import compile_select
from jobman_nb.widgets import QueryBuilder

FAILED = {"field": "status", "op": "=", "arg": "FAILED"}
CLICKS = [
    ("no filter", {"limit": 100}),
    ("a status (FAILED, 14%)", {"filters": [FAILED], "limit": 100}),
    ("sort on created", {"order_by": {"field": "created", "direction": "DESC"}, "limit": 100}),
    ("sort on modified", {"order_by": {"field": "modified", "direction": "ASC"}, "limit": 100}),
    ("FAILED + sort on created", {"filters": [FAILED], "order_by": {"field": "created", "direction": "DESC"},
                                  "limit": 100}),
    ("next page of that", {"filters": [FAILED], "order_by": {"field": "created", "direction": "DESC"},
                           "limit": 100, "offset": 100}),
    ("a rare status (EXECUTED) + sort", {"filters": [{"field": "status", "op": "=", "arg": "EXECUTED"}],
                                         "order_by": {"field": "modified", "direction": "DESC"}, "limit": 100}),
    ("JSON path mem_gb >= 64", {"filters": [{"field": "job_spec.resources.mem_gb", "op": ">=", "arg": 64}],
                                "limit": 100}),
    ("JSON path + sort on created", {"filters": [{"field": "job_spec.resources.mem_gb", "op": ">=", "arg": 64}],
                                     "order_by": {"field": "created", "direction": "DESC"}, "limit": 100}),
]


def _bare(path: str, query: dict) -> float:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
            orm = dao.orms["job"]
            select = compile_select(query, orm.table, orm.columns)
        start = time.perf_counter()
        conn.execute(select.sql, select.params).fetchall()
        return time.perf_counter() - start
    finally:
        conn.close()


def _click(qb: QueryBuilder, query: dict) -> tuple[float, float]:
    start = time.perf_counter()
    qb.query = query
    qb.run()
    rows = time.perf_counter() - start
    qb.count  # noqa: B018  (waits for the count)
    return rows, time.perf_counter() - start


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _in_values(n: int, repeat: int) -> None:
    """The form holding an IN list of *n* values, as ratios to the bare compile of the same query."""
    query = {"filters": [{"field": "key", "op": "IN", "arg": [f"job-{i:07d}" for i in range(n)]}], "limit": 100}
    tmp = tempfile.TemporaryDirectory()
    path = str(Path(tmp.name) / "small.sqlite")
    with JobmanSqliteDAO(db_uri=path) as writer:
        writer.save_jobs([{"key": f"job-{i:07d}", "status": "PENDING"} for i in range(100)])
    # a file, as in use: the builder counts on a thread, after the rows are shown
    with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
        qb = QueryBuilder(dao)

        def build() -> None:
            QueryBuilder(dao, query=query).close()

        def change_limit() -> None:
            qb._limit.value = 50 if qb._limit.value != 50 else 100  # what typing a new limit does

        def assign() -> None:
            qb.query = query

        steps = [("open a builder on the query", build), ("assign the query again", assign),
                 ("change the limit (collects the form)", change_limit), ("Run (rows shown)", qb.run)]
        qb.query = query
        print(f"a QueryBuilder holding key IN [{n:,} values]; median of {repeat}, sides interleaved\n")
        print("| step | / bare compile_query | step (median s) | bare compile_query (median s) |")
        print("|---|---|---|---|")
        for name, step in steps:
            bare, took = [], []
            for _ in range(repeat):
                bare.append(_timed(lambda: dao.compile_query("job", query)))
                took.append(_timed(step))
                qb.count  # noqa: B018  (let a count still running finish outside the timings)
            b, t = statistics.median(bare), statistics.median(took)
            print(f"| {name} | {t / b:.1f}× | {t:.2f} | {b:.2f} |", flush=True)
        qb.close()
    tmp.cleanup()


@click.command()
@click.option("--db", type=click.Path(dir_okay=False), help="An existing demo file (else one is made).")
@click.option("--jobs", default=1_000_000, show_default=True, help="Jobs of the demo made without --db.")
@click.option("--repeat", default=3, show_default=True, help="Runs per side (the median is shown).")
@click.option("--in-values", type=int, default=None,
              help="Instead: time a form holding an IN list of this many values (see the module docstring).")
def main(db: str | None, jobs: int, repeat: int, in_values: int | None) -> None:
    """Time the builder's clicks against the bare SQL of the same page."""
    if in_values is not None:
        _in_values(in_values, repeat)
        return
    tmp = None
    if db is None:
        tmp = tempfile.TemporaryDirectory()
        db = str(Path(tmp.name) / "demo.sqlite")
        print(f"making a demo of {jobs:,} jobs ...", flush=True)
        kwargs = {"job_dirs": False} if "job_dirs" in demo.make_history.__code__.co_varnames else {}
        demo.make_history(db, jobs, **kwargs)
    with JobmanSqliteDAO(db_uri=db, read_only=True) as dao:
        n = dao.count_ents("job")
        qb = QueryBuilder(dao)
        print(f"{n:,} jobs in {db}; median of {repeat}, sides interleaved\n")
        print("| click | rows shown / bare SQL | count arrived / bare SQL | rows shown (median s) | count |")
        print("|---|---|---|---|---|")
        for name, query in CLICKS:
            rows, total, bare = [], [], []
            for _ in range(repeat):
                bare.append(_bare(db, query))
                r, t = _click(qb, query)
                rows.append(r)
                total.append(t)
            b, r, t = statistics.median(bare), statistics.median(rows), statistics.median(total)
            count = f"more than {qb.count - 1:,}" if qb.count_capped else f"{qb.count:,}"
            print(f"| {name} | {r / b:.2f}× | {t / b:.2f}× | {r:.3f} | {count} |", flush=True)
        qb.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
