"""QueryBuilder's result view, paging at scale, the job inspector, requeue from the form, the live
StatusBoard and widget leaks; driven without a browser (set values, click buttons)."""

from __future__ import annotations

import datetime

import ipywidgets
import pytest

from jobman_nb import JobmanSqliteDAO
from jobman_nb.widgets import JobInspector, QueryBuilder, StatusBoard

STATUSES = ["COMPLETED", "FAILED", "FAILED", "PENDING", "RUNNING"]
LONG = "Traceback (most recent call last):\n" + "  File 'x.py', line 1, in <module>\n" * 40 + "MemoryError"


def _jobs(n: int = 40) -> list[dict]:
    return [{"key": f"job-{i:03d}", "status": STATUSES[i % 5],
             "job_spec": {"resources": {"mem_gb": 4 * (1 + i % 2)}, "cfg": {"code": ["orca", "xtb"][i % 2]}},
             "errors": LONG if i % 5 in (1, 2) else None,
             "created": 1_700_000_000.123456 + 60 * i, "modified": 1_700_000_000.5 + 60 * i + 30}
            for i in range(n)]


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "jobs.sqlite"
    with JobmanSqliteDAO(db_uri=str(p)) as dao:
        dao.save_jobs(_jobs(), auto_update=False)
    return p


@pytest.fixture
def ro(path):
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
        yield dao


@pytest.fixture
def rw(path):
    with JobmanSqliteDAO(db_uri=str(path)) as dao:
        yield dao


def _failed(**extra):
    return {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}], **extra}


def _keys(frame) -> list[str]:
    return list(frame["key"])


# -- paging and counting ------------------------------------------------------------------
@pytest.mark.parametrize("order", [None, ("created", "DESC"), ("modified", "ASC"),
                                   ("job_spec.resources.mem_gb", "ASC")])
@pytest.mark.parametrize("filters", [[], _failed()["filters"], [{"field": "status", "op": "IN", "arg": ["PENDING"]}],
                                     [{"field": "job_spec.cfg.code", "op": "=", "arg": "xtb"}]])
def test_every_page_is_what_the_dao_returns(ro, order, filters):
    """Whichever plan reads the page (walk the order index, or filter and sort), the rows are the query's."""
    query = {"limit": 3, **({"filters": filters} if filters else {})}
    if order:
        query["order_by"] = {"field": order[0], "direction": order[1]}
    qb = QueryBuilder(ro, query=query)
    pages = []
    while True:
        frame = qb.run()
        pages.append(_keys(frame))
        if qb._next.disabled:
            break
        qb._next.click()
    every = [j["key"] for j in ro.query_jobs({k: v for k, v in query.items() if k != "limit"})]
    if order is None or order[0] != "job_spec.resources.mem_gb":  # ties in mem_gb may come in any order
        assert [k for page in pages for k in page] == every
    assert sorted(k for page in pages for k in page) == sorted(every)
    assert qb.count == len(every) and not qb.count_capped
    qb.close()


def test_a_count_no_index_serves_is_capped(ro):
    qb = QueryBuilder(ro, count_cap=5, limit=3,
                      query={"filters": [{"field": "job_spec.cfg.code", "op": "=", "arg": "orca"}]})
    assert len(qb.run()) == 3
    assert qb.count == 6 and qb.count_capped  # stopped after cap + 1 matches
    assert "more than 5" in qb._count_label.value
    qb.query = _failed(limit=3)  # an indexed field: counted exactly
    qb.run()
    assert qb.count == 16 and not qb.count_capped and "of <b>16</b>" in qb._count_label.value
    qb.close()


def test_next_needs_no_count(ro):
    qb = QueryBuilder(ro, query=_failed(limit=8, offset=8))
    frame = qb.run()
    assert len(frame) == 8 and qb._next.disabled and not qb._prev.disabled  # 16 FAILED: the last page
    qb.close()


