"""The query-dict language, black-box through the DAO."""

from __future__ import annotations

import pytest

from jobman_nb import JobmanSqliteDAO, QueryError

JOBS = [
    {"key": "a", "status": "PENDING", "source_key": "s1", "batchable": 1,
     "job_spec": {"resources": {"cpus": 1, "mem_gb": 2.5}, "cfg": {"code": "xtb"}, "tags": ["x"]}},
    {"key": "b", "status": "RUNNING", "source_key": "s1", "batchable": 0,
     "job_spec": {"resources": {"cpus": 4, "mem_gb": 16}, "cfg": {"code": "orca"}}},
    {"key": "c", "status": "FAILED", "source_key": "s2", "batchable": None,
     "job_spec": {"resources": {"cpus": 16}, "cfg": {"code": "orca", "flag": True}}},
    {"key": "d", "status": "COMPLETED", "source_key": None, "batchable": 1,
     "job_spec": {"resources": {"cpus": 8}, "cfg": {"code": "psi4"}}},
    {"key": "e", "status": None, "source_key": "s3", "job_spec": None},
]


@pytest.fixture
def jobs_dao():
    dao = JobmanSqliteDAO()
    for i, job in enumerate(JOBS):  # distinct created times for ordering
        dao.save_jobs([{**job, "created": 100.0 + i}])
    yield dao
    dao.close()


def keys(dao, query):
    return sorted(j["key"] for j in dao.query_jobs(query))


def flt(field, op, arg=None, **kw):
    f = {"field": field, "op": op, **kw}
    if arg is not None or op in ("=", "!=", "IS", "IS NOT"):
        f["arg"] = arg
    return {"filters": [f]}


@pytest.mark.parametrize(
    ("field", "op", "arg", "expected"),
    [
        ("status", "=", "FAILED", ["c"]),
        ("status", "==", "FAILED", ["c"]),
        ("status", "!=", "FAILED", ["a", "b", "d", "e"]),  # negated '=' also matches NULL, as in jobman
        ("status", "! =", "FAILED", ["a", "b", "d", "e"]),
        ("status", "<>", "FAILED", ["a", "b", "d", "e"]),
        ("status", "IN", ["PENDING", "RUNNING"], ["a", "b"]),
        ("status", "in", ("PENDING",), ["a"]),
        ("status", "! IN", ["PENDING", "RUNNING"], ["c", "d", "e"]),
        ("status", "NOT IN", ["PENDING", "RUNNING"], ["c", "d", "e"]),
        ("status", "IN", [], []),
        ("status", "! IN", [], ["a", "b", "c", "d", "e"]),
        ("status", "IN", ["FAILED", None], ["c", "e"]),
        ("status", "LIKE", "%ING", ["a", "b"]),
        ("status", "like", "%ing", ["a", "b"]),  # LIKE is case-insensitive
        ("status", "GLOB", "*ING", ["a", "b"]),
        ("status", "GLOB", "*ing", []),
        ("status", "!LIKE", "%ING", ["c", "d", "e"]),
        ("status", "IS", None, ["e"]),
        ("status", "IS NOT", None, ["a", "b", "c", "d"]),
        ("status", "=", None, ["e"]),
        ("batchable", "=", 1, ["a", "d"]),
        ("batchable", "=", True, ["a", "d"]),
        ("batchable", "<", 1, ["b"]),
        ("batchable", "!<", 1, ["a", "c", "d", "e"]),
        ("created", ">=", 102.0, ["c", "d", "e"]),
        ("created", "BETWEEN", [101, 103], ["b", "c", "d"]),
        ("created", "NOT BETWEEN", [101, 103], ["a", "e"]),
        ("job_spec.resources.cpus", ">=", 4, ["b", "c", "d"]),
        ("job_spec.resources.cpus", ">", 10, ["c"]),  # numbers compare as numbers, not text
        ("job_spec.resources.mem_gb", "<", 3, ["a"]),
        ("job_spec.resources.mem_gb", "IS", None, ["c", "d", "e"]),
        ("job_spec.cfg.code", "=", "orca", ["b", "c"]),
        ("job_spec.cfg.code", "IN", ["xtb", "psi4"], ["a", "d"]),
        ("job_spec.cfg.code", "!=", "orca", ["a", "d", "e"]),
        ("job_spec.cfg.flag", "=", True, ["c"]),
        ("job_spec.cfg", "IS NOT", None, ["a", "b", "c", "d"]),
        ("job_spec", "IS", None, ["e"]),
        ("job_spec", "=", {"resources": {"cpus": 8}, "cfg": {"code": "psi4"}}, ["d"]),
        ("job_spec", "LIKE", "%orca%", ["b", "c"]),
    ],
)
def test_ops(jobs_dao, field, op, arg, expected):
    f = {"field": field, "op": op, "arg": arg}
    assert keys(jobs_dao, {"filters": [f]}) == expected


