"""The QueryBuilder's result view: a table that fits, sorts on a header click and selects rows.

The rows are one ``SelectMultiple`` (one widget model however many rows), in a
monospace font with each cell cut to its column's width; the header is one
button per shown column. So a page of 100 rows costs a handful of widget
models, a click on a row selects it (the builder opens it in the inspector),
and the header and rows scroll sideways together inside the view, not the form.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

if TYPE_CHECKING:
    import pandas as pd

#: Columns shown by default, when present, before the fields used in filters and order.
DEFAULT_COLUMNS = ("key", "status", "created", "modified")
#: Widest a cell is shown (characters); longer values end in '…' (the inspector shows them whole).
MAX_CELL = 28
#: A key is shown whole (a uuid has 36 characters).
MAX_KEY = 36
_GAP = 2
_NBSP = "\u00a0"
_CSS = """<style>
.jobman-qb-rows select {font: 12px/1.5 monospace !important; white-space: pre}
.jobman-qb-header button.jobman-qb-sort {font: bold 12px monospace; padding: 0; margin: 0; border: 0;
  text-align: left; height: 22px; background: #f3f5f8; border-radius: 0}
.jobman-qb-header {margin: 0 0 0 5px}
</style>"""


def close_all(items: Sequence[widgets.Widget]) -> None:
    """Close widgets (and the widgets inside them) that are being replaced, so no model outlives its view."""
    for item in items:
        own = getattr(item, "owned_widgets", None)  # widgets it holds but may not show right now
        close_all([*getattr(item, "children", ()), *(own() if own else ())])
        # a widget's layout and style are models of their own, which close() leaves open
        for part in (getattr(item, "layout", None), getattr(item, "style", None)):
            if isinstance(part, widgets.Widget):
                part.close()
        item.close()


def format_cell(value: Any) -> str:
    """One cell as text: times to the second, JSON compact, missing values empty."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if hasattr(value, "strftime"):
        try:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:  # NaT
            return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = str(value)
    return "" if text in ("nan", "NaT", "<NA>") else text


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line: tracebacks and JSON with newlines
    return text if len(text) <= width else text[: width - 1] + "…"


@contextlib.contextmanager
def holding(owner: Any) -> Iterator[None]:
    """Hold off *owner*'s handlers (its ``_filling`` flag) while code fills its children.

    The flag's previous value is restored, so holds nest.
    """
    before, owner._filling = owner._filling, True
    try:
        yield
    finally:
        owner._filling = before


class ResultView(widgets.VBox):
    """Shows a page of a result frame; calls back on a header click (sort) and on row selection.

    Parameters
    ----------
    on_sort : callable
        Called with a column name when its header is clicked.
    on_select : callable
        Called with the positions (in the frame) of the selected rows, and the
        position just clicked (or None).
    """

    def __init__(self, on_sort: Callable[[str], None], on_select: Callable[[list[int], int | None], None]) -> None:
        super().__init__(layout=widgets.Layout(overflow="auto hidden", width="100%", max_width="100%"))
        self.add_class("jobman-qb-view")
        self._on_sort = on_sort
        self._on_select = on_select
        self._frame: pd.DataFrame | None = None
        self._order: tuple[str, str] | None = None
        self._header = widgets.HBox(layout=widgets.Layout(width="max-content"))
        self._header.add_class("jobman-qb-header")
        self._rows = widgets.SelectMultiple(options=[], rows=1, layout=widgets.Layout(width="max-content"))
        self._rows.add_class("jobman-qb-rows")
        self._rows.observe(self._on_rows_change, "value")
        self._columns = widgets.TagsInput(value=[], allowed_tags=[], allow_duplicates=False)
        self._columns.add_class("jobman-qb-columns")
        self._columns.observe(self._on_columns_change, "value")
        self._note = widgets.HTML()
        self._filling = False
        self._sort_buttons: dict[widgets.Button, str] = {}
        chooser = widgets.HBox([widgets.HTML("columns&nbsp;"), self._columns],
                               layout=widgets.Layout(align_items="center"))
        chooser.add_class("jobman-qb-chooser")
        self._chooser = chooser
        self.children = (widgets.HTML(_CSS),)

    def owned_widgets(self) -> list[widgets.Widget]:
        """Every part of the view, shown or not (closed with it)."""
        return [self._header, self._rows, self._note, self._chooser]

    # -- public ---------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """The columns shown."""
        return list(self._columns.value)

    @columns.setter
    def columns(self, names: Sequence[str]) -> None:
        self._columns.value = [n for n in names if n in self._columns.allowed_tags]

    @property
    def selected(self) -> list[int]:
        """Positions in the frame of the selected rows."""
        return list(self._rows.value)

    def select(self, positions: Sequence[int]) -> None:
        """Select rows by position (as a click would)."""
        self._rows.value = tuple(positions)

    def clear(self) -> None:
        """Show nothing."""
        self._frame = None
        self.children = (self.children[0],)
        self._rows.options = []

    def show(self, frame: pd.DataFrame, wanted: Sequence[str], order: tuple[str, str] | None) -> None:
        """Show *frame*'s rows with the *wanted* columns that it has (the chooser offers all of them)."""
        self._frame, self._order = frame, order
        available = [c for c in frame.columns if not frame[c].isna().all()] or list(frame.columns)
        shown = [c for c in wanted if c in frame.columns] or available[:4]
        with holding(self):
            self._columns.allowed_tags = sorted(set(available) | set(shown), key=list(frame.columns).index)
            self._columns.value = shown
        self._render()

    # -- drawing --------------------------------------------------------------------------
    def _render(self) -> None:
        frame = self._frame
        if frame is None:
            return
        columns = list(self._columns.value)
        cells = {c: [format_cell(v) for v in frame[c].tolist()] for c in columns}
        widths = {}
        for c in columns:
            cap = MAX_KEY if c == "key" else MAX_CELL
            longest = max((len(t) for t in cells[c]), default=0)
            widths[c] = max(min(longest, cap), len(c) + 2, 4)
        old = list(self._sort_buttons)
        self._sort_buttons = {}
        buttons = []
        for i, c in enumerate(columns):
            arrow = ""
            if self._order and self._order[0] == c:
                arrow = " ▲" if self._order[1] == "ASC" else " ▼"
            # as wide as the column and the gap after it (the last has none), in the rows' font: it lines up
            width = f"{widths[c] + (_GAP if i < len(columns) - 1 else 0)}ch"
            b = widgets.Button(description=_cut(c, widths[c] - 2) + arrow, tooltip=f"sort by {c}",
                               layout=widgets.Layout(width=width, min_width=width))
            b.add_class("jobman-qb-sort")
            b.on_click(self._on_sort_click)
            self._sort_buttons[b] = c
            buttons.append(b)
        self._header.children = tuple(buttons)
        close_all(old)
        gap = _NBSP * _GAP
        labels = []
        for i in range(len(frame)):
            parts = [_cut(cells[c][i], widths[c]).ljust(widths[c]).replace(" ", _NBSP) for c in columns]
            labels.append(gap.join(parts))
        with holding(self):
            self._rows.options = [(label, i) for i, label in enumerate(labels)]
            self._rows.rows = max(1, min(len(labels), 15))
            self._rows.value = ()
        cut = [c for c in columns if any(len(t) > widths[c] for t in cells[c])]
        hidden = [c for c in self._columns.allowed_tags if c not in columns]
        notes = []
        if cut:
            notes.append(f"cut to fit: {', '.join(cut)} (click a row to see it whole)")
        if hidden:
            notes.append(f"{len(hidden)} more column{'s' * (len(hidden) > 1)} in the chooser")
        self._note.value = (f"<div style='color:#777; font-size:11px'>{'; '.join(notes)}</div>" if notes else "")
        self.children = (self.children[0], self._header, self._rows, self._note, self._chooser)

    # -- handlers -------------------------------------------------------------------------
    def _on_sort_click(self, button: widgets.Button) -> None:
        name = self._sort_buttons.get(button)
        if name is not None:
            self._on_sort(name)

    def _on_rows_change(self, change: dict[str, Any]) -> None:
        if self._filling:
            return
        added = [p for p in change["new"] if p not in change["old"]]
        self._on_select(list(change["new"]), added[-1] if added else None)

    def _on_columns_change(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self._render()
