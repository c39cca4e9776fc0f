"""Job history: every status transition of a job table, recorded by SQLite triggers.

History is opt-in. :func:`enable` adds, in one transaction, a ``<prefix>job_event``
table and three triggers on the ``<prefix>job`` table, so every writer is
recorded, whichever process or library it is (jobman 0.0.1, jobman_nb, raw SQL):

``<prefix>job_event``
    ``key`` (INTEGER PRIMARY KEY, increasing in write order), ``job_key``,
    ``old_status`` (NULL: the job did not exist), ``new_status`` (NULL: the job
    was deleted) and ``time`` (float seconds since the epoch, like ``created``
    and ``modified``).

Triggers (``<prefix>job_event_on_insert``, ``..._on_update`` and ``..._on_delete``):

- AFTER UPDATE OF status, when the status really changes: ``OLD.status`` →
  ``NEW.status``. jobman_nb saves with an upsert (``INSERT ... ON CONFLICT DO
  UPDATE``), so saving over an existing job lands here too.
- AFTER INSERT: the old status is the ``new_status`` of the job's last event
  (NULL if it has none), and a row is written only if the status differs.
  jobman 0.0.1 saves with ``INSERT OR REPLACE``; with ``recursive_triggers``
  off (SQLite's default) the replaced row is deleted without firing DELETE
  triggers, so the last event is the only place its status is still known.
- AFTER DELETE: ``OLD.status`` → NULL (a purge). Not fired by ``INSERT OR
  REPLACE`` unless a connection turns ``recursive_triggers`` on; then a
  replace shows up as ``X → NULL`` and ``NULL → Y`` at the same time.

These rules keep one invariant: the ``new_status`` of a job's last event is
its current status (NULL once deleted). :func:`enable` establishes it for the
jobs already in the table by writing a *snapshot* event for each job whose
status is not its last event's: ``old_status = new_status = status`` for a
job with no event yet (it was in that status at that time; what came before
is unknown), ``last new_status → status`` for one that changed while history
was off. Snapshots are stamped with the job's ``modified``.

Timestamps: the job's new ``modified`` when the write changed it (jobman and
jobman_nb set ``modified`` on every save and update, so the event time is
the time the writer chose, and histories imported with their own timestamps
keep them). An UPDATE that gives no new ``modified`` (raw SQL that changes
only ``status``) and a DELETE are stamped with the database clock,
``julianday('now')`` converted to epoch seconds (millisecond precision). An
INSERT (or ``INSERT OR REPLACE``, after which the previous ``modified`` is
gone) is stamped with the row's own ``modified``, else its ``created``, else
NULL: the insert trigger reads no clock, because a function call in it would
make every insert journal its pages twice (see ``_statements``).

:func:`disable` drops the triggers and keeps the table and its events.

**Bulk updates write their events themselves.** A trigger runs a sub-program per row, which
costs more than the event row it writes (``bench/bench_history.py --floor``). When jobman_nb's
``update_jobs`` changes the status of at least :data:`BULK_EVENTS` jobs with a plain filter
(no order_by, limit or offset), :func:`bulk_update` writes their events with one ``INSERT ...
SELECT`` (the rows the trigger would write: old status, new status, the new ``modified``) and
runs the UPDATE with the update trigger dropped, then creates the trigger again from its
stored SQL, all inside the caller's transaction: no other connection ever sees the file
without it, and a failure rolls all of it back. It does so only when the stored trigger is
this version's, so the events are the ones the trigger would have written. The price is a
schema change per bulk update (other connections re-read the schema once).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import QueryError, SchemaError
from . import query as _query
from .orm import ORM, Connection, Record, raw_connection

__all__ = [
    "EVENT_FIELDS",
    "NOW_SQL",
    "event_table",
    "trigger_names",
    "event_orm",
    "create_event_table",
    "insert_events",
    "enable",
    "disable",
    "is_enabled",
    "has_event_table",
    "query_events",
    "BULK_EVENTS",
    "bulk_update",
]

#: Field infos of the event table (``key`` is SQLite's rowid).
EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "key": {"type": "INTEGER", "primary_key": True},
    "job_key": {"type": "TEXT"},
    "old_status": {"type": "TEXT"},
    "new_status": {"type": "TEXT"},
    "time": {"type": "FLOAT"},
}
#: SQL for the current time as epoch seconds (2440587.5 is the Julian day of 1970-01-01).
NOW_SQL = "((julianday('now') - 2440587.5) * 86400.0)"

#: Status changes from which :func:`bulk_update` writes the events itself instead of the trigger
#: (the trigger's sub-program costs ~4 us a row here; dropping and creating it, 1-8 ms).
BULK_EVENTS = 1000

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SUFFIX = "_event"
_TRIGGERS = ("on_insert", "on_update", "on_delete")
# Triggers of earlier versions, dropped by enable() and disable().
_OLD_TRIGGERS = ("on_insert_clock", "on_update_clock")


def _checked(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise SchemaError(f"{what} {name!r} is not a valid name: use letters, digits and '_', "
                          "not starting with a digit")
    return name


def event_table(job_table: str) -> str:
    """Name of the event table of *job_table* (``jobman_job`` → ``jobman_job_event``)."""
    return _checked(job_table + _SUFFIX, "event table")


def trigger_names(job_table: str) -> tuple[str, ...]:
    """Names of the triggers that record *job_table*'s events (insert, update, each with a clock variant; delete)."""
    base = event_table(job_table)
    return tuple(_checked(f"{base}_{t}", "trigger") for t in _TRIGGERS)


