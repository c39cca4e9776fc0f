"""The jobman.dao API as jobman_nb.dao: every seed method, on memory and file databases."""

from __future__ import annotations

import json
import math
import os
import sqlite3

import pytest
import sqlite_utils

import jobman_nb
from jobman_nb import JOB_STATUSES, InsertError, IntegrityError, QueryError, ReadOnlyError, SchemaError, UpdateError
from jobman_nb.dao import utils
from jobman_nb.dao.engine_sqlite_dao import EngineSqliteDAO
from jobman_nb.dao.jobman_sqlite_dao import JobmanSqliteDAO
from jobman_nb.dao.jobs_dao_mixin import JobsDaoMixin
from jobman_nb.dao.orm import ORM
from jobman_nb.dao.sqlite_dao import SqliteDAO
from jobman_nb.dao.worker_sqlite_dao import WorkerSqliteDAO


@pytest.fixture(params=["memory", "file"])
def any_dao(request, tmp_path):
    uri = ":memory:" if request.param == "memory" else str(tmp_path / "db.sqlite")
    d = JobmanSqliteDAO(db_uri=uri)
    yield d
    d.close()


# -- utils ------------------------------------------------------------------------------
def test_generators():
    key = utils.generate_key()
    assert len(key) == 36 and key != utils.generate_key()
    assert utils.generate_uuid().count("-") == 4
    assert isinstance(utils.generate_timestamp(), float)
    fields = utils.generate_timestamp_fields()
    assert fields["created"]["type"] == "FLOAT" and callable(fields["created"]["default"])
    assert callable(fields["modified"]["auto_update"])


def test_schema_merges_fields_along_mro_and_documents_them():
    class Base(utils.TimestampedSchemaMixin, utils.Schema):
        key = {"type": "TEXT", "primary_key": True}
        status = {"type": "TEXT", "doc": "where it is"}

    class Child(Base):
        status = {"type": "INTEGER"}
        extra = {"type": "JSON"}

    assert list(Base.get_field_infos()) == ["created", "modified", "key", "status"]
    infos = Child.get_field_infos()
    assert list(infos) == ["created", "modified", "key", "status", "extra"]
    assert infos["status"]["type"] == "INTEGER"
    assert "where it is" in Base.__doc__
    assert isinstance(Base, utils.SchemaMeta)


def test_job_schemas_match_the_seed():
    assert list(JobmanSqliteDAO.JobSchema.get_field_infos()) == [
        "created", "modified", "key", "job_spec", "status", "batchable", "worker_key", "worker_meta", "errors",
        "source_key", "source_meta", "source_tag", "purgeable"]
    assert list(WorkerSqliteDAO.JobSchema.get_field_infos()) == [
        "created", "modified", "key", "status", "batchable", "batch_meta", "is_batch", "parent_batch_key",
        "engine_key", "engine_meta"]
    assert list(EngineSqliteDAO.JobSchema.get_field_infos()) == ["created", "modified", "key", "status"]
    assert JOB_STATUSES.CLAIMED == "CLAIMED" and JobsDaoMixin.JOB_STATUSES is JOB_STATUSES
    for name in ("CLAIMED", "COMPLETED", "EXECUTED", "FAILED", "PENDING", "RUNNING", "UNKNOWN"):
        assert getattr(JOB_STATUSES, name) == name
    assert jobman_nb.STATUSES == tuple(sorted(jobman_nb.STATUSES)) and len(jobman_nb.STATUSES) == 7


def test_nested_error_classes_stay_importable():
    for cls in (SqliteDAO, ORM, JobmanSqliteDAO):
        assert cls.InsertError is InsertError and cls.UpdateError is UpdateError
        assert cls.IntegrityError is IntegrityError
    assert issubclass(IntegrityError, InsertError)


# -- db_uri and initialize --------------------------------------------------------------
@pytest.mark.parametrize("uri", [":memory:", "sqlite://"])
def test_memory_uris(uri, make_dao):
    dao = make_dao(db_uri=uri)
    assert dao.path is None
    dao.create_job({"status": "PENDING"})
    assert len(dao.query_jobs()) == 1


