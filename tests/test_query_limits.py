"""Huge and deep queries: each works, or is a QueryError naming the limit before any SQL runs.

The limits (``jobman_nb.dao.query.MAX_*``) sit inside SQLite's own: its parser
stack (~94 nested parentheses before 3.46), expression depth (1,000), bound
variables (32,766) and result columns (2,000).
"""

from __future__ import annotations

import sys

import pytest

from jobman_nb import InsertError, JobmanSqliteDAO, QueryError
from jobman_nb.dao import query as q

N_JOBS = 40


@pytest.fixture
def jobs(tmp_path):
    dao = JobmanSqliteDAO(db_uri=str(tmp_path / "limits.sqlite"))
    dao.save_jobs([{"key": f"j{i:02d}", "status": ["PENDING", "RUNNING", "FAILED", "COMPLETED"][i % 4],
                    "created": float(i), "batchable": i % 3,
                    "job_spec": {"i": i, "é": f"v{i % 3}", "tag": None if i % 5 else "x"}}
                   for i in range(N_JOBS)])
    yield dao
    dao.close()


def keys(dao, query):
    return sorted(j["key"] for j in dao.query_jobs({**query, "fields": ["key"]}))


def traced(dao):
    statements: list[str] = []
    dao.connection.set_trace_callback(statements.append)
    return statements


def nest(node, depth, key="any"):
    for _ in range(depth):
        node = {key: [node]}
    return node


# the leaf that costs SQLite the most: a negated IN with None over a path that binds its keys
WORST_LEAF = {"field": "job_spec.é", "op": "NOT IN", "arg": [None, "v1", *(f"pad{i}" for i in range(300))]}


def test_groups_nested_to_the_limit_run_everywhere(jobs):
    deep = {"filters": [nest(WORST_LEAF, q.MAX_NESTING), nest({"field": "status", "op": "!=", "arg": "x"},
                                                              q.MAX_NESTING, "all")]}
    expected = sorted(f"j{i:02d}" for i in range(N_JOBS) if i % 3 != 1)
    assert keys(jobs, deep) == expected
    assert jobs.count_ents("job", deep) == len(expected)
    assert jobs.count_ents("job", {**deep, "limit": 5}, cap=3) == 3
    assert len(jobs.query_jobs_df(deep)) == len(expected)
    assert jobs.update_jobs({"source_tag": "t"}, {**deep, "order_by": {"field": "created"}, "limit": 4}) == \
        {"rowcount": 4}
    assert len(jobs.claim_jobs({**deep, "limit": 2})) == 2


@pytest.mark.parametrize("depth", [q.MAX_NESTING + 1, 91, 500, 5_000])
def test_deeper_groups_are_a_query_error_naming_the_limit(jobs, depth):
    statements = traced(jobs)
    with pytest.raises(QueryError, match=rf"nested more than {q.MAX_NESTING} deep \(MAX_NESTING\)"):
        jobs.query_jobs({"filters": [nest({"field": "status", "op": "=", "arg": "PENDING"}, depth)]})
    with pytest.raises(QueryError, match="MAX_NESTING"):
        jobs.claim_jobs({"filters": [nest({"field": "status", "op": "=", "arg": "PENDING"}, depth, "all")]})
    assert statements == []


@pytest.mark.parametrize("n", [1_000, q.MAX_FILTERS])
def test_many_flat_filters_work(jobs, n):
    many = [{"field": "key", "op": "!=", "arg": f"nope{i}"} for i in range(n - 1)]
    query = {"filters": [*many, {"field": "status", "op": "=", "arg": "FAILED"}]}
    assert keys(jobs, query) == [f"j{i:02d}" for i in range(2, N_JOBS, 4)]
    assert keys(jobs, {"filters": [{"any": [*many[:n - 1]]}]}) == sorted(f"j{i:02d}" for i in range(N_JOBS))


