"""Several processes on one file: claims are exclusive, writers wait instead of failing.

Correctness only: every job is claimed exactly once, no write is lost. Nothing here
depends on how fast the machine is: barriers, not clocks, make the processes overlap,
and the parent waits for its children as long as they live (``_children.run_children``).
"""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest
from _children import run_children

from jobman_nb import JobmanSqliteDAO

N_JOBS = 3_000
BATCH = 25
N_CLAIMERS = 4


def _claimer(path: str, out: mp.Queue, start, holding) -> None:
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            query = {"filters": [dao.generate_status_filter("PENDING")], "order_by": {"field": "created"},
                     "limit": BATCH}
            mine: list[str] = []
            start.wait()  # all start together, however slowly each interpreter spawned
            while batch := dao.claim_jobs(query):
                assert all(j["status"] == "CLAIMED" for j in batch)
                if not mine:
                    # every claimer holds a batch before any goes on: the claims really
                    # interleave, on any machine and under any load
                    holding.wait()
                mine += [j["key"] for j in batch]
        out.put(("claimer", "ok", mine))
    except BaseException as exc:  # report it: a failure in a child must fail the test
        out.put(("claimer", "error", repr(exc)))


def _saver(path: str, prefix: str, n: int, out: mp.Queue, start) -> None:
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            start.wait()
            for i in range(0, n, 50):
                dao.save_jobs([{"key": f"{prefix}{j}", "status": "NEW"} for j in range(i, i + 50)])
        out.put(("saver", "ok", n))
    except BaseException as exc:
        out.put(("saver", "error", repr(exc)))


@pytest.mark.slow
def test_four_processes_claim_each_job_exactly_once(tmp_path):
    path = str(tmp_path / "claims.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"status": "PENDING", "created": float(i)} for i in range(N_JOBS)], auto_update=False)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start, holding = ctx.Barrier(N_CLAIMERS), ctx.Barrier(N_CLAIMERS)
        procs = [ctx.Process(target=_claimer, args=(path, out, start, holding)) for _ in range(N_CLAIMERS)]
        claimed = [keys for _, _, keys in run_children(procs, out, release=(start, holding))]
        counts = Counter(k for keys in claimed for k in keys)
        assert len(counts) == N_JOBS  # none lost
        assert max(counts.values()) == 1  # none claimed twice
        assert all(claimed)  # every claimer got work while the others held theirs
        assert dao.count_ents("job", {"filters": [dao.generate_status_filter("CLAIMED")]}) == N_JOBS


@pytest.mark.slow
def test_concurrent_writers_wait_for_each_other(tmp_path):
    path = str(tmp_path / "writers.sqlite")
    JobmanSqliteDAO(db_uri=path).close()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_saver, args=(path, f"w{i}-", 1_000, out, start)) for i in range(3)]
    assert [n for _, _, n in run_children(procs, out, release=(start,))] == [1_000] * 3
    with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
        assert dao.count_ents("job") == 3_000