# -- the result view ----------------------------------------------------------------------
def test_default_columns_fit_and_cells_are_cut(ro):
    qb = QueryBuilder(ro, query={"filters": [{"field": "job_spec.cfg.code", "op": "=", "arg": "orca"}],
                                 "order_by": {"field": "job_spec.resources.mem_gb", "direction": "ASC"}, "limit": 5})
    qb.run()
    assert qb.columns == ["key", "status", "created", "modified", "job_spec.cfg.code", "job_spec.resources.mem_gb"]
    row = qb._table._rows.options[0][0].replace("\u00a0", " ")
    assert "2023-11-14 22:13:20" in row  # times to the second
    assert ".123" not in row and "+00:00" not in row
    qb.columns = ["key", "status", "errors"]
    assert [b.description for b in qb._table._header.children] == ["key", "status", "errors"]
    labels = [o[0] for o in qb._table._rows.options]
    assert any("Traceback" in label and label.endswith("…") for label in labels)  # cut, not 9,000 px wide
    assert max(len(label) for label in labels) < 100
    qb.run()
    assert qb.columns == ["key", "status", "errors", "job_spec.cfg.code", "job_spec.resources.mem_gb"]  # kept
    qb.close()


def test_header_click_sorts_and_toggles(ro):
    qb = QueryBuilder(ro, query=_failed(limit=4, offset=4))
    qb.run()
    created = next(b for b in qb._table._header.children if b.description.startswith("created"))
    created.click()
    assert qb.query["order_by"] == {"field": "created", "direction": "ASC"} and "offset" not in qb.query
    assert _keys(qb.result) == ["job-001", "job-002", "job-006", "job-007"]
    next(b for b in qb._table._header.children if b.description.startswith("created")).click()
    assert qb.query["order_by"]["direction"] == "DESC"
    assert _keys(qb.result) == ["job-037", "job-036", "job-032", "job-031"]
    qb.close()


def test_stale_marker_and_offset_reset(ro):
    qb = QueryBuilder(ro, query=_failed(limit=4))
    qb.run()
    qb._next.click()
    assert qb.query.get("offset") == 4 and not qb.stale and qb._stale.value == ""
    qb._rows[0]._choice.value = "PENDING"  # the filter changes: page one again, and the rows are stale
    assert "offset" not in qb.query and qb._offset.value == 0
    assert qb.stale and "press Run" in qb._stale.value
    qb.run()
    assert not qb.stale and set(qb.result["status"]) == {"PENDING"}
    qb._order.value = "modified"
    assert qb.stale
    qb.close()


# -- the inspector ------------------------------------------------------------------------
def test_clicking_a_row_opens_the_job(rw):
    rw.enable_history()
    for status in ("RUNNING", "FAILED"):
        rw.update_jobs({"status": status}, {"filters": [{"field": "key", "op": "=", "arg": "job-001"}]})
    qb = QueryBuilder(rw, query=_failed(limit=5, order_by={"field": "key", "direction": "ASC"}))
    qb.run()
    qb.select([0])
    assert qb.inspector.key == "job-001"
    view = qb.inspector._view.value
    assert "&quot;job_spec&quot;: {\n" in view and "&amp;quot;" not in view  # pretty JSON, escaped once
    assert "history" in view and "RUNNING" in view
    assert "lineage" in view and "worker job" in view
    qb.close()


def test_inspector_alone_and_missing_job(ro):
    inspector = JobInspector(ro)
    record = inspector.show("job-003")
    assert record["status"] == "PENDING"
    # times read as UTC to the second, the stored epoch seconds beside them; the record returned is untouched
    when = datetime.datetime.fromtimestamp(record["created"], datetime.timezone.utc)
    assert f"{when:%Y-%m-%d %H:%M:%S} UTC ({record['created']!r})" in inspector._view.value
    assert isinstance(record["created"], float)
    assert inspector.show("nope") is None and "no job nope" in inspector._view.value
    assert not any(isinstance(w, ipywidgets.Button) for w in inspector.children)  # read-only: no actions
    inspector.close()


# -- acting on a writable database --------------------------------------------------------
def _act(qb: QueryBuilder):
    return qb.inspector


