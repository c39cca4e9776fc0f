"""QueryBuilder and StatusBoard, driven without a browser: set child values, click buttons."""

from __future__ import annotations

import re

import pytest

from jobman_nb import STATUSES, JobmanSqliteDAO, QueryError
from jobman_nb.widgets import QueryBuilder, StatusBoard

CODES = ["psi4", "orca", "cp2k"]
STATUS_CYCLE = ["COMPLETED", "COMPLETED", "FAILED", "PENDING", "RUNNING"]


def _jobs(n: int = 30) -> list[dict]:
    jobs = []
    for i in range(n):
        spec = {"resources": {"cpus": 2 ** (i % 4), "mem_gb": 4.5 * (1 + i % 3)},
                "cfg": {"code": CODES[i % 3], "tag_list": "a,b"}, "rerun": i % 5 == 0}
        if i % 7 == 0:
            spec["extra"] = {"note": f"n{i}"}
        jobs.append({"key": f"job-{i:03d}", "status": STATUS_CYCLE[i % 5], "job_spec": spec,
                     "errors": {"code": 1} if i % 5 == 2 else None, "created": 1_700_000_000.0 + 60 * i,
                     "modified": 1_700_000_000.0 + 60 * i + 30, "worker_key": f"w{i % 2}"})
    return jobs


@pytest.fixture
def jobs_dao(dao):
    dao.save_jobs(_jobs(), auto_update=False)
    return dao


def _keys(frame) -> list[str]:
    return list(frame["key"])


def _add_filter(qb: QueryBuilder, field: str, op: str, value: str | None = None):
    qb._add.click()
    row = qb._rows[-1]
    row._field.value = field
    row._op.value = op
    if value is not None:
        row._text.value = value
    return row


