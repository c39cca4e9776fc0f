"""Analytics over job frames: known answers on hand-made frames, and the shared fixture."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from jobman_nb import analytics as an
from jobman_nb.explore import open_db

T0 = pd.Timestamp("2026-01-05 00:00", tz="UTC")


def _frame(rows):
    """rows: (key, status, created minutes after T0, duration minutes, code, mem, worker, errors)."""
    df = pd.DataFrame(rows, columns=["key", "status", "created", "minutes", "job_spec.cfg.code",
                                     "job_spec.resources.mem_gb", "worker_key", "errors"])
    df["created"] = T0 + pd.to_timedelta(df["created"], unit="min")
    df["modified"] = df["created"] + pd.to_timedelta(df.pop("minutes"), unit="min")
    df["status"] = pd.Categorical(df["status"], categories=["COMPLETED", "FAILED", "PENDING", "RUNNING"])
    return df


OOM = "Traceback (most recent call last):\n  File \"/opt/run.py\", line 3\nMemoryError: Unable to allocate {} GiB"
QUOTA = "OSError: [Errno 122] Disk quota exceeded: '/scratch/{}/input.xyz'"


@pytest.fixture
def df():
    return _frame([
        ("a", "COMPLETED", 0, 10, "xtb", 2, "cpu", None),
        ("b", "COMPLETED", 5, 20, "xtb", 8, "cpu", None),
        ("c", "COMPLETED", 60, 30, "orca", 8, "gpu", None),
        ("d", "FAILED", 70, 40, "orca", 2, "gpu", [OOM.format("3.5")]),
        ("e", "FAILED", 80, 50, "orca", 2, "gpu", ["first try", OOM.format("12")]),
        ("f", "FAILED", 1500, 60, "xtb", 2, "cpu", QUOTA.format("alice")),
        ("g", "RUNNING", 1600, 5, "xtb", 2, "cpu", None),
        ("h", "PENDING", 1700, 0, "orca", 8, None, None),
    ])


def test_status_counts(df):
    overall = an.status_counts(df)
    assert overall.loc["all"].to_dict() == {"COMPLETED": 3, "FAILED": 3, "PENDING": 1, "RUNNING": 1, "total": 8}
    by = an.status_counts(df, "job_spec.cfg.code")
    assert by.loc["orca"].to_dict() == {"COMPLETED": 1, "FAILED": 2, "PENDING": 1, "RUNNING": 0, "total": 4}
    shares = an.status_counts(df, "worker_key", normalize=True)
    assert shares.loc["gpu", "FAILED"] == pytest.approx(2 / 3)
    assert by.columns.tolist() == ["COMPLETED", "FAILED", "PENDING", "RUNNING", "total"]
    with pytest.raises(KeyError, match="no column 'nope'"):
        an.status_counts(df, "nope")


def test_status_counts_by_two_columns_keeps_missing_groups(df):
    t = an.status_counts(df, ["worker_key", "job_spec.cfg.code"])
    assert t.loc[("cpu", "xtb"), "total"] == 4
    assert t["total"].sum() == 8  # the unassigned job is counted under <NA>


def test_durations_and_quantiles(df):
    d = an.durations(df)
    assert sorted(d["key"]) == ["a", "b", "c", "d", "e", "f"]
    assert d.set_index("key").loc["c", "duration"] == pd.Timedelta(minutes=30)
    q = an.duration_quantiles(df, "status", q=(0.5,))
    assert q.loc["FAILED", "50%"] == pd.Timedelta(minutes=50)
    assert q.loc["COMPLETED", "mean"] == pd.Timedelta(minutes=20)
    assert q.loc["COMPLETED", "count"] == 3
    allq = an.duration_quantiles(df)
    assert allq.loc["all", "max"] == pd.Timedelta(minutes=60)
    assert allq.loc["all", "min"] == pd.Timedelta(minutes=10)
    rounded = an.duration_quantiles(df, round_to="h")
    assert rounded.loc["all", "max"] == pd.Timedelta(hours=1)
    with pytest.raises(ValueError, match="quantiles"):
        an.duration_quantiles(df, q=(50,))


def test_throughput_per_hour_fills_empty_hours(df):
    t = an.throughput(df, "h")
    assert t.columns.tolist() == ["COMPLETED", "FAILED"]
    assert t.index[0] == T0
    assert len(t) == 27  # 00:00 .. 26:00 of the next day, empty hours included
    assert t.loc[T0].to_dict() == {"COMPLETED": 2, "FAILED": 0}
    assert t.loc[T0 + pd.Timedelta(hours=1)].to_dict() == {"COMPLETED": 1, "FAILED": 1}
    assert t.loc[T0 + pd.Timedelta(hours=2)].to_dict() == {"COMPLETED": 0, "FAILED": 1}
    assert t.values.sum() == 6
    daily = an.throughput(df, "D", by="worker_key")
    assert daily.loc[T0].to_dict() == {"cpu": 2, "gpu": 3}


def test_failure_rate(df):
    fr = an.failure_rate(df, "worker_key")
    assert fr.index.tolist() == ["gpu", "cpu"]
    assert fr.loc["gpu"].to_dict() == {"finished": 3, "failed": 2, "completed": 1, "failure_rate": pytest.approx(2 / 3)}
    assert fr.loc["cpu", "failure_rate"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="group by"):
        an.failure_rate(df, None)


def test_introspect_ranks_the_cause_first(df):
    t = an.introspect(df, ["job_spec.cfg.code", "job_spec.resources.mem_gb"])
    top = t.iloc[0]
    # all 3 failed jobs had 2 GB; 1 of 3 completed did: lift 3
    assert (top["column"], top["value"]) == ("job_spec.resources.mem_gb", 2)
    assert (top["failed"], top["completed"]) == (3, 1)
    assert top["lift"] == pytest.approx(3.0)
    assert top["failure_rate"] == pytest.approx(0.75)
    orca = t[(t["column"] == "job_spec.cfg.code") & (t["value"] == "orca")].iloc[0]
    assert orca["failed_share"] == pytest.approx(2 / 3) and orca["completed_share"] == pytest.approx(1 / 3)
    assert orca["lift"] == pytest.approx(2.0)
    assert t["lift"].is_monotonic_decreasing


def test_introspect_default_columns_skip_per_job_values(df):
    df["job_spec.dir"] = "/scratch/" + df["key"]
    t = an.introspect(df)
    assert set(t["column"]) == {"job_spec.cfg.code", "job_spec.resources.mem_gb"}


@pytest.mark.parametrize("line, expected", [
    ("MemoryError: Unable to allocate 3.5 GiB for b3lyp integrals",
     "MemoryError: Unable to allocate <n> for b3lyp integrals"),
    ("OSError: [Errno 122] Disk quota exceeded: '/scratch/alice/jobs/ab12cd34/input.xyz'",
     "OSError: [Errno <n>] Disk quota exceeded: '<path>'"),
    ("KeyError: 'job 0f8fad5b-d9cb-469f-a165-70867728950e at 0x7f3a2b1c'", "KeyError: 'job <uuid> at <hex>'"),
    ("ConnectionResetError: reset by peer (node cn0421)", "ConnectionResetError: reset by peer (node <id>)"),
    ("SCF not converged after 312 cycles (last dE=1.2e-05)", "SCF not converged after <n> cycles (last dE=<n>)"),
])
def test_normalize_error(line, expected):
    assert an.normalize_error(line) == expected


@pytest.mark.parametrize("errors, expected", [
    (None, None), ([], None), ("boom\n\n", "boom"), (["first\nA", "second\nB  "], "B"),
    ([{"traceback": "x\nValueError: v"}], "ValueError: v"), ("  \n ", None),
])
def test_last_error_line(errors, expected):
    assert an.last_error_line(errors) == expected


def test_recurring_errors(df):
    t = an.recurring_errors(df)
    assert t["error"].tolist() == ["MemoryError: Unable to allocate <n>", "OSError: [Errno <n>] Disk quota "
                                   "exceeded: '<path>'"]
    assert t["count"].tolist() == [2, 1]
    assert t.loc[0, "example_keys"] == ["d", "e"]
    assert t.loc[0, "example"] == "MemoryError: Unable to allocate 3.5 GiB"
    assert t["share"].tolist() == [pytest.approx(2 / 3), pytest.approx(1 / 3)]
    assert an.recurring_errors(df, examples=1).loc[0, "example_keys"] == ["d"]


def test_missing_columns_are_named(df):
    with pytest.raises(KeyError, match="'created'"):
        an.durations(df.drop(columns="created"))


def test_plots_return_axes(df):
    for ax in (an.plot_status_counts(df), an.plot_status_counts(df, "worker_key", normalize=True),
               an.plot_durations(df), an.plot_durations(df, "status"), an.plot_throughput(df, "h"),
               an.plot_failure_rate(df, "job_spec.cfg.code")):
        assert isinstance(ax, matplotlib.axes.Axes)
        assert ax.get_title()
        plt.close(ax.figure)


def test_on_fixture(fixture_path):
    with open_db(fixture_path) as db:
        df = db.jobman.query_jobs_df()
    counts = an.status_counts(df, "job_spec.resources.cpus")
    assert counts.loc[1, "FAILED"] == 0
    assert an.status_counts(df).loc["all", "total"] == 25
    assert an.failure_rate(df, "job_spec.resources.mem_gb").loc[8].to_dict() == {
        "finished": 7, "failed": 3, "completed": 4, "failure_rate": pytest.approx(3 / 7)}
    assert an.duration_quantiles(df).loc["all", "count"] == 25
    t = an.introspect(df)
    assert "job_spec.dir" not in set(t["column"])
    assert t.iloc[0]["column"] == "job_spec.resources.mem_gb" and t.iloc[0]["value"] == 8
    assert an.recurring_errors(df).empty  # jobman 0.0.1 recorded no errors
    assert an.throughput(df, "h").values.sum() == 25