def test_requeue_selected_after_confirmation(rw):
    qb = QueryBuilder(rw, query={"filters": [{"field": "status", "op": "IN", "arg": ["FAILED", "PENDING"]}],
                                 "order_by": {"field": "key", "direction": "ASC"}, "limit": 4})
    qb.run()
    assert list(qb.result["status"]) == ["FAILED", "FAILED", "PENDING", "FAILED"]
    qb.select([0, 1, 2])
    # someone else changes job-002 after it was shown
    with JobmanSqliteDAO(db_uri=rw.path) as other:
        other.update_jobs({"status": "RUNNING"}, {"filters": [{"field": "key", "op": "=", "arg": "job-002"}]})
    act = _act(qb)
    act._requeue.click()
    assert "Requeue <b>3</b> jobs" in act._confirm_text.value
    assert rw.get_job("job-001")["status"] == "FAILED"  # nothing yet
    act._confirm.click()
    report = act.report.set_index("key")
    assert report.loc["job-001", "action"] == "requeued"
    assert (report.loc["job-002", "action"], report.loc["job-002", "reason"]) == ("skipped", "changed")
    assert (report.loc["job-003", "action"], report.loc["job-003", "reason"]) == ("skipped", "status")
    assert rw.get_job("job-001")["status"] == "PENDING" and rw.get_job("job-002")["status"] == "RUNNING"
    assert "<b>1</b> requeued, <b>2</b> skipped" in act._act_message.value
    assert set(qb.result["status"]) <= {"FAILED", "PENDING"}  # the form ran again
    qb.close()


def test_cancel_writes_nothing_and_requeue_all_matching(rw):
    qb = QueryBuilder(rw, query=_failed(limit=2))
    qb.run()
    act = _act(qb)
    act._requeue_all.click()
    assert "Requeue <b>16</b> jobs" in act._confirm_text.value  # every match, not the page
    act._cancel.click()
    assert rw.count_ents("job", _failed()) == 16
    act._requeue_all.click()
    act._confirm.click()
    assert rw.count_ents("job", _failed()) == 0 and (act.report["action"] == "requeued").sum() == 16
    qb.close()


def test_edit_a_spec_field_and_requeue(rw):
    qb = QueryBuilder(rw, query=_failed(limit=4, order_by={"field": "key", "direction": "ASC"}))
    qb.run()
    qb.select([0, 1])  # job-001 (8 GB), job-002 (4 GB)
    act = _act(qb)
    act._value.value = "2"
    act._edit.click()
    assert "job_spec.resources.mem_gb" in act._confirm_text.value and "×" in act._confirm_text.value
    act._confirm.click()
    assert rw.get_job("job-001")["job_spec"]["resources"]["mem_gb"] == 16
    assert rw.get_job("job-002")["job_spec"]["resources"]["mem_gb"] == 8
    assert rw.get_job("job-002")["job_spec"]["cfg"] == {"code": "orca"}  # the rest of the spec stays
    assert {rw.get_job(k)["status"] for k in ("job-001", "job-002")} == {"PENDING"}
    qb.select([0])
    key = qb.selected.iloc[0]["key"]
    act._how.value = "set"
    act._value.value = "not json"
    act._path.value = "job_spec.cfg.code"
    act._edit.click()
    act._confirm.click()
    assert rw.get_job(key)["job_spec"]["cfg"]["code"] == "not json"
    act._how.value = "multiply"
    act._value.value = "x"
    act._edit.click()
    assert "multiply by a number" in act._act_message.value
    qb.close()


def test_read_only_builder_offers_no_actions(ro):
    qb = QueryBuilder(ro)
    assert not hasattr(qb.inspector, "_requeue")
    qb.close()


# -- the live board -----------------------------------------------------------------------
def test_poll_runs_no_query_when_nothing_changed(path):
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as ro, JobmanSqliteDAO(db_uri=str(path)) as writer:
        board = StatusBoard(ro)
        statements: list[str] = []
        ro.connection.set_trace_callback(statements.append)
        assert board.poll() is False and board.poll() is False
        assert statements and all(s.strip().upper() == "PRAGMA DATA_VERSION" for s in statements)
        writer.save_jobs([{"key": "new", "status": "COMPLETED"}])
        assert board.poll() is True
        assert any("GROUP BY" in s for s in statements)
        assert board.counts["COMPLETED"] == 9
        statements.clear()
        assert board.poll() is False and not any("jobman_job" in s for s in statements)
        ro.connection.set_trace_callback(None)
        board.close()


