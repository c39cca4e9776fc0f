"""Job history: triggers record every status change, whoever writes it."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from jobman_nb import JobmanSqliteDAO, QueryError, ReadOnlyError, WorkerSqliteDAO, open_db
from jobman_nb.dao.engine_sqlite_dao import EngineSqliteDAO
from jobman_nb.errors import SchemaError

T0 = 1_767_571_200.0  # 2026-01-05 00:00 UTC
JSON_FIELDS = ("job_spec", "worker_meta", "errors", "source_meta")


def _transitions(dao, job_key=None):
    query = {"filters": [{"field": "job_key", "op": "=", "arg": job_key}]} if job_key else None
    return [(e["job_key"], e["old_status"], e["new_status"]) for e in dao.query_events(query)]


def _set(dao, key, status, modified):
    dao.update_jobs({"status": status, "modified": modified}, {"filters": [{"field": "key", "op": "=", "arg": key}]})


def _jobman_insert_or_replace(conn, job):
    """Write a job the way jobman 0.0.1 does: INSERT OR REPLACE of every column, JSON as json.dumps text."""
    cols = list(job)
    values = [json.dumps(job[c]) if c in JSON_FIELDS else job[c] for c in cols]
    conn.execute(f"INSERT OR REPLACE INTO jobman_job ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                 values)
    conn.commit()


@pytest.fixture
def hdao(tmp_path):
    d = JobmanSqliteDAO(db_uri=str(tmp_path / "jobs.sqlite"), history=True)
    yield d
    d.close()


def test_saves_and_updates_from_jobman_nb_are_recorded_with_modified_as_time(hdao):
    hdao.save_jobs([{"key": "a", "status": "PENDING", "modified": T0}], auto_update=False)
    _set(hdao, "a", "CLAIMED", T0 + 10)
    hdao.save_jobs([{"key": "a", "status": "RUNNING", "modified": T0 + 20}], auto_update=False)  # upsert
    hdao.save_jobs([{"key": "a", "status": "RUNNING", "modified": T0 + 30}], auto_update=False)  # no change
    _set(hdao, "a", "COMPLETED", T0 + 40)
    events = hdao.query_events()
    assert [(e["old_status"], e["new_status"], e["time"]) for e in events] == [
        (None, "PENDING", T0), ("PENDING", "CLAIMED", T0 + 10), ("CLAIMED", "RUNNING", T0 + 20),
        ("RUNNING", "COMPLETED", T0 + 40)]
    assert [e["key"] for e in events] == sorted(e["key"] for e in events)


def test_claim_jobs_is_recorded(hdao):
    hdao.save_jobs([{"key": k, "status": "PENDING"} for k in "abc"])
    claimed = hdao.claim_jobs({"filters": [{"field": "status", "op": "=", "arg": "PENDING"}], "limit": 2,
                               "order_by": {"field": "key"}})
    assert [j["key"] for j in claimed] == ["a", "b"]
    assert [t for t in _transitions(hdao) if t[1] is not None] == [("a", "PENDING", "CLAIMED"),
                                                                   ("b", "PENDING", "CLAIMED")]


def test_raw_sql_on_another_connection_is_recorded(hdao):
    hdao.save_jobs([{"key": "a", "status": "PENDING", "job_spec": {"x": 1}, "modified": T0}], auto_update=False)
    other = sqlite3.connect(hdao.path)
    # jobman 0.0.1 replaces the whole row: the old status survives only in the last event.
    _jobman_insert_or_replace(other, {"key": "a", "status": "CLAIMED", "job_spec": {"x": 1}, "created": T0,
                                      "modified": T0 + 5})
    _jobman_insert_or_replace(other, {"key": "a", "status": "CLAIMED", "job_spec": {"x": 2}, "created": T0,
                                      "modified": T0 + 6})  # same status: no event
    _jobman_insert_or_replace(other, {"key": "new", "status": "PENDING", "created": T0, "modified": T0 + 7})
    before = time.time()
    other.execute("UPDATE jobman_job SET status = 'RUNNING' WHERE key = 'a'")  # modified untouched
    other.commit()
    after = time.time()
    other.execute("DELETE FROM jobman_job WHERE key = 'new'")
    other.commit()
    other.close()
    events = hdao.query_events()
    assert [(e["job_key"], e["old_status"], e["new_status"]) for e in events] == [
        ("a", None, "PENDING"), ("a", "PENDING", "CLAIMED"), ("new", None, "PENDING"), ("a", "CLAIMED", "RUNNING"),
        ("new", "PENDING", None)]
    assert [e["time"] for e in events[:3]] == [T0, T0 + 5, T0 + 7]
    # Without a new modified the database clock is used (millisecond precision).
    assert before - 0.01 <= events[3]["time"] <= after + 0.01


def test_insert_or_replace_after_delete_counts_as_creation(hdao):
    conn = hdao.connection
    conn.execute("INSERT INTO jobman_job (key, status, modified) VALUES ('a', 'FAILED', 1.0)")
    conn.execute("DELETE FROM jobman_job WHERE key = 'a'")
    conn.execute("INSERT OR REPLACE INTO jobman_job (key, status, modified) VALUES ('a', 'PENDING', 2.0)")
    assert _transitions(hdao) == [("a", None, "FAILED"), ("a", "FAILED", None), ("a", None, "PENDING")]


def test_replace_with_recursive_triggers_records_delete_then_insert(hdao):
    hdao.save_jobs([{"key": "a", "status": "PENDING"}])
    conn = hdao.connection
    conn.execute("PRAGMA recursive_triggers = ON")
    conn.execute("INSERT OR REPLACE INTO jobman_job (key, status, modified) VALUES ('a', 'CLAIMED', 2.0)")
    assert _transitions(hdao) == [("a", None, "PENDING"), ("a", "PENDING", None), ("a", None, "CLAIMED")]


def test_enable_snapshots_existing_jobs_and_is_idempotent(file_dao):
    file_dao.save_jobs([{"key": "a", "status": "RUNNING", "modified": T0},
                        {"key": "b", "status": None, "modified": T0 + 1}], auto_update=False)
    assert not file_dao.history_enabled
    file_dao.enable_history()
    file_dao.enable_history()
    assert file_dao.history_enabled
    # A snapshot: old == new, stamped with modified; what came before is unknown.
    assert [(e["job_key"], e["old_status"], e["new_status"], e["time"]) for e in file_dao.query_events()] == [
        ("a", "RUNNING", "RUNNING", T0)]  # a job without a status has nothing to record
    triggers = [r[0] for r in file_dao.connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")]
    assert triggers == ["jobman_job_event_on_delete", "jobman_job_event_on_insert", "jobman_job_event_on_update"]


def test_disable_keeps_events_and_reenable_records_what_changed_meanwhile(hdao):
    hdao.save_jobs([{"key": "a", "status": "PENDING", "modified": T0}], auto_update=False)
    hdao.disable_history()
    assert not hdao.history_enabled
    _set(hdao, "a", "CLAIMED", T0 + 1)
    _set(hdao, "a", "RUNNING", T0 + 2)
    assert _transitions(hdao) == [("a", None, "PENDING")]
    hdao.enable_history()
    events = hdao.query_events()
    assert [(e["old_status"], e["new_status"], e["time"]) for e in events] == [
        (None, "PENDING", T0), ("PENDING", "RUNNING", T0 + 2)]
    _set(hdao, "a", "COMPLETED", T0 + 3)
    assert _transitions(hdao)[-1] == ("a", "RUNNING", "COMPLETED")


def test_history_keyword_enables_at_construction_and_reopening_finds_it(tmp_path, make_dao):
    path = str(tmp_path / "h.sqlite")
    JobmanSqliteDAO(db_uri=path, history=True).close()
    reopened = make_dao(db_uri=path)
    assert reopened.history_enabled
    reopened.create_job({"status": "PENDING"})
    assert [t[2] for t in _transitions(reopened)] == ["PENDING"]


def test_read_only_dao_queries_events_but_cannot_enable_or_disable(hdao, make_dao):
    hdao.save_jobs([{"key": "a", "status": "PENDING"}])
    ro = make_dao(db_uri=hdao.path, read_only=True)
    assert ro.history_enabled
    assert _transitions(ro) == [("a", None, "PENDING")]
    assert list(ro.query_events_df()["new_status"]) == ["PENDING"]
    with pytest.raises(ReadOnlyError):
        ro.enable_history()
    with pytest.raises(ReadOnlyError):
        ro.disable_history()
    with pytest.raises(ReadOnlyError):
        JobmanSqliteDAO(db_uri=hdao.path, read_only=True, history=True)


def test_query_dicts_over_events(hdao):
    hdao.save_jobs([{"key": k, "status": "PENDING", "modified": T0 + i} for i, k in enumerate("abc")],
                   auto_update=False)
    _set(hdao, "b", "CLAIMED", T0 + 10)
    got = hdao.query_events({"filters": [{"field": "old_status", "op": "IS", "arg": None},
                                         {"field": "time", "op": ">=", "arg": T0 + 1}],
                             "order_by": {"field": "time", "direction": "DESC"}, "fields": ["job_key", "time"]})
    assert got == [{"job_key": "c", "time": T0 + 2}, {"job_key": "b", "time": T0 + 1}]
    df = hdao.query_events_df({"filters": [{"field": "new_status", "op": "=", "arg": "CLAIMED"}]})
    assert list(df.columns) == ["key", "job_key", "old_status", "new_status", "time"]
    assert df.loc[0, "job_key"] == "b" and str(df["time"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(QueryError, match="status"):
        hdao.query_events({"filters": [{"field": "status", "op": "=", "arg": "PENDING"}]})


def test_query_events_without_history_is_a_clear_error(dao):
    assert not dao.history_enabled
    with pytest.raises(QueryError, match="enable_history"):
        dao.query_events()


def test_enable_needs_the_job_table(tmp_path, make_dao):
    d = make_dao(db_uri=str(tmp_path / "x.sqlite"), initialize=False)
    with pytest.raises(SchemaError, match="jobman_job"):
        d.enable_history()


def test_prefixed_daos_get_their_own_event_tables(tmp_path, make_dao):
    path = str(tmp_path / "w.sqlite")
    worker = make_dao(WorkerSqliteDAO, db_uri=path, table_prefix="_worker_cpu_w_", history=True)
    engine = make_dao(EngineSqliteDAO, db_uri=path, table_prefix="engine_cpu_w_engine_", history=True)
    worker.save_jobs([{"key": "w", "status": "PENDING"}])
    engine.save_jobs([{"key": "e", "status": "RUNNING"}])
    assert _transitions(worker) == [("w", None, "PENDING")]
    assert _transitions(engine) == [("e", None, "RUNNING")]
    tables = {r[0] for r in worker.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"_worker_cpu_w_job_event", "engine_cpu_w_engine_job_event"} <= tables


def _read_like_jobman(path, table):
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = []
    for r in conn.execute(f"SELECT * FROM {table}"):
        rec = dict(r)
        for f in (*JSON_FIELDS, "value", "batch_meta", "engine_meta"):
            if f in rec and rec[f] is not None:
                rec[f] = json.loads(rec[f])
        rows.append(rec)
    conn.close()
    return sorted(rows, key=lambda r: r["key"])


def test_jobman_fixture_with_history_reads_back_exactly_and_takes_jobman_writes(fixture_path, fixture_expected):
    path = str(fixture_path)
    daos = {"jobman_job": JobmanSqliteDAO(db_uri=path, history=True),
            "_worker_cpu_w_job": WorkerSqliteDAO(db_uri=path, table_prefix="_worker_cpu_w_", history=True),
            "engine_cpu_w_engine_job": EngineSqliteDAO(db_uri=path, table_prefix="engine_cpu_w_engine_",
                                                       history=True)}
    for table, d in daos.items():
        d.enable_history()  # again: idempotent
        assert sorted(d.query_jobs(), key=lambda r: r["key"]) == fixture_expected[table]
        assert _read_like_jobman(path, table) == fixture_expected[table]
        # One snapshot per job, matching its current status.
        snap = {e["job_key"]: (e["old_status"], e["new_status"]) for e in d.query_events()}
        assert snap == {j["key"]: (j["status"], j["status"]) for j in fixture_expected[table]}
    assert _read_like_jobman(path, "jobman_kvp") == fixture_expected["jobman_kvp"]
    # jobman 0.0.1 goes on writing the file: a save of a whole row, then a status update.
    job = dict(fixture_expected["jobman_job"][0])
    old = job["status"]
    job.update(status="PENDING", modified=T0)
    conn = sqlite3.connect(path)
    _jobman_insert_or_replace(conn, job)
    conn.execute("UPDATE jobman_job SET status = ?, modified = ? WHERE key = ?", ("CLAIMED", T0 + 1, job["key"]))
    conn.commit()
    conn.close()
    assert _read_like_jobman(path, "jobman_job")[0] == {**job, "status": "CLAIMED", "modified": T0 + 1}
    assert _transitions(daos["jobman_job"], job["key"])[-2:] == [(job["key"], old, "PENDING"),
                                                                 (job["key"], "PENDING", "CLAIMED")]
    for d in daos.values():
        d.close()


def test_open_db_keeps_event_tables_apart_and_reads_them(hdao):
    hdao.save_jobs([{"key": "a", "status": "PENDING"}])
    hdao.create_kvp({"key": "k", "value": 1})
    hdao.close()
    with open_db(hdao.path) as db:
        assert [ts.prefix for ts in db.table_sets] == ["jobman_"]
        assert db.other_tables == ["jobman_job_event"]
        assert db.jobman.history_enabled
        assert list(db.jobman.query_events_df()["job_key"]) == ["a"]


def test_demo_history_events_are_consistent_with_its_jobs(tmp_path, make_dao):
    from jobman_nb.demo import make_history

    with_events = make_history(tmp_path / "e.sqlite", 400, seed=3, events=True)
    plain = make_history(tmp_path / "p.sqlite", 400, seed=3)
    assert "jobman_job_event" not in plain["tables"]
    d = make_dao(db_uri=with_events["path"], read_only=True)
    jobs = {j["key"]: j for j in d.query_jobs()}
    assert jobs == {j["key"]: j for j in make_dao(db_uri=plain["path"], read_only=True).query_jobs()}
    events = d.query_events()
    assert len(events) == with_events["tables"]["jobman_job_event"] and d.history_enabled
    last, first = {}, {}
    for e in events:
        first.setdefault(e["job_key"], e)
        last[e["job_key"]] = e
    assert {k: (e["new_status"], e["time"]) for k, e in last.items()} == {
        k: (j["status"], j["modified"]) for k, j in jobs.items()}
    assert {k: (e["old_status"], e["new_status"], e["time"]) for k, e in first.items()} == {
        k: (None, "PENDING", j["created"]) for k, j in jobs.items()}
    assert any(e["old_status"] == "FAILED" and e["new_status"] == "PENDING" for e in events)  # retries


def test_insert_is_stamped_with_modified_else_created_else_null(hdao):
    conn = sqlite3.connect(hdao.path)
    conn.execute("INSERT INTO jobman_job (key, status, created, modified) VALUES ('m', 'PENDING', 1.0, 2.0)")
    conn.execute("INSERT INTO jobman_job (key, status, created) VALUES ('c', 'PENDING', 3.0)")
    conn.execute("INSERT INTO jobman_job (key, status) VALUES ('n', 'PENDING')")
    conn.commit()
    conn.close()
    assert [(e["job_key"], e["time"]) for e in hdao.query_events()] == [("m", 2.0), ("c", 3.0), ("n", None)]


def test_no_insert_trigger_calls_a_function(hdao):
    # A function call in any trigger an INSERT compiles makes SQLite open a statement journal
    # for every row of a batch (see jobman_nb.dao.history._statements); keep the clock out.
    rows = hdao.connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    clock = {" AFTER INSERT " in sql: "julianday" in sql.lower() for _, sql in rows}
    assert clock == {True: False, False: True}  # only the UPDATE and DELETE triggers read the clock


def test_enable_replaces_the_triggers_of_an_earlier_version(hdao):
    hdao.save_jobs([{"key": "a", "status": "PENDING", "modified": T0}], auto_update=False)
    conn = hdao.connection
    conn.execute("DROP TRIGGER jobman_job_event_on_insert")
    conn.execute("CREATE TRIGGER jobman_job_event_on_insert_clock AFTER INSERT ON jobman_job "
                 "BEGIN SELECT 1; END")  # a leftover of the version with _clock twins
    hdao.enable_history()
    names = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    assert names == ["jobman_job_event_on_delete", "jobman_job_event_on_insert", "jobman_job_event_on_update"]
    hdao.disable_history()
    assert not hdao.history_enabled
    assert [e["new_status"] for e in hdao.query_events()] == ["PENDING"]


def test_statement_journals_stay_in_memory_only_where_history_is_on(tmp_path):
    # temp_store=MEMORY (2) keeps a batch save with history at ~1.4x instead of ~2x (bench/README.md)
    path = str(tmp_path / "h.sqlite")
    with JobmanSqliteDAO(db_uri=path, history=True) as dao:
        assert dao.connection.execute("PRAGMA temp_store").fetchone()[0] == 2
    with JobmanSqliteDAO(db_uri=path) as reopened:  # another writer of the same file
        assert reopened.connection.execute("PRAGMA temp_store").fetchone()[0] == 2
    with JobmanSqliteDAO(db_uri=str(tmp_path / "plain.sqlite")) as plain:
        assert plain.connection.execute("PRAGMA temp_store").fetchone()[0] == 0


# -- bulk updates: update_jobs writes the events itself (jobman_nb.dao.history.bulk_update) ---
def _bulk_jobs(n):
    statuses = ["PENDING", "FAILED", "RUNNING", None, "COMPLETED"]
    return [{"key": f"k{i:05d}", "status": statuses[i % 5], "modified": T0 + i} for i in range(n)]


def _events_by_job(dao):
    return sorted(((e["job_key"], e["old_status"], e["new_status"], e["time"]) for e in dao.query_events()),
                  key=repr)


def _trigger_sql(dao):
    return dao.connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").fetchall()


@pytest.mark.parametrize("query", [
    None,
    {"filters": [{"field": "status", "op": "IN", "arg": ["PENDING", "FAILED", "RUNNING"]}]},
    {"filters": [{"field": "status", "op": "IS", "arg": None}]},  # NULL -> a status
], ids=["all", "filtered", "null-status"])
def test_a_bulk_update_writes_the_events_the_trigger_would(tmp_path, query):
    from jobman_nb.dao.history import BULK_EVENTS

    n = 5 * BULK_EVENTS + 7  # even the NULL-status fifth of the jobs is a bulk update
    bulk = JobmanSqliteDAO(db_uri=str(tmp_path / "bulk.sqlite"), history=True)
    by_trigger = JobmanSqliteDAO(db_uri=str(tmp_path / "trigger.sqlite"), history=True)
    try:
        for dao in (bulk, by_trigger):
            dao.save_jobs(_bulk_jobs(n), auto_update=False)
        triggers = _trigger_sql(bulk)
        version = bulk.connection.execute("PRAGMA schema_version").fetchone()[0]
        changed = bulk.update_jobs({"status": "CLAIMED"}, query)["rowcount"]
        assert bulk.connection.execute("PRAGMA schema_version").fetchone()[0] != version  # it took the bulk path
        assert _trigger_sql(bulk) == triggers  # the trigger is back, as it was
        stamp = bulk.query_jobs({"filters": [{"field": "status", "op": "=", "arg": "CLAIMED"}], "limit": 1})[0]
        # the same UPDATE through the trigger, by another connection (as jobman or raw SQL would)
        raw = sqlite3.connect(tmp_path / "trigger.sqlite")
        where = by_trigger.compile_query("job", {**(query or {}), "fields": ["key"]})
        with raw:
            cur = raw.execute(f"UPDATE jobman_job SET status = 'CLAIMED', modified = ? WHERE key IN ({where.sql})",
                              [stamp["modified"], *where.params])
        raw.close()
        assert cur.rowcount == changed
        assert _events_by_job(bulk) == _events_by_job(by_trigger)
        assert [e["key"] for e in bulk.query_events()] == list(range(1, len(bulk.query_events()) + 1))
        # the last event of every job is its status, and later raw writes are still recorded
        key = stamp["key"]
        bulk.connection.execute("UPDATE jobman_job SET status = 'RUNNING' WHERE key = ?", (key,))
        assert _transitions(bulk, key)[-1] == (key, "CLAIMED", "RUNNING")
    finally:
        bulk.close()
        by_trigger.close()


def test_a_small_update_or_one_with_a_limit_leaves_it_to_the_trigger(hdao):
    from jobman_nb.dao.history import BULK_EVENTS

    hdao.save_jobs(_bulk_jobs(2 * BULK_EVENTS), auto_update=False)
    version = hdao.connection.execute("PRAGMA schema_version").fetchone()[0]
    hdao.update_jobs({"status": "CLAIMED"}, {"filters": [{"field": "key", "op": "<", "arg": "k00010"}]})
    hdao.update_jobs({"status": "QUEUED"}, {"order_by": {"field": "key"}, "limit": 2 * BULK_EVENTS})
    hdao.update_jobs({"status": "DONE", "modified": T0}, None)  # modified given: the trigger's own rule for time
    assert hdao.connection.execute("PRAGMA schema_version").fetchone()[0] == version
    assert _transitions(hdao, "k00002")[-3:] == [
        ("k00002", "RUNNING", "CLAIMED"), ("k00002", "CLAIMED", "QUEUED"), ("k00002", "QUEUED", "DONE")]


def test_a_failed_bulk_update_rolls_back_the_events_and_keeps_the_trigger(hdao):
    from jobman_nb.dao.history import BULK_EVENTS
    from jobman_nb.errors import JobmanError

    hdao.save_jobs(_bulk_jobs(BULK_EVENTS + 10), auto_update=False)
    hdao.connection.execute("UPDATE jobman_job SET job_spec = '{broken' WHERE key = 'k00500'")
    before, triggers = _events_by_job(hdao), _trigger_sql(hdao)
    with pytest.raises(JobmanError):
        hdao.update_jobs({"status": "CLAIMED", "job_spec.x": 1})  # json_set fails on the broken row
    assert _events_by_job(hdao) == before
    assert _trigger_sql(hdao) == triggers
    assert hdao.count_ents("job", {"filters": [{"field": "status", "op": "=", "arg": "CLAIMED"}]}) == 0
