"""DataFrames of query results: columns, dtypes, JSON expansion, clashes, chunks."""

from __future__ import annotations

import itertools
import math
import random
import threading

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobman_nb import STATUSES, JobmanSqliteDAO, QueryError, frames
from jobman_nb.errors import CorruptRecordError
from jobman_nb.frames import ColumnClashError, to_frame

MISSING = object()


def _expected(record: dict, column: str):
    """What query_jobs says belongs in *column* of the record's row."""
    if column in record:
        value = record[column]
        return None if isinstance(value, dict) else value
    for name in sorted(record, key=len, reverse=True):  # projected paths such as 'job_spec.cfg'
        if column.startswith(name + "."):
            value = record[name]
            for k in column[len(name) + 1:].split("."):
                value = value.get(k) if isinstance(value, dict) else None
            return None if isinstance(value, dict) else value
    raise AssertionError(f"column {column!r} does not come from {sorted(record)}")


def _cell(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.timestamp()
    return value


def assert_matches_records(frame: pd.DataFrame, records: list[dict]) -> None:
    assert len(frame) == len(records)
    for column in frame.columns:
        for got, rec in zip(frame[column].tolist(), records, strict=True):
            want = _expected(rec, column)
            got = _cell(got)
            if column in ("created", "modified") and want is not None:
                assert got == pytest.approx(want, abs=1e-6), (column, rec.get("key"))
            else:
                if frame[column].dtype == "float64" and type(want) is int:
                    want = float(want)  # integers among floats are floats (exact up to 2**53)
                assert got == want, (column, rec.get("key"), got, want)
                assert type(got) is type(want) or {type(got), type(want)} <= {int, float}, (column, got, want)


@pytest.fixture
def sample(fixture_path):
    d = JobmanSqliteDAO(db_uri=str(fixture_path), read_only=True)
    yield d
    d.close()


# -- the shared fixture -------------------------------------------------------------------
def test_fixture_frame_expands_job_spec(sample, fixture_expected):
    df = sample.query_jobs_df({"order_by": {"field": "key"}})
    assert df.columns[0] == "key"
    assert df["job_spec.dir"].str.startswith("/scratch/alice/jobs/").all()
    assert set(df["job_spec.resources.cpus"].dropna()) <= {1, 2, 4, 8}
    assert df["key"].tolist() == [r["key"] for r in fixture_expected["jobman_job"]]
    assert_matches_records(df, fixture_expected["jobman_job"])


def test_fixture_dtypes(sample):
    df = sample.query_jobs_df()
    assert str(df["created"].dtype) == "datetime64[ns, UTC]"
    assert str(df["modified"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(df["status"].dtype, pd.CategoricalDtype)
    assert list(df["status"].cat.categories) == list(STATUSES)
    assert df["batchable"].dtype == "Int64" and df["purgeable"].dtype == "Int64"
    assert df["key"].dtype == frames.STRING_DTYPE and df["job_spec.dir"].dtype == frames.STRING_DTYPE
    assert df["job_spec.resources.cpus"].dtype == "Int64"
    assert df["job_spec.batchable"].dtype == "boolean"
    assert df["source_meta.tags"].map(type).eq(list).all()


def test_fixture_values_equal_query_jobs_for_queries(sample):
    for query in [None, {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}]},
                  {"order_by": {"field": "job_spec.resources.cpus", "direction": "DESC"}, "limit": 7, "offset": 3},
                  {"fields": ["status", "key", "job_spec.resources", "job_spec.cfg.code", "created"]}]:
        records = sample.query_jobs(query)
        df = sample.query_jobs_df(query)
        assert_matches_records(df, records)
        pd.testing.assert_frame_equal(df, to_frame(records, sample.orms["job"].fields))


def test_fixture_kvps_and_worker_tables(fixture_path, fixture_expected, make_dao):
    from jobman_nb import WorkerSqliteDAO

    jobman = make_dao(db_uri=str(fixture_path), read_only=True)
    kvps = jobman.query_kvps_df({"order_by": {"field": "key"}})
    assert kvps["value"].tolist() == [{"n": 3}, "text"]
    worker = make_dao(WorkerSqliteDAO, db_uri=str(fixture_path), table_prefix="_worker_cpu_w_", read_only=True)
    df = worker.query_jobs_df({"order_by": {"field": "key"}})
    assert_matches_records(df, fixture_expected["_worker_cpu_w_job"])
    assert df["is_batch"].dtype == "Int64"


# -- the frame's rules ----------------------------------------------------------------------
def test_projection_keeps_order_with_key_first(sample):
    df = sample.query_jobs_df({"fields": ["status", "job_spec.resources.cpus", "key"]})
    assert list(df.columns) == ["key", "status", "job_spec.resources.cpus"]
    assert df["job_spec.resources.cpus"].dtype == "Int64"


def test_empty_result_has_schema_columns_and_dtypes(sample):
    df = sample.query_jobs_df({"filters": [{"field": "status", "op": "=", "arg": "nothing"}]})
    full = sample.query_jobs_df()
    assert len(df) == 0
    fields = list(sample.JobSchema.get_field_infos())
    assert list(df.columns) == ["key", *(f for f in fields if f != "key")]
    for column in df.columns:
        if column in full.columns:  # a JSON field that held only objects has no column of its own
            assert df[column].dtype == full[column].dtype, column
    assert df.groupby("status", observed=False).size().index.tolist() == list(STATUSES)


def test_expand_json_false_keeps_parsed_values(sample):
    records = sample.query_jobs()
    df = sample.query_jobs_df(expand_json=False)
    assert not any("." in c for c in df.columns)
    assert df["job_spec"].tolist() == [r["job_spec"] for r in records]
    pd.testing.assert_frame_equal(df, to_frame(records, sample.orms["job"].columns, expand_json=False))


def test_status_outside_statuses_is_a_category(dao):
    dao.save_jobs([{"status": "PENDING"}, {"status": "ZOMBIE"}, {"status": "ARCHIVED"}, {}])
    df = dao.query_jobs_df()
    assert list(df["status"].cat.categories) == [*STATUSES, "ARCHIVED", "ZOMBIE"]
    assert df["status"].tolist()[:3] == ["PENDING", "ZOMBIE", "ARCHIVED"]
    assert df["status"].isna().tolist() == [False, False, False, True]


def test_json_values_that_are_not_objects(dao):
    jobs = [{"key": "a", "job_spec": {"x": 1}, "errors": ["boom", {"kind": "oom"}]},
            {"key": "b", "job_spec": "just text", "errors": None},
            {"key": "c", "job_spec": None, "errors": []},
            {"key": "d", "job_spec": {}, "errors": {"first": "x"}}]
    dao.save_jobs(jobs)
    df = dao.query_jobs_df({"order_by": {"field": "key"}})
    assert df["job_spec"].isna().tolist() == [True, False, True, True]
    assert df["job_spec"][1] == "just text"
    assert df["job_spec.x"].tolist() == [1, pd.NA, pd.NA, pd.NA]
    assert df["errors"].tolist() == [["boom", {"kind": "oom"}], None, [], None]
    assert df["errors.first"].tolist() == [pd.NA, pd.NA, pd.NA, "x"]
    assert_matches_records(df, dao.query_jobs({"order_by": {"field": "key"}}))


def test_rows_with_conflicting_types_fall_back_to_python_values(dao):
    dao.save_jobs([{"key": "a", "job_spec": {"n": 1, "when": "2024-01-02T03:04:05", "big": 2**70,
                                             "l": [{"p": 1}, {"q": 2}], "m": {"k": 1}}},
                   {"key": "b", "job_spec": {"n": "one", "when": "2024-01-02", "big": 1, "m": 5}}])
    df = dao.query_jobs_df({"order_by": {"field": "key"}})
    assert df["job_spec.n"].tolist() == [1, "one"] and df["job_spec.n"].dtype == object
    assert df["job_spec.when"].tolist() == ["2024-01-02T03:04:05", "2024-01-02"]
    assert df["job_spec.big"].tolist() == [2**70, 1]
    assert df["job_spec.l"].tolist()[0] == [{"p": 1}, {"q": 2}]
    assert df["job_spec.m"].tolist() == [pd.NA, 5] and df["job_spec.m.k"].tolist() == [1, pd.NA]
    assert_matches_records(df, dao.query_jobs({"order_by": {"field": "key"}}))


def test_mixed_ints_and_floats_are_float64(dao):
    dao.save_jobs([{"key": "a", "job_spec": {"t": 1}}, {"key": "b", "job_spec": {"t": 2.5}}])
    df = dao.query_jobs_df({"order_by": {"field": "key"}})
    assert df["job_spec.t"].dtype == "float64" and df["job_spec.t"].tolist() == [1.0, 2.5]


def test_invalid_json_text_raises(file_dao):
    file_dao.save_jobs([{"key": "bad", "job_spec": {"a": 1}}])
    file_dao.connection.execute("UPDATE jobman_job SET job_spec = '{\"a\": ' WHERE key = 'bad'")
    with pytest.raises(CorruptRecordError, match=r"'bad'.*job_spec"):
        file_dao.query_jobs_df()


def test_invalid_json_in_a_later_read_chunk_raises_and_leaves_no_thread(file_dao, monkeypatch):
    # chunks after the first are converted by a worker thread while the next is read
    monkeypatch.setattr(frames, "READ_CHUNK", 3)
    file_dao.save_jobs([{"key": f"k{i}", "job_spec": {"a": i}} for i in range(10)])
    file_dao.connection.execute("UPDATE jobman_job SET job_spec = '{\"a\": ' WHERE key = 'k7'")
    threads = threading.active_count()
    with pytest.raises(CorruptRecordError, match=r"'k7'.*job_spec"):
        file_dao.query_jobs_df({"order_by": {"field": "key"}})
    assert threading.active_count() == threads


def test_value_that_does_not_fit_its_column_type_is_kept(file_dao):
    file_dao.save_jobs([{"key": "a", "batchable": 1, "worker_key": "w"}, {"key": "b"}])
    file_dao.connection.execute("UPDATE jobman_job SET batchable = 'yes', worker_key = x'0102' WHERE key = 'b'")
    df = file_dao.query_jobs_df({"order_by": {"field": "key"}})
    assert df["batchable"].tolist() == [1, "yes"]
    assert df["worker_key"].tolist() == ["w", b"\x01\x02"]


# -- name clashes ---------------------------------------------------------------------------
# Values another tool may have written, each a type that the one-pass conversion of a batch
# (frames._typed_read) takes differently or not at all: the batch goes column by column instead.
_MISFITS = {
    "a BLOB in a text column": "UPDATE jobman_job SET worker_key = x'6869' WHERE key = 'k3'",
    "invalid UTF-8 in a text column": "UPDATE jobman_job SET source_tag = x'ff' WHERE key = 'k3'",
    "a REAL in an integer column": "UPDATE jobman_job SET batchable = 2.5 WHERE key = 'k3'",
    "a number in a text column": "UPDATE jobman_job SET status = 7 WHERE key = 'k3'",
    "text in a time column": "UPDATE jobman_job SET created = 'yesterday' WHERE key = 'k3'",
    "a bare number in a JSON column": "UPDATE jobman_job SET job_spec = 5 WHERE key = 'k3'",
    "a BLOB of JSON in a JSON column":
        "UPDATE jobman_job SET worker_meta = CAST('{\"a\": 1}' AS BLOB) WHERE key = 'k3'",
    "nothing odd": "SELECT 1",
}


@pytest.mark.parametrize("misfit", list(_MISFITS))
def test_batches_read_in_one_pass_give_the_column_by_column_frame(file_dao, monkeypatch, misfit):
    monkeypatch.setattr(frames, "READ_CHUNK", 4)  # the odd row in the second of three batches
    file_dao.save_jobs([{"key": f"k{i}", "status": "PENDING", "batchable": i % 2, "worker_key": f"w{i}",
                         "job_spec": {"i": i, "code": "psi4"}, "worker_meta": {"host": "n1"}} for i in range(10)])
    file_dao.connection.execute(_MISFITS[misfit])
    query = {"order_by": {"field": "key"}}
    one_pass = file_dao.query_jobs_df(query)
    chunks = pd.concat(list(file_dao.iter_jobs_df(query, chunksize=4, progress=False)), ignore_index=True)
    monkeypatch.setattr(frames, "_ROW_TYPES", {})  # no kind converts in one pass: every batch by column
    by_column = file_dao.query_jobs_df(query)
    pd.testing.assert_frame_equal(one_pass, by_column)
    pd.testing.assert_frame_equal(chunks, pd.concat(list(file_dao.iter_jobs_df(query, chunksize=4, progress=False)),
                                                    ignore_index=True))
    assert one_pass["key"].tolist() == [f"k{i}" for i in range(10)]


def test_plain_batches_are_read_in_one_pass(file_dao, monkeypatch):
    """The one-pass conversion is really taken (else the test above compares a route with itself)."""
    monkeypatch.setattr(frames, "READ_CHUNK", 4)
    file_dao.save_jobs([{"key": f"k{i}", "job_spec": {"i": i}} for i in range(10)])
    by_column = []
    monkeypatch.setattr(frames, "_rows_to_columns", lambda rows, width: by_column.append(rows) or
                        list(zip(*rows, strict=True)) if rows else [() for _ in range(width)])
    assert len(file_dao.query_jobs_df()) == 10
    assert by_column == []
    file_dao.connection.execute("UPDATE jobman_job SET batchable = 2.5 WHERE key = 'k5'")
    assert file_dao.query_jobs_df({"order_by": {"field": "key"}})["batchable"].tolist()[5] == 2.5
    assert [len(rows) for rows in by_column] == [4]  # the batch holding the REAL, alone


def test_dotted_key_clash_raises(dao):
    dao.save_jobs([{"key": "a", "job_spec": {"cfg.code": "x"}}, {"key": "b", "job_spec": {"cfg": {"code": "y"}}}])
    with pytest.raises(ColumnClashError, match=r"job_spec\.cfg\.code") as info:
        dao.query_jobs_df()
    assert isinstance(info.value, ValueError)
    with pytest.raises(ColumnClashError):
        to_frame(dao.query_jobs(), dao.orms["job"].fields)
    assert dao.query_jobs_df(expand_json=False)["job_spec"].tolist() == [{"cfg.code": "x"}, {"cfg": {"code": "y"}}]


def test_dotted_key_without_clash_is_a_column(dao):
    dao.save_jobs([{"key": "a", "job_spec": {"v1.2": "x"}}])
    assert dao.query_jobs_df()["job_spec.v1.2"].tolist() == ["x"]


def test_projection_beside_its_expansion_gives_one_column(sample):
    df = sample.query_jobs_df({"fields": ["key", "job_spec", "job_spec.resources.cpus", "job_spec.cfg"]})
    assert list(df.columns).count("job_spec.resources.cpus") == 1
    assert list(df.columns).count("job_spec.cfg.code") == 1


# -- to_frame ---------------------------------------------------------------------------------
def test_to_frame_rejects_unknown_fields(dao):
    with pytest.raises(ValueError, match="unknown field 'nope'"):
        to_frame([{"key": "a", "nope": 1}], dao.orms["job"].fields)
    with pytest.raises(TypeError, match="fields"):
        to_frame([{"key": "a"}], None)


def test_to_frame_of_no_records_is_the_empty_frame(dao):
    pd.testing.assert_frame_equal(to_frame([], dao.orms["job"].fields), dao.query_jobs_df())


# -- generated data, chunks -------------------------------------------------------------------
def _generated_jobs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        spec = {"dir": f"/scratch/run/{i}", "resources": {"cpus": rng.choice([1, 2, 4]), "mem": rng.random() * 8},
                "cfg": {"code": rng.choice(["xtb", "orca", "psi4"])}}
        if i % 7 == 0:
            spec["cfg"]["basis"] = rng.choice(["sto-3g", "def2-svp"])
        if i % 11 == 0:
            del spec["resources"]
        if i > n * 3 // 4:
            spec["late"] = {"flag": i % 2 == 0}
        jobs.append({"key": f"job{i:05d}", "job_spec": spec, "status": rng.choice(STATUSES[:-1]),
                     "batchable": rng.choice([None, 0, 1]), "errors": ["x"] if i % 13 == 0 else None,
                     "created": 1.7e9 + i, "source_meta": {"i": i}})
    return jobs


def test_generated_data_matches_query_jobs_across_read_chunks(dao, monkeypatch):
    monkeypatch.setattr(frames, "READ_CHUNK", 97)
    dao.save_jobs(_generated_jobs(1000, seed=1))
    query = {"order_by": {"field": "key"}}
    df = dao.query_jobs_df(query)
    records = dao.query_jobs(query)
    assert_matches_records(df, records)
    pd.testing.assert_frame_equal(df, to_frame(records, dao.orms["job"].fields))
    assert df["job_spec.late.flag"].dtype == "boolean"
    assert df["job_spec.resources.cpus"].dtype == "Int64"


def test_iter_jobs_df_chunks_share_columns_and_dtypes(dao):
    dao.save_jobs(_generated_jobs(1000, seed=2))
    query = {"order_by": {"field": "key"}}
    chunks = list(dao.iter_jobs_df(query, chunksize=300, progress=False))
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    whole = dao.query_jobs_df(query)
    schema = ["key", "created", "modified", "status", "batchable", "errors"]  # job_spec: objects only
    for chunk in chunks:
        assert "job_spec" not in chunk
        for column in schema:
            assert chunk[column].dtype == whole[column].dtype, column
    for before, after in itertools.pairwise(chunks):
        assert [c for c in after.columns if c in before.columns] == list(before.columns)
    assert "job_spec.late.flag" not in chunks[0] and "job_spec.late.flag" in chunks[-1]
    joined = pd.concat(chunks)[list(whole.columns)]
    pd.testing.assert_frame_equal(joined, whole)


def test_iter_status_categories_are_those_of_the_whole_result(dao):
    dao.save_jobs([{"key": "a", "status": "PENDING"}, {"key": "b", "status": "ZOMBIE"}])
    chunks = list(dao.iter_jobs_df({"order_by": {"field": "key"}}, chunksize=1))
    assert [list(c["status"].cat.categories) for c in chunks] == [[*STATUSES, "ZOMBIE"]] * 2


def test_iter_progress_bar(dao, capsys):
    dao.save_jobs(_generated_jobs(50, seed=3))
    assert sum(map(len, dao.iter_jobs_df(chunksize=20, progress=True))) == 50
    assert "50/50" in capsys.readouterr().err
    assert sum(map(len, dao.iter_jobs_df(chunksize=20))) == 50
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("chunksize", [0, -1, 2.5, True])
def test_iter_rejects_bad_chunksize(dao, chunksize):
    with pytest.raises(ValueError, match="chunksize"):
        dao.iter_jobs_df(chunksize=chunksize)


def test_bad_query_raises_query_error(dao):
    with pytest.raises(QueryError, match="nope"):
        dao.query_jobs_df({"filters": [{"field": "nope", "op": "=", "arg": 1}]})


# -- property: the pyarrow route and the json.loads route give the same frame ---------------
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["", "x", "2024-05-06"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)), max_leaves=8)
_specs = st.one_of(st.none(), _values, st.dictionaries(st.sampled_from(["a", "b", "c"]), _values, max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(_specs, min_size=1, max_size=6))
def test_any_json_gives_the_frame_of_its_records(specs):
    with JobmanSqliteDAO(db_uri=":memory:") as d:
        d.save_jobs([{"key": f"k{i}", "job_spec": s} for i, s in enumerate(specs)])
        query = {"order_by": {"field": "key"}, "fields": ["key", "job_spec"]}
        records = d.query_jobs(query)
        df = d.query_jobs_df(query)
        assert_matches_records(df, records)
        pd.testing.assert_frame_equal(df, to_frame(records, d.orms["job"].fields))


# Without empty objects: a key that is null in one chunk and {} in another keeps an all-missing
# column, which the frame of the records in one piece leaves out (as the frames have always done).
_nonempty_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, min_size=1, max_size=3)),
    max_leaves=8)
