"""Without an optional library, the functions that need it name the extra that installs it."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from jobman_nb import JobmanError, analytics, export
from jobman_nb import timeline as tl
from jobman_nb.errors import MissingDependencyError


@pytest.fixture
def hide(monkeypatch):
    """hide('matplotlib'): the library and its submodules cannot be imported in this test."""

    def hide_(top: str) -> None:
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")] + [top]:
            monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import raises

    return hide_


FINISHED_JOBS = pd.DataFrame({"key": ["a", "b"], "status": ["COMPLETED", "FAILED"],
                              "created": pd.to_datetime([0, 60], unit="s", utc=True),
                              "modified": pd.to_datetime([30, 200], unit="s", utc=True)})
EVENTS = pd.DataFrame({"job_key": ["a", "a"], "old_status": [None, "PENDING"], "new_status": ["PENDING", "RUNNING"],
                       "time": pd.to_datetime([0, 10], unit="s", utc=True)})


@pytest.mark.parametrize("plot", [
    lambda: analytics.plot_status_counts(FINISHED_JOBS),
    lambda: analytics.plot_durations(FINISHED_JOBS),
    lambda: analytics.plot_throughput(FINISHED_JOBS),
    lambda: analytics.plot_failure_rate(FINISHED_JOBS, "status"),
    lambda: tl.plot_timeline(EVENTS),
    lambda: tl.plot_states_over_time(EVENTS),
    lambda: tl.plot_wait_run(tl.job_timelines(EVENTS)),
], ids=["status_counts", "durations", "throughput", "failure_rate", "timeline", "states_over_time", "wait_run"])
def test_plots_without_matplotlib_name_the_plot_extra(hide, plot):
    hide("matplotlib")
    with pytest.raises(MissingDependencyError, match=r"needs matplotlib.*pip install 'jobman_nb\[plot\]'") as err:
        plot()
    assert isinstance(err.value, JobmanError) and isinstance(err.value, ImportError)


def test_read_dask_without_dask_names_the_scale_extra(hide, tmp_path):
    hide("dask")
    with pytest.raises(MissingDependencyError, match=r"export.read_dask needs dask.*pip install 'jobman_nb\[scale\]'"):
        export.read_dask(tmp_path)


def test_a_library_that_is_there_imports_as_usual():
    from jobman_nb._extras import require

    assert require("matplotlib.pyplot", "a plot").__name__ == "matplotlib.pyplot"
