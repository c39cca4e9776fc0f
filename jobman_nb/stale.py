"""Stale jobs: jobs stuck in CLAIMED or RUNNING, and putting them back in the queue.

A process that dies between claiming a job and saving its result leaves the
job CLAIMED (or RUNNING) for ever; nothing in jobman notices. :func:`find_stale_jobs`
lists the jobs whose ``modified`` is older than a threshold, and :func:`requeue`
sets them back to PENDING, in one transaction, and only those that are still
exactly as the user saw them (compare-and-set on ``status`` and ``modified``):
a job that a worker touched after the user looked is never requeued.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from .dao.query import Query, compile_updates
from .errors import ArgumentError, ArgumentTypeError, MissingKeyError
from .frames import epoch_to_utc

if TYPE_CHECKING:
    from .dao.sqlite_dao import SqliteDAO

__all__ = ["STUCK_STATUSES", "find_stale_jobs", "default_stale_age", "requeue"]

#: Statuses of jobs that someone is (supposed to be) working on.
STUCK_STATUSES: tuple[str, ...] = ("CLAIMED", "RUNNING")

#: Tolerance (seconds) of the ``modified`` comparison: frames hold times as
#: datetime64[ns], which may differ from the stored float by a few hundred ns.
MODIFIED_TOLERANCE = 1e-6


def _seconds(older_than: Any) -> float:
    """A duration given as Timedelta, timedelta, str ('2h', '90min') or seconds, in seconds."""
    if isinstance(older_than, bool):
        raise ArgumentTypeError(f"older_than must be a duration (Timedelta, '2h' or seconds), got {older_than!r}")
    if isinstance(older_than, (int, float)):
        seconds = float(older_than)
    elif isinstance(older_than, (str, timedelta, pd.Timedelta)):
        try:
            seconds = pd.Timedelta(older_than).total_seconds()
        except ValueError as exc:
            raise ArgumentError(f"older_than {older_than!r} is not a duration; use e.g. '2h', '90min', "
                             "pd.Timedelta(hours=2) or seconds") from exc
    else:
        raise ArgumentTypeError(f"older_than must be a duration (Timedelta, '2h' or seconds), got {older_than!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ArgumentError(f"older_than must be a finite, non-negative duration, got {older_than!r}")
    return seconds


def _epoch(now: Any) -> float:
    if now is None:
        return time.time()
    if isinstance(now, (int, float)) and not isinstance(now, bool):
        return float(now)
    ts = pd.Timestamp(now)
    if ts.tzinfo is None:
        raise ArgumentError(f"now={now!r} has no time zone; give a UTC time or epoch seconds")
    return ts.timestamp()


def default_stale_age(dao: SqliteDAO, *, q: float = 0.99, factor: float = 3.0,
                      minimum: Any = "1h") -> pd.Timedelta:
    """The threshold :func:`find_stale_jobs` uses when not given one, derived from the history.

    ``factor`` times the *q* quantile of the durations (``modified - created``)
    of finished (COMPLETED or FAILED) jobs, and at least *minimum*: with the
    defaults, three times what 99 % of jobs needed from creation to the end.

    Raises
    ------
    ValueError
        If no job has finished yet (pass ``older_than`` explicitly then).
    """
    if not 0 < q <= 1:
        raise ArgumentError(f"q must be in (0, 1], got {q!r}")
    rows = dao.query_jobs({"filters": [{"field": "status", "op": "IN", "arg": ["COMPLETED", "FAILED"]}],
                           "fields": ["created", "modified"]})
    spans = pd.Series([r["modified"] - r["created"] for r in rows
                       if r["modified"] is not None and r["created"] is not None], dtype="float64")
    if spans.empty:
        raise ArgumentError("no finished jobs to learn typical durations from; pass older_than (e.g. '2h')")
    seconds = max(float(spans.quantile(q)) * factor, _seconds(minimum))
    return pd.Timedelta(seconds=seconds)


def find_stale_jobs(dao: SqliteDAO, older_than: Any = None, *, now: Any = None,
                    statuses: Sequence[str] = STUCK_STATUSES, query: Query | None = None,
                    expand_json: bool = True) -> pd.DataFrame:
    """List the jobs in CLAIMED or RUNNING that have not been modified for longer than *older_than*.

    Parameters
    ----------
    dao : JobmanSqliteDAO, WorkerSqliteDAO or EngineSqliteDAO
        Works on a read-only DAO.
    older_than : Timedelta, str or float, optional
        ``'2h'``, ``pd.Timedelta(minutes=90)`` or seconds. Default:
        :func:`default_stale_age` (three times the 99th percentile of finished
        jobs' durations, at least an hour).
    now : Timestamp or float, optional
        The current time (tz-aware or epoch seconds); default the clock.
    statuses : list of str
        Which statuses count as in progress.
    query : dict, optional
        Further filters (e.g. one worker's jobs).
    expand_json : bool
        Expand JSON fields to dotted columns, as :meth:`query_jobs_df` does.

    Returns
    -------
    DataFrame
        The stale jobs, oldest ``modified`` first, with ``stale_for`` (Timedelta
        since ``modified``). Pass it to :func:`requeue` as is.
    """
    query = dao.validate_query("job", query)  # before anything reads the file
    seconds = _seconds(older_than) if older_than is not None else default_stale_age(dao).total_seconds()
    statuses = list(statuses)
    if not statuses or not all(isinstance(s, str) for s in statuses):
        raise ArgumentError(f"statuses must be a non-empty list of status names, got {statuses!r}")
    t_now = _epoch(now)
    filters = [*query.get("filters", []), {"field": "status", "op": "IN", "arg": statuses},
               {"field": "modified", "op": "<", "arg": t_now - seconds}]
    df = dao.query_jobs_df({**query, "filters": filters,
                            "order_by": query.get("order_by", {"field": "modified", "direction": "ASC"})},
                           expand_json=expand_json)
    df["stale_for"] = pd.Timestamp(t_now, unit="s", tz="UTC") - df["modified"]
    return df


def _seen(jobs: Any) -> list[tuple[Any, Any, float | None]]:
    """(key, status, modified seconds) of each job the caller saw."""
    if isinstance(jobs, pd.DataFrame):
        missing = [c for c in ("key", "status", "modified") if c not in jobs.columns]
        if missing:
            raise MissingKeyError(f"requeue needs the key, status and modified the user saw; the frame lacks "
                           f"{', '.join(missing)}")
        mod = jobs["modified"]
        if pd.api.types.is_datetime64_any_dtype(mod):
            secs = (mod.dt.tz_convert("UTC") if mod.dt.tz is not None else mod.dt.tz_localize("UTC"))
            seconds = [None if pd.isna(v) else v.value / 1e9 for v in secs]
        else:
            seconds = [None if pd.isna(v) else float(v) for v in mod]
        return list(zip(jobs["key"].tolist(), jobs["status"].astype(object).tolist(), seconds, strict=True))
    if isinstance(jobs, Iterable) and not isinstance(jobs, (str, bytes, Mapping)):
        out = []
        for job in jobs:
            if not isinstance(job, Mapping) or not {"key", "status", "modified"} <= set(job):
                raise ArgumentTypeError(f"requeue: each job must be a dict with key, status and modified, got {job!r}")
            out.append((job["key"], job["status"], job["modified"]))
        return out
    raise ArgumentTypeError("requeue takes a query dict, a DataFrame or a list of job dicts, "
                            f"got {type(jobs).__name__}")


def requeue(dao: SqliteDAO, jobs: Query | pd.DataFrame | Iterable[Mapping[str, Any]], *,
            status: str = "PENDING", from_statuses: Sequence[str] = STUCK_STATUSES,
            updates: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Set jobs back to PENDING, atomically, only if each is still as the user saw it.

    Parameters
    ----------
    dao : JobmanSqliteDAO, WorkerSqliteDAO or EngineSqliteDAO
        Opened read-write.
    jobs : DataFrame, list of dict or query dict
        What the user saw: rows with ``key``, ``status`` and ``modified`` (e.g.
        from :func:`find_stale_jobs`). A query dict is run inside the
        transaction and its jobs are requeued as found.
    status : str
        The status to set.
    from_statuses : list of str
        Only jobs seen in one of these statuses are requeued; others are skipped.
    updates : dict, optional
        Also set these fields or JSON paths of each requeued job, in the same
        compare-and-set update (e.g. ``{"job_spec.resources.mem_gb": 32}``; see
        :meth:`~jobman_nb.JobmanSqliteDAO.update_jobs`).

    Returns
    -------
    DataFrame
        One row per job seen: ``key``, ``seen_status``, ``seen_modified``,
        ``action`` (``'requeued'`` or ``'skipped'``), ``reason`` (why skipped:
        ``'changed'`` — its status or modified differs now, ``'missing'`` — no
        such job, ``'status'`` — not seen in *from_statuses*) and
        ``current_status`` (after the transaction).

    Raises
    ------
    ReadOnlyError
        If the DAO was opened read-only (nothing is written).
    QueryError
        If *updates* is malformed (nothing is written).
    """
    dao.check_writable()  # fail before reading anything
    if isinstance(jobs, Mapping):
        jobs = dao.validate_query("job", jobs)  # before taking the write lock
    from_statuses = list(from_statuses)
    updates = {**(updates or {}), "status": status}
    compile_updates(updates, dao.orms["job"].columns)  # fail before reading anything
    results = []
    with dao.transaction():
        if isinstance(jobs, Mapping):
            seen = [(r["key"], r["status"], r["modified"]) for r in dao.query_jobs(
                {**jobs, "fields": ["key", "status", "modified"]})]
        else:
            seen = _seen(jobs)
        for key, seen_status, seen_modified in seen:
            row = {"key": key, "seen_status": seen_status, "seen_modified": seen_modified}
            if seen_status not in from_statuses:
                results.append({**row, "action": "skipped", "reason": "status"})
                continue
            modified_filter = ({"field": "modified", "op": "IS", "arg": None} if seen_modified is None else
                               {"field": "modified", "op": "BETWEEN",
                                "arg": [seen_modified - MODIFIED_TOLERANCE, seen_modified + MODIFIED_TOLERANCE]})
            changed = dao.update_jobs(updates, {"filters": [
                {"field": "key", "op": "=", "arg": key},
                {"field": "status", "op": "=", "arg": seen_status},
                modified_filter,
            ]})["rowcount"]
            if changed:
                results.append({**row, "action": "requeued", "reason": None})
            else:
                exists = dao.count_ents("job", {"filters": [{"field": "key", "op": "=", "arg": key}]})
                results.append({**row, "action": "skipped", "reason": "changed" if exists else "missing"})
        keys = [r["key"] for r in results]
        current = {r["key"]: r["status"] for r in dao.query_jobs(
            {"filters": [{"field": "key", "op": "IN", "arg": keys}], "fields": ["key", "status"]})} if keys else {}
    out = pd.DataFrame(results, columns=["key", "seen_status", "seen_modified", "action", "reason"])
    out["seen_modified"] = epoch_to_utc(out["seen_modified"])
    out["current_status"] = out["key"].map(current)
    return out
