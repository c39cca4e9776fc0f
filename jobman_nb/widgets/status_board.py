"""``StatusBoard``: job counts per status, one GROUP BY away; a click opens the jobs."""

from __future__ import annotations

import html
import signal
import sqlite3
import threading
import weakref
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from ..dao.query import quote_identifier
from ..errors import ArgumentError, JobmanError, QueryError
from ..vocabulary import FINISHED, status_color
from ._results import close_all
from .query_builder import QueryBuilder

if TYPE_CHECKING:
    from ..dao.sqlite_dao import SqliteDAO

__all__ = ["StatusBoard"]

_NONE = "(no status)"
#: Statuses of finished jobs (the rate counts them) and of jobs still to run (the ETA counts them).
_FINISHED = FINISHED
_TO_RUN = ("PENDING", "CLAIMED", "RUNNING")
_LIVE: weakref.WeakSet[StatusBoard] = weakref.WeakSet()
_PREVIOUS_SIGINT: Any = None


def _on_interrupt(signum: int, frame: Any) -> None:
    """Kernel interrupt: stop every live board, then do what the interrupt did before."""
    for board in list(_LIVE):
        board.stop()
    previous = _PREVIOUS_SIGINT
    if callable(previous):
        previous(signum, frame)
    else:
        raise KeyboardInterrupt


def _stop_on_interrupt() -> None:
    global _PREVIOUS_SIGINT
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can be set from the main thread only
    current = signal.getsignal(signal.SIGINT)
    if current is not _on_interrupt:
        _PREVIOUS_SIGINT = current
        signal.signal(signal.SIGINT, _on_interrupt)