def test_file_uris(tmp_path, monkeypatch, make_dao):
    monkeypatch.chdir(tmp_path)
    make_dao(db_uri="sqlite:///rel.sqlite").create_job({"key": "r"})
    assert (tmp_path / "rel.sqlite").exists()
    absolute = tmp_path / "abs.sqlite"
    make_dao(db_uri=f"sqlite:///{absolute}").create_job({"key": "a"})  # sqlite:////abs/path
    assert make_dao(db_uri=str(absolute)).get_job("a")["key"] == "a"
    make_dao(db_uri=tmp_path / "pathlike.sqlite").create_job({"key": "p"})
    assert (tmp_path / "pathlike.sqlite").exists()
    with pytest.raises(ValueError, match="unsupported db_uri"):
        JobmanSqliteDAO(db_uri="sqlite://host/x")


def test_initialize_false_creates_nothing(tmp_path, make_dao):
    path = tmp_path / "none.sqlite"
    dao = make_dao(db_uri=str(path), initialize=False)
    assert dao.db.table_names() == []
    dao.ensure_tables()
    assert set(dao.db.table_names()) == {"jobman_job", "jobman_kvp"}
    dao.initialize()  # idempotent
    assert dao.db is dao.db and isinstance(dao.db, sqlite_utils.Database)
    assert isinstance(dao.connection, sqlite3.Connection)


def test_generic_sqlite_dao_with_orm_specs_and_prefix(make_dao):
    dao = make_dao(SqliteDAO, orm_specs=[{"name": "thing", "fields": {"key": {"type": "TEXT", "primary_key": True},
                                                            "data": {"type": "JSON"}, "n": {"type": "INTEGER"}}}],
                    table_prefix="x_", include_kvp_orm=False)
    assert dao.db.table_names() == ["x_thing"]
    ent = dao.create_ent("thing", {"key": "k", "data": [1, {"a": None}], "n": 3})
    assert dao.get_ent("thing", "k") == ent == {"key": "k", "data": [1, {"a": None}], "n": 3}
    assert dao.query_ents("thing", {"filters": [{"field": "data", "op": "LIKE", "arg": "%a%"}]}) == [ent]
    assert dao.update_ents("thing", {"n": 4}, {"filters": [{"field": "key", "op": "=", "arg": "k"}]}) == {"rowcount": 1}
    assert dao.get_ent("thing", "k")["n"] == 4
    with pytest.raises(QueryError, match="unknown ent_type 'kvp'"):
        dao.query_kvps()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table_prefix": "x; DROP TABLE y"},
        {"table_prefix": 'a"b'},
        {"extra_job_fields": {"bad name": {"type": "TEXT"}}},
        {"extra_job_fields": {"ok": {"type": "TEXT); DROP TABLE x; --"}}},
        {"extra_job_fields": {"ok": "TEXT"}},
    ],
)
def test_bad_schema_names_and_types_raise_schema_error(tmp_path, kwargs, connect):
    path = tmp_path / "s.sqlite"
    with pytest.raises(SchemaError):
        WorkerSqliteDAO(db_uri=str(path), **kwargs)
    assert not path.exists() or sqlite_utils.Database(connect(path)).table_names() == []


def test_bad_orm_spec_name():
    with pytest.raises(SchemaError, match="entity name"):
        SqliteDAO(orm_specs=[{"name": "job s", "fields": {"key": {"type": "TEXT"}}}])


def test_extra_job_fields_become_columns(tmp_path, make_dao):
    dao = make_dao(EngineSqliteDAO, db_uri=str(tmp_path / "e.sqlite"), table_prefix="engine_e_",
                          extra_job_fields={"remote_status": {"type": "TEXT"}, "remote_meta": {"type": "JSON"}})
    job = dao.create_job({"status": "RUNNING", "remote_status": "R", "remote_meta": {"id": 7}})
    assert dao.query_jobs({"filters": [{"field": "remote_meta.id", "op": "=", "arg": 7}]}) == [job]
    assert "remote_status" in dao.db["engine_e_job"].columns_dict