# -- the form's choices ------------------------------------------------------------------
def test_default_query_has_a_limit(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    assert qb.query == {"limit": 100}
    assert QueryBuilder(jobs_dao, limit=7).query == {"limit": 7}
    assert qb.result is None and qb.message == ""


def test_fields_include_schema_and_sampled_json_paths(jobs_dao):
    fields = QueryBuilder(jobs_dao).fields
    assert fields[:4] == ["key", "status", "created", "modified"]
    for path in ["job_spec.resources.cpus", "job_spec.resources.mem_gb", "job_spec.cfg.code",
                 "job_spec.extra.note", "job_spec.rerun", "errors.code"]:
        assert path in fields
    assert "job_spec.resources" not in fields  # objects are not leaves


def test_ops_and_value_inputs_fit_the_field(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    qb._add.click()
    row = qb._rows[0]
    assert row._field.value == "status"
    assert row._choice in row.children and list(row._choice.options)[: len(STATUSES)] == list(STATUSES)
    assert "LIKE" not in [op for _, op in row._op.options]
    row._field.value = "job_spec.resources.cpus"
    ops = [op for _, op in row._op.options]
    assert {"<", ">=", "BETWEEN", "IN"} <= set(ops) and "LIKE" not in ops
    assert row._text in row.children
    row._op.value = "BETWEEN"
    assert row._high in row.children
    row._op.value = "IS"
    assert not {row._text, row._high, row._choice, row._tags} & set(row.children)
    row._field.value = "job_spec.cfg.code"
    assert "LIKE" in [op for _, op in row._op.options]
    row._field.value = "errors"
    assert [op for _, op in row._op.options] == ["IS", "IS NOT"]


# -- building a query by hand ------------------------------------------------------------
def test_numeric_filter_runs_and_counts(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    _add_filter(qb, "job_spec.resources.cpus", ">=", "4")
    assert qb.query == {"filters": [{"field": "job_spec.resources.cpus", "op": ">=", "arg": 4}], "limit": 100}
    qb._limit.value = 5
    qb._run.click()
    assert qb.message == ""
    assert len(qb.result) == 5
    assert (qb.result["job_spec.resources.cpus"] >= 4).all()
    assert qb.count == 14
    assert "of <b>14</b>" in qb._count_label.value
    assert len(qb._table._rows.options) == 5
    # the default columns, and the field the filter uses
    assert qb.columns == ["key", "status", "created", "modified", "job_spec.resources.cpus"]


def test_status_choice_in_tags_and_null_tests(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    row = _add_filter(qb, "status", "=")
    row._choice.value = "FAILED"
    frame = qb.run()
    assert set(frame["status"]) == {"FAILED"} and qb.count == 6
    row._op.value = "IN"
    row._tags.value = ["PENDING", "RUNNING"]
    assert qb.query["filters"] == [{"field": "status", "op": "IN", "arg": ["PENDING", "RUNNING"]}]
    assert set(qb.run()["status"]) == {"PENDING", "RUNNING"}
    row._field.value = "errors"
    row._op.value = "IS NOT"
    assert qb.query["filters"] == [{"field": "errors", "op": "IS NOT", "arg": None}]
    assert qb.run() is not None and qb.count == 6


def test_in_on_text_takes_comma_separated_values_with_quotes(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    _add_filter(qb, "job_spec.cfg.code", "IN", 'psi4, "x,y",orca')
    assert qb.query["filters"][0]["arg"] == ["psi4", "x,y", "orca"]
    assert set(qb.run()["job_spec.cfg.code"]) == {"psi4", "orca"}


def test_any_all_order_and_paging(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    _add_filter(qb, "status", "=")._choice.value = "FAILED"
    _add_filter(qb, "job_spec.cfg.code", "=", "psi4")
    assert qb.run() is not None
    assert qb.count == 2  # FAILED and psi4: i % 5 == 2 and i % 3 == 0
    qb._match.value = "any"
    qb._order.value = "created"
    qb._direction.value = "DESC"
    qb._limit.value = 4
    assert qb.query == {"filters": [{"any": [{"field": "status", "op": "=", "arg": "FAILED"},
                                             {"field": "job_spec.cfg.code", "op": "=", "arg": "psi4"}]}],
                        "order_by": {"field": "created", "direction": "DESC"}, "limit": 4}
    first = _keys(qb.run())
    assert qb.count == 14 and first == ["job-027", "job-024", "job-022", "job-021"]
    assert qb._prev.disabled and not qb._next.disabled
    qb._next.click()
    assert qb.query["offset"] == 4 and _keys(qb.result) == ["job-018", "job-017", "job-015", "job-012"]
    qb._prev.click()
    assert "offset" not in qb.query and _keys(qb.result) == first


def test_time_fields_accept_dates(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    _add_filter(qb, "created", "<", "2023-11-14T22:15:00")
    assert qb.query["filters"][0]["arg"] == pytest.approx(1_700_000_100.0)
    assert _keys(qb.run()) == ["job-000", "job-001"]


def test_remove_button_drops_the_filter(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    _add_filter(qb, "key", "=", "job-001")
    _add_filter(qb, "worker_key", "=", "w1")
    qb._rows[0]._remove.click()
    assert qb.query == {"filters": [{"field": "worker_key", "op": "=", "arg": "w1"}], "limit": 100}
    assert len(qb._filters.children) == 1


# -- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "op", "text", "words"), [
    ("job_spec.resources.cpus", ">", "four", "'four' is not a number"),
    ("job_spec.resources.cpus", "=", "", "empty"),
    ("job_spec.resources.cpus", "IN", "1, x", "'x' is not a number"),
    ("job_spec.cfg.code", "IN", " , ", "at least one value"),
    ("created", ">", "yesterday", "neither epoch seconds nor a date"),
    ("job_spec.resources.cpus", "BETWEEN", "1", "high value is empty"),
])
def test_bad_input_shows_a_message_and_runs_nothing(jobs_dao, field, op, text, words):
    qb = QueryBuilder(jobs_dao)
    good = qb.run()
    row = _add_filter(qb, field, op)
    before = qb.query
    row._text.value = text
    assert words in qb.message
    assert "filter 1" in qb.message and field in qb.message
    assert qb.query == before
    assert words in qb._message.value or words.replace("'", "&#x27;") in qb._message.value
    qb._run.click()  # raises nothing
    assert qb.run() is None
    assert qb.result is good


def test_bad_limit_and_empty_status_in(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    qb._limit.value = 0
    assert "limit must be at least 1" in qb.message and qb.query == {"limit": 100}
    qb._limit.value = 10
    assert qb.message == "" and qb.query == {"limit": 10}
    _add_filter(qb, "status", "IN")
    assert "give at least one value" in qb.message


# -- query <-> form ---------------------------------------------------------------------
ROUND_TRIP = [
    {"limit": 100},
    {"limit": 5, "offset": 10},
    {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}], "limit": 20},
    {"filters": [{"field": "status", "op": "!IN", "arg": ["FAILED", "PENDING"]}], "limit": 20},
    {"filters": [{"field": "job_spec.resources.cpus", "op": ">", "arg": 2}], "limit": 100},
    {"filters": [{"field": "job_spec.resources.mem_gb", "op": "BETWEEN", "arg": [4.5, 9.0]}], "limit": 100},
    {"filters": [{"field": "job_spec.resources.cpus", "op": "!BETWEEN", "arg": [1, 4]}], "limit": 3},
    {"filters": [{"field": "job_spec.resources.cpus", "op": "IN", "arg": [1, 8, 2.5]}], "limit": 100},
    {"filters": [{"field": "job_spec.cfg.code", "op": "LIKE", "arg": "ps%"}], "limit": 100},
    {"filters": [{"field": "job_spec.cfg.code", "op": "!GLOB", "arg": "o*"}], "limit": 100},
    {"filters": [{"field": "job_spec.cfg.code", "op": "IN", "arg": ["a,b", 'q"t', " x"[1:]]}], "limit": 100},
    {"filters": [{"field": "job_spec.rerun", "op": "=", "arg": True}], "limit": 100},
    {"filters": [{"field": "job_spec.rerun", "op": "!=", "arg": False}], "limit": 100},
    {"filters": [{"field": "errors", "op": "IS", "arg": None}], "limit": 100},
    {"filters": [{"field": "worker_key", "op": "IS NOT", "arg": None}], "limit": 100},
    {"filters": [{"field": "created", "op": ">=", "arg": 1700000100.5}], "limit": 100},
    {"filters": [{"field": "batchable", "op": "<=", "arg": 0}], "limit": 100},
    {"filters": [{"field": "job_spec.never.seen", "op": "=", "arg": 3}], "limit": 100},
    {"filters": [{"field": "job_spec.never.seen", "op": "=", "arg": "3"}], "limit": 100},
    {"filters": [{"any": [{"field": "status", "op": "=", "arg": "FAILED"},
                          {"field": "key", "op": "<", "arg": "job-005"}]}],
     "order_by": {"field": "job_spec.resources.cpus", "direction": "DESC"}, "limit": 9, "offset": 2},
    {"filters": [{"field": "status", "op": "=", "arg": "PENDING"},
                 {"field": "job_spec.extra.note", "op": "=", "arg": "n7"}],
     "order_by": {"field": "modified", "direction": "ASC"}, "limit": 1},
]


@pytest.mark.parametrize("query", ROUND_TRIP)
def test_round_trip(jobs_dao, query):
    qb = QueryBuilder(jobs_dao, query=query)
    assert qb.query == query
    # and the form really shows it: collecting the form again gives the same dict
    qb._run.click()
    assert qb.message == "" and qb.query == query
    assert len(qb.result) == len(jobs_dao.query_jobs(query))


@pytest.mark.parametrize(("given", "shown"), [
    ({"filters": [{"field": "status", "op": "==", "arg": "FAILED"}]},
     {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}], "limit": 100}),
    ({"filters": [{"field": "key", "op": "not like", "arg": "a%"}], "limit": 3, "offset": 0},
     {"filters": [{"field": "key", "op": "!LIKE", "arg": "a%"}], "limit": 3}),
    ({"filters": [{"field": "errors", "op": "=", "arg": None}], "order_by": [{"field": "key"}], "limit": 2},
     {"filters": [{"field": "errors", "op": "IS", "arg": None}], "order_by": {"field": "key", "direction": "ASC"},
      "limit": 2}),
    ({"filters": [{"all": [{"field": "key", "op": "=", "arg": "x"}]}], "limit": 1},
     {"filters": [{"field": "key", "op": "=", "arg": "x"}], "limit": 1}),
])
def test_equivalent_spellings_are_shown_canonically(jobs_dao, given, shown):
    assert QueryBuilder(jobs_dao, query=given).query == shown


def test_setting_query_fills_the_form_and_notifies(jobs_dao):
    qb = QueryBuilder(jobs_dao)
    seen = []
    qb.observe(lambda change: seen.append(change["new"]), "query")
    q = {"filters": [{"field": "job_spec.resources.cpus", "op": "IN", "arg": [1, 2]}],
         "order_by": {"field": "key", "direction": "DESC"}, "limit": 7}
    qb.query = q
    assert seen == [q]
    row = qb._rows[0]
    assert (row._field.value, row._op.value, row._text.value) == ("job_spec.resources.cpus", "IN", "1, 2")
    assert (qb._order.value, qb._direction.value, qb._limit.value) == ("key", "DESC", 7)
    assert "&#x27;job_spec.resources.cpus&#x27;" in qb._code.value
    qb._limit.value = 8
    assert seen[-1]["limit"] == 8


@pytest.mark.parametrize(("query", "words"), [
    ({"filters": [{"field": "nope", "op": "=", "arg": 1}]}, "unknown field 'nope'"),
    ({"filters": [{"field": "status", "op": "~", "arg": 1}]}, "unknown op"),
    ({"fields": ["key"]}, "cannot show 'fields'"),
    ({"filters": [{"any": [{"all": []}]}]}, "nested any/all"),
    ({"order_by": [{"field": "key"}, {"field": "status"}]}, "one field"),
    ({"filters": [{"field": "key", "op": "=", "arg": 5}]}, "cannot show 5"),
    ({"filters": [{"field": "status", "op": "LIKE", "arg": "F%"}]}, "does not offer 'LIKE'"),
    ({"filters": [{"field": "key", "op": "IN", "arg": []}]}, "at least one value"),
    ({"limit": 0}, "at least 1"),
    ([], "query must be a query dict"),
    ("status", "query must be a query dict"),
])
def test_queries_the_form_cannot_show_raise(jobs_dao, query, words):
    with pytest.raises(QueryError, match=re.escape(words)):
        QueryBuilder(jobs_dao, query=query)
    qb = QueryBuilder(jobs_dao, query={"limit": 3})
    with pytest.raises(QueryError):
        qb.query = query
    assert qb.query == {"limit": 3}
    with pytest.raises(QueryError, match="got NoneType"):
        qb.query = None


def test_unknown_ent_type(jobs_dao):
    with pytest.raises(QueryError, match="unknown ent_type 'jb'"):
        QueryBuilder(jobs_dao, "jb")


def test_kvp_builder(jobs_dao):
    jobs_dao.save_kvps([{"key": "a", "value": {"n": 1}}, {"key": "b", "value": {"n": 2}}])
    qb = QueryBuilder(jobs_dao, "kvp", query={"filters": [{"field": "value.n", "op": ">", "arg": 1}], "limit": 5})
    assert "value.n" in qb.fields
    assert list(qb.run()["key"]) == ["b"]


def test_read_only_database(tmp_path):
    path = tmp_path / "jobs.sqlite"
    with JobmanSqliteDAO(db_uri=str(path)) as writer:
        writer.save_jobs(_jobs(), auto_update=False)
    ro = JobmanSqliteDAO(db_uri=str(path), read_only=True)
    qb = QueryBuilder(ro, query={"filters": [{"field": "status", "op": "=", "arg": "RUNNING"}], "limit": 100})
    assert "job_spec.resources.cpus" in qb.fields
    assert _keys(qb.run()) == [f"job-{i:03d}" for i in range(4, 30, 5)]
    board = StatusBoard(ro)
    assert board.counts == {"COMPLETED": 12, "FAILED": 6, "PENDING": 6, "RUNNING": 6}
    ro.close()


# -- StatusBoard ------------------------------------------------------------------------
def test_status_board_counts_and_refresh(jobs_dao):
    board = StatusBoard(jobs_dao)
    assert board.counts == {"COMPLETED": 12, "FAILED": 6, "PENDING": 6, "RUNNING": 6}
    assert board.builder is None
    jobs_dao.save_jobs([{"key": "new", "status": None}])
    board._refresh.click()
    assert board.counts[None] == 1 and sum(board.counts.values()) == 31
    assert "31 in all" in board._total.value


def test_status_board_click_opens_builder(jobs_dao):
    board = StatusBoard(jobs_dao)
    failed = next(b for b, s in board._status_buttons if s == "FAILED")
    failed.click()
    qb = board.builder
    assert isinstance(qb, QueryBuilder) and qb in board._builder_box.children
    assert qb.query == {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}], "limit": 100}
    assert set(qb.result["status"]) == {"FAILED"} and qb.count == 6
    qb._limit.value = 2
    board.show("PENDING")
    assert board.builder is qb
    assert qb.query == {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}], "limit": 2}


def test_status_board_fills_a_given_builder(jobs_dao):
    qb = QueryBuilder(jobs_dao, query={"order_by": {"field": "key", "direction": "DESC"}, "limit": 3})
    board = StatusBoard(jobs_dao, builder=qb)
    assert board.show("COMPLETED") is qb
    assert _keys(qb.result) == ["job-026", "job-025", "job-021"]


def test_status_board_needs_a_status_field(jobs_dao):
    with pytest.raises(QueryError, match="no status field"):
        StatusBoard(jobs_dao, ent_type="kvp")