def test_negation_is_the_complement(jobs_dao):
    everything = keys(jobs_dao, None)
    for f in [("status", "=", "FAILED"), ("job_spec.resources.cpus", ">", 2), ("batchable", "IN", [0, 1]),
              ("status", "LIKE", "%ING"), ("created", "BETWEEN", [101, 102])]:
        pos = keys(jobs_dao, flt(*f))
        neg = keys(jobs_dao, flt(f[0], "!" + f[1], f[2]))
        assert sorted(pos + neg) == everything


def test_is_without_arg_means_null(jobs_dao):
    assert keys(jobs_dao, {"filters": [{"field": "status", "op": "IS"}]}) == ["e"]


def test_filters_are_anded_and_groups_nest(jobs_dao):
    q = {"filters": [
        {"field": "source_key", "op": "=", "arg": "s1"},
        {"any": [{"field": "status", "op": "=", "arg": "RUNNING"},
                 {"all": [{"field": "batchable", "op": "=", "arg": 1},
                          {"field": "job_spec.cfg.code", "op": "=", "arg": "xtb"}]}]},
    ]}
    assert keys(jobs_dao, q) == ["a", "b"]
    assert keys(jobs_dao, {"filters": [{"any": []}]}) == []
    assert keys(jobs_dao, {"filters": [{"all": []}]}) == ["a", "b", "c", "d", "e"]
    assert keys(jobs_dao, {"filters": [{"any": [{"field": "status", "op": "=", "arg": "FAILED"},
                                                {"field": "source_key", "op": "IS", "arg": None}]}]}) == ["c", "d"]


def test_order_limit_offset(jobs_dao):
    q = {"order_by": {"field": "created", "direction": "desc"}}
    assert [j["key"] for j in jobs_dao.query_jobs(q)] == ["e", "d", "c", "b", "a"]
    q = {"order_by": [{"field": "source_key"}, {"field": "created", "direction": "DESC"}]}
    assert [j["key"] for j in jobs_dao.query_jobs(q)] == ["d", "b", "a", "c", "e"]  # NULL sorts first
    q = {"order_by": {"field": "job_spec.resources.cpus", "direction": "DESC"}, "limit": 2}
    assert [j["key"] for j in jobs_dao.query_jobs(q)] == ["c", "d"]
    q = {"order_by": {"field": "created"}, "limit": 2, "offset": 1}
    assert [j["key"] for j in jobs_dao.query_jobs(q)] == ["b", "c"]
    q = {"order_by": {"field": "created"}, "offset": 3}
    assert [j["key"] for j in jobs_dao.query_jobs(q)] == ["d", "e"]
    assert jobs_dao.query_jobs({"limit": 0}) == []


def test_fields_projection(jobs_dao):
    q = {"fields": ["key", "status", "job_spec.resources.cpus", "job_spec.cfg"],
         "filters": [{"field": "key", "op": "IN", "arg": ["a", "e"]}], "order_by": {"field": "key"}}
    assert jobs_dao.query_jobs(q) == [
        {"key": "a", "status": "PENDING", "job_spec.resources.cpus": 1, "job_spec.cfg": {"code": "xtb"}},
        {"key": "e", "status": None, "job_spec.resources.cpus": None, "job_spec.cfg": None},
    ]