# -- jobs -------------------------------------------------------------------------------
def test_create_save_get_query_update(any_dao):
    job = any_dao.create_job({"status": "PENDING", "job_spec": {"a": 1}})
    assert len(job["key"]) == 36 and job["created"] == job["modified"]
    assert any_dao.get_job(job["key"]) == job
    assert any_dao.get_job("missing") is None
    assert any_dao.get_job(None) is None
    saved = any_dao.save_jobs([{"status": "PENDING"}, {"status": "RUNNING", "source_key": "s"}])
    assert [j["status"] for j in saved] == ["PENDING", "RUNNING"]
    assert len(any_dao.get_jobs_for_status("PENDING")) == 2
    assert any_dao.generate_status_filter("X") == {"field": "status", "op": "=", "arg": "X"}
    assert any_dao.generate_source_key_filter("s") == {"field": "source_key", "op": "=", "arg": "s"}
    assert [j["key"] for j in any_dao.query_jobs({"filters": [any_dao.generate_source_key_filter("s")]})] \
        == [saved[1]["key"]]
    result = any_dao.update_jobs({"status": "FAILED", "errors": ["boom"]},
                                 {"filters": [any_dao.generate_status_filter("PENDING")]})
    assert result == {"rowcount": 2}
    failed = any_dao.get_jobs_for_status("FAILED")
    assert {j["key"] for j in failed} == {job["key"], saved[0]["key"]}
    assert all(j["errors"] == ["boom"] for j in failed)
    assert all(j["modified"] > j["created"] or math.isclose(j["modified"], j["created"]) for j in failed)


def test_modified_is_set_on_save_and_update_and_created_kept(any_dao):
    job = any_dao.create_job({"key": "k", "created": 10.0, "modified": 11.0})
    assert job["created"] == 10.0 and job["modified"] > 1e9
    any_dao.update_jobs({"status": "X"}, {"filters": [{"field": "key", "op": "=", "arg": "k"}]})
    after = any_dao.get_job("k")
    assert after["created"] == 10.0 and after["modified"] >= job["modified"]
    any_dao.update_jobs({"modified": 5.0}, {})
    assert any_dao.get_job("k")["modified"] == 5.0  # an update that sets modified keeps it


def test_update_with_order_and_limit_updates_just_those(any_dao):
    any_dao.save_jobs([{"key": str(i), "created": float(i), "status": "PENDING"} for i in range(5)])
    res = any_dao.update_jobs({"status": "DONE"}, {"order_by": {"field": "created", "direction": "DESC"}, "limit": 2})
    assert res == {"rowcount": 2}
    assert sorted(j["key"] for j in any_dao.get_jobs_for_status("DONE")) == ["3", "4"]


def test_update_rejects_bad_updates(any_dao):
    any_dao.create_job({"key": "k"})
    for updates, msg in [({}, "non-empty dict"), (None, "non-empty dict"), ({"nope": 1}, "unknown field 'nope'"),
                         ({"status.x": 1}, "not a JSON field"), ({"status": {"a": 1}}, "not accepted"),
                         ({"job_spec": {1, 2}}, "cannot be stored as JSON"),
                         ({"job_spec": float("nan")}, "cannot be stored as JSON")]:
        with pytest.raises(QueryError, match=msg):
            any_dao.update_jobs(updates, {})
    with pytest.raises(QueryError, match="'fields'"):
        any_dao.update_jobs({"status": "x"}, {"fields": ["key"]})
    assert any_dao.get_job("k")["status"] is None


def test_save_replace_false_raises_integrity_error_and_writes_nothing(any_dao):
    any_dao.create_job({"key": "dup", "status": "PENDING"})
    with pytest.raises(IntegrityError, match="replace=True"):
        any_dao.save_jobs([{"key": "new1"}, {"key": "dup", "status": "X"}, {"key": "new2"}], replace=False)
    assert [j["key"] for j in any_dao.query_jobs()] == ["dup"]
    assert any_dao.get_job("dup")["status"] == "PENDING"
    any_dao.save_jobs([{"key": "dup", "status": "RUNNING"}])  # replace=True (default) overwrites
    assert any_dao.get_job("dup")["status"] == "RUNNING"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"job_spec": {"x": object()}}, "field 'job_spec' cannot be stored as JSON"),
        ({"job_spec": {"x": float("nan")}}, "field 'job_spec' cannot be stored as JSON"),
        ({"job_spec": {"x": float("inf")}}, "field 'job_spec' cannot be stored as JSON"),
        ({"job_spec": {1, 2}}, "cannot be stored as JSON"),
        ({"status": {"a": 1}}, "field 'status': values of type dict cannot be stored"),
        ({"status": 2**64}, "field 'status': integer does not fit"),
        ({"status": "\udc80"}, "field 'status': text is not valid Unicode"),
        ({"created": float("nan")}, "NaN"),
        ("not a dict", "record 1 is a str"),
    ],
)
def test_unsavable_values_raise_and_nothing_is_written(any_dao, bad, message):
    batch = [{"key": "ok1"}, bad if isinstance(bad, str) else {"key": "bad", **bad}, {"key": "ok2"}]
    with pytest.raises(InsertError, match=message):
        any_dao.save_jobs(batch)
    assert any_dao.query_jobs() == []


