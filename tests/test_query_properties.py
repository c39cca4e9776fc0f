"""Property tests: compiled queries select exactly what a Python model of the language selects.

The model evaluates filters over the saved records with SQL's three-valued
logic (NULL = unknown), SQLite's cross-type ordering (numbers < text) and the
documented rules of the language (a negated filter is the complement; ``IN``
with None matches missing values; ``= None`` means ``IS NULL``).
"""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobman_nb import QueryError
from jobman_nb.vocabulary import OPS

# -- data ---------------------------------------------------------------------------------
TEXTS = ["PENDING", "RUNNING", "FAILED", "fail", "Ab", "ab", "a_b", "", "ünï"]
text = st.sampled_from(TEXTS)
number = st.one_of(st.integers(-5, 5), st.sampled_from([-1.5, 0.5, 2.0, 2.5, 1e9]))
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731

spec = st.fixed_dictionaries({}, optional={
    "n": maybe(number), "s": maybe(text), "flag": st.booleans(), "deep": st.fixed_dictionaries({"x": maybe(number)}),
})
job = st.fixed_dictionaries({
    "status": maybe(text),
    "source_key": maybe(text),
    "batchable": maybe(st.integers(0, 2)),
    "created": st.one_of(st.integers(0, 5).map(float), st.just(2.5)),
    "job_spec": maybe(spec),
})

FIELDS = {  # field -> strategy for comparable args
    "status": text, "source_key": text, "batchable": st.integers(-1, 3), "created": number,
    "job_spec.n": number, "job_spec.s": text, "job_spec.flag": st.booleans(), "job_spec.deep.x": number,
}
CROSS = st.one_of(text, number)  # any scalar: exercises numbers-vs-text ordering


def value_of(record, field):
    if "." not in field:
        return record[field]
    head, *path = field.split(".")
    value = record[head]
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool):
        return int(value)  # json_extract gives 1/0 for true/false
    return value


# -- the model ----------------------------------------------------------------------------
def _rank(v):
    return 1 if isinstance(v, (int, float)) else 2


def _cmp(a, b):
    """SQLite's comparison of two non-NULL values: -1, 0 or 1."""
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    return (a > b) - (a < b)


def _like(value, pattern):
    if value is None:
        return None
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    s = value if isinstance(value, str) else repr(value)
    return re.fullmatch(rx, s, flags=re.IGNORECASE | re.DOTALL) is not None


def _glob(value, pattern):
    if value is None:
        return None
    s = value if isinstance(value, str) else repr(value)
    return fnmatch.fnmatchcase(s, pattern)


def _norm(arg):
    return int(arg) if isinstance(arg, bool) else arg


def evaluate(node, record):
    """Three-valued result (True, False or None) of a filter or group for *record*."""
    if "any" in node:
        results = [evaluate(n, record) for n in node["any"]]
        return True if True in results else (None if None in results else False)
    if "all" in node:
        results = [evaluate(n, record) for n in node["all"]]
        return False if False in results else (None if None in results else True)
    op = node["op"]
    negate = op.startswith("!")
    base = {"!=": "="}.get(op, op.lstrip("! "))
    result = _base(base, value_of(record, node["field"]), node.get("arg"))
    return (result is not True) if negate else result


def _base(op, x, arg):
    arg = [_norm(a) for a in arg] if isinstance(arg, list) else _norm(arg)
    if op in ("IS", "IS NOT") or (op == "=" and arg is None):
        same = (x is None and arg is None) or (x is not None and arg is not None and _cmp(x, arg) == 0)
        return same if op != "IS NOT" else not same
    if op == "IN":
        found = x is not None and any(a is not None and _cmp(x, a) == 0 for a in arg)
        if found or (x is None and None in arg):
            return True
        return None if x is None and any(a is not None for a in arg) else False
    if x is None:
        return None
    if op == "LIKE":
        return _like(x, arg)
    if op == "GLOB":
        return _glob(x, arg)
    if op == "BETWEEN":
        return _cmp(x, arg[0]) >= 0 and _cmp(x, arg[1]) <= 0
    c = _cmp(x, arg)
    return {"=": c == 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]


# -- query strategies ---------------------------------------------------------------------
@st.composite
def a_filter(draw):
    field = draw(st.sampled_from(sorted(FIELDS)))
    args = st.one_of(FIELDS[field], CROSS) if field.startswith("job_spec") else FIELDS[field]
    op = draw(st.sampled_from(sorted(OPS)))  # every op of the vocabulary
    arity = OPS[op].arity
    if arity == -1:
        arg = draw(st.lists(st.one_of(args, st.none()), max_size=4))
    elif op in ("LIKE", "GLOB"):
        arg = draw(st.text(alphabet="aAbB_%*?ING", max_size=5))
    elif arity == 0:
        arg = draw(maybe(args))
    elif arity == 2:
        arg = draw(st.lists(args, min_size=2, max_size=2))
    elif op == "=":
        arg = draw(maybe(args))
    else:
        arg = draw(args)
    if draw(st.booleans()) and op != "IS NOT":
        op = draw(st.sampled_from(["!", "! ", "!"])) + op if op != "=" else draw(st.sampled_from(["!=", "! =", "!="]))
    return {"field": field, "op": op, "arg": arg}


