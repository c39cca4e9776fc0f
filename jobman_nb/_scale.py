"""Counting jobs in frames larger than memory: dask DataFrames and DuckDB relations.

The analytics helpers (:mod:`jobman_nb.analytics`) reduce a job frame to counts per
group (status, worker, time bucket, ...) and then shape a small table in pandas.
On a pandas frame they count directly; here the counting itself runs where the
data is:

- a **dask** DataFrame is grouped by dask's own ``groupby(...).size()`` (a tree
  reduction on dask's current scheduler, local or a ``distributed`` cluster),
  after each partition's grouping columns are made hashable;
- a **DuckDB** relation (:func:`jobman_nb.export.read_duckdb`) is grouped by a
  ``GROUP BY`` inside DuckDB; only the counts come back.

Both give the counts in *long form*: one row per group with its count ``n``, the
grouping columns as pandas would have them, so the caller builds the same table
as from a pandas frame. Time buckets are whole days, or a sub-day frequency that
divides a day, or the frequency itself counted from midnight of the first
finished job's day (what ``pandas.Grouper(freq=...)`` does), so that the
pandas periods computed from the counts are the ones of the full frame.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Sequence
from typing import Any

import pandas as pd

from .errors import ArgumentError
from .vocabulary import status_order

#: The column of counts in the long-form tables.
COUNT = "n"
_DAY_NS = 86_400 * 10**9


def is_dask(df: Any) -> bool:
    """Whether *df* is a dask DataFrame (dask's own class; never imports dask)."""
    dd = sys.modules.get("dask.dataframe")
    return dd is not None and isinstance(df, dd.DataFrame)


def is_duckdb(df: Any) -> bool:
    """Whether *df* is a DuckDB relation (never imports duckdb)."""
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(df, duckdb.DuckDBPyRelation)


def columns(df: Any) -> list[Hashable]:
    """The column names of a pandas or dask frame or a DuckDB relation."""
    return list(df.columns)


# -- time buckets -----------------------------------------------------------------------
def bucket_ns(freq: str) -> tuple[int, bool]:
    """The width (ns) of the fine time bucket for periods of *freq*, and whether it needs the data's origin.

    Returns ``(width, anchored)``: counts per bucket of *width* nanoseconds, counted
    from the Unix epoch (``anchored`` False) or from midnight of the first
    timestamp's day (True), add up to counts per period of *freq*.

    Raises
    ------
    ValueError
        If *freq* is not a pandas frequency, or finer than a microsecond.
    """
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as exc:
        raise ArgumentError(f"freq: {freq!r} is not a pandas frequency ({exc})") from None
    nanos = getattr(offset, "nanos", None) if isinstance(offset, pd.offsets.Tick) else None
    if nanos is None:  # weeks, months, business days...: periods made of whole days
        return _DAY_NS, False
    if nanos % 1000:
        raise ArgumentError(f"freq: {freq!r} is finer than a microsecond")
    if _DAY_NS % nanos == 0:
        return nanos, False  # 'h', '15min', 'D': every midnight is a period start
    if nanos % _DAY_NS == 0:
        return _DAY_NS, False  # '2D', '7D': made of whole days, counted from the first day
    return nanos, True  # '7h', '36h': the first day's midnight fixes every period


def _bucket_times(times: pd.Series, width: int, origin: int) -> pd.Series:
    ns = times.astype("datetime64[ns, UTC]").astype("int64")
    return pd.to_datetime(origin + (ns - origin) // width * width, utc=True).rename(times.name)


# -- dask ---------------------------------------------------------------------------------
def dask_counts(ddf: Any, keys: Any, cols: Sequence[Hashable], *, statuses: Sequence[str] | None = None,
                freq: str | None = None) -> pd.DataFrame:
    """Counts per group of a dask frame, by dask's groupby.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
    keys : callable
        ``keys(partition, cols) -> DataFrame``: the hashable grouping columns of a
        pandas partition (the analytics' own rule), status included.
    cols : list
        The frame's columns that *keys* reads.
    statuses : list of str, optional
        Count only jobs with these statuses.
    freq : str, optional
        Also group by the time bucket of ``modified`` for periods of *freq*.

    Returns
    -------
    DataFrame
        The grouping columns and :data:`COUNT`, one row per group with jobs.
    """
    needed = list(dict.fromkeys([*cols, "status", *(["modified"] if freq else [])]))
    part = ddf[needed]

    def chosen(p: pd.DataFrame) -> pd.DataFrame:
        if statuses is None:
            return p
        return p[p["status"].astype("string").isin(list(statuses)).fillna(False).to_numpy(bool)]

    width = origin = 0
    if freq is not None:
        width, anchored = bucket_ns(freq)
        if anchored:
            first = part.map_partitions(chosen, meta=part._meta)["modified"].min().compute()
            if pd.isna(first):
                return pd.DataFrame(columns=[*cols, "modified", COUNT])
            origin = pd.Timestamp(first).floor("D").value

    def group_keys(p: pd.DataFrame) -> pd.DataFrame:
        p = chosen(p)
        out = keys(p, list(cols))
        if freq is not None:
            out["modified"] = _bucket_times(p["modified"], width, origin)
        return out

    grouped = part.map_partitions(group_keys, meta=group_keys(part._meta))
    names = list(grouped.columns)
    counts = grouped.groupby(names, dropna=False, observed=True).size().compute()
    return counts.rename(COUNT).reset_index()


# -- DuckDB -------------------------------------------------------------------------------
def quote(name: Hashable) -> str:
    """A DuckDB identifier for a column name (dotted JSON paths included)."""
    return '"' + str(name).replace('"', '""') + '"'


def _with_statuses(rel: Any, statuses: Sequence[str] | None) -> Any:
    """The relation's jobs with one of *statuses* (values go in as constants, not SQL text)."""
    if statuses is None:
        return rel
    import duckdb

    status = duckdb.ColumnExpression("status").cast(duckdb.sqltype("VARCHAR"))
    if not statuses:
        return rel.limit(0)
    return rel.filter(status.isin(*(duckdb.ConstantExpression(str(s)) for s in statuses)))


def arrow_to_pandas(table: Any) -> pd.DataFrame:
    """An arrow table as pandas with the frames' dtypes (nullable ints and booleans, pyarrow strings)."""
    import pyarrow as pa

    from .frames import STRING_DTYPE

    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(), pa.string(): STRING_DTYPE,
               pa.large_string(): STRING_DTYPE, pa.string_view(): STRING_DTYPE}
    return table.to_pandas(types_mapper=mapping.get)


def _fetch(rel: Any) -> pd.DataFrame:
    """A (small) relation's rows as pandas, with the frames' dtypes."""
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    table = fetch()
    if not hasattr(table, "to_pandas"):  # duckdb 1.4+: arrow() gives a reader
        table = table.read_all()
    return arrow_to_pandas(table)


def _aggregate(rel: Any, groups: Sequence[str], aggregates: Sequence[str]) -> pd.DataFrame:
    """``SELECT groups, aggregates ... GROUP BY groups`` over the relation, by DuckDB's relational API.

    ``rel.aggregate`` rather than ``rel.query("jobs", sql)``: a query registers the
    relation as a view and binds it again (for a Parquet dataset, the glob and
    the files' footers), which cost more than the grouping itself on a few
    million jobs; a statuses filter layered under the query added one more.
    """
    result = rel.aggregate(", ".join([*groups, *aggregates]), ", ".join(groups))
    return _fetch(result)


def _origin(rel: Any) -> int:
    """Midnight (ns since the epoch) of the day of the relation's first ``modified``; 0 without any."""
    first = _fetch(rel.aggregate("min(epoch_ns(modified)) AS first")).iloc[0, 0]
    return 0 if pd.isna(first) else int(first) // _DAY_NS * _DAY_NS


def duckdb_counts(rel: Any, cols: Sequence[Hashable], *, statuses: Sequence[str] | None = None,
                  freq: str | None = None) -> pd.DataFrame:
    """Counts per group of a DuckDB relation, by ``GROUP BY`` in DuckDB.

    Parameters
    ----------
    rel : duckdb.DuckDBPyRelation
    cols : list
        Grouping columns (status is always one).
    statuses : list of str, optional
        Count only jobs with these statuses.
    freq : str, optional
        Also group by the time bucket of ``modified`` for periods of *freq*.

    Returns
    -------
    DataFrame
        The grouping columns (``status`` as text), and :data:`COUNT`.
    """
    keys = [c for c in dict.fromkeys(cols) if c != "status"]
    groups = [quote(c) for c in keys] + ["CAST(status AS VARCHAR)"]
    names = [*keys, "status"]
    width = anchored = None
    if freq is not None:
        width, anchored = bucket_ns(freq)
    if anchored:  # the origin is the first chosen job's day: filter in DuckDB first
        rel = _with_statuses(rel, statuses)
        statuses = None
    if freq is not None:
        origin = _origin(rel) if anchored else 0
        groups.append(f"{origin} + (epoch_ns(modified) - {origin}) // {width} * {width}")
        names.append("modified")
    out = _aggregate(rel, groups, [f"count(*) AS {COUNT}"]).set_axis([*names, COUNT], axis=1)
    if statuses is not None:  # status is a group: keep the chosen ones' counts (no filter to bind)
        out = out[out["status"].isin([str(s) for s in statuses]).fillna(False).to_numpy(bool)]
        out = out.reset_index(drop=True)
    if freq is not None:
        out["modified"] = pd.to_datetime(out["modified"].astype("int64"), utc=True)
    status = out["status"].astype(object).where(out["status"].notna(), None)
    out["status"] = pd.Categorical(status, categories=status_order(status.dropna()))  # as the frames have it
    return out


def duckdb_durations(rel: Any, cols: Sequence[Hashable], statuses: Sequence[str],
                     q: Sequence[float]) -> pd.DataFrame:
    """Duration statistics (ns) of the jobs with *statuses*, per group, computed in DuckDB.

    Returns
    -------
    DataFrame
        The grouping columns, ``count``, ``mean``, ``min``, one column ``q0``,
        ``q1``, ... per quantile (linear interpolation, as pandas) and ``max``.
    """
    rel = _with_statuses(rel, statuses)
    duration = "(epoch_ns(modified) - epoch_ns(created))"
    stats = [f"count({duration}) AS count", f"avg({duration}) AS mean", f"min({duration}) AS min",
             *(f"quantile_cont({duration}, {float(x)!r}) AS q{i}" for i, x in enumerate(q)),
             f"max({duration}) AS max"]
    return _aggregate(rel, [quote(c) for c in cols], stats)