def test_odd_but_valid_values_round_trip_exactly(any_dao):
    spec = {"big": 2**62, "neg": -(2**63), "f": 1e308, "tiny": 5e-324, "s": "😀 ünï \x00 nul",
            "lone": "\udc80", "deep": [[[[[[[[[[{"x": None}]]]]]]]]]], "empty": {}, "t": True}
    job = any_dao.create_job({"key": "odd", "job_spec": spec, "status": "\x00x"})
    assert any_dao.get_job("odd")["job_spec"] == spec == job["job_spec"]
    assert any_dao.get_job("odd")["status"] == "\x00x"


def test_large_json_round_trips(any_dao):
    spec = {"rows": [{"i": i, "s": "x" * 50} for i in range(20_000)]}
    any_dao.create_job({"key": "big", "job_spec": spec})
    assert any_dao.get_job("big")["job_spec"] == spec


def test_claim_jobs_is_ordered_limited_and_marks_claimed(any_dao):
    any_dao.save_jobs([{"key": f"j{i}", "status": "PENDING", "job_spec": {"p": i % 3}, "created": float(i)}
                       for i in range(10)])
    q = {"filters": [any_dao.generate_status_filter("PENDING")],
         "order_by": [{"field": "job_spec.p", "direction": "DESC"}, {"field": "created"}], "limit": 4}
    claimed = any_dao.claim_jobs(q)
    assert [j["key"] for j in claimed] == ["j2", "j5", "j8", "j1"]
    assert all(j["status"] == "CLAIMED" for j in claimed)
    assert claimed == [any_dao.get_job(j["key"]) for j in claimed]
    assert len(any_dao.claim_jobs(q)) == 4
    assert len(any_dao.claim_jobs(q)) == 2
    assert any_dao.claim_jobs(q) == []
    assert len(any_dao.get_jobs_for_status("CLAIMED")) == 10


@pytest.mark.parametrize("order_by", [
    {"field": "job_spec.v"},  # numbers, text, NULL and a missing key, in SQLite's order
    {"field": "job_spec.v", "direction": "DESC"},
    [{"field": "worker_key", "direction": "DESC"}, {"field": "key"}],
    {"field": "status"},  # values the claim changes: the rows are chosen before the update
    [{"field": "modified", "direction": "DESC"}, {"field": "key", "direction": "DESC"}],
])
@pytest.mark.parametrize("returning", [True, False], ids=["RETURNING", "sqlite<3.35"])
def test_claim_jobs_returns_the_rows_in_query_order(any_dao, order_by, returning, monkeypatch):
    from jobman_nb.dao import jobs_dao_mixin

    monkeypatch.setattr(jobs_dao_mixin, "_RETURNING", returning)  # the path without UPDATE ... RETURNING too
    values = [3, "b", None, 1.5, "a", -2, 10**12, "é", "B", 2]
    any_dao.save_jobs([{"key": f"k{i}", "status": ["PENDING", "FAILED"][i % 2], "worker_key": f"w{i % 3}",
                        "job_spec": {"v": v} if i != 7 else {}, "modified": float(100 - i)}
                       for i, v in enumerate(values)], auto_update=False)
    query = {"limit": 6, **({"order_by": order_by} if order_by else {})}
    expected = [j["key"] for j in any_dao.query_jobs({**query, "fields": ["key"]})]
    claimed = any_dao.claim_jobs(query)
    assert [j["key"] for j in claimed] == expected
    assert {j["key"] for j in any_dao.get_jobs_for_status("CLAIMED")} == set(expected)