def test_own_writes_count_as_changes(rw):
    board = StatusBoard(rw)
    rw.save_jobs([{"key": "mine", "status": "PENDING"}])  # data_version ignores this connection's commits
    assert board.poll() is True and board.counts["PENDING"] == 9
    board.close()


def test_rate_and_eta(ro):
    board = StatusBoard(ro)
    # the last hour of activity (to the latest modified) holds jobs 0..39 minus those older than 60 min
    assert board.finished_per_hour == 24.0
    assert "finished in the last hour" in board._rate.value and "to run" in board._rate.value
    board.close()


def test_start_stop_and_close(ro):
    board = StatusBoard(ro)
    board.start(every=0.01)
    assert board.live
    board.stop()
    assert not board.live and board._thread is None
    board.start(every=0.01)
    board.close()  # closing stops it
    assert board._thread is None
    with pytest.raises(ValueError, match="every"):
        StatusBoard(ro).start(every=0)


# -- no leaks -----------------------------------------------------------------------------
def _models() -> int:
    """Live widget models (what ``ipywidgets.Widget.widgets`` holds; that name is deprecated in 8.x)."""
    from ipywidgets.widgets.widget import _instances

    return len(_instances)


def test_widget_models_stay_flat(rw):
    qb = QueryBuilder(rw, query=_failed(limit=5))
    board = StatusBoard(rw, builder=qb)

    def one_round(i: int) -> None:
        qb.query = {"filters": [{"field": "job_spec.resources.mem_gb", "op": ">=", "arg": 4 + i % 2},
                                {"field": "status", "op": "!=", "arg": "RUNNING"}], "limit": 5}
        qb.run()
        next(b for b in qb._table._header.children if b.description.startswith("created")).click()
        qb.select([1])
        qb._next.click()
        board.refresh()
        board.show("FAILED")
        rw.save_jobs([{"key": f"x{i}", "status": "PENDING"}])
        board.poll()

    one_round(0)  # the first round adds the columns it shows; from then on each round replaces what it made
    before = _models()
    for i in range(1, 11):
        one_round(i)
        assert _models() == before, f"round {i}"
    qb.close()
    board.close()
    after_close = _models()
    assert after_close < before - 150  # closing the two closes what they made
    for _ in range(3):  # a builder and board made and closed leave nothing behind
        QueryBuilder(rw).close()
        StatusBoard(rw).close()
    assert _models() == after_close


# -- job directories through a path map --------------------------------------------------------
def _first_job_view(dao, **kwargs) -> str:
    qb = QueryBuilder(dao, query={"order_by": {"field": "key"}, "limit": 3}, **kwargs)
    try:
        qb.run()
        qb.select([0])
        return qb.inspector._view.value
    finally:
        qb.close()


def test_inspector_reads_job_dirs_through_the_databases_path_map(campaign):
    """A DAO from open_db(path_map=) carries its map to the builder's inspector; path_map= gives one."""
    from jobman_nb import open_db
    from jobman_nb.errors import PathMapError

    with open_db(campaign["db"], path_map=campaign["path_map"]) as db:
        mapped = _first_job_view(db.jobman)
        board = StatusBoard(db.jobman)  # the board's own builder too
        board.show("COMPLETED")
        assert board.builder.inspector.path_map == db.path_map
        board.close()
    with JobmanSqliteDAO(db_uri=str(campaign["db"]), read_only=True) as dao:
        unmapped = _first_job_view(dao)
        given = _first_job_view(dao, path_map=campaign["path_map"])
        with pytest.raises(PathMapError):
            QueryBuilder(dao, path_map="/scratch=/mnt")
        inspector = JobInspector(dao, path_map=campaign["path_map"])
        assert inspector.path_map == db.path_map
        inspector.close()
    recorded = next(iter(campaign["path_map"]))
    for view in (mapped, given):  # titled as recorded, read where the map says
        assert f"job directory {recorded}/" in view and f"read from {campaign['root']}/" in view
        assert "checkpoint: <b>COMPLETED" in view
    assert f"job directory {recorded}/" in unmapped and "checkpoint: <b>" not in unmapped
    assert "read from" not in unmapped and "looked in" not in unmapped  # as recorded: no second path
