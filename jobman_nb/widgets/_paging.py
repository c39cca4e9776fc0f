"""Reading one page of a query quickly on millions of rows, and counting its matches without blocking.

Rows come first: a page is read with ``limit + 1`` rows (the extra one says
whether there is a next page), so no count is needed to page. When the filters
match many rows and the order is an indexed field, the page walks that index
and tests the filters on each row (:func:`jobman_nb.dao.query.compile_select`'s
``walk_order``) instead of sorting every match; when they match few, SQLite's
own plan (the filters' index, then a sort of those few) is the quick one. A
bounded count tells which (it stops at ``sqrt(page end × table rows)`` matches,
where the two plans cost the same).

The count of matches never has an ORDER BY, and one that could scan the table
(a filter no index serves, such as a JSON path) stops at :data:`COUNT_CAP`.
On a database file it runs on a thread with its own connection, so the page is
shown at once and the count follows; a new run interrupts a count still running.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..dao.query import Query, compile_select, quote_identifier
from ..errors import ArgumentError

if TYPE_CHECKING:
    import pandas as pd

    from ..dao.sqlite_dao import SqliteDAO

#: A count over filters that no index serves stops here ("more than 10,000").
COUNT_CAP = 10_000


def indexed_fields(dao: SqliteDAO, ent_type: str) -> set[str]:
    """Columns of *ent_type*'s table that lead an index (the primary key included)."""
    orm = dao.orms[ent_type]
    table = quote_identifier(orm.table)
    conn = dao.connection
    out = {"rowid"}
    if orm.primary_key:
        out.add(orm.primary_key)
    for row in conn.execute(f"PRAGMA index_list({table})").fetchall():
        cols = conn.execute(f"PRAGMA index_info({quote_identifier(row[1])})").fetchall()
        if cols and cols[0][2] is not None:
            out.add(cols[0][2])
    return out


def filter_fields(filters: Any) -> Iterator[str]:
    """Every field named in a (canonical) filters list, inside any/all groups too."""
    for item in filters or []:
        if isinstance(item, Mapping):
            for group in ("any", "all"):
                if group in item:
                    yield from filter_fields(item[group])
            if "field" in item:
                yield item["field"]


def _order_field(query: Query) -> str | None:
    order = query.get("order_by")
    if isinstance(order, (list, tuple)):
        order = order[0] if len(order) == 1 else None
    return order.get("field") if isinstance(order, Mapping) else None


def _capped_count(dao: SqliteDAO, ent_type: str, filters: Any, cap: int | None,
                  connection: sqlite3.Connection) -> int:
    orm = dao.orms[ent_type]
    query: Query = {"filters": filters or []}
    if cap is not None:
        query = {**query, "fields": [orm.primary_key or "key"], "limit": cap + 1}
    return orm.count_objects(query, connection=connection)


def read_page(dao: SqliteDAO, ent_type: str, query: Query, indexed: set[str]) -> tuple[pd.DataFrame, bool]:
    """Read the page *query* asks for; return it and whether a next page exists."""
    limit = query["limit"]
    page = {**query, "limit": limit + 1}
    order = _order_field(page)
    filters = page.get("filters")
    orm = dao.orms[ent_type]
    key = orm.primary_key or "key"
    # Only when a filter could use an index: otherwise SQLite walks the order's index by itself.
    if order in indexed and key in orm.columns and any(f in indexed for f in filter_fields(filters)):
        conn = dao.connection
        n_rows = conn.execute(f"SELECT max(rowid) FROM {quote_identifier(orm.table)}").fetchone()[0] or 0
        threshold = math.isqrt((page.get("offset", 0) + limit + 1) * n_rows) + 1
        if _capped_count(dao, ent_type, filters, threshold, conn) > threshold:
            select = compile_select({**page, "fields": [key]}, orm.table, orm.columns, walk_order=True)
            keys = [row[0] for row in conn.execute(select.sql, select.params).fetchall()]
            if not keys:  # past the last page
                return dao.query_ents_df(ent_type, {**page, "limit": 0}), False
            frame = dao.query_ents_df(ent_type, {"filters": [{"field": key, "op": "IN", "arg": keys}],
                                                 "order_by": page["order_by"]})
            return frame.iloc[:limit], len(frame) > limit
    frame = dao.query_ents_df(ent_type, page)
    return frame.iloc[:limit], len(frame) > limit


class Counter:
    """Counts the matches of a builder's filters, on a thread when the database is a file.

    Parameters
    ----------
    dao : SqliteDAO
    ent_type : str
    indexed : set of str
        Fields an index serves: filters only on these are counted exactly.
    cap : int
        Where a count over other filters stops.
    """

    def __init__(self, dao: SqliteDAO, ent_type: str, indexed: set[str], cap: int = COUNT_CAP) -> None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ArgumentError(f"count_cap must be a positive integer, got {cap!r}")
        self.dao, self.ent_type, self.indexed, self.cap = dao, ent_type, indexed, cap
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def cap_for(self, filters: Any) -> int | None:
        """None (count exactly) when every filter field has an index, else the cap."""
        return None if all(f in self.indexed for f in filter_fields(filters)) else self.cap

    def start(self, filters: Any, done: Callable[[int | None, int | None, str | None], None]) -> None:
        """Count *filters*' matches; call ``done(count, cap, error)`` (count None on error)."""
        self.cancel()
        with self._lock:
            self._generation += 1
            generation = self._generation
        cap = self.cap_for(filters)
        if getattr(self.dao, "path", None) is None:  # an in-memory database has one connection
            done(*self._count(filters, cap, self.dao.connection))
            return

        def work() -> None:
            conn = self.dao.create_connection()
            with self._lock:
                self._conn = conn
            try:
                result = self._count(filters, cap, conn)
            finally:
                with self._lock:
                    self._conn = None
                conn.close()
            with self._lock:
                current = generation == self._generation
            if current:
                done(*result)

        self._thread = threading.Thread(target=work, name="jobman-nb-count", daemon=True)
        self._thread.start()

    def _count(self, filters: Any, cap: int | None,
               conn: sqlite3.Connection) -> tuple[int | None, int | None, str | None]:
        try:
            return _capped_count(self.dao, self.ent_type, filters, cap, conn), cap, None
        except sqlite3.OperationalError as exc:
            return None, cap, None if "interrupt" in str(exc) else str(exc)
        except (sqlite3.Error, ValueError) as exc:
            return None, cap, str(exc)

    def wait(self) -> None:
        """Wait for the count running now (if any)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def cancel(self) -> None:
        """Stop the count running now; its result is dropped."""
        with self._lock:
            self._generation += 1
            conn = self._conn
        if conn is not None:
            conn.interrupt()
        self.wait()