def test_the_most_filters_binding_the_most_values_run():
    # MAX_FILTERS x the filter binding the most values (two key spellings, twice, and a value)
    worst = {"field": "job_spec.é", "op": "IN", "arg": [None, "v2"]}
    with JobmanSqliteDAO() as dao:
        dao.save_jobs([{"key": "a", "job_spec": {"é": "v2"}}, {"key": "b", "job_spec": {"é": "v1"}}])
        assert keys(dao, {"filters": [worst] * q.MAX_FILTERS}) == ["a"]


def test_too_many_filters_is_a_query_error(jobs):
    statements = traced(jobs)
    flat = [{"field": "key", "op": "!=", "arg": str(i)} for i in range(q.MAX_FILTERS + 1)]
    with pytest.raises(QueryError, match=r"more than 2,000 filters and groups in one query \(MAX_FILTERS\)"):
        jobs.query_jobs({"filters": flat})
    with pytest.raises(QueryError, match="MAX_FILTERS"):
        jobs.update_jobs({"status": "x"}, {"filters": [{"any": flat}]})
    assert statements == []


def test_in_with_a_million_values_works(jobs):
    million = [f"k{i}" for i in range(1_000_000)]
    assert keys(jobs, {"filters": [{"field": "key", "op": "IN", "arg": [*million, "j03", "j07"]}]}) == ["j03", "j07"]


def test_long_in_lists_of_numbers_work_in_reads_and_writes(jobs):
    numbers = list(range(1_000, 101_000))
    assert keys(jobs, {"filters": [{"field": "created", "op": "IN", "arg": [*numbers, 5, 6.0]}]}) == ["j05", "j06"]
    assert keys(jobs, {"filters": [{"field": "job_spec.i", "op": "! IN", "arg": [*numbers, *range(1, N_JOBS)]}]}) \
        == ["j00"]
    assert jobs.update_jobs({"status": "DONE"}, {"filters": [{"field": "created", "op": "IN", "arg": numbers}]}) \
        == {"rowcount": 0}


@pytest.mark.parametrize(("field", "small", "expected"), [
    ("status", ["FAILED", 7], [f"j{i:02d}" for i in range(2, N_JOBS, 4)]),
    ("created", [3, 4.0, "1970-01-01T00:00:05Z"], ["j03", "j04", "j05"]),
    ("batchable", [0, "2"], [f"j{i:02d}" for i in range(N_JOBS) if i % 3 != 1]),  # a numeric column converts '2'
    ("key", [1, "j01"], ["j01"]),                               # a TEXT column converts numbers to text
    ("job_spec.i", [2, "3", 4.0], ["j02", "j04"]),              # a path converts nothing
    ("job_spec.tag", [None, "x"], [f"j{i:02d}" for i in range(N_JOBS)]),
    ("job_spec", [{"i": 1, "é": "v1", "tag": None}], ["j01"]),  # whole JSON compares JSON text
])
def test_a_long_in_list_selects_what_a_short_one_does(jobs, field, small, expected):
    pad = [f"pad{i}" for i in range(q.IN_LIST_BIND_MAX)] + [10_000.5 + i for i in range(q.IN_LIST_BIND_MAX)]
    if field == "job_spec":
        pad = [{"pad": i} for i in range(2 * q.IN_LIST_BIND_MAX)]
    elif field == "created":  # strings there must be dates
        pad = [10_000.5 + i for i in range(2 * q.IN_LIST_BIND_MAX)]
    short = keys(jobs, {"filters": [{"field": field, "op": "IN", "arg": small}]})
    long = keys(jobs, {"filters": [{"field": field, "op": "IN", "arg": [*pad, *small]}]})
    negated = keys(jobs, {"filters": [{"field": field, "op": "NOT IN", "arg": [*pad, *small]}]})
    if field == "job_spec.tag":
        expected = sorted(f"j{i:02d}" for i in range(N_JOBS))
    assert short == long == sorted(expected)
    assert sorted(negated + long) == sorted(f"j{i:02d}" for i in range(N_JOBS))


