"""Job timelines: time spent in each state, retries and states over time, from job events.

An *event frame* is what :meth:`~jobman_nb.JobmanSqliteDAO.query_events_df`
returns (see :mod:`jobman_nb.dao.history` for how events are recorded): one row
per status change with ``key`` (write order), ``job_key``, ``old_status``
(missing: the job was created), ``new_status`` (missing: the job was deleted)
and ``time`` (UTC datetime). A *snapshot* row (``old_status == new_status``)
says the job was in that status at that time, what came before being unknown
(history was enabled on a job that already existed).

A job is in ``new_status`` from its event's time until its next event. The
functions here read events in write order (``key``; ``time`` where there is no
key), per job, so clock differences between writers never reorder a job's
history. The latest state of a job is *open*: it has no end unless ``until``
is given (e.g. ``pd.Timestamp.now(tz='UTC')``, or the time the data was taken).

- :func:`state_intervals`: one row per stay in a state.
- :func:`time_in_states`: per job, total time in each state.
- :func:`job_timelines`: per job, queue wait (time PENDING, until CLAIMED or
  RUNNING), hand-over (time CLAIMED), run time (time RUNNING, until EXECUTED,
  COMPLETED or FAILED), retries (returns to PENDING) and attempts (starts of RUNNING).
- :func:`wait_run_stats`: wait and run time distributions by group of a job frame.
- :func:`states_over_time`: how many jobs were in each state at each moment.
- ``plot_timeline`` (Gantt-like), ``plot_states_over_time`` (stacked area) and
  ``plot_wait_run`` (box plots) draw them and return the matplotlib Axes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._extras import require
from .analytics import By
from .analytics import by_columns as _by_list
from .errors import ArgumentError, MissingKeyError
from .frames import STRING_DTYPE
from .vocabulary import FINISHED, STATUS_COLORS, status_color, status_order

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "EVENT_COLUMNS",
    "FINISHED",
    "STATUS_COLORS",
    "events_frame",
    "state_intervals",
    "time_in_states",
    "job_timelines",
    "with_jobs",
    "wait_run_stats",
    "states_over_time",
    "plot_timeline",
    "plot_states_over_time",
    "plot_wait_run",
]

#: Columns of an event frame, in order.
EVENT_COLUMNS: tuple[str, ...] = ("key", "job_key", "old_status", "new_status", "time")
_MEASURES = {"wait": "PENDING", "claimed": "CLAIMED", "run": "RUNNING"}



def _categories(*columns: pd.Series) -> list[str]:
    return status_order(str(v) for c in columns for v in c.dropna().unique())


def _utc(values: Any) -> pd.Series:
    """Epoch seconds, datetimes or strings as ``datetime64[ns, UTC]``."""
    s = pd.Series(values)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        out = pd.to_datetime(s.astype("float64"), unit="s", utc=True)
    else:
        out = pd.to_datetime(s, utc=True)
    return out.astype("datetime64[ns, UTC]")


def events_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Turn event records (``dao.query_events()``) into an event frame.

    Columns present in the records are kept, in :data:`EVENT_COLUMNS` order:
    ``key`` as ``Int64``, ``job_key`` as ``string[pyarrow]``, the statuses as
    categoricals over :data:`~jobman_nb.STATUSES` (then any other value), ``time``
    as ``datetime64[ns, UTC]``.

    Returns
    -------
    pandas.DataFrame
    """
    rows = list(records)
    names = [c for c in EVENT_COLUMNS if any(c in r for r in rows)] if rows else list(EVENT_COLUMNS)
    extra = [c for c in dict.fromkeys(k for r in rows for k in r) if c not in EVENT_COLUMNS]
    df = pd.DataFrame.from_records(rows, columns=[*names, *extra]) if rows else pd.DataFrame(columns=names)
    if "key" in df:
        df["key"] = df["key"].astype("Int64")
    if "job_key" in df:
        df["job_key"] = df["job_key"].astype(STRING_DTYPE)
    statuses = [c for c in ("old_status", "new_status") if c in df]
    cats = pd.CategoricalDtype(_categories(*(df[c] for c in statuses)))
    for c in statuses:
        df[c] = df[c].astype(object).where(df[c].notna(), None).astype(cats)
    if "time" in df:
        df["time"] = _utc(df["time"].astype("float64") if len(df) == 0 else df["time"])
    return df


