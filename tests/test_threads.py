"""One DAO used from several threads: JupyterLab 4 with ipykernel 7 runs widget handlers on subshell threads.

Every read and write of a DAO, read-only or writable, in memory or on a file,
works from a thread other than the one that opened it; a transaction holds the
DAO to its own thread until it ends; the widgets' handlers run from other threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from jobman_nb import JobmanSqliteDAO
from jobman_nb.widgets import QueryBuilder, StatusBoard


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run *fn* on a new thread and return its result (or raise its exception here)."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed back to the test's thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _jobs(n: int) -> list[dict]:
    statuses = ["PENDING", "RUNNING", "COMPLETED", "FAILED"]
    return [{"key": f"j{i:03d}", "status": statuses[i % 4], "job_spec": {"resources": {"mem_gb": 2 + i % 3}},
             "created": 1_700_000_000.0 + i, "modified": 1_700_000_000.0 + i} for i in range(n)]


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "jobs.sqlite"
    with JobmanSqliteDAO(db_uri=str(path)) as dao:
        dao.save_jobs(_jobs(40), auto_update=False)
    return path


@pytest.mark.parametrize("mode", ["memory", "file", "read-only"])
def test_every_read_works_from_another_thread(db_path, mode):
    if mode == "memory":
        dao = JobmanSqliteDAO(db_uri=":memory:")
        dao.save_jobs(_jobs(40), auto_update=False)
    else:
        dao = JobmanSqliteDAO(db_uri=str(db_path), read_only=mode == "read-only")
    with dao:
        assert dao.count_ents("job") == 40  # the connection is opened on this thread
        query = {"filters": [{"field": "job_spec.resources.mem_gb", "op": "=", "arg": 3}]}
        assert _in_thread(lambda: dao.count_ents("job", query)) == 13
        assert _in_thread(lambda: len(dao.query_jobs(query))) == 13
        assert _in_thread(lambda: dao.get_job("j005")["status"]) == "RUNNING"
        assert _in_thread(lambda: sum(len(c) for c in dao.iter_ents("job", chunksize=7))) == 40
        assert _in_thread(lambda: len(dao.query_jobs_df(query))) == 13
        assert _in_thread(lambda: dao.db["jobman_job"].count) == 40


def test_writes_from_another_thread(file_dao):
    file_dao.save_jobs(_jobs(4))
    _in_thread(lambda: file_dao.save_jobs([{"key": "t1", "status": "PENDING"}]))
    _in_thread(lambda: file_dao.update_ents("job", {"status": "FAILED"},
                                            {"filters": [{"field": "key", "op": "=", "arg": "t1"}]}))
    assert file_dao.get_job("t1")["status"] == "FAILED"
    _in_thread(file_dao.close)  # closing works from any thread, and the DAO opens again on use
    assert file_dao.count_ents("job") == 5


def test_a_transaction_keeps_other_threads_out(file_dao):
    """Another thread's save waits for the open transaction; it neither joins it nor is rolled back with it."""
    file_dao.save_jobs([{"key": "before", "status": "PENDING"}])
    started = threading.Event()
    seen: list[int] = []

    def other_thread() -> None:
        started.set()
        file_dao.save_jobs([{"key": "other", "status": "PENDING"}])
        seen.append(file_dao.count_ents("job"))

    thread = threading.Thread(target=other_thread)
    with pytest.raises(RuntimeError, match="undo"), file_dao.transaction():
        file_dao.save_jobs([{"key": "rolled-back", "status": "PENDING"}])
        thread.start()
        started.wait()
        thread.join(0.5)  # give the other thread every chance to run inside this transaction
        assert thread.is_alive(), "the other thread's save did not wait for the transaction"
        raise RuntimeError("undo")
    thread.join()
    assert sorted(j["key"] for j in file_dao.query_jobs()) == ["before", "other"]
    assert seen == [2]


def test_nested_transactions_from_another_thread(file_dao):
    def nested() -> None:
        with file_dao.transaction():
            file_dao.save_jobs([{"key": "outer", "status": "PENDING"}])
            with pytest.raises(ValueError), file_dao.transaction():
                file_dao.save_jobs([{"key": "inner", "status": "PENDING"}])
                raise ValueError
    _in_thread(nested)
    assert [j["key"] for j in file_dao.query_jobs()] == ["outer"]


def test_history_connection_keeps_its_pragma_across_threads(file_dao):
    file_dao.save_jobs(_jobs(3))
    file_dao.enable_history()
    _in_thread(lambda: file_dao.update_ents("job", {"status": "COMPLETED"},
                                            {"filters": [{"field": "key", "op": "=", "arg": "j000"}]}))
    assert file_dao.connection.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
    events = _in_thread(lambda: file_dao.query_events({"filters": [{"field": "job_key", "op": "=", "arg": "j000"}]}))
    assert [e["new_status"] for e in events][-1] == "COMPLETED"


@pytest.mark.parametrize("read_only", [True, False])
def test_builder_and_board_handlers_run_on_other_threads(db_path, read_only):
    """The builder and the board are made on one thread and clicked on others, as JupyterLab's subshells do."""
    with JobmanSqliteDAO(db_uri=str(db_path), read_only=read_only) as dao:
        qb = QueryBuilder(dao, limit=5)
        board = StatusBoard(dao, builder=qb)

        def click_run_and_next() -> tuple[int | None, list[str]]:
            qb.query = {"filters": [{"field": "job_spec.resources.mem_gb", "op": ">=", "arg": 3}],
                        "order_by": {"field": "created", "direction": "DESC"}, "limit": 5}
            qb._run.click()
            qb._next.click()
            return qb.count, list(qb.result["key"])

        count, keys = _in_thread(click_run_and_next)
        assert qb.message == ""
        assert count == 26 and len(keys) == 5
        assert _in_thread(board.refresh) == {"PENDING": 10, "RUNNING": 10, "COMPLETED": 10, "FAILED": 10}
        _in_thread(lambda: board.show("FAILED"))
        assert qb.count == 10 and set(qb.result["status"]) == {"FAILED"}
        qb.close()
        board.close()
