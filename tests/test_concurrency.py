"""Several processes on one file: claims are exclusive, writers wait instead of failing.

Correctness only: every job is claimed exactly once, no write is lost. Nothing here
depends on how fast the machine is (barriers, not clocks, make the processes overlap).
"""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest

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
            start.wait(120)  # all start together, however slowly each interpreter spawned
            while batch := dao.claim_jobs(query):
                assert all(j["status"] == "CLAIMED" for j in batch)
                if not mine:
                    # every claimer holds a batch before any goes on: the claims really
                    # interleave, on any machine and under any load
                    holding.wait(120)
                mine += [j["key"] for j in batch]
        out.put(("ok", mine))
    except BaseException as exc:  # report it: a failure in a child must fail the test
        out.put(("error", repr(exc)))


def _saver(path: str, prefix: str, n: int, out: mp.Queue, start) -> None:
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            start.wait(120)
            for i in range(0, n, 50):
                dao.save_jobs([{"key": f"{prefix}{j}", "status": "NEW"} for j in range(i, i + 50)])
        out.put(("ok", n))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def _run(procs, out, n):
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=600) for _ in range(n)]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    errors = [r for r in results if r[0] == "error"]
    assert not errors, errors
    return [r[1] for r in results]


@pytest.mark.slow
def test_four_processes_claim_each_job_exactly_once(tmp_path):
    path = str(tmp_path / "claims.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"status": "PENDING", "created": float(i)} for i in range(N_JOBS)], auto_update=False)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start, holding = ctx.Barrier(N_CLAIMERS), ctx.Barrier(N_CLAIMERS)
        procs = [ctx.Process(target=_claimer, args=(path, out, start, holding)) for _ in range(N_CLAIMERS)]
        claimed = _run(procs, out, N_CLAIMERS)
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
    assert _run(procs, out, 3) == [1_000] * 3
    with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
        assert dao.count_ents("job") == 3_000
