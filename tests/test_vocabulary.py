"""The vocabulary: every op the form and the CLI offer compiles; one status order; one palette."""

from __future__ import annotations

import pytest

import jobman_nb
from jobman_nb import JobmanSqliteDAO, analytics, timeline, vocabulary
from jobman_nb._where import parse_where
from jobman_nb.dao.query import OPS, compile_where
from jobman_nb.vocabulary import ValueKind
from jobman_nb.widgets import _fields

COLUMNS = {"key": "TEXT", "status": "TEXT", "created": "FLOAT", "n": "INTEGER", "job_spec": "JSON"}
# One field of each value kind the form offers ops for, and a value of that kind.
FIELD_OF_KIND = {ValueKind.NUMBER: ("n", 3), ValueKind.TIME: ("created", 1.5), ValueKind.TEXT: ("key", "a%"),
                 ValueKind.STATUS: ("status", "FAILED"), ValueKind.BOOL: ("job_spec.flag", True),
                 ValueKind.ANY: ("job_spec.x", 2), ValueKind.JSON: ("job_spec", None)}


def _arg(arity: int, value):
    return {0: None, 1: value, 2: [value, value], -1: [value, value]}[arity]


@pytest.mark.parametrize("kind", sorted(_fields.OPS_BY_KIND))
def test_every_op_the_form_offers_compiles_and_runs(kind):
    field, value = FIELD_OF_KIND[kind]
    ops = _fields.OPS_BY_KIND[kind]
    assert ops, kind
    with JobmanSqliteDAO() as dao:
        dao.save_jobs([{"key": "a1", "status": "FAILED", "job_spec": {"flag": True, "x": 2}}])
        for op in ops:
            assert _fields.canonical_op(op) == op  # the form's spelling is its own canonical form
            pattern = vocabulary.parse_op(op)[0] in ("LIKE", "GLOB")  # patterns are text whatever the field
            filt = {"field": field, "op": op, "arg": _arg(_fields.op_arity(op), "a%" if pattern else value)}
            sql, _ = compile_where([filt], {**dao.orms["job"].columns, "n": "INTEGER"})
            assert sql, filt
            if field != "n":
                dao.query_jobs({"filters": [filt]})  # runs


def test_every_op_the_cli_offers_compiles():
    spellings = [*vocabulary.SYMBOL_OPS, *(w.lower() for w in vocabulary.WORD_OPS)]
    assert {"=", "!=", "<", ">=", "in", "not in", "is", "is not", "between", "not like", "glob"} <= set(spellings)
    for spelling in spellings:
        base = vocabulary.parse_op(spelling)[0]
        value = {0: "null", 1: "5", 2: "1,9", -1: "1,2"}[vocabulary.OPS[base].arity]
        filt = parse_where(f"n {spelling} {'a%' if base in ('LIKE', 'GLOB') else value}")
        assert vocabulary.parse_op(filt["op"])[0] == vocabulary.parse_op(spelling)[0]
        sql, _ = compile_where([filt], COLUMNS)
        assert sql, spelling


def test_every_op_is_offered_for_some_kind_and_the_compiler_knows_exactly_the_vocabulary():
    assert OPS == vocabulary.OP_NAMES
    offered = {vocabulary.parse_op(s)[0] for kind in _fields.OPS_BY_KIND for s in _fields.OPS_BY_KIND[kind]}
    assert offered == set(vocabulary.OP_NAMES)
    for alias, target in vocabulary.OP_ALIASES.items():
        assert vocabulary.parse_op(alias) == vocabulary.parse_op(target)
    assert vocabulary.parse_op("! not in") is None and vocabulary.parse_op("~") is None


def test_op_labels_name_the_negation():
    assert _fields.op_label("!IN") == "not in" and _fields.op_label("IN") == "in"
    assert _fields.op_label("IS NOT") == "is not empty" and _fields.canonical_op("!IS") == "IS NOT"
    assert _fields.canonical_op("not like") == "!LIKE" and _fields.canonical_op("!<") is None


@pytest.mark.parametrize(("name", "sql_type", "kind", "value"), [
    ("status", "TEXT", "STATUS", "status"), ("created", "FLOAT", "TIME", "time"),
    ("modified", "INTEGER", "TIME", "time"), ("x", "REAL", "FLOAT", "number"), ("n", "INTEGER", "INTEGER", "number"),
    ("job_spec", "JSON", "JSON", "json"), ("key", "TEXT", "TEXT", "text"), ("b", "BLOB", "BLOB", "text"),
    ("created", "TEXT", "TEXT", "text"), ("status", "INTEGER", "INTEGER", "number"),
])
def test_one_rule_gives_a_field_its_kind(name, sql_type, kind, value):
    assert vocabulary.column_kind(name, sql_type) == kind
    assert _fields.column_kind(name, sql_type) == value


def test_statuses_then_other_values_sorted():
    assert vocabulary.status_order(["ZOMBIE", None, float("nan"), "ARCHIVED"]) == [
        *jobman_nb.STATUSES, "ARCHIVED", "ZOMBIE"]
    assert vocabulary.status_order(["ZOMBIE", "RUNNING", "FAILED"], every=False) == ["FAILED", "RUNNING", "ZOMBIE"]
    assert jobman_nb.STATUSES is vocabulary.STATUSES


def test_one_palette_and_one_finished():
    assert analytics.FINISHED is timeline.FINISHED is vocabulary.FINISHED
    assert timeline.STATUS_COLORS is vocabulary.STATUS_COLORS
    assert set(vocabulary.STATUS_COLORS) == set(jobman_nb.STATUSES)
    assert len(set(vocabulary.STATUS_COLORS.values())) == len(jobman_nb.STATUSES)
    assert vocabulary.status_color("ZOMBIE") == vocabulary.OTHER_STATUS_COLOR