def test_count_and_validate(jobs_dao):
    assert jobs_dao.count_ents("job", flt("status", "IS NOT", None)) == 4
    assert jobs_dao.validate_query("job", {"limit": 3}) == {"limit": 3}
    with pytest.raises(QueryError):
        jobs_dao.validate_query("job", {"limit": -3})


BAD_QUERIES = [
    ("not a dict", "a query must be a dict"),
    ({"filter": []}, "unknown key 'filter'.*did you mean 'filters'"),
    ({"filters": {"field": "status"}}, "filters: expected a list"),
    ({"filters": "status = 1"}, "filters: expected a list"),
    ({"filters": ["status"]}, r"filters\[0\]: a filter must be a dict"),
    ({"filters": [{"field": "staus", "op": "=", "arg": 1}]}, "unknown field 'staus'.*did you mean 'status'"),
    ({"filters": [{"field": "status", "op": "~", "arg": 1}]}, "unknown op '~'"),
    ({"filters": [{"field": "status", "op": "!!=", "arg": 1}]}, "negate at most once"),
    ({"filters": [{"field": "status", "op": 3, "arg": 1}]}, "op must be a string"),
    ({"filters": [{"field": "status", "arg": 1}]}, "has no 'op'"),
    ({"filters": [{"op": "=", "arg": 1}]}, "has no 'field'"),
    ({"filters": [{"field": "status", "op": "="}]}, "has no 'arg'"),
    ({"filters": [{"field": "status", "op": "=", "arg": 1, "value": 2}]}, "unknown key 'value'"),
    ({"filters": [{"field": "status", "op": "IN", "arg": "PENDING"}]}, "'IN' takes a list"),
    ({"filters": [{"field": "status", "op": "IN", "arg": 5}]}, "'IN' takes a list"),
    ({"filters": [{"field": "status", "op": "LIKE", "arg": 5}]}, "takes a pattern string"),
    ({"filters": [{"field": "created", "op": "BETWEEN", "arg": [1]}]}, "two values"),
    ({"filters": [{"field": "status", "op": "=", "arg": {"a": 1}}]}, "not accepted"),
    ({"filters": [{"field": "status", "op": "=", "arg": b"x"}]}, "not accepted"),
    ({"filters": [{"field": "created", "op": ">", "arg": float("nan")}]}, "finite"),
    ({"filters": [{"field": "created", "op": ">", "arg": 2**70}]}, "64-bit"),
    ({"filters": [{"field": "status", "op": "=", "arg": "\ud800"}]}, "not valid Unicode"),
    ({"filters": [{"field": "created", "op": "<", "arg": None}]}, "None is not accepted"),
    ({"filters": [{"field": "status.x", "op": "=", "arg": 1}]}, "'status' is not a JSON field"),
    ({"filters": [{"field": "job_spec..x", "op": "=", "arg": 1}]}, "bad key"),
    ({"filters": [{"field": "job_spec", "op": ">", "arg": 1}]}, "whole JSON field"),
    ({"filters": [{"any": [], "all": []}]}, "exactly one key"),
    ({"filters": [{"any": {"field": "status"}}]}, r"filters\[0\].any: expected a list"),
    ({"filters": [{"any": [{"field": "nope", "op": "=", "arg": 1}]}]}, r"filters\[0\].any\[0\].field: unknown field"),
    ({"order_by": "created"}, "order_by: expected"),
    ({"order_by": {"field": "created", "direction": "UP"}}, "unknown direction 'UP'"),
    ({"order_by": {"field": "nope"}}, "unknown field 'nope'"),
    ({"order_by": {"fields": "created"}}, "unknown key 'fields'"),
    ({"limit": -1}, "limit: expected an integer >= 0"),
    ({"limit": "10"}, "limit: expected an integer"),
    ({"limit": True}, "limit: expected an integer"),
    ({"limit": 1.5}, "limit: expected an integer"),
    ({"offset": -2}, "offset: expected an integer"),
    ({"fields": "key"}, "fields: expected a non-empty list"),
    ({"fields": []}, "fields: expected a non-empty list"),
    ({"fields": ["key", "key"]}, "listed twice"),
    ({"fields": ["key", "nope"]}, r"fields\[1\]: unknown field"),
]


