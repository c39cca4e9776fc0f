"""The query builder holding very large queries: its preview stays bounded, its lists round-trip.

A form given 100,000 IN values (pasted, or assigned from code) used to spend seconds
pretty-printing all of them into the query preview. The preview now shows a bounded
part; ``builder.query`` keeps everything. Bounded by length, not time.
"""

from __future__ import annotations

import html
import re

import pytest

from jobman_nb import JobmanSqliteDAO, QueryError
from jobman_nb.widgets import QueryBuilder
from jobman_nb.widgets import query_builder as qb_module
from jobman_nb.widgets._fields import join_list, split_list

N = 100_000
#: The preview's text may not grow past its cap, plus its HTML wrapper and the "cut" note.
BOUND = qb_module.PREVIEW_CHARS + 1_000


@pytest.fixture
def dao():
    with JobmanSqliteDAO(db_uri=":memory:") as d:
        d.save_jobs([{"key": f"k{i}", "status": "PENDING", "job_spec": {"note": "n", "cpus": 2}} for i in range(30)])
        yield d


def _preview(qb: QueryBuilder) -> str:
    """The text of the builder's query preview (the <pre> shown under the form)."""
    match = re.search(r"<pre[^>]*>(.*)</pre>", qb._code.value, flags=re.DOTALL)
    assert match, qb._code.value
    return html.unescape(match.group(1))


def test_a_hundred_thousand_in_values_give_a_bounded_preview_and_keep_the_query(dao):
    keys = [f"k{i}" for i in range(N)]
    qb = QueryBuilder(dao, query={"filters": [{"field": "key", "op": "IN", "arg": keys}]})
    try:
        assert len(qb._code.value) < BOUND
        text = _preview(qb)
        assert f"{N - qb_module.PREVIEW_ITEMS:,} more, {N:,} in all" in text
        assert "shortened" in qb._code.value
        assert qb.query["filters"][0]["arg"] == keys  # the trait holds every value
        assert len(qb.run()) == 30
    finally:
        qb.close()


@pytest.mark.parametrize("query", [
    {"filters": [{"field": "key", "op": "=", "arg": "x" * 1_000_000}]},
    {"filters": [{"field": "job_spec.note", "op": "=", "arg": f"n{i}"} for i in range(30)]},
    {"filters": [{"field": "key", "op": "IN", "arg": ["y" * 300] * 2_000}]},
], ids=["one huge string", "30 filters", "2,000 long values"])
def test_the_preview_stays_bounded_whatever_makes_the_query_large(dao, query):
    qb = QueryBuilder(dao, query=query)
    try:
        assert len(qb._code.value) < BOUND
        assert "shortened" in qb._code.value
    finally:
        qb.close()


def test_a_small_query_preview_is_complete_python_that_gives_the_query_back(dao):
    query = {"filters": [{"field": "key", "op": "IN", "arg": ["k1", "a,b", 'q"t']}],
             "order_by": {"field": "created", "direction": "DESC"}, "limit": 7}
    qb = QueryBuilder(dao, query=query)
    try:
        assert "shortened" not in qb._code.value
        scope: dict = {}
        exec(_preview(qb), scope)  # the preview says: copy into code
        assert scope["query"] == qb.query
    finally:
        qb.close()


def test_a_shortened_preview_is_not_valid_python(dao):
    """Pasting a cut preview must fail loudly, not run a query with fewer values."""
    qb = QueryBuilder(dao, query={"filters": [{"field": "key", "op": "IN", "arg": [f"k{i}" for i in range(50)]}]})
    try:
        with pytest.raises(SyntaxError):
            exec(_preview(qb), {})
    finally:
        qb.close()


@pytest.mark.parametrize(("field", "values", "shown"), [
    ("key", [f"k{i}" for i in range(N)] + [5], "5"),
    ("job_spec.cpus", [*range(N), True], "True"),
    ("job_spec.cpus", [*range(N), "8"], "'8'"),
], ids=["a number among texts", "a bool among numbers", "a text among numbers"])
def test_a_value_the_form_cannot_show_is_refused_even_last_in_a_long_list(dao, field, values, shown):
    qb = QueryBuilder(dao)
    try:
        with pytest.raises(QueryError, match=f"cannot show {shown} as a value"):
            qb.query = {"filters": [{"field": field, "op": "IN", "arg": values}]}
        assert "filters" not in qb.query  # the form keeps its last valid query
    finally:
        qb.close()


@pytest.mark.parametrize("items", [
    ["plain", "two words", "é"],
    ["a,b", 'q"t', '"', "line\nbreak", "cr\rreturn", "end,"],
])
def test_join_list_round_trips_through_split_list(items):
    assert split_list(join_list(items)) == items


def test_join_list_of_many_plain_values_adds_only_separators():
    items = [f"v{i}" for i in range(N)]
    joined = join_list(items)
    assert len(joined) == sum(map(len, items)) + 2 * (N - 1)
    assert split_list(joined) == items