def _require(df: pd.DataFrame, *cols: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise MissingKeyError(f"the event frame has no column {missing[0]!r} (needs {', '.join(cols)}); "
                       f"it has: {', '.join(map(str, df.columns))}")


def _ordered(events: pd.DataFrame) -> pd.DataFrame:
    """Events sorted per job in write order, with plain object statuses."""
    _require(events, "job_key", "new_status", "time")
    order = ["job_key", "key"] if "key" in events else ["job_key", "time"]
    e = events.sort_values(order, kind="stable").reset_index(drop=True)
    if "old_status" not in e:
        e["old_status"] = pd.Series(pd.NA, index=e.index, dtype=object)
    return e


def _until(until: Any) -> pd.Timestamp | None:
    if until is None:
        return None
    t = pd.Timestamp(until)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def state_intervals(events: pd.DataFrame, *, until: Any = None) -> pd.DataFrame:
    """One row per stay of a job in a state.

    Parameters
    ----------
    events : pandas.DataFrame
        An event frame.
    until : datetime-like, optional
        End of the open (latest) stays; naive times are UTC. Without it
        they end at NaT.

    Returns
    -------
    pandas.DataFrame
        ``job_key``, ``status`` (categorical), ``start``, ``end``, ``duration``
        (Timedelta; NaT for an open stay without *until*), ``visit`` (1 for
        the job's first stay in that status, 2 for the second, ...) and
        ``known_start`` (False for a snapshot: the job was there earlier too).
    """
    e = _ordered(events)
    end = e.groupby("job_key", sort=False, observed=True)["time"].shift(-1)
    t = _until(until)
    if t is not None:
        end = end.fillna(t).where(lambda s: s >= e["time"], e["time"])
    keep = e["new_status"].notna()
    old = e["old_status"].astype(object)
    new = e["new_status"].astype(object)
    out = pd.DataFrame({
        "job_key": e["job_key"], "status": e["new_status"], "start": e["time"], "end": end,
        "duration": end - e["time"], "known_start": ~(old == new).fillna(False).astype(bool),
    })[keep].reset_index(drop=True)
    out["visit"] = out.groupby(["job_key", "status"], sort=False, observed=True).cumcount() + 1
    out["visit"] = out["visit"].astype("int64")
    return out[["job_key", "status", "start", "end", "duration", "visit", "known_start"]]


def time_in_states(events: pd.DataFrame, *, until: Any = None) -> pd.DataFrame:
    """Per job, the total time spent in each state.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``job_key``, one Timedelta column per status that occurs (in
        :data:`~jobman_nb.STATUSES` order). NaT where the job never was in
        that state, or is still there and *until* is not given.
    """
    iv = state_intervals(events, until=until)
    iv["status"] = iv["status"].astype(object)
    grouped = iv.groupby(["job_key", "status"], sort=False)["duration"]
    total = grouped.sum()
    total[grouped.apply(lambda s: bool(s.isna().any()))] = pd.NaT
    table = total.unstack("status")
    present = [s for s in _categories(iv["status"]) if s in table.columns]
    table = table.reindex(columns=present)
    table.columns.name = None
    order = pd.unique(iv["job_key"])
    return table.reindex(pd.Index(order, name="job_key", dtype=STRING_DTYPE)).astype("timedelta64[ns]")


def job_timelines(events: pd.DataFrame, *, until: Any = None) -> pd.DataFrame:
    """Per job: current status, first and last event, queue wait, hand-over, run time, retries.

    Returns
    -------
    pandas.DataFrame
        One row per job, in order of first event: ``job_key``, ``status``
        (after the last event; missing if deleted), ``first``, ``last``
        (event times), ``wait`` (time PENDING: until CLAIMED or RUNNING),
        ``claimed`` (time CLAIMED), ``run`` (time RUNNING: until EXECUTED,
        COMPLETED or FAILED), summed over retries; NaT where the job never
        was in that state or is still there without *until*; ``retries``
        (returns to PENDING from another status), ``attempts`` (entries
        into RUNNING), ``events`` and ``known_start`` (False if the first
        event is a snapshot, so the times before it are unknown).
    """
    e = _ordered(events)
    old, new = e["old_status"].astype(object), e["new_status"].astype(object)
    is_snapshot = (old == new).fillna(False).astype(bool)
    e = e.assign(_retry=(new == "PENDING") & old.notna() & ~is_snapshot,
                 _attempt=(new == "RUNNING") & ~is_snapshot, _snapshot=is_snapshot)
    g = e.groupby("job_key", sort=False, observed=True)
    last = e.drop_duplicates("job_key", keep="last").set_index("job_key")
    out = pd.DataFrame({"status": last["new_status"], "first": g["time"].min(), "last": g["time"].max()})
    states = time_in_states(events, until=until)
    for name, status in _MEASURES.items():
        out[name] = (states[status].reindex(out.index) if status in states
                     else pd.Series(pd.NaT, index=out.index, dtype="timedelta64[ns]"))
    out["retries"] = g["_retry"].sum().astype("int64")
    out["attempts"] = g["_attempt"].sum().astype("int64")
    out["events"] = g.size().astype("int64")
    out["known_start"] = ~g["_snapshot"].first().astype(bool)
    out = out.sort_values("first", kind="stable")
    out.index = out.index.astype(STRING_DTYPE)
    out["status"] = out["status"].astype(e["new_status"].dtype)
    return out.rename_axis("job_key").reset_index()


def with_jobs(timelines: pd.DataFrame, jobs: pd.DataFrame) -> pd.DataFrame:
    """Join :func:`job_timelines` with a job frame (``key`` → ``job_key``) for grouping by job fields.

    Job columns that the timelines also have (``status``, ...) are left out.
    Jobs without events are left out; timelines of jobs not in *jobs* keep
    missing job fields.
    """
    if "key" not in jobs.columns:
        raise MissingKeyError("the job frame has no 'key' column (use dao.query_jobs_df())")
    _require(timelines, "job_key")
    cols = [c for c in jobs.columns if c == "key" or c not in timelines.columns]
    right = jobs[cols].assign(key=jobs["key"].astype(STRING_DTYPE))
    merged = timelines.merge(right, how="left", left_on="job_key", right_on="key", validate="one_to_one")
    return merged.drop(columns="key")


def wait_run_stats(timelines: pd.DataFrame, by: By = None, *, q: Sequence[float] = (0.5, 0.9, 0.99),
                   measures: Sequence[str] = ("wait", "run")) -> pd.DataFrame:
    """Distributions of queue wait and run time, overall or by group.

    Parameters
    ----------
    timelines : pandas.DataFrame
        :func:`job_timelines`, joined with job fields by :func:`with_jobs` to
        group by them (e.g. ``'job_spec.cfg.code'``).
    by : column name or list of them, optional
    q : sequence of float
        Quantiles, each in [0, 1].
    measures : sequence of str
        Timeline columns to describe (``'wait'``, ``'claimed'``, ``'run'``).

    Returns
    -------
    pandas.DataFrame
        Indexed by the group columns (if any) and ``measure``: ``count`` (jobs
        with a value), ``mean`` and one column per quantile (``p50``, ...), as Timedeltas.
    """
    cols = _by_list(timelines, by)
    bad = [m for m in measures if m not in timelines.columns]
    if bad:
        raise MissingKeyError(f"no measure {bad[0]!r} in the timelines; use some of {', '.join(_MEASURES)}")
    if any(not 0 <= x <= 1 for x in q):
        raise ArgumentError(f"quantiles must be within [0, 1], got {list(q)}")
    long = timelines.melt(id_vars=cols, value_vars=list(measures), var_name="measure", value_name="value")
    long = long.dropna(subset=["value"])
    long["measure"] = pd.Categorical(long["measure"], categories=list(measures))
    keys = [*cols, "measure"]
    g = long.groupby(keys, observed=True, sort=True, dropna=False)["value"]
    out = pd.DataFrame({"count": g.size().astype("int64"), "mean": g.mean()})
    for x in q:
        out[f"p{x * 100:g}"] = g.quantile(x)
    return out


def states_over_time(events: pd.DataFrame, freq: str | None = None, *,
                     statuses: Sequence[str] | None = None) -> pd.DataFrame:
    """How many jobs were in each state at each moment.

    Each event moves one job from ``old_status`` to ``new_status`` (a
    snapshot only adds it to its status: where it was before is unknown).

    Parameters
    ----------
    events : pandas.DataFrame
    freq : str, optional
        A pandas frequency (``'h'``, ``'15min'``, ...): sample the counts at
        regular times (the state at each tick). Default: one row per
        distinct event time.
    statuses : list of str, optional
        Keep only these columns (e.g. the active states, without the
        ever-growing COMPLETED and FAILED).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``time`` (UTC), one int64 column per status occurring.
    """
    e = _ordered(events).sort_values(["time", "key"] if "key" in events else ["time"], kind="stable")
    old, new = e["old_status"].astype(object), e["new_status"].astype(object)
    leaves = old.where(old.notna() & (old != new).fillna(True))
    delta = pd.concat([pd.DataFrame({"time": e["time"], "status": new, "n": 1}),
                       pd.DataFrame({"time": e["time"], "status": leaves, "n": -1})]).dropna(subset=["status"])
    present = [s for s in _categories(delta["status"]) if s in set(delta["status"])]
    table = delta.pivot_table(index="time", columns="status", values="n", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=present, fill_value=0).cumsum().astype("int64")
    table.columns.name = None
    if freq is not None and len(table):
        grid = pd.date_range(table.index[0].floor(freq), table.index[-1].ceil(freq), freq=freq, name="time")
        table = table.reindex(grid, method="ffill").fillna(0).astype("int64")
    table.index.name = "time"
    if statuses is not None:
        table = table.reindex(columns=list(statuses), fill_value=0)
    return table


# -- plots --------------------------------------------------------------------------------------
def _naive(values: pd.Series) -> Any:
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()


def plot_timeline(events: pd.DataFrame, job_keys: Sequence[str] | None = None, *, until: Any = None,
                  max_jobs: int = 40, ax: Axes | None = None) -> Axes:
    """Gantt-like chart: one row per job, a bar per stay in a state, coloured by status.

    A job's final COMPLETED or FAILED is a mark at the time it finished.

    Parameters
    ----------
    events : pandas.DataFrame
    job_keys : list of str, optional
        The jobs to draw (default: the first *max_jobs* by first event).
    until : datetime-like, optional
        End of open stays (default: the latest event time drawn).
    max_jobs : int
        At most this many jobs are drawn.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    require("matplotlib.pyplot", "timeline.plot_timeline")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    e = _ordered(events)
    if job_keys is not None:
        wanted = list(job_keys)
        unknown = [k for k in wanted if k not in set(e["job_key"])]
        if unknown:
            raise MissingKeyError(f"no events for job {unknown[0]!r}")
        e = e[e["job_key"].isin(wanted)]
    firsts = e.groupby("job_key", sort=False, observed=True)["time"].min().sort_values(kind="stable")
    keys = list(firsts.index[:max_jobs]) if job_keys is None else list(dict.fromkeys(job_keys))[:max_jobs]
    e = e[e["job_key"].isin(keys)]
    iv = state_intervals(e, until=until if until is not None else (e["time"].max() if len(e) else None))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.6 + 0.28 * max(len(keys), 1)))
    row = {k: i for i, k in enumerate(keys)}
    start = mdates.date2num(_naive(iv["start"]))
    width = iv["duration"].dt.total_seconds().fillna(0).to_numpy() / 86_400.0
    # A finished job stays finished: its last state is a marker, not a bar to the end of time.
    done = (iv["status"].astype(object).isin(FINISHED) & ~iv.duplicated("job_key", keep="last")).to_numpy()
    ax.barh([row[k] for k in iv["job_key"][~done]], width[~done], left=start[~done], height=0.7,
            color=[status_color(s) for s in iv["status"][~done]], edgecolor="none")
    ax.scatter(start[done], [row[k] for k in iv["job_key"][done]], marker="|", s=120, linewidths=2.5,
               c=[status_color(s) for s in iv["status"][done]], zorder=3)
    ax.set_yticks(range(len(keys)), [str(k)[:8] for k in keys])
    ax.invert_yaxis()
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    present = [s for s in _categories(iv["status"]) if s in set(iv["status"].astype(object))]
    ax.legend(handles=[Patch(color=status_color(s), label=s) for s in present], title="status",
              loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("job")
    ax.set_title("Job timelines")
    return ax


def plot_states_over_time(events: pd.DataFrame, freq: str | None = None, *, statuses: Sequence[str] | None = None,
                          ax: Axes | None = None) -> Axes:
    """Stacked area of :func:`states_over_time` (steps: counts hold until the next event); returns the Axes."""
    require("matplotlib.pyplot", "timeline.plot_states_over_time")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    table = states_over_time(events, freq, statuses=statuses)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    x = mdates.date2num(table.index.tz_convert("UTC").tz_localize(None).to_numpy())
    ax.stackplot(x, *(table[c].to_numpy() for c in table.columns), labels=list(table.columns),
                 colors=[status_color(c) for c in table.columns], step="post", linewidth=0)
    ax.xaxis_date()
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title="status", loc="upper left", bbox_to_anchor=(1.01, 1),
              frameon=False)
    ax.set_ylabel("jobs")
    ax.set_xlabel("time (UTC)")
    ax.set_title("Jobs in each state")
    return ax


def plot_wait_run(timelines: pd.DataFrame, by: By = None, *, measure: str = "wait", unit: str = "min",
                  ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Box plot of one measure of :func:`job_timelines` (``'wait'``, ``'claimed'``, ``'run'``) per group."""
    require("matplotlib.pyplot", "timeline.plot_wait_run")
    if measure not in _MEASURES:
        raise ArgumentError(f"measure must be one of {', '.join(_MEASURES)}, got {measure!r}")
    cols = _by_list(timelines, by)
    values = timelines[measure] / pd.Timedelta(1, unit=unit)
    ok = values.notna()
    if cols:
        label = timelines[cols].astype(str).agg(" / ".join, axis=1)
        frame = pd.DataFrame({measure: values[ok], "group": label[ok]})
        axes = frame.plot.box(by="group", column=measure, ax=ax, **kwargs)
        axes = axes.iloc[0] if hasattr(axes, "iloc") else axes
        axes.set_xlabel(" / ".join(map(str, cols)))
    else:
        axes = values[ok].rename(measure).plot.box(ax=ax, **kwargs)
    names = {"wait": "queue wait (PENDING)", "claimed": "hand-over (CLAIMED)", "run": "run time (RUNNING)"}
    axes.set_ylabel(f"{names[measure]} ({unit})")
    axes.set_title(f"{names[measure].split(' (')[0].capitalize()} by job")
    return axes
