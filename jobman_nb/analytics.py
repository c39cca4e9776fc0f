"""Analytics of a job history: functions over job frames, each returning a DataFrame.

A *job frame* is what :meth:`~jobman_nb.JobmanSqliteDAO.query_jobs_df` returns:
``key``, ``status``, ``created`` and ``modified`` (UTC datetimes), and the
job's other fields, JSON expanded to dotted columns such as
``job_spec.cfg.code``. Every function here takes such a frame (any subset of
rows) and returns a new DataFrame; the ``plot_*`` helpers draw the same numbers
with pandas plotting and return the matplotlib Axes.

:func:`status_counts`, :func:`failure_rate`, :func:`duration_quantiles` and
:func:`throughput` also take, beyond memory, a dask DataFrame
(:func:`~jobman_nb.export.read_dask` of an :func:`~jobman_nb.export.export_parquet`
dataset) or a DuckDB relation (:func:`~jobman_nb.export.read_duckdb`), and give
the same table as on the pandas frame of the same rows. The jobs are counted
where they are (:mod:`jobman_nb._scale`): by dask's own groupby on its current
scheduler (local, or a ``distributed`` cluster), or by SQL inside DuckDB;
duration quantiles are exact (DuckDB's ``quantile_cont``; on dask the finished
jobs' group, status and time columns are gathered). Any *freq* of
:func:`throughput` gives the pandas periods, ``'2D'`` and ``'7h'`` included
(anchored on midnight of the first finished job's day, as pandas does).

A job is *finished* when its status is COMPLETED or FAILED; its duration is
``modified - created`` (jobman records no start time, so this includes the
time spent waiting in the queue).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _scale
from ._extras import require
from .causes import normalize_error
from .errors import ArgumentError, ArgumentTypeError, MissingKeyError
from .vocabulary import FINISHED, status_color, status_order

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "FINISHED",
    "by_columns",
    "status_counts",
    "durations",
    "duration_quantiles",
    "throughput",
    "failure_rate",
    "introspect",
    "last_error_line",
    "normalize_error",
    "recurring_errors",
    "plot_status_counts",
    "plot_durations",
    "plot_throughput",
    "plot_failure_rate",
]

By = Hashable | Sequence[Hashable] | None


def by_columns(df: pd.DataFrame, by: By) -> list[Hashable]:
    """The grouping columns *by* names (a column, a list of them, or None for none), each checked to exist.

    Raises
    ------
    KeyError
        If the frame has no such column.
    """
    if by is None:
        return []
    cols = [by] if isinstance(by, str) or not isinstance(by, Sequence) else list(by)
    present = _scale.columns(df)
    missing = [c for c in cols if c not in present]
    if missing:
        raise MissingKeyError(f"no column {missing[0]!r} in the frame; columns are: {', '.join(map(str, present))}")
    return cols


_by_list = by_columns  # the name this module's functions use


def _require(df: pd.DataFrame, *cols: str) -> None:
    if not isinstance(df, pd.DataFrame) and not _is_dask(df) and not _scale.is_duckdb(df):
        raise ArgumentTypeError("expected a job DataFrame (pandas or dask) or a DuckDB relation, "
                                f"got {type(df).__name__}")
    missing = [c for c in cols if c not in _scale.columns(df)]
    if missing:
        raise MissingKeyError(f"the frame has no {', '.join(map(repr, missing))} column; a job frame from "
                       "query_jobs_df() has key, status, created and modified")


_is_dask = _scale.is_dask


def _per_partition(ddf: Any, columns: Sequence[Hashable], fn: Any) -> list[pd.DataFrame]:
    """Run the pandas function *fn* on every partition of *ddf* (only *columns* read); the non-empty results.

    Runs on dask's current scheduler: the local one, or a ``distributed.Client``'s cluster.
    """
    dask = require("dask", "analytics on Dask DataFrames")
    parts = ddf[list(dict.fromkeys(columns))].to_delayed()
    results = dask.compute(*[dask.delayed(fn)(p) for p in parts])
    return [r for r in results if r is not None and len(r)]


def _status(df: pd.DataFrame) -> pd.Series:
    return df["status"].astype("string")


def _groupable(df: pd.DataFrame, cols: list[Hashable]) -> pd.DataFrame:
    """The grouping columns, with unhashable values (lists) as text and missing values kept as <NA>."""
    out = {}
    for c in cols:
        s = df[c]
        if s.dtype == object:
            s = s.map(lambda v: v if isinstance(v, Hashable) else repr(v))
        out[c] = s
    return pd.DataFrame(out, index=df.index)


def _status_keys(df: pd.DataFrame, cols: list[Hashable]) -> pd.DataFrame:
    """The grouping columns and the status (text) of *df*."""
    return _groupable(df, cols).assign(status=_status(df))


def _counts(df: Any, cols: list[Hashable], *, statuses: Sequence[str] | None = None, freq: str | None = None,
            with_status: bool = True) -> pd.DataFrame:
    """Jobs per group of a dask frame or a DuckDB relation, counted where the data is (long form)."""
    if _scale.is_duckdb(df):
        return _scale.duckdb_counts(df, cols, statuses=statuses, freq=freq)
    return _scale.dask_counts(df, _status_keys if with_status else _groupable, cols, statuses=statuses, freq=freq)


def _sizes(keys: pd.DataFrame, by: list[Any], weights: pd.Series | None, *, dropna: bool = False) -> pd.Series:
    """Rows per group of *keys* (``groupby(by).size()``), or the sum of *weights* (counts already made)."""
    if weights is None:
        return keys.groupby(by, dropna=dropna, observed=True, sort=True).size()
    weighted = keys.assign(_jobman_nb_n=weights.to_numpy("int64"))
    return weighted.groupby(by, dropna=dropna, observed=True, sort=True)["_jobman_nb_n"].sum().rename(None)


def _status_table(df: pd.DataFrame, cols: list[Hashable], weights: pd.Series | None = None) -> pd.DataFrame:
    """Counts per (group, status), one column per status present (*weights*: rows that are counts)."""
    status = _status(df)
    if cols:
        # groupby + unstack rather than crosstab: crosstab(dropna=False) of pandas 2 fails on
        # categorical keys with missing values ("cannot reindex on an axis with duplicate labels")
        keys = _groupable(df, cols).assign(status=status)
        table = _sizes(keys, [*cols, "status"], weights).unstack("status", fill_value=0)
        if not len(table.columns):  # no rows: unstack keeps no status level
            table = pd.DataFrame(index=table.index)
        return table
    counts = status.rename("status").value_counts() if weights is None else weights.groupby(status.rename(
        "status")).sum()
    table = counts.to_frame().T
    table.index = pd.Index(["all"])
    return table


def status_counts(df: pd.DataFrame, by: By = None, *, normalize: bool = False) -> pd.DataFrame:
    """Count jobs per status, overall or per group.

    Parameters
    ----------
    df : DataFrame
        A job frame.
    by : column name or list of names, optional
        Group by these columns (e.g. ``'worker_key'``, ``'job_spec.cfg.code'``).
    normalize : bool
        Shares of each row's total instead of counts.

    Returns
    -------
    DataFrame
        One column per status seen (in :data:`~jobman_nb.STATUSES` order) and
        ``total``; one row (index ``'all'``) without *by*, else one row per group
        (missing group values kept as ``<NA>``).
    """
    _require(df, "status")
    cols = _by_list(df, by)
    if _is_dask(df) or _scale.is_duckdb(df):
        counts = _counts(df, cols)
        table = _status_table(counts, cols, counts[_scale.COUNT])
    else:
        table = _status_table(df, cols)
    present = {c for c in table.columns if not pd.isna(c)}
    seen = status_order(present, every=False)
    table = table.reindex(columns=seen, fill_value=0).astype("int64")
    table.columns = pd.Index(seen, name="status")
    table["total"] = table.sum(axis=1)
    if normalize:
        table = table.div(table["total"].where(table["total"] > 0), axis=0)
    return table


def durations(df: pd.DataFrame, *, statuses: Sequence[str] = FINISHED) -> pd.DataFrame:
    """Return the finished jobs with their duration, ``modified - created``.

    Parameters
    ----------
    df : DataFrame
        A job frame.
    statuses : list of str
        Which jobs count as finished.

    Returns
    -------
    DataFrame
        The rows of *df* with those statuses and a ``duration`` column (Timedelta).
    """
    _require(df, "status", "created", "modified")
    out = df[_status(df).isin(list(statuses)).fillna(False).to_numpy(bool)].copy()
    out["duration"] = out["modified"] - out["created"]
    return out


def duration_quantiles(df: pd.DataFrame, by: By = None, *, q: Sequence[float] = (0.5, 0.9, 0.99),
                       statuses: Sequence[str] = FINISHED, round_to: str | None = None) -> pd.DataFrame:
    """Duration statistics of finished jobs, overall or per group.

    Parameters
    ----------
    df : DataFrame
        A job frame.
    by : column name or list of names, optional
    q : list of float
        Quantiles to report, each in [0, 1].
    statuses : list of str
        Which jobs count as finished.
    round_to : str, optional
        Round the Timedeltas to this resolution (e.g. ``'s'``), for display.

    Returns
    -------
    DataFrame
        ``count``, ``mean``, ``min``, one column per quantile (``'50%'``, ...)
        and ``max``, all Timedeltas except count.
    """
    for x in q:
        if not 0 <= x <= 1:
            raise ArgumentError(f"quantiles must be in [0, 1], got {x!r}")
    names = [f"{x * 100:g}%" for x in q]
    if _scale.is_duckdb(df):
        _require(df, "status", "created", "modified")
        return _duration_table(_scale.duckdb_durations(df, _by_list(df, by), statuses, q), _by_list(df, by),
                               names, round_to)
    if _is_dask(df):
        # Exact quantiles need every duration: the finished jobs' few columns are gathered, then pandas.
        df = _gather_finished(df, _by_list(df, by), statuses)
    d = durations(df, statuses=statuses)
    cols = _by_list(d, by)

    def stats(s: pd.Series) -> pd.Series:
        values = [s.count(), s.mean(), s.min(), *(s.quantile(x) for x in q), s.max()]
        return pd.Series(values, index=["count", "mean", "min", *names, "max"], dtype=object)

    if not cols:
        out = stats(d["duration"]).to_frame("all").T
    else:
        keys = _groupable(d, cols)
        out = d["duration"].groupby([keys[c] for c in cols], dropna=False, observed=True).apply(stats).unstack()
    out["count"] = out["count"].astype("int64")
    for c in out.columns.drop("count"):
        out[c] = pd.to_timedelta(out[c])
        if round_to is not None:
            out[c] = out[c].dt.round(round_to)
    return out.sort_values("count", ascending=False, kind="stable") if cols else out


def _duration_table(stats: pd.DataFrame, cols: list[Hashable], names: list[str],
                    round_to: str | None) -> pd.DataFrame:
    """The duration table from statistics in nanoseconds computed elsewhere (one row per group)."""
    out = stats.set_index(cols).sort_index(na_position="last") if cols else stats.set_axis(["all"])
    out.columns = ["count", "mean", "min", *names, "max"]
    out["count"] = out["count"].astype("int64")
    for c in out.columns.drop("count"):
        # pandas truncates an interpolated quantile (float nanoseconds) to whole nanoseconds
        ns = pd.to_numeric(out[c]).astype("float64")
        out[c] = pd.to_timedelta(np.trunc(ns.to_numpy()), unit="ns") if len(ns) else pd.to_timedelta(ns)
        if round_to is not None:
            out[c] = out[c].dt.round(round_to)
    return out.sort_values("count", ascending=False, kind="stable") if cols else out


def _gather_finished(ddf: Any, cols: list[Hashable], statuses: Sequence[str]) -> pd.DataFrame:
    """The finished jobs of a dask frame as one pandas frame of the columns a duration table needs."""
    from .frames import concat_frames

    columns = [*cols, "status", "created", "modified"]
    parts = _per_partition(ddf, columns, lambda p: durations(p, statuses=statuses)[list(dict.fromkeys(columns))])
    return concat_frames(parts) if parts else ddf._meta[list(dict.fromkeys(columns))]


def _throughput_table(d: pd.DataFrame, freq: str, cols: list[Hashable],
                      weights: pd.Series | None = None) -> pd.DataFrame | None:
    """Finished jobs per (period, value of cols[0]), periods with jobs only; None without jobs."""
    if d.empty:
        return None
    keys = _groupable(d, cols).assign(modified=d["modified"])
    return _sizes(keys, [pd.Grouper(key="modified", freq=freq), cols[0]], weights, dropna=True).unstack(fill_value=0)


def throughput(df: pd.DataFrame, freq: str = "D", *, by: str = "status",
               statuses: Sequence[str] = FINISHED) -> pd.DataFrame:
    """Jobs finished per period.

    Parameters
    ----------
    df : DataFrame
        A job frame.
    freq : str
        A pandas frequency: ``'h'`` per hour, ``'D'`` per day, ``'W'``, ...
    by : str
        Column splitting the counts (default the status).
    statuses : list of str
        Which jobs count as finished; a job finishes at its ``modified`` time.

    Returns
    -------
    DataFrame
        Indexed by period start (UTC), one column per value of *by*; periods
        without jobs are present with 0.
    """
    cols = _by_list(df, by)
    if _is_dask(df) or _scale.is_duckdb(df):
        _require(df, "status", "modified")
        counts = _counts(df, cols, statuses=statuses, freq=freq, with_status=False)
        table = _throughput_table(counts, freq, cols, counts[_scale.COUNT])
    else:
        table = _throughput_table(durations(df, statuses=statuses), freq, cols)
    if table is None:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="modified"))
    full = pd.date_range(table.index.min(), table.index.max(), freq=freq, name="modified")
    table = table.reindex(full, fill_value=0).astype("int64")
    if by == "status":
        table = table[status_order(table.columns, every=False)]
    table.columns.name = by
    return table


def _failure_table(d: pd.DataFrame, cols: list[Hashable], weights: pd.Series | None = None) -> pd.DataFrame:
    """Failed and completed jobs per group of finished jobs *d* (*weights*: rows that are counts)."""
    keys = _groupable(d, cols)
    status = _status(d)
    w = 1 if weights is None else weights.to_numpy("int64")
    g = pd.DataFrame({"failed": (status == "FAILED").astype("int64") * w,
                      "completed": (status == "COMPLETED").astype("int64") * w}, index=d.index)
    return g.groupby([keys[c] for c in cols], dropna=False, observed=True).sum()


def failure_rate(df: pd.DataFrame, by: By) -> pd.DataFrame:
    """Failure rate of finished jobs per group.

    Parameters
    ----------
    df : DataFrame
        A job frame.
    by : column name or list of names

    Returns
    -------
    DataFrame
        ``finished``, ``failed``, ``completed`` and ``failure_rate``
        (failed / finished) per group, highest rate first.
    """
    cols = _by_list(df, by)
    if not cols:
        raise ArgumentError("failure_rate needs a column to group by, e.g. 'worker_key'")
    if _is_dask(df) or _scale.is_duckdb(df):
        counts = _counts(df, cols, statuses=FINISHED)
        out = _failure_table(counts, cols, counts[_scale.COUNT])
    else:
        out = _failure_table(durations(df), cols)
    out.insert(0, "finished", out["failed"] + out["completed"])
    out["failure_rate"] = out["failed"] / out["finished"]
    return out.sort_values(["failure_rate", "finished"], ascending=[False, False], kind="stable")


def _introspect_columns(df: pd.DataFrame, max_values: int) -> list[Hashable]:
    cols = []
    for c in df.columns:
        if not (isinstance(c, str) and c.startswith("job_spec.")):
            continue
        s = df[c]
        if s.dtype == object and not s.dropna().map(lambda v: isinstance(v, Hashable)).all():
            continue
        n = s.nunique(dropna=True)
        if 0 < n <= max_values and n <= s.count() / 2:  # values that repeat, not per-job ids or dirs
            cols.append(c)
    return cols


def introspect(df: pd.DataFrame, columns: Sequence[Hashable] | None = None, *, min_failed: int = 1,
               max_values: int = 50, cause: str | None = None, cause_column: str = "cause") -> pd.DataFrame:
    """Which field values are over-represented among FAILED jobs compared with COMPLETED ones.

    FireWorks' "introspect" idea: for every (column, value), the share of failed
    jobs having it is compared with the share of completed jobs having it; a
    *lift* well above 1 points at a cause.

    Parameters
    ----------
    df : DataFrame
        A job frame; with *cause*, one that also has the causes read from the
        job dirs (``jobs.merge(read_job_dirs(jobs)[["key", "cause"]], on="key")``).
    columns : list of column names, optional
        Columns to examine; default every ``job_spec.*`` column with at most
        *max_values* distinct values, each seen on average at least twice
        (per-job values such as directories explain nothing).
    min_failed : int
        Leave out values seen in fewer failed jobs.
    max_values : int
        Cardinality limit for the default columns (keys and paths are not causes).
    cause : str, optional
        Only the FAILED jobs whose *cause_column* is this (a normalized cause,
        as :func:`recurring_errors` lists them) count as failed: which values
        go with *this* failure (an oom-kill with a small ``mem_gb``).
    cause_column : str
        The column holding causes.

    Returns
    -------
    DataFrame
        Columns ``column, value, failed, completed, failed_share, completed_share,
        lift, failure_rate``, ranked by lift then failed count. ``failed_share``
        is the fraction of failed jobs with this value; ``lift`` is
        ``failed_share / completed_share`` (inf when no completed job has it);
        ``failure_rate`` is failed / (failed + completed) among jobs with it.
    """
    d = durations(df)
    if cause is not None:
        _require(df, cause_column)
    cols = list(columns) if columns is not None else _introspect_columns(d, max_values)
    _by_list(d, cols)
    status = _status(d)
    is_failed = status == "FAILED"
    if cause is not None:
        is_failed &= d[cause_column].astype("string") == cause
    failed, completed = d[is_failed.fillna(False).to_numpy(bool)], d[status == "COMPLETED"]
    n_failed, n_completed = len(failed), len(completed)
    rows = []
    for c in cols:
        fc = _groupable(failed, [c])[c].value_counts(dropna=True)
        cc = _groupable(completed, [c])[c].value_counts(dropna=True)
        for value in fc.index.union(cc.index, sort=False):
            nf, nc = int(fc.get(value, 0)), int(cc.get(value, 0))
            if nf < min_failed:
                continue
            rows.append({"column": c, "value": value, "failed": nf, "completed": nc})
    out = pd.DataFrame(rows, columns=["column", "value", "failed", "completed"])
    out["failed"] = out["failed"].astype("int64")
    out["completed"] = out["completed"].astype("int64")
    out["failed_share"] = out["failed"] / n_failed if n_failed else float("nan")
    out["completed_share"] = out["completed"] / n_completed if n_completed else float("nan")
    out["lift"] = out["failed_share"] / out["completed_share"]
    out["failure_rate"] = out["failed"] / (out["failed"] + out["completed"])
    return out.sort_values(["lift", "failed"], ascending=[False, False], kind="stable").reset_index(drop=True)


# -- errors -------------------------------------------------------------------------------------
def last_error_line(errors: Any) -> str | None:
    """Return the last non-blank line of a job's last error, or None.

    *errors* is what a job's ``errors`` field holds: a traceback string, a list
    of them (one per attempt; the last is used), or dicts with a
    ``'traceback'``, ``'error'`` or ``'message'`` entry.
    """
    if errors is None or errors is pd.NA or (isinstance(errors, float) and errors != errors):
        return None
    if isinstance(errors, (list, tuple)):
        if not errors:
            return None
        errors = errors[-1]
    if isinstance(errors, dict):
        errors = next((errors[k] for k in ("traceback", "error", "message") if errors.get(k)), str(errors))
    lines = [ln.strip() for ln in str(errors).splitlines() if ln.strip()]
    return lines[-1] if lines else None


def recurring_errors(df: pd.DataFrame, *, column: str = "errors", examples: int = 3) -> pd.DataFrame:
    """The recurring error messages: last traceback line of each job's last error, normalized.

    jobman itself rarely records why a job failed (``errors`` is usually null);
    the causes are in the job dirs: pass the frame of
    :func:`jobman_nb.read_job_dirs` (or jobs merged with it) and
    ``column="cause"``.

    Parameters
    ----------
    df : DataFrame
        A frame with ``key`` and *column* (e.g. the FAILED jobs).
    column : str
        The column holding the errors: ``errors`` as jobman records them, or
        ``cause`` as :func:`jobman_nb.read_job_dirs` finds them (already one
        normalized line; normalizing again changes nothing).
    examples : int
        How many example job keys to list per message.

    Returns
    -------
    DataFrame
        ``error`` (normalized), ``count``, ``share`` (of jobs with an error),
        ``example`` (one raw last line) and ``example_keys`` (list), most frequent
        first.
    """
    _require(df, "key", column)
    last = df[column].map(last_error_line)
    has = last.notna()
    d = pd.DataFrame({"key": df.loc[has, "key"], "raw": last[has].astype(str)})
    d["error"] = d["raw"].map(normalize_error)
    g = d.groupby("error", sort=False)
    out = pd.DataFrame({
        "count": g.size().astype("int64"),
        "example": g["raw"].first(),
        "example_keys": g["key"].agg(lambda s: list(s.iloc[:examples])),
    })
    out.insert(1, "share", out["count"] / max(int(has.sum()), 1))
    out = out.sort_values("count", ascending=False, kind="stable").reset_index()
    # plain Python lists (pandas may infer an arrow list dtype from string keys, whose cells are arrays)
    out["example_keys"] = pd.Series([list(v) for v in out["example_keys"]], index=out.index, dtype=object)
    return out


# -- plots --------------------------------------------------------------------------------------
def plot_status_counts(df: pd.DataFrame, by: By = None, *, normalize: bool = False, ax: Axes | None = None,
                       **kwargs: Any) -> Axes:
    """Bar chart of :func:`status_counts` (stacked per group with *by*); returns the Axes."""
    require("matplotlib.pyplot", "analytics.plot_status_counts")
    table = status_counts(df, by, normalize=normalize).drop(columns="total")
    kw = {"kind": "barh" if by is not None else "bar", "stacked": True, "ax": ax, "rot": 0,
          "color": [status_color(s) for s in table.columns], **kwargs}
    axes = table.plot(**kw)
    axes.set_xlabel("share of jobs" if normalize and by is not None else ("jobs" if by is not None else ""))
    if by is None:
        axes.set_ylabel("share of jobs" if normalize else "jobs")
    axes.set_title("Jobs by status" + (f" and {by}" if by is not None else ""))
    if by is not None:  # beside the bars, which fill the width
        axes.legend(title="status", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return axes


def plot_durations(df: pd.DataFrame, by: By = None, *, unit: str = "min", ax: Axes | None = None,
                   **kwargs: Any) -> Axes:
    """Box plot of finished jobs' durations in *unit* (``'s'``, ``'min'``, ``'h'``), per group; returns the Axes."""
    require("matplotlib.pyplot", "analytics.plot_durations")
    d = durations(df)
    cols = _by_list(d, by)
    values = d["duration"] / pd.Timedelta(1, unit=unit)
    if cols:
        keys = _groupable(d, cols)
        label = keys[cols].astype(str).agg(" / ".join, axis=1) if len(cols) > 1 else keys[cols[0]].astype(str)
        frame = pd.DataFrame({"duration": values, "group": label})
        axes = frame.plot.box(by="group", column="duration", ax=ax, **kwargs)
        axes = axes if not hasattr(axes, "__len__") else axes.iloc[0] if hasattr(axes, "iloc") else axes[0]
        axes.set_xlabel(" / ".join(map(str, cols)))
    else:
        axes = values.rename("duration").plot.box(ax=ax, **kwargs)
    axes.set_ylabel(f"created → modified ({unit})")
    axes.set_title("Durations of finished jobs")
    return axes


