"""``StatusBoard``: job counts per status, one GROUP BY away; a click opens the jobs."""

from __future__ import annotations

import html
import sqlite3
from typing import TYPE_CHECKING

import ipywidgets as widgets
import traitlets

from ..errors import JobmanError, QueryError
from ..vocabulary import status_color
from .query_builder import QueryBuilder

if TYPE_CHECKING:
    from ..dao.sqlite_dao import SqliteDAO

__all__ = ["StatusBoard"]

_NONE = "(no status)"


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
        self._status_buttons: list[tuple[widgets.Button, str | None]] = []
        self._refresh = widgets.Button(description="refresh", icon="refresh", layout=widgets.Layout(width="8em"))
        self._refresh.add_class("jobman-sb-refresh")
        self._refresh.on_click(self._on_refresh_click)
        self._total = widgets.HTML()
        self._total.add_class("jobman-sb-total")
        self._bars = widgets.VBox()
        self._bars.add_class("jobman-sb-bars")
        self._message = widgets.HTML()
        self._builder_box = widgets.VBox()
        header = widgets.HBox([widgets.HTML(f"<b>{html.escape(ent_type)}s by status</b>&nbsp;&nbsp;"),
                               self._total, self._refresh], layout=widgets.Layout(align_items="center"))
        self.children = (header, self._bars, self._message, self._builder_box)
        self.refresh()

    @property
    def builder(self) -> QueryBuilder | None:
        """The QueryBuilder a click on a status fills (None until the first click, unless given)."""
        return self._builder

    def refresh(self) -> dict[str | None, int]:
        """Count again and redraw; return ``{status: count}``."""
        try:
            by_value = self.dao.count_by(self.ent_type, "status")  # one GROUP BY, in SQLite's order of values
        except (sqlite3.Error, JobmanError) as exc:
            self._message.value = f"<span style='color:#b00020'>cannot count: {html.escape(str(exc))}</span>"
            return dict(self.counts)
        self._message.value = ""
        counts = dict(sorted(by_value.items(), key=lambda item: -item[1]))  # most first; ties keep value order
        self.set_trait("counts", counts)
        self._draw(counts)
        return counts

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
        self._bars.children = tuple(rows)

    def _on_refresh_click(self, button: widgets.Button) -> None:
        self.refresh()

    def _on_status_click(self, button: widgets.Button) -> None:
        for candidate, status in self._status_buttons:
            if candidate is button:
                self.show(status)
                return