def _all_trigger_names(job_table: str) -> tuple[str, ...]:
    base = event_table(job_table)
    return trigger_names(job_table) + tuple(_checked(f"{base}_{t}", "trigger") for t in _OLD_TRIGGERS)


def event_orm(job_orm: ORM) -> ORM:
    """An ORM over the event table of *job_orm*'s table, for query dicts over events."""
    if "status" not in job_orm.columns or job_orm.primary_key is None:
        raise SchemaError(f"{job_orm.table} has no status field or no primary key: it cannot have a history")
    return ORM(name=job_orm.name + _SUFFIX, fields=EVENT_FIELDS, table_prefix=job_orm.table_prefix,
               logger=job_orm.logger)


def _exists(conn: sqlite3.Connection, kind: str, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?", (kind, name)).fetchone()
    return row is not None


def has_event_table(connection: Connection, job_table: str) -> bool:
    """Whether *job_table*'s event table exists."""
    return _exists(raw_connection(connection), "table", event_table(job_table))


def is_enabled(connection: Connection, job_table: str) -> bool:
    """Whether all the history triggers exist on *job_table*."""
    conn = raw_connection(connection)
    return all(_exists(conn, "trigger", t) for t in trigger_names(job_table))


def _statements(job_table: str, key_column: str, has_modified: bool, has_created: bool = True) -> list[str]:
    """The DDL and seeding statements of :func:`enable`, in order."""
    q = _query.quote_identifier
    job, events = q(job_table), q(event_table(job_table))
    on_insert, on_update, on_delete = map(q, trigger_names(job_table))
    index = q(_checked(f"idx_{event_table(job_table)}_job_key", "index"))
    key, status, modified, created = q(key_column), q("status"), q("modified"), q("created")
    # The last event of a job: the index on job_key holds the rowid, so this is one index seek.
    last = "(SELECT e.new_status FROM {events} AS e WHERE e.job_key = {ref} ORDER BY e.key DESC LIMIT 1)"
    last_j = last.format(events=events, ref=f"j.{key}")
    last_new = last.format(events=events, ref=f"NEW.{key}")
    insert = f"INSERT INTO {events} (job_key, old_status, new_status, time)"
    # Why no trigger on INSERT calls a function (the clock): any function call compiled into a
    # statement, trigger bodies included, makes SQLite mark the whole statement "may abort"
    # (sqlite3VdbeAddFunctionCall -> sqlite3MayAbort on the top-level parse), and a statement
    # that may abort and writes more than one b-tree opens a statement journal (usesStmtJournal =
    # isMultiWrite && mayAbort). Inside a transaction each step of an executemany is a statement
    # of its own, so every row copied each page it touched (job row, four indexes, event row and
    # index) to the journal: 2-4x the cost of the write. An insert's time is therefore the row's
    # own (modified, else created); the clock is read only by the UPDATE and DELETE triggers.
    insert_time = f"COALESCE({', '.join([f'NEW.{modified}'] * has_modified + [f'NEW.{created}'] * has_created)}, NULL)"
    update_time = (f"CASE WHEN NEW.{modified} IS NOT OLD.{modified} AND NEW.{modified} IS NOT NULL "
                   f"THEN NEW.{modified} ELSE {NOW_SQL} END" if has_modified else NOW_SQL)
    return [
        # No NOT NULL constraints: a constraint that can fail inside a trigger makes the statement
        # "may abort" too (see above).
        f"CREATE TABLE IF NOT EXISTS {events} (key INTEGER PRIMARY KEY, job_key TEXT, "
        "old_status TEXT, new_status TEXT, time FLOAT)",
        f"CREATE INDEX IF NOT EXISTS {index} ON {events} (job_key)",
        # Snapshots: jobs whose current status is not what their last event says.
        f"{insert} SELECT k, CASE WHEN has_events THEN last ELSE s END, s, t FROM ("
        f"SELECT j.{key} AS k, j.{status} AS s, "
        f"{f'COALESCE(j.{modified}, {NOW_SQL})' if has_modified else NOW_SQL} AS t, j.rowid AS r, "
        f"EXISTS (SELECT 1 FROM {events} AS e WHERE e.job_key = j.{key}) AS has_events, {last_j} AS last "
        f"FROM {job} AS j WHERE j.{key} IS NOT NULL) "
        "WHERE CASE WHEN has_events THEN last IS NOT s ELSE s IS NOT NULL END ORDER BY r",
        *(f"DROP TRIGGER IF EXISTS {q(t)}" for t in _all_trigger_names(job_table)),
        # The last event is looked up twice (WHEN and row): two seeks measured faster than one
        # through a subquery in FROM (LIMIT 1 or an aggregate keep SQLite from flattening it).
        f"CREATE TRIGGER {on_insert} AFTER INSERT ON {job} WHEN NEW.{key} IS NOT NULL "
        f"AND NEW.{status} IS NOT {last_new} BEGIN {insert} VALUES (NEW.{key}, {last_new}, NEW.{status}, "
        f"{insert_time}); END",
        f"CREATE TRIGGER {on_update} AFTER UPDATE OF {status} ON {job} WHEN NEW.{status} IS NOT OLD.{status} "
        f"BEGIN {insert} VALUES (NEW.{key}, OLD.{status}, NEW.{status}, {update_time}); END",
        f"CREATE TRIGGER {on_delete} AFTER DELETE ON {job} WHEN OLD.{key} IS NOT NULL BEGIN "
        f"{insert} VALUES (OLD.{key}, OLD.{status}, NULL, {NOW_SQL}); END",
    ]


def create_event_table(connection: Connection, job_orm: ORM) -> str:
    """Create (if missing) the event table of *job_orm*'s table and its index, without triggers; returns its name.

    For writing a history of one's own (e.g. an import) before :func:`enable`.
    """
    conn = raw_connection(connection)
    for sql in _statements(job_orm.table, job_orm.primary_key or "key", True)[:2]:
        conn.execute(sql)
    return event_table(job_orm.table)


def insert_events(connection: Connection, job_orm: ORM,
                  events: Iterable[tuple[str, str | None, str | None, float]]) -> int:
    """Append ``(job_key, old_status, new_status, time)`` rows to the event table, in order; returns their number.

    Keep them consistent with the jobs (a job's last event holds its current
    status), so that :func:`enable` has nothing to snapshot.
    """
    conn = raw_connection(connection)
    table = _query.quote_identifier(event_table(job_orm.table))
    cursor = conn.executemany(f"INSERT INTO {table} (job_key, old_status, new_status, time) VALUES (?, ?, ?, ?)",
                              events)
    return cursor.rowcount


def enable(connection: Connection, job_orm: ORM) -> None:
    """Create the event table and triggers of *job_orm*'s table, and snapshot its jobs.

    Idempotent, and the caller runs it in one transaction: enabling twice
    writes no events the second time. The triggers are dropped and created
    again, so a file enabled by an earlier version gets the current ones.

    Raises
    ------
    SchemaError
        If the job table does not exist or has no status or key column.
    """
    conn = raw_connection(connection)
    event_orm(job_orm)  # checks the schema
    present = job_orm.present_columns(conn)
    if not present:
        raise SchemaError(f"no table {job_orm.table}: create it (initialize) before enabling its history")
    missing = [c for c in ("status", job_orm.primary_key) if c not in present]
    if missing:
        raise SchemaError(f"{job_orm.table} has no column {missing[0]!r}: it cannot have a history")
    for sql in _statements(job_orm.table, job_orm.primary_key or "key", "modified" in present, "created" in present):
        conn.execute(sql)


def disable(connection: Connection, job_orm: ORM) -> None:
    """Drop the history triggers of *job_orm*'s table; the event table and its events stay."""
    conn = raw_connection(connection)
    for name in _all_trigger_names(job_orm.table):
        conn.execute(f"DROP TRIGGER IF EXISTS {_query.quote_identifier(name)}")


def bulk_update(connection: Connection, job_orm: ORM, sql: str, params: Sequence[Any], updates: Mapping[str, Any],
                query: Any, modified: tuple[bool, Any]) -> int | None:
    """Run ``update_jobs``' UPDATE writing the events set-based (see the module notes); None if it does not apply.

    Called inside the caller's write transaction, with the compiled UPDATE *sql* and its
    *params*; *modified* is ``(True, value)`` when the UPDATE stamps ``modified`` with
    *value*. Returns the UPDATE's rowcount, or None when the trigger must do the work: fewer
    than :data:`BULK_EVENTS` status changes, a query with order_by, limit or offset, an
    update of the key or of ``modified``, a status that is not text or NULL, history off, or
    a trigger other than this version's.
    """
    conn = raw_connection(connection)
    new_status = updates.get("status", ...)
    stamped, new_modified = modified
    query = _query.check_query(query)
    if (new_status is not None and not isinstance(new_status, str)) or not stamped \
            or job_orm.primary_key is None or job_orm.primary_key in updates \
            or any(k in query for k in ("order_by", "limit", "offset")):
        return None
    on_update = trigger_names(job_orm.table)[1]
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (on_update,)).fetchone()
    if row is None:
        return None
    present = job_orm.present_columns(conn)
    q = _query.quote_identifier
    expected = [s for s in _statements(job_orm.table, job_orm.primary_key, "modified" in present, "created" in present)
                if s.startswith(f"CREATE TRIGGER {q(on_update)} ")]
    if "modified" not in present or expected != [row[0]]:
        return None
    where, where_params = _query.compile_where(query.get("filters"), job_orm.columns)
    changing = f"WHERE {f'({where}) AND ' if where else ''}{q('status')} IS NOT ?"
    job = q(job_orm.table)
    found = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {job} {changing} LIMIT ?)",
                         [*where_params, new_status, BULK_EVENTS]).fetchone()[0]
    if found < BULK_EVENTS:
        return None
    modified_col = q("modified")
    # the time the trigger gives: the new modified when the update changes it, else the clock
    time_sql = (f"CASE WHEN ? IS NOT {modified_col} AND ? IS NOT NULL THEN ? ELSE {NOW_SQL} END")
    conn.execute(f"DROP TRIGGER {q(on_update)}")
    conn.execute(f"INSERT INTO {q(event_table(job_orm.table))} (job_key, old_status, new_status, time) "
                 f"SELECT {q(job_orm.primary_key)}, {q('status')}, ?, {time_sql} FROM {job} {changing} ORDER BY rowid",
                 [new_status, new_modified, new_modified, new_modified, *where_params, new_status])
    rowcount = conn.execute(sql, params).rowcount
    conn.execute(row[0])
    return rowcount


def query_events(connection: Connection, job_orm: ORM, query: Any = None) -> list[Record]:
    """Return the events matching a query dict over the event table's fields.

    Raises
    ------
    QueryError
        If the query is malformed, or the table has no event table (history
        was never enabled).
    """
    orm = event_orm(job_orm)
    if not has_event_table(connection, job_orm.table):
        raise QueryError(f"{job_orm.table} has no history: there is no table {orm.table} "
                         "(enable it with dao.enable_history())")
    return orm.query_objects(query, connection=connection)