class StatusBoard(widgets.VBox):
    """How many jobs have each status, as bars; click a status to see its jobs.

    Counts come from one ``GROUP BY status`` (served by the status index), so
    the board is quick on large databases. Clicking a status fills
    :attr:`builder` (a :class:`QueryBuilder`, shown under the board) with
    that status and runs it.

    Parameters
    ----------
    dao : SqliteDAO
        A DAO with a ``job`` entity type (read-only is fine).
    builder : QueryBuilder, optional
        The builder to fill on a click; by default one is made (and shown) on the first click.
    ent_type : str
        The entity type to count (it needs a ``status`` field).

    Raises
    ------
    QueryError
        If *ent_type* is unknown or has no status field.
    """

    #: ``{status: count}`` as of the last refresh; None stands for jobs without a status.
    counts = traitlets.Dict(read_only=True, help="Counts per status as of the last refresh.")
    #: Jobs that finished (COMPLETED or FAILED) in the hour up to the latest change; None if unknown.
    finished_per_hour = traitlets.Float(None, allow_none=True, read_only=True,
                                        help="Jobs finished in the last hour of activity.")
    #: Whether the board refreshes itself (see :meth:`start`).
    live = traitlets.Bool(False, read_only=True, help="Whether the board refreshes itself.")

    def __init__(self, dao: SqliteDAO, builder: QueryBuilder | None = None, *, ent_type: str = "job") -> None:
        super().__init__()
        self.add_class("jobman-sb")
        orm = dao.orms.get(ent_type)
        if orm is None or "status" not in orm.columns:
            raise QueryError(f"ent_type {ent_type!r} has no status field to count; this DAO has "
                             f"{', '.join(map(repr, dao.orms))}")
        self.dao = dao
        self.ent_type = ent_type
        self._table = orm.table
        self._builder = builder
        self._own_builder = builder is None
        self._version: tuple[int, int] | None = None
        self._stop_event: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._status_buttons: list[tuple[widgets.Button, str | None]] = []
        self._refresh = widgets.Button(description="refresh", icon="refresh", layout=widgets.Layout(width="8em"))
        self._refresh.add_class("jobman-sb-refresh")
        self._refresh.on_click(self._on_refresh_click)
        self._total = widgets.HTML()
        self._total.add_class("jobman-sb-total")
        self._rate = widgets.HTML()
        self._rate.add_class("jobman-sb-rate")
        self._bars = widgets.VBox()
        self._bars.add_class("jobman-sb-bars")
        self._message = widgets.HTML()
        self._builder_box = widgets.VBox()
        header = widgets.HBox([widgets.HTML(f"<b>{html.escape(ent_type)}s by status</b>&nbsp;&nbsp;"),
                               self._total, self._refresh], layout=widgets.Layout(align_items="center"))
        self.children = (header, self._rate, self._bars, self._message, self._builder_box)
        self.refresh()

    @property
    def builder(self) -> QueryBuilder | None:
        """The QueryBuilder a click on a status fills (None until the first click, unless given)."""
        return self._builder

    def refresh(self) -> dict[str | None, int]:
        """Count again and redraw; return ``{status: count}``."""
        try:
            self._version = self._data_version()
            by_value = self.dao.count_by(self.ent_type, "status")  # one GROUP BY, in SQLite's order of values
            rate = self._finished_last_hour(self.dao.connection, quote_identifier(self._table))
        except (sqlite3.Error, JobmanError) as exc:
            self._message.value = f"<span style='color:#b00020'>cannot count: {html.escape(str(exc))}</span>"
            return dict(self.counts)
        self._message.value = ""
        counts = dict(sorted(by_value.items(), key=lambda item: -item[1]))  # most first; ties keep value order
        self.set_trait("counts", counts)
        self.set_trait("finished_per_hour", rate)
        self._draw(counts)
        return counts

    def _finished_last_hour(self, conn: sqlite3.Connection, table: str) -> float | None:
        if "modified" not in self.dao.orms[self.ent_type].columns:
            return None
        latest = conn.execute(f"SELECT max(modified) FROM {table}").fetchone()[0]
        if latest is None:
            return None
        marks = ", ".join("?" * len(_FINISHED))
        n = conn.execute(f"SELECT count(*) FROM {table} WHERE modified > ? AND status IN ({marks})",
                         [float(latest) - 3600, *_FINISHED]).fetchone()[0]
        return float(n)

    def _data_version(self) -> tuple[int, int]:
        """What changes when the file does: ``PRAGMA data_version`` counts other connections' commits
        (it is per connection), ``total_changes`` this connection's own writes."""
        conn = self.dao.connection
        return int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes

    def poll(self) -> bool:
        """Refresh if the database changed since the last refresh; return whether it did.

        When nothing changed, no query reads the job table: only ``PRAGMA data_version`` runs.
        """
        try:
            version = self._data_version()
        except sqlite3.Error:
            return False
        if version == self._version:
            return False
        self.refresh()
        return True

    def start(self, every: float = 5.0) -> None:
        """Refresh every *every* seconds while the database changes (see :meth:`poll`), on a thread.

        Stops on :meth:`stop`, when the board is closed, or when the kernel is
        interrupted (Kernel > Interrupt, or Ctrl-C in a terminal).
        """
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0:
            raise ArgumentError(f"every must be a positive number of seconds, got {every!r}")
        self.stop()
        stop = self._stop_event = threading.Event()
        _stop_on_interrupt()
        _LIVE.add(self)

        def loop() -> None:
            while not stop.wait(every):
                if self.comm is None:  # closed
                    break
                self.poll()
        self._thread = threading.Thread(target=loop, name="jobman-nb-board", daemon=True)
        self.set_trait("live", True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (see :meth:`start`)."""
        if self._stop_event is not None:
            self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._stop_event = None
        _LIVE.discard(self)
        if self.comm is not None:
            self.set_trait("live", False)

    def close(self) -> None:
        """Stop refreshing and close the board and the widgets it made (its own builder too)."""
        self.stop()
        own = [self._builder] if self._own_builder and self._builder is not None else []
        keep = [] if self._own_builder else [self._builder]
        close_all([w for w in self.children if w is not self._builder_box])
        close_all(own)
        self._builder_box.children = tuple(w for w in keep if w is not None)
        close_all([self._builder_box.layout, self._refresh, self.layout])
        self._builder_box.close()
        super().close()

    def show(self, status: str | None) -> QueryBuilder:
        """Fill :attr:`builder` with the jobs of *status*, run it and return it."""
        filters = [{"field": "status", "op": "IS" if status is None else "=", "arg": status}]
        if self._builder is None:
            self._builder = QueryBuilder(self.dao, self.ent_type)
        if self._builder not in self._builder_box.children:
            self._builder_box.children = (self._builder,)
        keep = {k: v for k, v in self._builder.query.items() if k in ("order_by", "limit")}
        self._builder.query = {"filters": filters, **keep}
        self._builder.run()
        return self._builder

    def _draw(self, counts: dict[str | None, int]) -> None:
        total = sum(counts.values())
        self._total.value = f"{total:,} in all&nbsp;&nbsp;"
        rate = self.finished_per_hour
        if rate is None:
            self._rate.value = ""
        else:
            todo = sum(counts.get(s, 0) for s in _TO_RUN)
            eta = ""
            if todo and rate:
                hours = todo / rate
                eta = (f"; {todo:,} to run: about {hours * 60:,.0f} min at that rate" if hours < 2 else
                       f"; {todo:,} to run: about {hours:,.1f} h at that rate")
            elif todo:
                eta = f"; {todo:,} to run, none finished in that hour"
            self._rate.value = (f"<span style='color:#555'>{rate:,.0f} finished in the last hour of activity"
                                f"{eta}</span>")
        most = max(counts.values(), default=0) or 1
        rows, self._status_buttons = [], []
        for status, n in counts.items():
            label = _NONE if status is None else str(status)
            button = widgets.Button(description=label, tooltip=f"show the {label} {self.ent_type}s",
                                    layout=widgets.Layout(width="9.5em"))
            button.add_class("jobman-sb-status")
            button.add_class(f"jobman-sb-status-{label.strip('()').replace(' ', '-').lower()}")
            button.on_click(self._on_status_click)
            self._status_buttons.append((button, status))
            color = status_color(status)
            width = max(0.5, 100 * n / most)
            share = 100 * n / total if total else 0
            bar = widgets.HTML(
                f"<div style='display:flex; align-items:center; width:28em'>"
                f"<div style='background:{color}; width:{width:.1f}%; height:1.1em; border-radius:2px'></div>"
                f"<span style='margin-left:6px; white-space:nowrap'>{n:,} ({share:.0f}%)</span></div>")
            rows.append(widgets.HBox([button, bar], layout=widgets.Layout(align_items="center")))
        if not rows:
            rows = [widgets.HTML(f"<i>no {self.ent_type}s</i>")]
        old = list(self._bars.children)
        self._bars.children = tuple(rows)
        close_all(old)

    def _on_refresh_click(self, button: widgets.Button) -> None:
        self.refresh()

    def _on_status_click(self, button: widgets.Button) -> None:
        for candidate, status in self._status_buttons:
            if candidate is button:
                self.show(status)
                return
