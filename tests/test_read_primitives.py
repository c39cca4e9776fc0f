"""The DAO's public read primitives: rows of a compiled query, capped counts, counts by field, distinct values,
sampled JSON paths, check_writable."""

from __future__ import annotations

import pytest

from jobman_nb import JobmanSqliteDAO, QueryError, ReadOnlyError


@pytest.fixture
def dao():
    with JobmanSqliteDAO() as d:
        d.save_jobs([{"key": f"k{i:02d}", "status": ["PENDING", "FAILED", "COMPLETED"][i % 3],
                      "job_spec": {"n": i, "cfg": {"code": "ab"[i % 2]}, **({"odd": True} if i % 2 else {})}}
                     for i in range(30)])
        yield d


def test_iter_rows_yields_plain_tuples_of_a_compiled_query_in_chunks(dao):
    select = dao.compile_query("job", {"fields": ["key", "job_spec.n"], "order_by": {"field": "key"}})
    chunks = list(dao.iter_rows(select, chunksize=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    assert select.names == ["key", "job_spec.n"] and chunks[0][0] == ("k00", "0")  # JSON text, undecoded
    with pytest.raises(ValueError, match="chunksize"):
        dao.iter_rows(select, chunksize=0)


def test_count_caps_and_ignores_order(dao):
    assert dao.count_ents("job") == 30
    assert dao.count_ents("job", cap=5) == 5 and dao.count_ents("job", cap=100) == 30
    q = {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}], "order_by": {"field": "job_spec.n"}}
    assert dao.count_ents("job", q) == 10 and dao.count_ents("job", q, cap=3) == 3
    assert dao.count_ents("job", {**q, "limit": 4, "offset": 8}) == 2  # limit and offset still count
    with pytest.raises(QueryError):
        dao.count_ents("job", {**q, "order_by": {"field": "nope"}})  # validated even though unused
    with pytest.raises(QueryError, match="cap"):
        dao.count_ents("job", cap=-1)


def test_count_by_field_or_path(dao):
    assert dao.count_by("job", "status") == {"COMPLETED": 10, "FAILED": 10, "PENDING": 10}
    assert dao.count_by("job", "job_spec.cfg.code", {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}]}) \
        == {"a": 5, "b": 5}
    assert dao.count_by("job", "job_spec.odd") == {None: 15, 1: 15}
    with pytest.raises(QueryError, match="unknown field"):
        dao.count_by("job", "stat")


def test_distinct_values_are_sorted_and_bounded(dao):
    assert dao.distinct_values("job", "status") == ["COMPLETED", "FAILED", "PENDING"]
    assert dao.distinct_values("job", "status", limit=2) == ["COMPLETED", "FAILED"]
    assert dao.distinct_values("job", "job_spec.cfg.code", {"limit": 1, "order_by": {"field": "key"}}) == ["a"]
    with pytest.raises(QueryError, match="limit"):
        dao.distinct_values("job", "status", limit=-1)


def test_sample_json_paths_finds_leaves_and_their_types(dao):
    paths = dao.sample_json_paths("job", "job_spec")
    assert paths == {"job_spec.cfg.code": {"text"}, "job_spec.n": {"integer"}, "job_spec.odd": {"true"}}
    assert list(dao.sample_json_paths("job", "job_spec", max_paths=1)) == ["job_spec.cfg.code"]
    with pytest.raises(QueryError, match="not a JSON field"):
        dao.sample_json_paths("job", "status")


def test_check_writable_is_public(tmp_path):
    path = str(tmp_path / "a.sqlite")
    JobmanSqliteDAO(db_uri=path).close()
    with JobmanSqliteDAO(db_uri=path, read_only=True) as ro:
        with pytest.raises(ReadOnlyError, match="read-only"):
            ro.check_writable()
        assert ro.count_by("job", "status") == {} and ro.distinct_values("job", "status") == []
    with JobmanSqliteDAO(db_uri=path) as rw:
        rw.check_writable()
        assert rw.get_orm("job").table == "jobman_job"
        with pytest.raises(QueryError, match="unknown ent_type"):
            rw.get_orm("nope")