def test_claim_jobs_with_projection(any_dao):
    any_dao.save_jobs([{"key": "a", "status": "PENDING", "job_spec": {"x": 1}}])
    assert any_dao.claim_jobs({"fields": ["key", "status", "job_spec.x"]}) == [
        {"key": "a", "status": "CLAIMED", "job_spec.x": 1}]


def test_claim_jobs_reuses_its_statement_but_sees_a_column_added_since(tmp_path, connect):
    # A claim is compiled once per query; a column another process adds later is read by the next claim.
    path = str(tmp_path / "old.sqlite")
    raw = connect(path, isolation_level=None)
    raw.execute("CREATE TABLE jobman_job (key TEXT PRIMARY KEY, status TEXT, job_spec TEXT, modified FLOAT)")
    raw.executemany("INSERT INTO jobman_job (key, status, job_spec) VALUES (?, 'PENDING', ?)",
                    [(f"k{i}", f'{{"i": {i}}}') for i in range(4)])
    dao = JobmanSqliteDAO(db_uri=path, initialize=False)
    try:
        query = {"filters": [dao.generate_status_filter("PENDING")], "order_by": {"field": "key"}, "limit": 1}
        first = dao.claim_jobs(query)
        assert [(j["key"], j["job_spec"], j["source_tag"]) for j in first] == [("k0", {"i": 0}, None)]
        raw.execute("ALTER TABLE jobman_job ADD COLUMN source_tag TEXT")
        raw.execute("UPDATE jobman_job SET source_tag = 'tagged'")
        assert [(j["key"], j["source_tag"]) for j in dao.claim_jobs(query)] == [("k1", "tagged")]
        assert [j["key"] for j in dao.claim_jobs({**query, "limit": 2})] == ["k2", "k3"]  # another query, another plan
    finally:
        dao.close()


@pytest.mark.parametrize("bad", [{"limit": True}, {"limit": 1.0}, {"limit": "1"}])
def test_claim_jobs_validates_a_query_like_one_it_already_ran(dao, bad):
    dao.save_jobs([{"key": f"k{i}", "status": "PENDING"} for i in range(3)])
    assert len(dao.claim_jobs({"limit": 1})) == 1
    with pytest.raises(QueryError, match="limit"):
        dao.claim_jobs(bad)
    assert len(dao.get_jobs_for_status("CLAIMED")) == 1


def test_claim_jobs_decodes_json_like_json_loads(dao):
    texts = ['{"a": [1, 2.5, null, true]}', ' {"padded": 1} ', '"text"', "3", "null", "[]", '{"é": "\\u00e9"}']
    dao.save_jobs([{"key": f"k{i}", "status": "PENDING"} for i in range(len(texts))])
    for i, text in enumerate(texts):
        dao.connection.execute("UPDATE jobman_job SET job_spec = ? WHERE key = ?", (text, f"k{i}"))
    claimed = dao.claim_jobs({"order_by": {"field": "key"}})
    assert [j["job_spec"] for j in claimed] == [json.loads(t) for t in texts]


# -- PRAGMA synchronous ------------------------------------------------------------------
def _pragma(dao, name):
    return dao.connection.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_wal_file_is_written_with_synchronous_normal_and_a_jobman_file_with_full(tmp_path, fixture_path, make_dao):
    new = make_dao(db_uri=str(tmp_path / "new.sqlite"))
    assert (_pragma(new, "journal_mode"), _pragma(new, "synchronous")) == ("wal", 1)  # NORMAL
    new.close()
    again = make_dao(db_uri=str(tmp_path / "new.sqlite"))  # reopened: still WAL, still NORMAL
    assert (_pragma(again, "journal_mode"), _pragma(again, "synchronous")) == ("wal", 1)
    jobman_file = make_dao(db_uri=str(fixture_path))  # rollback journal: SQLite's default stays
    assert (_pragma(jobman_file, "journal_mode"), _pragma(jobman_file, "synchronous")) == ("delete", 2)  # FULL


