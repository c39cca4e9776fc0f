"""Analytics on a DuckDB relation of an exported dataset run inside DuckDB and give the pandas answers."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

from jobman_nb import analytics as an
from jobman_nb.export import read_duckdb


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    yield c
    c.close()


CASES = {
    "status_counts": lambda df: an.status_counts(df),
    "status_counts_by_db_worker": lambda df: an.status_counts(df, ["db", "worker_key"]),
    "status_shares_by_code": lambda df: an.status_counts(df, "job_spec.cfg.code", normalize=True),
    "status_counts_by_mem": lambda df: an.status_counts(df, "job_spec.resources.mem_gb"),
    "failure_rate_by_method": lambda df: an.failure_rate(df, "job_spec.cfg.method"),
    "failure_rate_by_db_mem": lambda df: an.failure_rate(df, ["db", "job_spec.resources.mem_gb"]),
    "duration_quantiles": lambda df: an.duration_quantiles(df),
    "duration_quantiles_by_code": lambda df: an.duration_quantiles(df, "job_spec.cfg.code", q=(0.1, 0.5, 0.95)),
    "duration_quantiles_rounded": lambda df: an.duration_quantiles(df, "db", round_to="s"),
    "throughput_daily": lambda df: an.throughput(df, "D"),
    "throughput_2_days": lambda df: an.throughput(df, "2D"),
    "throughput_7_hours_by_code": lambda df: an.throughput(df, "7h", by="job_spec.cfg.code"),
    "throughput_weekly": lambda df: an.throughput(df, "W"),
    "throughput_hourly_by_db": lambda df: an.throughput(df, "h", by="db"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_as_pandas(exported_dataset, con, case):
    rel = read_duckdb(exported_dataset, connection=con)
    got = CASES[case](rel)
    want = CASES[case](pd.read_parquet(exported_dataset))
    assert len(want) > 0
    # the partition column 'db' is text in DuckDB and categorical in pandas: the labels must agree
    got, want = _plain_labels(got), _plain_labels(want)
    # durations: DuckDB's TIMESTAMPTZ holds microseconds (a Parquet timestamp[ns, UTC] is read to
    # the microsecond), and a mean is the rounding of a sum the two add in different orders (pandas
    # 2.2 in floats). The times are float epoch seconds in SQLite, good to ~0.2 us today, so every
    # duration statistic must agree to the microsecond; counts, rates and labels stay exact.
    durations = [c for c in want.columns if pd.api.types.is_timedelta64_dtype(want[c])]
    assert bool(durations) == case.startswith("duration")
    for c in durations:
        assert got[c].dtype == want[c].dtype
        gap = (got[c] - want[c]).abs()
        assert (gap.isna() == want[c].isna()).all() and gap.max() < pd.Timedelta(1, "us"), c
    pd.testing.assert_frame_equal(got.drop(columns=durations), want.drop(columns=durations))


def _plain_labels(df: pd.DataFrame) -> pd.DataFrame:
    def plain(index: pd.Index) -> pd.Index:
        levels = [index.get_level_values(i) for i in range(index.nlevels)]
        arrays = [pd.Index([None if pd.isna(v) else v for v in level], dtype=object) for level in levels]
        return pd.MultiIndex.from_arrays(arrays, names=index.names) if index.nlevels > 1 else arrays[0].rename(
            index.name)

    return df.set_axis(plain(df.index), axis=0).set_axis(plain(df.columns), axis=1)


def test_the_relation_is_the_dataset(exported_dataset, con):
    rel = read_duckdb(exported_dataset, connection=con)
    assert rel.shape[0] == 1500
    assert {"key", "status", "created", "modified", "db", "job_spec.cfg.code"} <= set(rel.columns)
    assert rel.query("jobs", "SELECT count(DISTINCT key) FROM jobs").fetchall() == [(1500,)]


def test_the_relation_is_a_lazy_scan_of_the_files(exported_dataset, con):
    """Not the dataset read into memory (what a parameterized statement gives before DuckDB 2.0)."""
    plan = read_duckdb(exported_dataset, connection=con).explain().upper()
    assert "PARQUET" in plan and "COLUMN_DATA_SCAN" not in plan


def test_a_dataset_under_a_path_with_quotes(exported_dataset, con, tmp_path):
    odd = tmp_path / "it's [1] \\ \"dataset\"; DROP TABLE x; --"
    shutil.copytree(exported_dataset, odd)
    rel = read_duckdb(odd, connection=con)
    assert rel.shape[0] == 1500
    assert "PARQUET" in rel.explain().upper()


def test_a_filtered_relation_counts_only_its_jobs(exported_dataset, con):
    rel = read_duckdb(exported_dataset, connection=con)
    east = rel.filter(duckdb.ColumnExpression("db") == duckdb.ConstantExpression("east"))
    assert an.status_counts(east).loc["all", "total"] == 900


def test_errors_before_any_query(exported_dataset, con, tmp_path):
    rel = read_duckdb(exported_dataset, connection=con)
    with pytest.raises(KeyError, match="nope"):
        an.status_counts(rel, "nope")
    with pytest.raises(ValueError, match="group by"):
        an.failure_rate(rel, None)
    with pytest.raises(ValueError, match="not a pandas frequency"):
        an.throughput(rel, "fortnightly")
    with pytest.raises(FileNotFoundError, match="no exported dataset"):
        read_duckdb(tmp_path / "empty")
