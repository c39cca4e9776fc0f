"""Analytics on a dask DataFrame read from an exported dataset give the pandas answers."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pandas as pd
import pytest

from jobman_nb import analytics as an
from jobman_nb.export import read_dask

# dask 2026.8 itself calls reset_index(inplace=True), which pandas 3.1 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")


@pytest.fixture(scope="module")
def frames(exported_dataset) -> tuple[pd.DataFrame, dd.DataFrame]:
    # the pandas side is the same dataset, computed: dtypes then agree under pandas 2 and 3
    return read_dask(exported_dataset).compute(), read_dask(exported_dataset)


CASES = {
    "status_counts": lambda df: an.status_counts(df),
    "status_counts_by_db_worker": lambda df: an.status_counts(df, ["db", "worker_key"]),
    "status_shares_by_code": lambda df: an.status_counts(df, "job_spec.cfg.code", normalize=True),
    "failure_rate_by_method": lambda df: an.failure_rate(df, "job_spec.cfg.method"),
    "failure_rate_by_db_mem": lambda df: an.failure_rate(df, ["db", "job_spec.resources.mem_gb"]),
    "duration_quantiles": lambda df: an.duration_quantiles(df),
    "duration_quantiles_by_code": lambda df: an.duration_quantiles(df, "job_spec.cfg.code", q=(0.1, 0.5, 0.95)),
    "throughput_daily": lambda df: an.throughput(df, "D"),
    "throughput_hourly_by_db": lambda df: an.throughput(df, "h", by="db"),
}


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_as_pandas(frames, case, scheduler):
    pdf, ddf = frames
    assert ddf.npartitions > 1
    with dask.config.set(scheduler=scheduler):
        got = CASES[case](ddf)
    want = CASES[case](pdf)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want)


def test_pandas_frame_of_dataset_is_the_export(frames):
    pdf, ddf = frames
    assert len(ddf) == len(pdf) == 1500
    assert an.status_counts(pdf).loc["all", "total"] == 1500


def test_query_errors_still_raise(frames):
    _, ddf = frames
    with pytest.raises(KeyError, match="nope"):
        an.status_counts(ddf, "nope")
    with pytest.raises(ValueError, match="group by"):
        an.failure_rate(ddf, None)


def test_only_dask_or_pandas_frames(frames):
    with pytest.raises(TypeError, match="pandas or dask"):
        an.status_counts([1, 2, 3])


def test_read_dask_without_dask_names_the_extra(exported_dataset, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask.dataframe", None)  # as if dask were not installed
    with pytest.raises(ImportError, match=r"jobman_nb\[scale\]"):
        read_dask(exported_dataset)


@pytest.mark.parametrize("freq", ["2D", "7h", "36h", "W", "MS"])
def test_throughput_of_any_frequency_counts_every_job(frames, freq):
    # periods anchored on the first job's day ('2D', '7h') are the pandas ones, not one set per partition
    pdf, ddf = frames
    got, want = an.throughput(ddf, freq), an.throughput(pdf, freq)
    pd.testing.assert_frame_equal(got, want)
    assert got.to_numpy().sum() == an.status_counts(pdf)[["COMPLETED", "FAILED"]].to_numpy().sum()


def test_a_frequency_that_is_not_one_is_refused(frames):
    _, ddf = frames
    with pytest.raises(ValueError, match="not a pandas frequency"):
        an.throughput(ddf, "fortnightly")