@pytest.mark.parametrize("level, value", [("FULL", 2), ("extra", 3), ("OFF", 0)])
def test_synchronous_can_be_chosen(tmp_path, make_dao, level, value):
    dao = make_dao(db_uri=str(tmp_path / "db.sqlite"), synchronous=level)
    assert _pragma(dao, "synchronous") == value
    dao.save_jobs([{"key": "k", "status": "PENDING"}])
    assert [j["key"] for j in dao.claim_jobs()] == ["k"]


@pytest.mark.parametrize("bad", ["NORMALL", 1, ""])
def test_synchronous_rejects_what_sqlite_does_not_know(tmp_path, bad):
    with pytest.raises(jobman_nb.errors.ArgumentError, match="synchronous"):
        JobmanSqliteDAO(db_uri=str(tmp_path / "db.sqlite"), synchronous=bad)
    assert not (tmp_path / "db.sqlite").exists()  # failed before opening anything


def test_jobman_connection_on_a_wal_file_writes_in_wal_beside_our_claims(tmp_path, make_dao, connect):
    # jobman 0.0.1 opens files with plain sqlite3.connect: on our WAL file it writes through the WAL too,
    # with its own (default, FULL) synchronous; our claims and its writes see each other.
    path = str(tmp_path / "ours.sqlite")
    dao = make_dao(db_uri=path)
    dao.save_jobs([{"key": f"k{i}", "status": "PENDING"} for i in range(4)])
    jobman = connect(path)
    assert jobman.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert jobman.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert [j["key"] for j in dao.claim_jobs({"order_by": {"field": "key"}, "limit": 2})] == ["k0", "k1"]
    with jobman:
        jobman.execute("UPDATE jobman_job SET status = 'PENDING' WHERE key = 'k0'")
    assert [j["key"] for j in dao.claim_jobs({"filters": [dao.generate_status_filter("PENDING")],
                                              "order_by": {"field": "key"}})] == ["k0", "k2", "k3"]
    assert jobman.execute("SELECT count(*) FROM jobman_job WHERE status = 'CLAIMED'").fetchone()[0] == 4


# -- kvps -------------------------------------------------------------------------------
def test_kvps_and_compare_and_swap(any_dao):
    kvp = any_dao.create_kvp({"key": "lock", "value": "UNLOCKED"})
    assert kvp["value"] == "UNLOCKED"
    any_dao.save_kvps([{"key": "n", "value": {"n": 1}}, {"key": "none", "value": None}])
    assert any_dao.get_kvp("n")["value"] == {"n": 1}
    assert any_dao.get_kvp("nope") is None
    assert [k["key"] for k in any_dao.query_kvps({"order_by": {"field": "key"}})] == ["lock", "n", "none"]
    any_dao.update_kvp(key="lock", new_value="LOCKED", where_prev_value="UNLOCKED")
    assert any_dao.get_kvp("lock")["value"] == "LOCKED"
    with pytest.raises(UpdateError, match="with value 'UNLOCKED'"):
        any_dao.update_kvp(key="lock", new_value="LOCKED", where_prev_value="UNLOCKED")
    any_dao.update_kvp(key="n", new_value={"n": 2}, where_prev_value={"n": 1})
    any_dao.update_kvp(key="none", new_value=1, where_prev_value=None)
    assert any_dao.get_kvp("none")["value"] == 1
    any_dao.update_kvp(key="n", new_value=[1])  # no where_prev_value: unconditional
    assert any_dao.get_kvp("n")["value"] == [1]
    with pytest.raises(UpdateError, match="no kvp 'missing'"):
        any_dao.update_kvp(key="missing", new_value=1)
    with pytest.raises(SqliteDAO.UpdateError):
        any_dao.update_kvp(key="n", new_value=2, where_prev_value=[2])


# -- transactions, read-only, flush ------------------------------------------------------
def test_transaction_groups_writes_and_rolls_back(any_dao):
    with pytest.raises(RuntimeError), any_dao.transaction():
        any_dao.save_jobs([{"key": "a"}])
        any_dao.create_kvp({"key": "k", "value": 1})
        with any_dao.transaction():
            any_dao.update_jobs({"status": "X"}, {})
        raise RuntimeError("abort")
    assert any_dao.query_jobs() == [] and any_dao.query_kvps() == []
    with any_dao.transaction():
        any_dao.save_jobs([{"key": "a"}])
        with pytest.raises(ValueError), any_dao.transaction():
            any_dao.save_jobs([{"key": "b"}])
            raise ValueError
    assert [j["key"] for j in any_dao.query_jobs()] == ["a"]