_nonempty_specs = st.one_of(st.none(), _nonempty_values,
                            st.dictionaries(st.sampled_from(["a", "b", "c"]), _nonempty_values, max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(_nonempty_specs, min_size=2, max_size=9))
@example(specs=[{"a": {"b": 0.0}}, {"a": {"b": 2**53 + 1}}])  # an int among floats, past float precision
@example(specs=[{"c": 0.5}, None, {"c": 2**63}])  # an int beyond 64 bits among floats, in another chunk
@example(specs=[{"c": 0.5}, None, {"c": 10**400}])  # ... and one beyond float range
@example(specs=[None, [2**53 + 1, 0.0]])  # a list of numbers holds the json.loads values
def test_any_json_read_in_chunks_gives_the_frame_of_its_records(specs, monkeypatch):
    # rows whose JSON types differ fall into different chunks: stacking them gives the one-piece frame
    monkeypatch.setattr(frames, "READ_CHUNK", 2)
    with JobmanSqliteDAO(db_uri=":memory:") as d:
        d.save_jobs([{"key": f"k{i}", "job_spec": s} for i, s in enumerate(specs)])
        query = {"order_by": {"field": "key"}, "fields": ["key", "job_spec"]}
        records = d.query_jobs(query)
        df = d.query_jobs_df(query)
        assert_matches_records(df, records)
        pd.testing.assert_frame_equal(df, to_frame(records, d.orms["job"].fields))


def test_json_field_column_only_where_some_row_is_not_an_object(dao):
    # every row an object: the dotted columns alone (no all-missing 'job_spec' beside them)
    dao.save_jobs([{"key": "a", "job_spec": {"x": 1}}, {"key": "b", "job_spec": {"x": 2}}])
    df = dao.query_jobs_df()
    assert "job_spec" not in df.columns and df["job_spec.x"].tolist() == [1, 2]
    assert "job_spec" not in pd.concat(dao.iter_jobs_df(chunksize=1)).columns
    # a NULL adds nothing either, however the rows fall into chunks
    dao.save_jobs([{"key": "c", "job_spec": None}])
    assert "job_spec" not in dao.query_jobs_df().columns
    assert "job_spec" not in pd.concat(dao.iter_jobs_df(chunksize=2)).columns
    # one scalar brings the column back, holding the scalar
    dao.save_jobs([{"key": "d", "job_spec": "text"}])
    df = dao.query_jobs_df()
    assert df["job_spec"].tolist()[3] == "text" and df["job_spec"].isna().tolist()[:3] == [True] * 3
    # a field NULL in every row keeps its column
    assert dao.query_jobs_df()["errors"].isna().all()


def test_iter_status_categories_are_known_before_the_first_chunk(dao):
    # the table's statuses (read from its status index), whatever the query selects
    dao.save_jobs([{"key": "a", "status": "PENDING"}, {"key": "b", "status": "ZOMBIE"}, {"key": "c", "status": None}])
    pending = {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}]}
    chunks = list(dao.iter_jobs_df(pending, chunksize=1))
    assert [list(c["status"].cat.categories) for c in chunks] == [[*STATUSES, "ZOMBIE"]]
    assert dao.distinct_values("job", "status") == [None, "PENDING", "ZOMBIE"]
    dao.save_jobs([{"key": "c", "status": "ALIVE"}])
    assert dao.distinct_values("job", "status") == ["ALIVE", "PENDING", "ZOMBIE"]