def plot_throughput(df: pd.DataFrame, freq: str = "D", *, by: str = "status", ax: Axes | None = None,
                    **kwargs: Any) -> Axes:
    """Stacked area chart of :func:`throughput`; returns the Axes."""
    require("matplotlib.pyplot", "analytics.plot_throughput")
    table = throughput(df, freq, by=by)
    colors = {"color": [status_color(s) for s in table.columns]} if by == "status" and len(table.columns) else {}
    axes = table.plot.area(ax=ax, **{"linewidth": 0, **colors, **kwargs})
    axes.set_ylabel(f"jobs finished per {freq}")
    axes.set_title("Throughput")
    return axes


def plot_failure_rate(df: pd.DataFrame, by: By, *, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Horizontal bars of :func:`failure_rate` per group; returns the Axes."""
    require("matplotlib.pyplot", "analytics.plot_failure_rate")
    table = failure_rate(df, by).iloc[::-1]
    index = table.index.map(lambda v: " / ".join(map(str, v)) if isinstance(v, tuple) else str(v))
    axes = table["failure_rate"].set_axis(index).plot.barh(ax=ax, **{"color": status_color("FAILED"), **kwargs})
    axes.set_xlabel("failed / finished")
    axes.set_title(f"Failure rate by {by}")
    return axes