def test_read_only_refuses_every_write(tmp_path, make_dao):
    path = tmp_path / "ro.sqlite"
    make_dao(db_uri=str(path)).save_jobs([{"key": "a", "status": "PENDING"}])
    before = path.read_bytes()
    ro = make_dao(db_uri=str(path), read_only=True)
    assert ro.get_job("a")["status"] == "PENDING"
    writes = [lambda: ro.create_job({}), lambda: ro.save_jobs([{}]), lambda: ro.update_jobs({"status": "X"}),
              lambda: ro.claim_jobs(), lambda: ro.create_kvp({"key": "k"}), lambda: ro.save_kvps([]),
              lambda: ro.update_kvp("k", 1), lambda: ro.ensure_tables(), lambda: ro.initialize(), lambda: ro.flush(),
              lambda: ro.create_index("job", "status"), lambda: ro.transaction().__enter__()]
    for write in writes:
        with pytest.raises(ReadOnlyError, match="read-only"):
            write()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.connection.execute("DELETE FROM jobman_job")
    assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError):
        JobmanSqliteDAO(db_uri=str(tmp_path / "missing.sqlite"), read_only=True).query_jobs()
    with pytest.raises(ValueError, match="in-memory"):
        JobmanSqliteDAO(read_only=True)


def test_flush_removes_the_file(tmp_path, make_dao):
    path = tmp_path / "f.sqlite"
    dao = make_dao(db_uri=str(path))
    dao.create_job({})
    dao.flush()
    assert not path.exists() and not os.path.exists(str(path) + "-wal")
    make_dao().flush()  # memory: nothing to remove


# -- the ORM on its own ----------------------------------------------------------------
@pytest.mark.parametrize("wrap", [lambda c: c, lambda c: sqlite_utils.Database(c)])
def test_orm_takes_a_connection_or_a_sqlite_utils_database(wrap, connect):
    conn = connect(":memory:")
    orm = ORM(name="job", fields=JobmanSqliteDAO.JobSchema, table_prefix="p_")
    assert orm.table == "p_job"
    connection = wrap(conn)
    orm.create_table(connection=connection)
    saved = orm.save_object({"status": "PENDING", "job_spec": {"a": [1]}}, connection=connection)
    orm.execute_insert_or_replace(fields=["key", "status"], values=["k2", "RUNNING"], replace=True,
                                  connection=connection)
    got = orm.query_objects({"order_by": {"field": "status"}}, connection=connection)
    assert [g["key"] for g in got] == [saved["key"], "k2"]
    assert got[0]["job_spec"] == {"a": [1]}
    assert orm.update_objects({"status": "X"}, {}, connection=connection) == {"rowcount": 2}
    with pytest.raises(ORM.IntegrityError):
        orm.execute_insert_or_replace(fields=["key"], values=["k2"], replace=False, connection=connection)
    with pytest.raises(QueryError):
        orm.execute_insert_or_replace(fields=["key; --"], values=["x"], connection=connection)


def test_exports():
    for name in ("SqliteDAO", "JobmanSqliteDAO", "WorkerSqliteDAO", "EngineSqliteDAO", "JOB_STATUSES", "QueryError"):
        assert hasattr(jobman_nb, name)


@pytest.mark.parametrize("key", [b"abc", bytearray(b"abc"), 1.5, True, ("a",), {"k": 1}])
def test_a_key_that_is_not_text_is_refused(dao, key):
    dao.save_jobs([{"key": "kept", "status": "PENDING"}])
    with pytest.raises(InsertError, match=r"record 1, key .* is a \w+; keys are text"):
        dao.save_jobs([{"key": "other", "status": "PENDING"}, {"key": key, "status": "PENDING"}])
    with pytest.raises(InsertError, match="keys are text"):
        dao.save_kvps([{"key": key, "value": 1}])
    assert [j["key"] for j in dao.query_jobs()] == ["kept"]  # nothing of the batch was written


def test_an_int_key_is_stored_as_text(dao):
    dao.save_jobs([{"key": 7, "status": "PENDING"}])
    assert dao.get_job("7")["key"] == "7"
