"""Nothing is lost under load, crashes or concurrent readers.

Real processes on one file: claimers, savers, an updater and a DataFrame
reader at once; writers killed with SIGKILL in the middle of a big batch.
Correctness only, with no clock anywhere: barriers start the processes together,
the writers write until the reader has made its reads (counts, not seconds), and a
progress handler freezes a writer inside its transaction before the kill. On a
loaded machine these tests are slower, never red.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from collections import Counter

import pytest
from _children import run_children, wait_for

from jobman_nb import JobmanSqliteDAO

N_READS = 20  # the reader's reads, all while every writer is writing
N_GROWTHS = 3  # of which at least this many see more jobs than the read before
MIN_OPS = 4  # every writer's least number of calls, however early the reader is done


def _growths(counts):
    return sum(b > a for a, b in itertools.pairwise(counts))


def _writing(start, done, give_up):
    """Yield while this writer should write: at least MIN_OPS times, then until the reader is done.

    The writers start together (*start*) and stop only once the reader has made all its reads
    (*done*), so every read overlaps every writer, on any machine and under any load.
    """
    start.wait()
    n = 0
    while not give_up.is_set() and (n < MIN_OPS or not done.is_set()):
        yield
        n += 1


# -- children (module level, so that spawned processes can import them) -----------------------
def _claimer(path, start, done, give_up, out):
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            q = {"filters": [dao.generate_status_filter("PENDING")], "order_by": {"field": "created"}, "limit": 20}
            keys = []
            for _ in _writing(start, done, give_up):
                keys += [j["key"] for j in dao.claim_jobs(q)]
        out.put(("claimer", "ok", keys))
    except BaseException as exc:
        out.put(("claimer", "error", repr(exc)))


def _saver(path, start, done, give_up, prefix, out):
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            n = 0
            for _ in _writing(start, done, give_up):
                dao.save_jobs([{"key": f"{prefix}-{n + i}", "status": "PENDING", "job_spec": {"i": n + i}}
                               for i in range(25)])
                n += 25
        out.put(("saver", "ok", n))
    except BaseException as exc:
        out.put(("saver", "error", repr(exc)))


def _updater(path, start, done, give_up, out):
    try:
        with JobmanSqliteDAO(db_uri=path, lock_timeout=60) as dao:
            n = 0
            for _ in _writing(start, done, give_up):
                n += dao.update_jobs({"status": "RUNNING"}, {"filters": [dao.generate_status_filter("CLAIMED")],
                                                              "limit": 10})["rowcount"]
        out.put(("updater", "ok", n))
    except BaseException as exc:
        out.put(("updater", "error", repr(exc)))


def _reader(path, start, done, give_up, out):
    """Read until N_READS reads are made and N_GROWTHS of them saw new jobs; then let the writers stop."""
    try:
        with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
            counts: list[int] = []
            start.wait()
            while not give_up.is_set() and (len(counts) < N_READS or _growths(counts) < N_GROWTHS):
                frame = dao.query_jobs_df({"fields": ["key", "status", "job_spec.i"]})
                assert frame["key"].is_unique  # each read is one consistent snapshot
                assert set(frame["status"]) <= {"PENDING", "CLAIMED", "RUNNING"}
                assert not counts or len(frame) >= counts[-1]  # jobs are never lost: the count never drops
                counts.append(len(frame))
        done.set()
        out.put(("reader", "ok", counts))
    except BaseException as exc:
        out.put(("reader", "error", repr(exc)))


@pytest.mark.slow
def test_mixed_load_loses_nothing_and_claims_nothing_twice(tmp_path):
    path = str(tmp_path / "load.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"key": f"seed-{i}", "status": "PENDING"} for i in range(2_000)])
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start, done, give_up = ctx.Barrier(8), ctx.Event(), ctx.Event()
    sync = (start, done, give_up)
    procs = [ctx.Process(target=_claimer, args=(path, *sync, out)) for _ in range(4)]
    procs += [ctx.Process(target=_saver, args=(path, *sync, f"s{i}", out)) for i in range(2)]
    procs += [ctx.Process(target=_updater, args=(path, *sync, out)),
              ctx.Process(target=_reader, args=(path, *sync, out))]
    results = run_children(procs, out, release=(start, give_up))  # no 'database is locked', nor anything else
    by_role: dict[str, list] = {}
    for role, _, value in results:
        by_role.setdefault(role, []).append(value)
    claimed = Counter(k for keys in by_role["claimer"] for k in keys)
    saved = sum(by_role["saver"])
    (counts,) = by_role["reader"]
    assert min(by_role["saver"]) >= MIN_OPS * 25  # every saver kept saving
    assert len(counts) >= N_READS  # the reader made its reads while all wrote...
    assert _growths(counts) >= N_GROWTHS  # ... and saw them write
    assert max(claimed.values(), default=1) == 1  # no job claimed twice
    with JobmanSqliteDAO(db_uri=path, read_only=True) as dao:
        total = dao.count_ents("job")
        status = Counter(j["status"] for j in dao.query_jobs({"fields": ["status"]}))
    assert total == 2_000 + saved  # no save lost
    assert counts[-1] <= total
    assert status["CLAIMED"] + status["RUNNING"] == len(claimed)  # every claim is in the file
    assert status["PENDING"] == total - len(claimed)
    assert status["RUNNING"] == sum(by_role["updater"])


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
    frozen = wait_for(inside, proc)  # however long the child takes to get there
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