def test_a_long_in_list_with_nul_characters(jobs):
    jobs.save_jobs([{"key": "a\x00b", "status": "X"}])
    pad = [f"pad{i}" for i in range(2 * q.IN_LIST_BIND_MAX)]
    assert keys(jobs, {"filters": [{"field": "key", "op": "IN", "arg": [*pad, "a\x00b", "j01"]}]}) == \
        ["a\x00b", "j01"]
    with pytest.raises(QueryError, match=r"binds [\d,]+ values; SQLite takes at most 32,000 .*\(MAX_VARIABLES\)"):
        jobs.query_jobs({"filters": [{"field": "key", "op": "IN", "arg": [f"\x00{i}" for i in range(40_000)]}]})


def deep_json(depth):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("call", [
    lambda d, v: d.query_jobs({"filters": [{"field": "job_spec", "op": "=", "arg": v}]}),
    lambda d, v: d.query_jobs({"filters": [{"field": "job_spec", "op": "IN", "arg": [v]}]}),
    lambda d, v: d.query_jobs({"filters": [{"field": "status", "op": "=", "arg": v}]}),
    lambda d, v: d.update_jobs({"job_spec": v}),
    lambda d, v: d.update_kvp("k", v),
], ids=["=", "IN", "not JSON", "update", "update_kvp"])
def test_a_json_argument_nested_5000_deep_is_a_query_error(jobs, call):
    statements = traced(jobs)
    with pytest.raises(QueryError) as info:
        call(jobs, deep_json(5_000))
    assert len(str(info.value)) < 500  # the message shows a shortened value
    assert statements == []


def test_fields_and_order_by_have_a_limit(jobs):
    statements = traced(jobs)
    paths = [f"job_spec.p{i}" for i in range(q.MAX_TERMS + 1)]
    with pytest.raises(QueryError, match=r"fields: 1,001 fields; at most 1,000 \(MAX_TERMS\)"):
        jobs.query_jobs({"fields": paths})
    with pytest.raises(QueryError, match=r"order_by: 1,001 terms; at most 1,000 \(MAX_TERMS\)"):
        jobs.query_jobs({"order_by": [{"field": p} for p in paths]})
    assert statements == []
    statements.clear()
    assert len(jobs.query_jobs({"fields": ["key", *paths[:q.MAX_TERMS - 1]], "limit": 1})[0]) == q.MAX_TERMS
    assert len(jobs.query_jobs({"order_by": [{"field": p} for p in paths[:q.MAX_TERMS]], "limit": 1})) == 1


@pytest.fixture
def deep_recursion():
    """A recursion limit at which every Python serializes JSON past SQLite's depth (3.13's default)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    yield
    sys.setrecursionlimit(limit)


def test_save_jobs_stores_json_up_to_sqlites_depth_and_refuses_deeper(jobs, deep_recursion):
    deepest = deep_json(q.JSON_MAX_DEPTH - 1)  # in a job_spec object: JSON_MAX_DEPTH deep
    jobs.save_jobs([{"key": "deepest", "status": "PENDING", "job_spec": {"v": deepest}}])
    # SQLite's JSON functions read what was stored: a filter on the job_spec finds it
    assert keys(jobs, {"filters": [{"field": "job_spec.v", "op": "IS NOT", "arg": None}]}) == ["deepest"]
    statements = traced(jobs)
    with pytest.raises(InsertError, match=r"record 1 \(key 'too-deep'\), field 'job_spec'.*nested more "
                                          r"than 1,000 deep"):
        jobs.save_jobs([{"key": "fine", "status": "PENDING"},
                        {"key": "too-deep", "status": "PENDING", "job_spec": {"v": [deepest]}}])
    assert not any(s.lstrip().upper().startswith(("INSERT", "UPDATE")) for s in statements)
    assert jobs.count_ents("job") == N_JOBS + 1  # nothing of the refused call was written
