"""created and modified take dates in query dicts: ISO-8601 text, datetime, pd.Timestamp."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from jobman_nb import JobmanSqliteDAO, QueryError

UTC = dt.timezone.utc
# one job per day at noon UTC, 2026-01-08 .. 2026-01-12
DAYS = [dt.datetime(2026, 1, d, 12, tzinfo=UTC) for d in range(8, 13)]


@pytest.fixture
def dated_dao():
    dao = JobmanSqliteDAO()
    dao.save_jobs([{"key": f"d{t.day}", "status": "PENDING", "created": t.timestamp()} for t in DAYS],
                  auto_update=False)
    yield dao
    dao.close()


def keys(dao, field, op, arg):
    return sorted(j["key"] for j in dao.query_jobs({"filters": [{"field": field, "op": op, "arg": arg}]}))


@pytest.mark.parametrize("arg", [
    "2026-01-10",                       # midnight UTC
    "2026-01-10T00:00:00",
    "2026-01-10 00:00",
    "2026-01-10T00:00:00Z",
    "2026-01-10T00:00:00.000+00:00",
    "2026-01-10T02:00:00+02:00",        # the same instant in another zone
    "2026-01-09T19:00:00-0500",
    dt.datetime(2026, 1, 10),           # naive means UTC
    dt.datetime(2026, 1, 10, tzinfo=UTC),
    dt.date(2026, 1, 10),
    pd.Timestamp("2026-01-10"),
    pd.Timestamp("2026-01-10T01:00", tz="Europe/Paris"),
    np.datetime64("2026-01-10"),
    dt.datetime(2026, 1, 10, tzinfo=UTC).timestamp(),  # epoch seconds still work
])
def test_created_compares_as_a_date(dated_dao, arg):
    assert keys(dated_dao, "created", ">", arg) == ["d10", "d11", "d12"]
    assert keys(dated_dao, "created", "<=", arg) == ["d8", "d9"]
    assert keys(dated_dao, "created", "!>", arg) == ["d8", "d9"]


def test_between_and_in_take_dates(dated_dao):
    assert keys(dated_dao, "created", "BETWEEN", ["2026-01-09", pd.Timestamp("2026-01-11T12:00")]) == \
        ["d10", "d11", "d9"]
    assert keys(dated_dao, "created", "NOT BETWEEN", ["2026-01-09", "2026-01-11T12:00:00Z"]) == ["d12", "d8"]
    assert keys(dated_dao, "created", "IN", ["2026-01-08T12:00:00Z", dt.datetime(2026, 1, 12, 12), None]) == \
        ["d12", "d8"]
    assert keys(dated_dao, "created", "=", "2026-01-09T12:00:00Z") == ["d9"]
    assert keys(dated_dao, "created", "IS", pd.Timestamp("2026-01-09 12:00", tz="UTC")) == ["d9"]


def test_modified_takes_dates_and_fractions(dated_dao):
    when = dt.datetime(2030, 5, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    dated_dao.save_jobs([{"key": "frac", "modified": when.timestamp()}], auto_update=False)
    assert keys(dated_dao, "modified", "=", "2030-05-01T00:00:00.25Z") == ["frac"]
    assert keys(dated_dao, "modified", ">=", "2030-01-01") == ["frac"]


def test_dates_work_in_claim_update_count_and_frames(dated_dao):
    recent = {"filters": [{"field": "created", "op": ">=", "arg": "2026-01-11"}]}
    assert dated_dao.count_ents("job", recent) == 2
    assert len(dated_dao.query_jobs_df(recent)) == 2
    assert dated_dao.update_jobs({"status": "FAILED"}, recent) == {"rowcount": 2}
    assert sorted(j["key"] for j in dated_dao.claim_jobs(
        {"filters": [{"field": "created", "op": "<", "arg": dt.date(2026, 1, 10)}]})) == ["d8", "d9"]


@pytest.mark.parametrize(("op", "arg", "where"), [
    (">", "yesterday", "filters[0].arg"),
    (">", "2026-13-01", "filters[0].arg"),
    (">", "2026-02-30", "filters[0].arg"),
    ("BETWEEN", ["2026-01-01", "soon"], "filters[0].arg[1]"),
    ("IN", ["2026-01-01", "x"], "filters[0].arg[1]"),
    ("=", pd.NaT, "filters[0].arg"),
])
def test_a_string_that_is_not_a_date_is_a_query_error_naming_the_field(dated_dao, op, arg, where):
    with pytest.raises(QueryError, match=re.escape(f"{where} (time field 'created')")) as info:
        dated_dao.query_jobs({"filters": [{"field": "created", "op": op, "arg": arg}]})
    assert "date" in str(info.value) or "NaT" in str(info.value)


def test_other_fields_and_json_paths_keep_strings(dated_dao):
    # only the time fields convert: a date-like string elsewhere is compared as text
    dated_dao.save_jobs([{"key": "2026-01-10", "job_spec": {"created": "2026-01-10"}}])
    assert keys(dated_dao, "key", "=", "2026-01-10") == ["2026-01-10"]
    assert keys(dated_dao, "job_spec.created", "=", "2026-01-10") == ["2026-01-10"]
