"""Nothing is lost under load, crashes or concurrent readers.

Real processes on one file: claimers, savers, an updater and a DataFrame
reader at once; writers killed with SIGKILL in the middle of a big batch.
Correctness only: barriers make the processes overlap and a progress handler
freezes a writer inside its transaction before the kill, so no assertion
depends on the speed of the machine.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time
from collections import Counter

import pytest

from jobman_nb import JobmanSqliteDAO

LOAD_SECONDS = float(os.environ.get("JOBMAN_NB_LOAD_SECONDS", "5"))


def _until_deadline(start):
    """Yield once, then again until LOAD_SECONDS after every process passed *start*."""
    start.wait(120)
    deadline = time.monotonic() + LOAD_SECONDS
    yield
    while time.monotonic() < deadline:
        yield


# -- children (module level, so that spawned processes can import them) -----------------------
def _claimer(path, start, out):
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            q = {"filters": [dao.generate_status_filter("PENDING")], "order_by": {"field": "created"}, "limit": 20}
            keys = []
            for _ in _until_deadline(start):
                keys += [j["key"] for j in dao.claim_jobs(q)]
        out.put(("claimer", "ok", keys))
    except BaseException as exc:
        out.put(("claimer", "error", repr(exc)))


def _saver(path, start, prefix, out):
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            n = 0
            for _ in _until_deadline(start):
                dao.save_jobs([{"key": f"{prefix}-{n + i}", "status": "PENDING", "job_spec": {"i": n + i}}
                               for i in range(25)])
                n += 25
        out.put(("saver", "ok", n))
    except BaseException as exc:
        out.put(("saver", "error", repr(exc)))


def _updater(path, start, out):
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            n = 0
            for _ in _until_deadline(start):
                n += dao.update_jobs({"status": "RUNNING"}, {"filters": [dao.generate_status_filter("CLAIMED")],
                                                              "limit": 10})["rowcount"]
        out.put(("updater", "ok", n))
    except BaseException as exc:
        out.put(("updater", "error", repr(exc)))


def _reader(path, start, out):
    try:
        with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
            reads, last = 0, 0
            for _ in _until_deadline(start):
                frame = dao.query_jobs_df({"fields": ["key", "status", "job_spec.i"]})
                assert len(frame) >= last  # jobs are never lost, so the count never drops
                last = len(frame)
                reads += 1
        out.put(("reader", "ok", reads))
    except BaseException as exc:
        out.put(("reader", "error", repr(exc)))


@pytest.mark.slow
def test_mixed_load_loses_nothing_and_claims_nothing_twice(tmp_path):
    path = str(tmp_path / "load.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"key": f"seed-{i}", "status": "PENDING"} for i in range(2_000)])
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(8)
    procs = [ctx.Process(target=_claimer, args=(path, start, out)) for _ in range(4)]
    procs += [ctx.Process(target=_saver, args=(path, start, f"s{i}", out)) for i in range(2)]
    procs += [ctx.Process(target=_updater, args=(path, start, out)),
              ctx.Process(target=_reader, args=(path, start, out))]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=LOAD_SECONDS + 600) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    errors = [r for r in results if r[1] == "error"]
    assert not errors, errors  # no 'database is locked' (or anything else) escaped
    by_role: dict[str, list] = {}
    for role, _, value in results:
        by_role.setdefault(role, []).append(value)
    claimed = Counter(k for keys in by_role["claimer"] for k in keys)
    saved = sum(by_role["saver"])
    assert saved >= 2 * 25  # every saver saved at least once
    assert max(claimed.values(), default=1) == 1  # no job claimed twice
    with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
        total = dao.count_ents("job")
        status = Counter(j["status"] for j in dao.query_jobs({"fields": ["status"]}))
    assert total == 2_000 + saved  # no save lost
    assert status["CLAIMED"] + status["RUNNING"] == len(claimed)  # every claim is in the file
    assert status["PENDING"] == total - len(claimed)
    assert status["RUNNING"] == sum(by_role["updater"])
    assert by_role["reader"][0] > 0


# -- crashes ----------------------------------------------------------------------------------
N_CRASH = 30_000
PROGRESS_EVERY = 1_000  # SQLite VM instructions between calls of the progress handler


def _crash_victim(path, what, after, inside):
    """Start *what* and freeze inside its transaction at the *after*-th progress call."""
    dao = JobmanSqliteDAO(db_uri=path)
    conn = dao.connection
    calls = 0

    def freeze_mid_transaction():
        nonlocal calls
        if conn.in_transaction:
            calls += 1
            if calls == after:
                inside.set()
                time.sleep(600)  # the parent kills this process here
        return 0

    conn.set_progress_handler(freeze_mid_transaction, PROGRESS_EVERY)
    if what == "save":
        dao.save_jobs([{"key": f"c{i}", "status": "PENDING", "job_spec": {"i": i, "pad": "x" * 100}}
                       for i in range(N_CRASH)])
    elif what == "update":
        dao.update_jobs({"status": "RUNNING", "job_spec": {"updated": True, "pad": "y" * 200}})
    else:
        dao.claim_jobs({"filters": [dao.generate_status_filter("PENDING")]})
    os._exit(3)  # the operation ended before the freeze point: the test says so


def _kill_mid_transaction(path, what, after):
    ctx = mp.get_context("spawn")
    inside = ctx.Event()
    proc = ctx.Process(target=_crash_victim, args=(path, what, after, inside))
    proc.start()
    frozen = inside.wait(300)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(60)
    assert frozen, f"{what} finished before progress call {after} (exit code {proc.exitcode})"
    assert proc.exitcode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("what", ["save", "update", "claim"])
def test_sigkill_in_the_middle_of_a_batch_leaves_all_or_nothing(tmp_path, what):
    path = str(tmp_path / f"crash-{what}.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        if what != "save":
            dao.save_jobs([{"key": f"c{i}", "status": "PENDING", "job_spec": {"i": i}} for i in range(N_CRASH)])
    for after in (1, 10, 100):  # early, middle and late in the batch
        _kill_mid_transaction(path, what, after)
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
        with JobmanSqliteDAO(db_uri=path) as check:
            count = check.count_ents("job")
            if what == "save":
                assert count == 0  # killed before its commit: nothing of the batch
            else:
                assert count == N_CRASH
                moved = check.count_ents("job", {"filters": [check.generate_status_filter("PENDING")]})
                assert moved == N_CRASH  # none of the batch changed
