"""open_db: discovery of DAO table sets, read-only access, clear errors."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from jobman_nb import EngineSqliteDAO, JobmanSqliteDAO, ReadOnlyError, SchemaError, WorkerSqliteDAO
from jobman_nb.explore import JobDatabase, open_db
from jobman_nb.job_lineage import batch_jobs


def _digest(path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def _sidecars(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def _make_db(path) -> None:
    """jobman tables, a worker with an engine that adds a column, and an unrelated pair."""
    jobman = JobmanSqliteDAO(db_uri=str(path))
    jobman.save_jobs([{"key": "a", "status": "RUNNING", "worker_key": "w", "worker_meta": {"key": "a"},
                       "created": 100.0, "modified": 200.0}], auto_update=False)
    worker = WorkerSqliteDAO(db_uri=str(path), table_prefix="_worker_w_")
    worker.save_jobs([{"key": "a", "status": "RUNNING", "engine_meta": {"key": "e1"}}])
    engine = EngineSqliteDAO(db_uri=str(path), table_prefix="engine_w_engine_",
                             extra_job_fields={"remote_status": {"type": "TEXT"}})
    engine.save_jobs([{"key": "e1", "status": "RUNNING", "remote_status": "R"}])
    other = EngineSqliteDAO(db_uri=str(path), table_prefix="myapp_")
    other.create_job({"key": "o1", "status": "PENDING"})
    for d in (jobman, worker, engine, other):
        d.close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.execute("CREATE TABLE blowjob (x TEXT)")  # ends in 'job' but is no DAO table
    conn.commit()
    conn.close()


def test_fixture_table_sets(fixture_path):
    with open_db(fixture_path) as db:
        assert isinstance(db, JobDatabase)
        assert sorted(db.workers) == ["cpu_w", "gpu_w"]
        assert sorted(db.engines) == ["cpu_w_engine", "gpu_w_engine"]
        assert db.engine_for("cpu_w") == "cpu_w_engine"
        assert set(db.daos) == {"jobman_", "_worker_cpu_w_", "_worker_gpu_w_", "engine_cpu_w_engine_",
                                "engine_gpu_w_engine_"}
        assert db.jobman.count_ents("job") == 25
        assert db.workers["cpu_w"].count_ents("job") == 25
        assert db.engines["cpu_w_engine"].count_ents("job") == 19
        assert db.dao_for("_worker_cpu_w_kvp") is db.workers["cpu_w"]
        assert db.other_tables == []


def test_fixture_records_match_jobman(fixture_path, fixture_expected):
    with open_db(fixture_path) as db:
        for prefix, dao in db.daos.items():
            # the expected file lists the tables that hold records
            got = sorted(dao.query_jobs(), key=lambda r: r["key"])
            assert got == (fixture_expected.get(prefix + "job") or [])
            got_kvps = sorted(dao.query_kvps(), key=lambda r: r["key"])
            assert got_kvps == (fixture_expected.get(prefix + "kvp") or [])


def test_listing_of_fixture(fixture_path):
    with open_db(fixture_path) as db:
        df = db.listing()
    assert list(df.columns) == ["table", "role", "key", "rows", "columns", "extra_columns", "first", "last"]
    row = df.set_index("table").loc["jobman_job"]
    assert (row["role"], row["key"], row["rows"], row["columns"]) == ("jobman", "jobman", 25, 13)
    assert str(df["first"].dtype) == "datetime64[ns, UTC]"
    assert abs((row["first"] - pd.Timestamp(1795774270.1166043, unit="s", tz="UTC")).total_seconds()) < 1e-3
    assert abs((row["last"] - pd.Timestamp(1795774270.7737036, unit="s", tz="UTC")).total_seconds()) < 1e-3
    assert pd.isna(df.set_index("table").loc["engine_gpu_w_engine_job", "first"])
    assert df["rows"].sum() == 25 + 2 + 25 + 19


def test_discovers_extra_columns_and_other_prefixes(tmp_path):
    path = tmp_path / "x.sqlite"
    _make_db(path)
    with open_db(path) as db:
        assert list(db.engines) == ["w_engine"]
        engine = db.engines["w_engine"]
        assert engine.query_jobs()[0]["remote_status"] == "R"
        assert engine.query_jobs({"filters": [{"field": "remote_status", "op": "=", "arg": "R"}]})[0]["key"] == "e1"
        assert "myapp_" in db.daos
        assert db.daos["myapp_"].get_job("o1")["status"] == "PENDING"
        assert db.other_tables == ["blowjob", "notes"]
        listing = db.listing().set_index("table")
        assert listing.loc["engine_w_engine_job", "extra_columns"] == "remote_status"
        assert listing.loc["myapp_job", "role"] == "other"
        assert listing.loc["myapp_job", "key"] == "myapp"
        assert "notes" not in listing.index


def test_read_only_leaves_file_untouched(fixture_path):
    before = _digest(fixture_path)
    with open_db(fixture_path) as db:
        for _ in range(20):
            db.listing()
            db.lineage()
            batch_jobs(db)
            for dao in db.daos.values():
                dao.query_jobs({"order_by": {"field": "modified", "direction": "DESC"}, "limit": 5})
                dao.count_ents("job", {"filters": [{"field": "status", "op": "!=", "arg": "FAILED"}]})
                dao.query_kvps()
                list(dao.iter_ents("job", chunksize=3))
    assert _digest(fixture_path) == before
    assert _sidecars(fixture_path) == []


def test_read_only_wal_database_keeps_main_file(tmp_path):
    path = tmp_path / "wal.sqlite"
    dao = JobmanSqliteDAO(db_uri=str(path))  # a new file is switched to WAL
    dao.create_job({"key": "k", "status": "PENDING"})
    dao.close()
    before = _digest(path)
    with open_db(path) as db:
        assert db.jobman.get_job("k")["status"] == "PENDING"
        db.listing()
    # SQLite needs the -wal/-shm side files to read a WAL database; the database file itself is untouched.
    assert _digest(path) == before
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


WRITES = {
    "create_job": lambda d: d.create_job({"key": "new", "status": "PENDING"}),
    "save_jobs": lambda d: d.save_jobs([{"key": "new", "status": "PENDING"}]),
    "update_jobs": lambda d: d.update_jobs({"status": "PENDING"}),
    "claim_jobs": lambda d: d.claim_jobs({"limit": 1}),
    "create_kvp": lambda d: d.create_kvp({"key": "x", "value": 1}),
    "save_kvps": lambda d: d.save_kvps([{"key": "x", "value": 1}]),
    "update_kvp": lambda d: d.update_kvp("counter", {"n": 4}),
    "update_ents": lambda d: d.update_ents("kvp", {"value": 1}),
    "initialize": lambda d: d.initialize(),
    "ensure_tables": lambda d: d.ensure_tables(),
    "create_index": lambda d: d.create_index("job", "status"),
    "flush": lambda d: d.flush(),
    "transaction": lambda d: d.transaction().__enter__(),
}


@pytest.mark.parametrize("method", sorted(WRITES))
def test_every_write_raises_read_only_error(fixture_path, method):
    before = _digest(fixture_path)
    with open_db(fixture_path) as db:
        for dao in db.daos.values():
            with pytest.raises(ReadOnlyError, match="read-only"):
                WRITES[method](dao)
    assert _digest(fixture_path) == before
    assert fixture_path.exists()


def test_read_write_opens_without_changing_schema(fixture_path):
    conn = sqlite3.connect(fixture_path)
    schema = conn.execute("SELECT * FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    with open_db(fixture_path, read_only=False) as db:
        db.jobman.update_jobs({"source_tag": "seen"}, {"filters": [{"field": "status", "op": "=",
                                                                     "arg": "FAILED"}]})
        assert db.jobman.count_ents("job", {"filters": [{"field": "source_tag", "op": "=", "arg": "seen"}]}) == 6
    conn = sqlite3.connect(fixture_path)
    assert conn.execute("SELECT * FROM sqlite_master ORDER BY name").fetchall() == schema
    conn.close()


def test_initialize_needs_read_write(fixture_path):
    with pytest.raises(ValueError, match="read_only=False"):
        open_db(fixture_path, initialize=True)
    with open_db(fixture_path, read_only=False, initialize=True) as db:
        names = {r[0] for r in db.connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "idx_jobman_job_status" in names


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no database file"):
        open_db(tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


def test_not_sqlite(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, these are not jobs\n")
    with pytest.raises(SchemaError, match="not an SQLite database"):
        open_db(path)


@pytest.mark.parametrize("tables, found", [([], "no tables at all"), (["foo", "bar_job"], "bar_job, foo")])
def test_no_jobman_tables(tmp_path, tables, found):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    for t in tables:
        conn.execute(f"CREATE TABLE {t} (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match=f"no jobman tables.*found: {found}"):
        open_db(path)


def test_jobman_property_without_jobman_tables(tmp_path):
    path = tmp_path / "w.sqlite"
    WorkerSqliteDAO(db_uri=str(path), table_prefix="_worker_only_").close()
    with open_db(path) as db:
        assert list(db.workers) == ["only"]
        with pytest.raises(LookupError, match="no jobman_job"):
            db.jobman  # noqa: B018


_WRITER = textwrap.dedent("""
    import sys
    from jobman_nb import JobmanSqliteDAO
    dao = JobmanSqliteDAO(db_uri=sys.argv[1], initialize=False)
    for i in range(int(sys.argv[2])):
        dao.create_job({"key": f"w{i}", "status": "PENDING"})
        dao.update_jobs({"status": "RUNNING"}, {"filters": [{"field": "key", "op": "=", "arg": f"w{i}"}]})
    print("done", flush=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("wal", [True, False], ids=["wal", "rollback-journal"])
def test_reader_works_while_another_process_writes(tmp_path, wal):
    path = tmp_path / "busy.sqlite"
    JobmanSqliteDAO(db_uri=str(path)).close()
    if not wal:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()
    n = 150
    db = open_db(path)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ})
    seen = []
    while writer.poll() is None:
        seen.append(db.jobman.count_ents("job"))
        db.listing()
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert out.strip() == "done"
    assert seen == sorted(seen)  # counts only grow: every read saw a consistent state
    assert db.jobman.count_ents("job") == n
    assert db.jobman.count_ents("job", {"filters": [{"field": "status", "op": "=", "arg": "RUNNING"}]}) == n
    db.close()
