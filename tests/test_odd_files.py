"""Odd files (issue 14 item 5): foreign tables with odd names, odd extra columns in jobman_job.

open_db opens the file, lists what it does not understand in listing(), reaches
every jobman table, and leaves columns a field name cannot spell out of the DAO
(and so of the frames), with a warning naming them.
"""

from __future__ import annotations

import sqlite3

import pytest

from jobman_nb import JobmanSqliteDAO, open_db
from jobman_nb.explore import TABLE_KINDS, kind_of_prefix


def _make(tmp_path, sql: list[str]):
    path = tmp_path / "odd.sqlite"
    with JobmanSqliteDAO(db_uri=str(path)) as dao:
        dao.save_jobs([{"key": "k1", "status": "PENDING", "job_spec": {"a": 1}}])
    conn = sqlite3.connect(path)
    with conn:
        for statement in sql:
            conn.execute(statement)
    conn.close()
    return path


@pytest.mark.parametrize("prefix", ["it's_", "engine_é_", 'quo"te_', "with space_", "_worker_a b_"])
def test_a_foreign_table_pair_with_an_odd_name_is_listed_not_refused(tmp_path, prefix):
    q = '"' + prefix.replace('"', '""')
    path = _make(tmp_path, [f'CREATE TABLE {q}job" (key TEXT PRIMARY KEY, status TEXT, job_spec TEXT)',
                            f'CREATE TABLE {q}kvp" (key TEXT PRIMARY KEY, value TEXT)',
                            f"INSERT INTO {q}job\" VALUES ('x', 'FAILED', NULL)"])
    with open_db(path) as db:
        assert db.jobman.count_ents("job") == 1 and db.jobman.query_jobs_df()["key"].tolist() == ["k1"]
        assert {prefix + "job", prefix + "kvp"} <= set(db.other_tables)
        listing = db.listing()
        odd = listing[listing["table"] == prefix + "job"]
        assert len(odd) == 1 and odd["role"].iat[0] == "not understood" and "prefix" in odd["extra_columns"].iat[0]
        assert set(listing.loc[listing["role"] == "jobman", "table"]) == {"jobman_job", "jobman_kvp"}


@pytest.mark.parametrize("column", ["a.b", "1abc", "naïve", "with space", 'quo"te'])
def test_an_odd_extra_column_is_left_out_with_a_warning(tmp_path, column):
    quoted = '"' + column.replace('"', '""') + '"'
    path = _make(tmp_path, [f"ALTER TABLE jobman_job ADD COLUMN {quoted} TEXT",
                            f"UPDATE jobman_job SET {quoted} = 'v'",
                            "ALTER TABLE jobman_job ADD COLUMN fine_extra TEXT"])
    with pytest.warns(UserWarning, match="left out"):
        db = open_db(path)
    with db:
        assert column not in db.jobman.orms["job"].columns and "fine_extra" in db.jobman.orms["job"].columns
        frame = db.jobman.query_jobs_df()
        assert column not in frame.columns and "fine_extra" in frame.columns and frame["key"].tolist() == ["k1"]
        row = db.listing().set_index("table").loc["jobman_job"]
        assert "fine_extra" in row["extra_columns"] and f"{column} (left out" in row["extra_columns"]
        assert db.jobman.query_jobs({"filters": [{"field": "fine_extra", "op": "IS", "arg": None}]})


def test_the_table_kind_registry_names_each_kind_once():
    assert [k.role for k in TABLE_KINDS] == ["jobman", "worker", "engine", "other"]
    assert kind_of_prefix("jobman_")[0].role == "jobman"
    assert kind_of_prefix("_worker_cpu_w_") == (TABLE_KINDS[1], "cpu_w")
    assert kind_of_prefix("engine_slurm_") == (TABLE_KINDS[2], "slurm")
    assert kind_of_prefix("mine_") == (TABLE_KINDS[3], "mine")
    for kind in TABLE_KINDS[:3]:
        prefix = kind.prefix_for("k1")
        assert kind_of_prefix(prefix) == (kind, "k1" if kind.role != "jobman" else "jobman")
