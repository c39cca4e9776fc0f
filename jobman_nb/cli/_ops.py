"""Commands that look after a running queue: ``stale``, ``requeue``, ``history``, ``watch``.

Only ``requeue`` (without ``--dry-run``) and ``history on|off`` open the
database writable, and only once they are about to write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from ..vocabulary import FINISHED, status_order
from ._app import WHERE_HELP, UsageProblem, build_query, field_kinds, main, open_database, split_fields
from ._output import SCREEN_LIMIT, Output, emit_frame, fit_table, is_interactive, output_options, terminal_width

if TYPE_CHECKING:
    import pandas as pd

    from ..explore import JobDatabase

def _duration(text: str | None) -> Any:
    """``--older-than`` as a pandas Timedelta (None: the library's default)."""
    if text is None:
        return None
    import pandas as pd

    try:
        value = pd.Timedelta(text)
    except ValueError:
        value = None
    if value is None or pd.isna(value) or value.total_seconds() < 0:
        raise UsageProblem(f"--older-than {text!r} is not a duration; use e.g. 2h, 90min, 1d, 3600s")
    return value


_OLDER_HELP = ("CLAIMED/RUNNING jobs not modified for longer than this (2h, 90min, 1d). Default: three times "
               "the 99th percentile of finished jobs' durations, at least 1h.")


def _stale_frame(db: JobDatabase, older_than: str | None, where: Sequence[str]) -> tuple[pd.DataFrame, str]:
    from ..stale import default_stale_age, find_stale_jobs

    age = _duration(older_than)
    if age is None:
        age = default_stale_age(db.jobman)
    frame = find_stale_jobs(db.jobman, age, query=build_query(where, kind_of=field_kinds(db.jobman, "job")))
    return frame, _human(age.total_seconds())


def _human(seconds: float) -> str:
    from ._output import _duration as human

    return human(seconds)


# -- stale ----------------------------------------------------------------------------------
@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--older-than", metavar="DURATION", help=_OLDER_HELP)
@click.option("--where", "-w", multiple=True, metavar="EXPR", help=WHERE_HELP)
@click.option("--limit", "-n", type=click.IntRange(min=0), help="At most this many jobs (default 20 on the screen).")
@click.option("--fields", "-f", metavar="A,B,...", help="Only these columns (default on the screen: key, status, "
                                                         "modified, stale_for, worker_key).")
@click.option("--all", "-a", "everything", is_flag=True, help="Every stale job, also on the screen.")
@output_options
def stale(path: str, older_than: str | None, where: tuple[str, ...], limit: int | None, fields: str | None,
          everything: bool, output: Output) -> None:
    """List the jobs stuck in CLAIMED or RUNNING: not modified for longer than --older-than.

    Oldest first, with stale_for (the time since modified). Put them back in
    the queue with 'jobman-nb requeue PATH --stale'.

    \b
    Examples:
      jobman-nb stale demo.sqlite --older-than 2h
      jobman-nb stale demo.sqlite -w worker_key=hpc_w --csv
    """
    with open_database(path) as db:
        frame, age = _stale_frame(db, older_than, where)
        if output.for_person:
            click.echo(f"{len(frame):,} job{'' if len(frame) == 1 else 's'} CLAIMED or RUNNING and not modified "
                       f"for over {age}", err=True)
        cap = None if everything or not output.for_person else SCREEN_LIMIT
        cap = limit if limit is not None else cap
        shown = frame if cap is None else frame.iloc[:cap]
        defaults = ["key", "status", "modified", "stale_for", "worker_key"]
        defaults += [f for f in _where_fields(where) if f not in defaults and f in frame.columns]
        emit_frame(output, shown, defaults=defaults, fields=split_fields(fields), more=len(frame) - len(shown),
                   empty="no stale jobs")


def _where_fields(where: Sequence[str]) -> list[str]:
    return [f["field"] for f in build_query(where).get("filters", [])]


# -- requeue --------------------------------------------------------------------------------
_REASONS = {
    "changed": "changed since it was read (a worker touched it)",
    "missing": "no longer in the table",
    "status": "status not in --from-status",
}


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--where", "-w", multiple=True, metavar="EXPR", help=WHERE_HELP + " Chooses the jobs to requeue.")
@click.option("--stale", "use_stale", is_flag=True, help="Requeue the jobs that 'jobman-nb stale' lists.")
@click.option("--older-than", metavar="DURATION", help="With --stale: " + _OLDER_HELP)
@click.option("--from-status", default="CLAIMED,RUNNING", show_default=True, metavar="A,B",
              help="Only jobs in these statuses are requeued; others are skipped.")
@click.option("--dry-run", is_flag=True, help="Show what would be requeued; open the file read-only, write nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed when there is no terminal to ask on).")
def requeue(path: str, where: tuple[str, ...], use_stale: bool, older_than: str | None, from_status: str,
            dry_run: bool, yes: bool) -> None:
    """Set jobs back to PENDING, only if each is still as it was read (compare-and-set).

    Choose the jobs with -w filters, --stale, or both. The jobs are read
    first (read-only) and listed; then, after you confirm (or with --yes),
    each is requeued in one transaction only if its status and modified are
    still what was read, so a job a worker touched meanwhile is skipped.
    Prints what was requeued and what was skipped, and why.

    \b
    Examples:
      jobman-nb requeue demo.sqlite --stale --older-than 6h --dry-run
      jobman-nb requeue demo.sqlite -w status=FAILED -w 'job_spec.cfg.code=orca' --from-status FAILED --yes
    """
    from ..stale import requeue as requeue_jobs

    if not where and not use_stale:
        raise UsageProblem("say which jobs to requeue: -w FILTER (repeatable), --stale, or both")
    if older_than is not None and not use_stale:
        raise UsageProblem("--older-than goes with --stale")
    statuses = split_fields(from_status)
    if not statuses:
        raise UsageProblem("--from-status: name at least one status, e.g. CLAIMED,RUNNING")
    with open_database(path) as db:
        if use_stale:
            frame, _ = _stale_frame(db, older_than, where)
            seen = frame[["key", "status", "modified", "worker_key"]].copy()
        else:
            import pandas as pd

            from ..frames import epoch_to_utc

            q = build_query(where, kind_of=field_kinds(db.jobman, "job"))
            rows = db.jobman.query_jobs({**q, "fields": ["key", "status", "modified", "worker_key"]})
            seen = pd.DataFrame(rows, columns=["key", "status", "modified", "worker_key"])
            seen["modified"] = epoch_to_utc(seen["modified"])
    eligible = seen[seen["status"].astype(object).isin(statuses)]
    others = seen[~seen.index.isin(eligible.index)]
    _plan(seen, eligible, others, statuses)
    if dry_run or eligible.empty:
        click.echo("dry run: nothing written" if dry_run else "nothing to requeue", err=True)
        return
    if not yes:
        if not is_interactive():
            raise UsageProblem(f"not requeueing {len(eligible):,} jobs without a confirmation: there is no terminal "
                               "to ask on; pass --yes (or --dry-run to only look)")
        click.confirm(f"Requeue {len(eligible):,} job{'' if len(eligible) == 1 else 's'} to PENDING?", abort=True,
                      err=True)
    with open_database(path, write=True) as db:
        result = requeue_jobs(db.jobman, seen, from_statuses=statuses)
    _report(result)


def _counts(values: pd.Series) -> str:
    counts = values.astype(object).value_counts()
    return ", ".join(f"{s} {n:,}" for s, n in counts.items())


def _plan(seen: pd.DataFrame, eligible: pd.DataFrame, others: pd.DataFrame, statuses: Sequence[str]) -> None:
    click.echo(f"{len(seen):,} job{'' if len(seen) == 1 else 's'} matched: {len(eligible):,} to requeue"
               + (f" ({_counts(eligible['status'])})" if len(eligible) else "")
               + (f", {len(others):,} skipped: status {_counts(others['status'])} is not in --from-status "
                  f"{','.join(statuses)} (add it to requeue them)" if len(others) else ""))
    if len(eligible):
        from ..encode import frame_records

        records = list(frame_records(eligible.iloc[:SCREEN_LIMIT]))
        for line in fit_table(["key", "status", "modified", "worker_key"], records, terminal_width()):
            click.echo(line)
        if len(eligible) > SCREEN_LIMIT:
            click.echo(f"… and {len(eligible) - SCREEN_LIMIT:,} more")


def _report(result: pd.DataFrame) -> None:
    from ..encode import frame_records

    requeued = result[result["action"] == "requeued"]
    skipped = result[result["action"] == "skipped"]
    click.echo(f"requeued {len(requeued):,}, skipped {len(skipped):,}")
    if len(skipped):
        shown = skipped.assign(reason=skipped["reason"].map(_REASONS).fillna(skipped["reason"]))
        records = list(frame_records(shown[["key", "seen_status", "current_status", "reason"]].iloc[:SCREEN_LIMIT]))
        for line in fit_table(["key", "seen_status", "current_status", "reason"], records, terminal_width()):
            click.echo(line)
        if len(skipped) > SCREEN_LIMIT:
            click.echo(f"… and {len(skipped) - SCREEN_LIMIT:,} more skipped")


# -- history --------------------------------------------------------------------------------
def history_lines(db: JobDatabase) -> tuple[list[str], list[str]]:
    """('history of T: on, N events ...' lines, warnings) for each job table that has or could have a history.

    Warns when an event table exists but its triggers are gone (as after
    ``sqlite-utils transform``, which recreates the table without them).
    """
    from ..dao import history

    lines, warnings = [], []
    for ts in db.table_sets:
        job = db.daos[ts.prefix].orms.get("job")
        if ts.job_table is None or job is None or "status" not in job.columns:
            continue
        has_table = history.has_event_table(db.connection, ts.job_table)
        if not has_table and ts.role != "jobman":
            continue
        on = history.is_enabled(db.connection, ts.job_table)
        events = history.event_orm(job).count_objects(None, connection=db.connection) if has_table else 0
        lines.append(f"history of {ts.job_table}: {'on' if on else 'off'}"
                     + (f", {events:,} events in {history.event_table(ts.job_table)}" if has_table else ""))
        if has_table and not on:
            warnings.append(f"warning: {history.event_table(ts.job_table)} exists but the history triggers of "
                            f"{ts.job_table} are gone (as after 'sqlite-utils transform'): status changes are "
                            f"not being recorded. Restore them with: jobman-nb history {db.path.name} on")
    return lines, warnings


def _print_history(db: JobDatabase) -> None:
    lines, warnings = history_lines(db)
    for line in lines:
        click.echo(line)
    for warning in warnings:
        click.echo(warning, err=True)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("action", type=click.Choice(["on", "off", "status"]), default="status")
def history(path: str, action: str) -> None:
    """Turn the job history of jobman's jobs on or off, or say whether it is on (status, the default).

    On: SQLite triggers record every status change of jobman_job in
    jobman_job_event, whoever writes it (jobman, jobman_nb, raw SQL); jobs
    already there get one snapshot event. Idempotent; jobman keeps working on
    the file. Off: the triggers are dropped and the events kept. Read the
    events with 'jobman-nb events PATH'.
    """
    if action == "status":
        with open_database(path) as db:
            _print_history(db)
        return
    with open_database(path, write=True) as db:
        if action == "on":
            db.jobman.enable_history()
        else:
            db.jobman.disable_history()
        _print_history(db)


# -- watch ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """Status counts of a job table at one moment."""

    time: float
    counts: dict[str, int]
    finished_last_hour: int


def watch_counts(connection: sqlite3.Connection, job_table: str, every: float, *,
                 sleep: Callable[[float], Any] = time.sleep, clock: Callable[[], float] = time.time,
                 ticks: int | None = None) -> Iterator[Snapshot | None]:
    """Yield a :class:`Snapshot` at the first tick and whenever the file changed, None at ticks without a change.

    A tick asks SQLite only ``PRAGMA data_version`` (which changes when another
    connection commits to the file); the counts are queried only when it
    changed. Stops after *ticks* ticks (never when None).
    """
    from ..dao.query import quote_identifier

    table = quote_identifier(job_table)
    marks = ", ".join("?" for _ in FINISHED)
    last = None
    n = 0
    while ticks is None or n < ticks:
        if n:
            sleep(every)
        n += 1
        version = connection.execute("PRAGMA data_version").fetchone()[0]
        if version == last:
            yield None
            continue
        last = version
        now = clock()
        rows = connection.execute(f"SELECT status, count(*) FROM {table} GROUP BY status").fetchall()
        recent = connection.execute(f"SELECT count(*) FROM {table} WHERE status IN ({marks}) AND modified >= ?",
                                    (*FINISHED, now - 3600)).fetchone()[0]
        yield Snapshot(now, {("NULL" if s is None else str(s)): c for s, c in rows}, int(recent))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--every", default=5.0, show_default=True, type=click.FloatRange(min=0.01), metavar="SECONDS",
              help="Seconds between checks.")