filters = st.recursive(
    a_filter(),
    lambda inner: st.one_of(st.builds(lambda xs: {"any": xs}, st.lists(inner, max_size=3)),
                            st.builds(lambda xs: {"all": xs}, st.lists(inner, max_size=3))),
    max_leaves=6,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(records=st.lists(job, min_size=1, max_size=25), query_filters=st.lists(filters, max_size=3))
def test_filters_select_what_the_model_selects(records, query_filters, make_dao):
    dao = make_dao()
    saved = dao.save_jobs([{**r, "key": f"k{i:02d}"} for i, r in enumerate(records)])
    got = sorted(j["key"] for j in dao.query_jobs({"filters": query_filters}))
    expected = sorted(r["key"] for r in saved if all(evaluate(f, r) is True for f in query_filters))
    assert got == expected
    assert dao.count_ents("job", {"filters": query_filters}) == len(expected)


def _padded(node, pad):
    """*node* with every IN list made long (with values no record holds), so it binds as a JSON array."""
    if "any" in node or "all" in node:
        key = "any" if "any" in node else "all"
        return {key: [_padded(n, pad) for n in node[key]]}
    if node["op"].lstrip("! ").upper() != "IN":
        return node
    extra = [x for x in pad if not isinstance(x, str)] if node["field"] == "created" else pad
    return {**node, "arg": [*extra, *node["arg"]]}


LONG_PAD = [f"~pad{i}" for i in range(200)] + [10_000.5 + i for i in range(200)] + list(range(1_000, 1_200))


@SETTINGS
@given(records=st.lists(job, min_size=1, max_size=25), query_filters=st.lists(filters, min_size=1, max_size=3))
def test_long_in_lists_select_what_short_ones_do(records, query_filters, make_dao):
    dao = make_dao()
    saved = dao.save_jobs([{**r, "key": f"k{i:02d}"} for i, r in enumerate(records)])
    long = [_padded(f, LONG_PAD) for f in query_filters]
    got = sorted(j["key"] for j in dao.query_jobs({"filters": long}))
    assert got == sorted(r["key"] for r in saved if all(evaluate(f, r) is True for f in query_filters))


def _negated(op: str) -> str:
    return op[1:].lstrip() if op.startswith("!") else "!" + op


@SETTINGS
@given(records=st.lists(job, min_size=1, max_size=15), f=a_filter())
def test_a_filter_and_its_negation_partition_the_table(records, f, make_dao):
    dao = make_dao()
    dao.save_jobs(records)
    pos = {j["key"] for j in dao.query_jobs({"filters": [f]})}
    neg = {j["key"] for j in dao.query_jobs({"filters": [{**f, "op": _negated(f["op"])}]})}
    assert pos.isdisjoint(neg)
    assert pos | neg == {j["key"] for j in dao.query_jobs()}


MUTATIONS = [
    lambda f: {**f, "field": "x" + f["field"]},
    lambda f: {**f, "op": "~" + f["op"]},
    lambda f: {**f, "op": "!!" + f["op"]},
    lambda f: {**f, "arg": {"a": 1}},
    lambda f: {**f, "op": "IN", "arg": "PENDING"},
    lambda f: {**f, "op": "BETWEEN", "arg": [1]},
    lambda f: {**f, "extra": 1},
    lambda f: {"any": f},
    lambda f: [f],
]


@SETTINGS
@given(records=st.lists(job, max_size=8), f=a_filter(), mutate=st.sampled_from(MUTATIONS),
       where=st.sampled_from(["filters", "order_by", "limit", "update"]))
def test_malformed_queries_raise_and_change_nothing(records, f, mutate, where, make_dao):
    dao = make_dao()
    dao.save_jobs(records)
    before = dao.query_jobs()
    bad = mutate(f)
    if where == "filters":
        query = {"filters": [bad]}
    elif where == "order_by":
        query = {"order_by": {"field": "x" + f["field"]}}
    else:
        query = {"limit": -1 if where == "limit" else "3"}
    for call in (lambda: dao.query_jobs(query), lambda: dao.update_jobs({"status": "X"}, query),
                 lambda: dao.claim_jobs(query), lambda: dao.query_jobs_df(query)):
        with pytest.raises(QueryError):
            call()
    assert dao.query_jobs() == before