@pytest.mark.parametrize(("query", "message"), BAD_QUERIES)
def test_malformed_queries_raise_query_error_naming_the_part(jobs_dao, query, message):
    before = jobs_dao.query_jobs()
    with pytest.raises(QueryError, match=message):
        jobs_dao.query_jobs(query)
    # the same query cannot write through update_jobs or claim_jobs either
    if isinstance(query, dict) and "fields" not in query:
        with pytest.raises(QueryError):
            jobs_dao.update_jobs({"status": "X"}, query)
        with pytest.raises(QueryError):
            jobs_dao.claim_jobs(query)
    assert jobs_dao.query_jobs() == before


def test_query_error_is_a_value_error():
    assert issubclass(QueryError, ValueError)


INJECTIONS = [
    "status; DROP TABLE jobman_job; --",
    'status" = status OR "1',
    "key FROM jobman_job; --",
    "job_spec.a') OR 1=1 --",
    'job_spec.a"."b',
    "1=1",
    "*",
    "rowid",
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_through_identifier_positions_fails(jobs_dao, evil):
    before = jobs_dao.query_jobs()
    attempts = [
        {"filters": [{"field": evil, "op": "=", "arg": 1}]},
        {"filters": [{"field": "status", "op": evil, "arg": 1}]},
        {"order_by": {"field": evil}},
        {"order_by": {"field": "status", "direction": evil}},
        {"fields": [evil]},
        {"limit": evil},
        {"offset": evil},
    ]
    for q in attempts:
        if evil.startswith("job_spec.") and "limit" not in q and "offset" not in q and "direction" not in str(q):
            # a dotted path into a JSON field: an odd key, bound as a parameter, that matches nothing
            try:
                result = jobs_dao.query_jobs(q)
            except QueryError:
                continue
            assert all(v is None for r in result for k, v in r.items() if k == evil)
            assert len(result) in (0, len(before))
            continue
        with pytest.raises(QueryError):
            jobs_dao.query_jobs(q)
    if not evil.startswith("job_spec."):
        with pytest.raises(QueryError):
            jobs_dao.update_jobs({evil: 1})
    with pytest.raises(QueryError):
        jobs_dao.query_ents(evil)
    assert jobs_dao.query_jobs() == before
    assert jobs_dao.db.table_names() == ["jobman_job", "jobman_kvp"]
    if evil.startswith("job_spec."):
        # a JSON-path update: the odd key is a bound parameter, so at most it sets that one key
        try:
            jobs_dao.update_jobs({evil: 1})
        except QueryError:
            return
        key = evil.partition(".")[2]
        after = jobs_dao.query_jobs()
        assert all({**(r["job_spec"] or {}), key: 1} == a["job_spec"] for r, a in zip(before, after, strict=True))
        assert [r["status"] for r in after] == [r["status"] for r in before]


def test_values_are_bound_not_pasted(jobs_dao):
    evil = "x' OR '1'='1"
    assert jobs_dao.query_jobs(flt("status", "=", evil)) == []
    assert jobs_dao.query_jobs(flt("job_spec.cfg.code", "=", evil)) == []
    jobs_dao.create_job({"key": evil, "status": evil})
    assert [j["key"] for j in jobs_dao.query_jobs(flt("status", "=", evil))] == [evil]


def test_json_keys_outside_the_literal_alphabet_are_bound(jobs_dao):
    jobs_dao.create_job({"key": "u", "job_spec": {"wéird key!": {"ç": 5}}})
    assert keys(jobs_dao, flt("job_spec.wéird key!.ç", "=", 5)) == ["u"]
    assert jobs_dao.query_jobs({"fields": ["job_spec.wéird key!.ç"], "filters": flt("key", "=", "u")["filters"]}) \
        == [{"job_spec.wéird key!.ç": 5}]