@click.option("--count", "ticks", type=click.IntRange(min=1), help="Stop after this many checks (default: Ctrl-C).")
def watch(path: str, every: float, ticks: int | None) -> None:
    """Print jobman's status counts, a new line whenever they change, until Ctrl-C.

    Each check costs SQLite one 'PRAGMA data_version'; the counts are only
    queried when another process wrote to the file. 'done/h' counts the jobs
    that finished (COMPLETED or FAILED) in the last hour. Read-only.
    """
    with open_database(path) as db:
        job_table = db.jobman.orms["job"].table
        columns: list[str] = []
        try:
            for snap in watch_counts(db.connection, job_table, every, ticks=ticks):
                if snap is None:
                    continue
                statuses = status_order(snap.counts, every=False)
                names = ["UTC", *statuses, "total", "done/h"]
                if statuses != columns:  # the header again when a status appears
                    columns = statuses
                    click.echo(_watch_line(names, names))
                click.echo(_watch_line(names, [
                    datetime.fromtimestamp(snap.time, timezone.utc).strftime("%H:%M:%S"),
                    *(f"{snap.counts.get(s, 0):,}" for s in statuses),
                    f"{sum(snap.counts.values()):,}", f"{snap.finished_last_hour:,}"]))
        except KeyboardInterrupt:
            click.echo("", err=True)


def _watch_line(names: Sequence[str], cells: Sequence[str]) -> str:
    """The time, then numbers right-aligned under their names: 7 statuses fit 100 columns up to 9,999,999 jobs."""
    return "  ".join([cells[0].ljust(8)] + [c.rjust(max(9 if n == "total" else 7, len(n)))
                                            for n, c in zip(names[1:], cells[1:], strict=True)])
