"""A write lock held elsewhere gives LockTimeoutError naming the file; opening takes no lock.

Another connection or process holds SQLite's write lock (``BEGIN IMMEDIATE``)
while a DAO with a small ``lock_timeout`` writes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sqlite3

import pytest
from _children import wait_for

from jobman_nb import JobmanError, JobmanSqliteDAO, LockTimeoutError
from jobman_nb.dao.worker_sqlite_dao import WorkerSqliteDAO

TIMEOUT = 0.05


@contextlib.contextmanager
def write_lock(path):
    """Hold the write lock of *path* from a second connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.fixture
def db_path(tmp_path):
    path = str(tmp_path / "jobs.sqlite")
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"key": f"j{i}", "status": "PENDING"} for i in range(5)])
        dao.save_kvps([{"key": "k", "value": 1}])
    return path


WRITES = {
    "save_jobs": lambda d: d.save_jobs([{"key": "new", "status": "PENDING"}]),
    "claim_jobs": lambda d: d.claim_jobs({"filters": [{"field": "status", "op": "=", "arg": "PENDING"}]}),
    "update_jobs": lambda d: d.update_jobs({"status": "FAILED"}),
    "update_kvp": lambda d: d.update_kvp("k", 2, where_prev_value=1),
    "create_index": lambda d: d.create_index("job", "job_spec.cfg.code"),
    "enable_history": lambda d: d.enable_history(),
    "transaction": lambda d: d.transaction().__enter__(),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_held_write_lock_gives_lock_timeout_error_naming_file_and_timeout(db_path, write):
    with JobmanSqliteDAO(db_uri=db_path, lock_timeout=TIMEOUT) as dao, write_lock(db_path):
        with pytest.raises(LockTimeoutError) as info:
            WRITES[write](dao)
        assert isinstance(info.value, JobmanError) and isinstance(info.value, TimeoutError)
        assert db_path in str(info.value) and f"lock_timeout={TIMEOUT:g} s" in str(info.value)
        assert (info.value.path, info.value.timeout) == (db_path, TIMEOUT)
        assert not dao.connection.in_transaction
    with JobmanSqliteDAO(db_uri=db_path, read_only=True) as check:  # nothing was written
        assert sorted(j["status"] for j in check.query_jobs()) == ["PENDING"] * 5
        assert check.get_kvp("k")["value"] == 1


def test_the_constructor_takes_no_write_lock_when_every_table_exists(db_path):
    with write_lock(db_path):
        with JobmanSqliteDAO(db_uri=db_path, lock_timeout=TIMEOUT) as dao:  # used to raise 'database is locked'
            assert dao.count_ents("job") == 5  # reads go on while another connection writes (WAL)


def test_the_constructor_needs_the_lock_only_to_create(db_path):
    with write_lock(db_path), pytest.raises(LockTimeoutError, match=r"jobs\.sqlite"):
        WorkerSqliteDAO(db_uri=db_path, table_prefix="_worker_w2_", lock_timeout=TIMEOUT)
    with WorkerSqliteDAO(db_uri=db_path, table_prefix="_worker_w2_", lock_timeout=TIMEOUT):
        pass
    with write_lock(db_path), WorkerSqliteDAO(db_uri=db_path, table_prefix="_worker_w2_", lock_timeout=TIMEOUT):
        pass  # now complete: opens under a held lock


def test_a_commit_held_off_by_a_reader_rolls_back_and_raises(fixture_path):
    # jobman's own files use a rollback journal: COMMIT needs an exclusive lock, and a
    # reader in the middle of a read transaction holds it off.
    path = str(fixture_path)
    with JobmanSqliteDAO(db_uri=path) as dao:  # creates the indexes jobman did not
        before = dao.count_ents("job")
        assert dao.db.journal_mode != "wal"
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM jobman_job").fetchone()  # holds a shared lock
        with JobmanSqliteDAO(db_uri=path, lock_timeout=TIMEOUT) as dao:
            with pytest.raises(LockTimeoutError, match=r"lock_timeout=0\.05 s"):
                dao.save_jobs([{"key": "blocked", "status": "PENDING"}])
            assert not dao.connection.in_transaction  # rolled back, the connection is usable
        reader.execute("COMMIT")
        with JobmanSqliteDAO(db_uri=path, lock_timeout=TIMEOUT) as dao:
            assert dao.count_ents("job") == before  # all or nothing: nothing
            dao.save_jobs([{"key": "later", "status": "PENDING"}])
            assert dao.count_ents("job") == before + 1
    finally:
        reader.close()


def _hold_lock(path, locked, release):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    locked.set()
    release.wait()  # the test sets it, in a finally
    conn.execute("ROLLBACK")
    conn.close()


def test_a_lock_held_by_another_process(db_path):
    ctx = mp.get_context("spawn")
    locked, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(db_path, locked, release))
    holder.start()
    try:
        assert wait_for(locked, holder)  # however slowly it spawned
        with JobmanSqliteDAO(db_uri=db_path, lock_timeout=TIMEOUT) as dao:
            with pytest.raises(LockTimeoutError, match="another connection held it"):
                dao.claim_jobs({"limit": 1})
            release.set()
            holder.join()
            assert [j["status"] for j in dao.claim_jobs({"limit": 1})] == ["CLAIMED"]  # free again
    finally:
        release.set()
        holder.join()
