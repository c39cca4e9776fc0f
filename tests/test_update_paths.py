"""update_jobs with JSON-path updates, and requeue that fixes a spec field in the same compare-and-set."""

from __future__ import annotations

import pytest

from jobman_nb import QueryError, ReadOnlyError, requeue


def _save(dao):
    dao.save_jobs([
        {"key": "oom", "status": "FAILED",
         "job_spec": {"resources": {"mem_gb": 16, "cpus": 4}, "cfg": {"code": "orca"}}},
        {"key": "oom2", "status": "FAILED", "job_spec": {"resources": {"mem_gb": 8}}},
        {"key": "ok", "status": "COMPLETED", "job_spec": {"resources": {"mem_gb": 16}}},
        {"key": "nospec", "status": "FAILED", "job_spec": None},
    ])


def _spec(dao, key):
    return dao.get_job(key)["job_spec"]


def test_a_path_update_sets_one_key_and_keeps_the_rest(dao):
    _save(dao)
    failed = {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}]}
    assert dao.update_jobs({"job_spec.resources.mem_gb": 32, "job_spec.cfg.note": "more memory"}, failed) == {
        "rowcount": 3}
    assert _spec(dao, "oom") == {"resources": {"mem_gb": 32, "cpus": 4}, "cfg": {"code": "orca", "note": "more memory"}}
    assert _spec(dao, "oom2") == {"resources": {"mem_gb": 32}, "cfg": {"note": "more memory"}}
    assert _spec(dao, "nospec") == {"resources": {"mem_gb": 32}, "cfg": {"note": "more memory"}}
    assert _spec(dao, "ok") == {"resources": {"mem_gb": 16}}  # not matched, untouched
    # the new value is JSON: a number stays a number, a dict an object, and filters see it
    dao.update_jobs({"job_spec.extra": {"a": [1, None]}}, {"filters": [{"field": "key", "op": "=", "arg": "ok"}]})
    assert _spec(dao, "ok")["extra"] == {"a": [1, None]}
    assert dao.count_ents("job", {"filters": [{"field": "job_spec.resources.mem_gb", "op": ">", "arg": 20}]}) == 3


@pytest.mark.parametrize(("updates", "words"), [
    ({"job_spec": {}, "job_spec.resources.mem_gb": 1}, "set whole and through the path"),
    ({"status.x": 1}, "'status' is not a JSON field"),
    ({"nope.x": 1}, "unknown field 'nope.x'"),
    ({'job_spec.a"b': 1}, "bad key"),
    ({"job_spec.x": object()}, "cannot be stored as JSON"),
])
def test_bad_path_updates_raise_before_writing(dao, updates, words):
    _save(dao)
    before = dao.query_jobs()
    with pytest.raises(QueryError, match=words):
        dao.update_jobs(updates)
    assert dao.query_jobs() == before


def test_requeue_with_updates_is_compare_and_set(dao):
    _save(dao)
    seen = dao.query_jobs({"filters": [{"field": "status", "op": "=", "arg": "FAILED"}], "order_by": {"field": "key"}})
    # one job changes after it was seen: it must be skipped, and keep its spec
    dao.update_jobs({"status": "RUNNING"}, {"filters": [{"field": "key", "op": "=", "arg": "oom2"}]})
    out = requeue(dao, seen, from_statuses=["FAILED"], updates={"job_spec.resources.mem_gb": 64})
    assert dict(zip(out["key"], out["action"], strict=True)) == {"nospec": "requeued", "oom": "requeued",
                                                                  "oom2": "skipped"}
    assert out.set_index("key").loc["oom2", "reason"] == "changed"
    assert _spec(dao, "oom")["resources"] == {"mem_gb": 64, "cpus": 4}
    assert dao.get_job("oom")["status"] == "PENDING"
    assert _spec(dao, "oom2")["resources"] == {"mem_gb": 8}


def test_requeue_refuses_bad_updates_and_read_only(dao, tmp_path):
    _save(dao)
    before = dao.query_jobs()
    with pytest.raises(QueryError, match="unknown field"):
        requeue(dao, before, from_statuses=["FAILED"], updates={"nope.x": 1})
    assert dao.query_jobs() == before
    from jobman_nb import JobmanSqliteDAO
    path = tmp_path / "j.sqlite"
    with JobmanSqliteDAO(db_uri=str(path)) as rw:
        _save(rw)
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as ro, pytest.raises(ReadOnlyError):
        requeue(ro, ro.query_jobs(), updates={"job_spec.resources.mem_gb": 1})
