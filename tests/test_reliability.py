"""Nothing is lost under load, crashes or concurrent readers.

Real processes on one file: claimers, savers, an updater and a DataFrame
reader at once; writers killed with SIGKILL in the middle of a big batch.
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

LOAD_SECONDS = float(os.environ.get("JOBMAN_NB_LOAD_SECONDS", "10"))


# -- children (module level, so that spawned processes can import them) -----------------------
def _claimer(path, deadline, out):
    try:
        dao = JobmanSqliteDAO(db_uri=path, lock_timeout=30)
        q = {"filters": [dao.generate_status_filter("PENDING")], "order_by": {"field": "created"}, "limit": 20}
        keys = []
        while time.time() < deadline:
            keys += [j["key"] for j in dao.claim_jobs(q)]
        out.put(("claimer", "ok", keys))
    except BaseException as exc:
        out.put(("claimer", "error", repr(exc)))


def _saver(path, deadline, prefix, out):
    try:
        dao = JobmanSqliteDAO(db_uri=path, lock_timeout=30)
        n = 0
        while time.time() < deadline:
            dao.save_jobs([{"key": f"{prefix}-{n + i}", "status": "PENDING", "job_spec": {"i": n + i}}
                           for i in range(25)])
            n += 25
        out.put(("saver", "ok", n))
    except BaseException as exc:
        out.put(("saver", "error", repr(exc)))


def _updater(path, deadline, out):
    try:
        dao = JobmanSqliteDAO(db_uri=path, lock_timeout=30)
        n = 0
        while time.time() < deadline:
            n += dao.update_jobs({"status": "RUNNING"}, {"filters": [dao.generate_status_filter("CLAIMED")],
                                                          "limit": 10})["rowcount"]
        out.put(("updater", "ok", n))
    except BaseException as exc:
        out.put(("updater", "error", repr(exc)))


def _reader(path, deadline, out):
    try:
        dao = JobmanSqliteDAO(db_uri=path, read_only=True)
        reads, last = 0, 0
        while time.time() < deadline:
            frame = dao.query_jobs_df({"fields": ["key", "status", "job_spec.i"]})
            assert len(frame) >= last  # jobs are never lost, so the count never drops
            last = len(frame)
            reads += 1
        out.put(("reader", "ok", reads))
    except BaseException as exc:
        out.put(("reader", "error", repr(exc)))


@pytest.mark.slow
def test_mixed_load_loses_nothing_and_claims_nothing_twice(tmp_path, capsys):
    path = str(tmp_path / "load.sqlite")
    dao = JobmanSqliteDAO(db_uri=path)
    dao.save_jobs([{"key": f"seed-{i}", "status": "PENDING"} for i in range(2_000)])
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 3  # let the spawned interpreters start before the clock runs
    deadline = start + LOAD_SECONDS
    procs = [ctx.Process(target=_claimer, args=(path, deadline, out)) for _ in range(4)]
    procs += [ctx.Process(target=_saver, args=(path, deadline, f"s{i}", out)) for i in range(2)]
    procs += [ctx.Process(target=_updater, args=(path, deadline, out)),
              ctx.Process(target=_reader, args=(path, deadline, out))]
    for p in procs:
        p.start()
    results = [out.get(timeout=LOAD_SECONDS + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    errors = [r for r in results if r[1] == "error"]
    assert not errors, errors  # no 'database is locked' (or anything else) escaped
    by_role: dict[str, list] = {}
    for role, _, value in results:
        by_role.setdefault(role, []).append(value)
    claimed = Counter(k for keys in by_role["claimer"] for k in keys)
    saved = sum(by_role["saver"])
    assert max(claimed.values(), default=1) == 1  # no job claimed twice
    total = dao.count_ents("job")
    assert total == 2_000 + saved  # no save lost
    status = Counter(j["status"] for j in dao.query_jobs({"fields": ["status"]}))
    assert status["CLAIMED"] + status["RUNNING"] == len(claimed)  # every claim is in the file
    assert status["PENDING"] == total - len(claimed)
    assert status["RUNNING"] == sum(by_role["updater"])
    assert by_role["reader"][0] > 0
    with capsys.disabled():
        print(f"\n[load] {LOAD_SECONDS:.0f}s: {len(claimed) / LOAD_SECONDS:.0f} claims/s, "
              f"{saved / LOAD_SECONDS:.0f} saves/s, {sum(by_role['updater']) / LOAD_SECONDS:.0f} updates/s, "
              f"{by_role['reader'][0] / LOAD_SECONDS:.1f} frame reads/s")


# -- crashes ----------------------------------------------------------------------------------
N_CRASH = 100_000


def _crash_victim(path, what, ready):
    dao = JobmanSqliteDAO(db_uri=path)
    ready.set()
    if what == "save":
        dao.save_jobs([{"key": f"c{i}", "status": "PENDING", "job_spec": {"i": i, "pad": "x" * 100}}
                       for i in range(N_CRASH)])
    elif what == "update":
        dao.update_jobs({"status": "RUNNING", "job_spec": {"updated": True, "pad": "y" * 200}})
    else:
        dao.claim_jobs({"filters": [dao.generate_status_filter("PENDING")]})
    os._exit(0)  # reached only if the kill came too late


def _kill_during(path, what, delay):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_crash_victim, args=(path, what, ready))
    proc.start()
    assert ready.wait(30)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    return proc.exitcode


@pytest.mark.slow
@pytest.mark.parametrize("what", ["save", "update", "claim"])
def test_sigkill_in_the_middle_of_a_batch_leaves_all_or_nothing(tmp_path, what):
    path = str(tmp_path / f"crash-{what}.sqlite")
    dao = JobmanSqliteDAO(db_uri=path)
    if what != "save":
        dao.save_jobs([{"key": f"c{i}", "status": "PENDING", "job_spec": {"i": i}} for i in range(N_CRASH)])
    dao.close()
    killed = 0
    # spread over the operation's duration here (save ~1.5 s, update ~0.25 s, claim ~1.2 s)
    for delay in {"save": (0.3, 0.8, 1.2), "update": (0.02, 0.08, 0.15), "claim": (0.2, 0.5, 0.9)}[what]:
        exitcode = _kill_during(path, what, delay)
        killed += exitcode == -signal.SIGKILL
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        check = JobmanSqliteDAO(db_uri=path)
        count = check.count_ents("job")
        if what == "save":
            assert count in (0, N_CRASH)
        else:
            assert count == N_CRASH
            moved = check.count_ents("job", {"filters": [check.generate_status_filter("PENDING")]})
            assert moved in (0, N_CRASH)  # the whole batch changed, or none of it
        check.close()
    assert killed >= 1  # at least one kill really landed mid-batch
