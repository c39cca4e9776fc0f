"""``QueryBuilder``: an ipywidgets form whose value is a query dict, and which runs it.

Modelled on ipywidgets' ``interactive(VBox)``: the children are built once,
each child's ``value`` is observed, and the form is collected into a dict,
here the :attr:`QueryBuilder.query` trait. Setting that trait fills the form
(handlers are held off while filling), so code and form share one query.
"""

from __future__ import annotations

import html
import itertools
import pprint
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from ..dao.query import Query
from ..errors import ArgumentError, QueryError
from ..explore import path_map_of
from ..pathmap import PathMapLike, as_path_map
from . import _fields, _paging
from ._fields import FieldSpec, InputError
from ._results import DEFAULT_COLUMNS, ResultView, close_all, holding
from .inspector import JobInspector

if TYPE_CHECKING:
    import pandas as pd

    from ..dao.sqlite_dao import SqliteDAO

__all__ = ["QueryBuilder"]

_DIRECTIONS = ("ASC", "DESC")
_NO_ORDER = "(none)"
_CODE_STYLE = ("margin: 0; padding: 6px 8px; background: #f7f7f7; font: 12px/1.4 monospace; "
               "white-space: pre; user-select: text")
#: The query preview shows at most this many items of each list (and keys of each dict) ...
PREVIEW_ITEMS = 20
#: ... the first this many characters of each string ...
PREVIEW_STRING = 200
#: ... and at most this many characters in all, whatever the query's size (``query`` holds all of it).
PREVIEW_CHARS = 4_000


def _box(children: list[widgets.Widget], css: str, **layout: Any) -> widgets.HBox:
    box = widgets.HBox(children, layout=widgets.Layout(align_items="center", **layout))
    box.add_class(css)
    return box


class _FilterRow(widgets.HBox):
    """One filter: field, op, a value input fitting both, and a remove button."""

    def __init__(self, fields: dict[str, FieldSpec], statuses: list[str],
                 on_change: Callable[[], None], on_remove: Callable[[_FilterRow], None]) -> None:
        super().__init__(layout=widgets.Layout(align_items="center"))
        self.add_class("jobman-qb-filter")
        self._fields = fields
        self._statuses = statuses
        self._notify = on_change
        self._remove_row = on_remove
        self._filling = False
        # the values last parsed from the text box, keyed by (kind, text): a list of 100,000
        # values is parsed once, not on every click that collects the form
        self._parsed: tuple[tuple[str, str], list[Any]] | None = None
        self._field = widgets.Dropdown(options=list(fields), layout=widgets.Layout(width="17em"))
        self._op = widgets.Dropdown(layout=widgets.Layout(width="9em"))
        self._text = widgets.Text(continuous_update=False, layout=widgets.Layout(width="16em"))
        self._high = widgets.Text(continuous_update=False, placeholder="high", layout=widgets.Layout(width="10em"))
        self._and = widgets.HTML("and")
        self._choice = widgets.Dropdown(layout=widgets.Layout(width="16em"))
        self._tags = widgets.TagsInput(allowed_tags=statuses, allow_duplicates=False)
        self._remove = widgets.Button(icon="times", tooltip="remove this filter", layout=widgets.Layout(width="2.6em"))
        for w, css in [(self._field, "field"), (self._op, "op"), (self._text, "value"), (self._high, "value-high"),
                       (self._choice, "value-choice"), (self._tags, "value-tags"), (self._remove, "remove")]:
            w.add_class(f"jobman-qb-{css}")
        self._field.observe(self._on_field_change, "value")
        self._op.observe(self._on_op_change, "value")
        for w in (self._text, self._high, self._choice, self._tags):
            w.observe(self._on_value_change, "value")
        self._remove.on_click(self._on_remove_click)
        default = "status" if "status" in fields else next(iter(fields))
        self._set_field(default)

    def owned_widgets(self) -> list[widgets.Widget]:
        """Every input of the row, shown or not (closed with the row)."""
        return [self._field, self._op, self._text, self._high, self._and, self._choice, self._tags, self._remove]

    # -- state ----------------------------------------------------------------------------
    @property
    def _spec(self) -> FieldSpec:
        return self._fields[self._field.value]

    def _set_field(self, name: str) -> None:
        """Show *name* in the field box and fit the op and value inputs to it."""
        with holding(self):
            self._field.value = name
            spec = self._spec
            current = self._op.value
            self._op.options = [(_fields.op_label(op), op) for op in spec.ops]
            self._op.value = current if current in spec.ops else spec.ops[0]
            if spec.kind == _fields.STATUS:
                self._choice.options = self._statuses
            elif spec.kind == _fields.BOOL:
                self._choice.options = [("true", True), ("false", False)]
            self._text.placeholder = _fields.placeholder(spec.kind)
            self._high.placeholder = "high"
        self._layout_value()

    def _layout_value(self) -> None:
        arity, kind = _fields.op_arity(self._op.value), self._spec.kind
        if arity == 0:
            value: list[widgets.Widget] = []
        elif arity == -1:
            if kind == _fields.STATUS:
                value = [self._tags]
            else:
                self._text.placeholder = "values, comma-separated"
                value = [self._text]
        elif arity == 2:
            self._text.placeholder = "low"
            value = [self._text, self._and, self._high]
        elif kind in (_fields.STATUS, _fields.BOOL):
            value = [self._choice]
        else:
            self._text.placeholder = _fields.placeholder(kind)
            value = [self._text]
        self.children = (self._field, self._op, *value, self._remove)

    def filter(self, where: str) -> dict[str, Any]:
        """The filter dict this row shows.

        Raises
        ------
        InputError
            If the typed value does not fit the field and op.
        """
        spec, op = self._spec, self._op.value
        what = f"{where} ({spec.name} {_fields.op_label(op)})"
        arity = _fields.op_arity(op)
        if arity == 0:
            return {"field": spec.name, "op": op, "arg": None}
        if arity == -1:
            if spec.kind == _fields.STATUS:
                items: list[Any] = list(self._tags.value)
            else:
                items = self._parse_list(spec.kind, what)
            if not items:
                raise InputError(f"{what}: give at least one value" +
                                 ("" if spec.kind == _fields.STATUS else ", comma-separated"))
            return {"field": spec.name, "op": op, "arg": items}
        if arity == 2:
            low = _fields.parse_scalar(spec.kind, self._text.value, f"{what}: low value")
            high = _fields.parse_scalar(spec.kind, self._high.value, f"{what}: high value")
            return {"field": spec.name, "op": op, "arg": [low, high]}
        if spec.kind in (_fields.STATUS, _fields.BOOL):
            if self._choice.value is None:
                raise InputError(f"{what}: choose a value")
            return {"field": spec.name, "op": op, "arg": self._choice.value}
        arg = _fields.parse_scalar(spec.kind, self._text.value, f"{what}: value")
        return {"field": spec.name, "op": op, "arg": arg}

    def _parse_list(self, kind: str, what: str) -> list[Any]:
        key = (kind, self._text.value)
        if self._parsed is None or self._parsed[0] != key:
            items = [_fields.parse_scalar(kind, t, f"{what}: value {i + 1}")
                     for i, t in enumerate(_fields.split_list(key[1]))]
            self._parsed = (key, items)
        return list(self._parsed[1])

    def fill(self, item: Mapping[str, Any]) -> None:
        """Show the (canonical) filter *item*."""
        self._set_field(item["field"])
        with holding(self):
            spec, op, arg = self._spec, item["op"], item.get("arg")
            self._op.value = op
            arity = _fields.op_arity(op)
            if arity == -1 and spec.kind == _fields.STATUS:
                self._tags.allowed_tags = sorted(set(self._statuses) | set(arg), key=self._status_order)
                self._tags.value = list(arg)
            elif arity == -1:
                self._text.value = _fields.join_list([_fields.format_scalar(spec.kind, v) for v in arg])
                self._parsed = ((spec.kind, self._text.value), list(arg))
            elif arity == 2:
                self._text.value = _fields.format_scalar(spec.kind, arg[0])
                self._high.value = _fields.format_scalar(spec.kind, arg[1])
            elif arity == 1 and spec.kind in (_fields.STATUS, _fields.BOOL):
                if arg not in [o[1] if isinstance(o, tuple) else o for o in self._choice.options]:
                    self._choice.options = [*self._choice.options, arg]
                self._choice.value = arg
            elif arity == 1:
                self._text.value = _fields.format_scalar(spec.kind, arg)
        self._layout_value()

    def _status_order(self, status: str) -> tuple[int, str]:
        return (self._statuses.index(status) if status in self._statuses else len(self._statuses), status)

    # -- handlers -------------------------------------------------------------------------
    def _on_field_change(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self._set_field(change["new"])
            self._notify()

    def _on_op_change(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self._layout_value()
            self._notify()

    def _on_value_change(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self._notify()

    def _on_remove_click(self, button: widgets.Button) -> None:
        self._remove_row(self)


class _QueryTrait(traitlets.Dict):
    """A Dict trait whose type errors are the documented QueryError, not traitlets.TraitError."""

    def validate(self, obj: Any, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise QueryError(f"query must be a query dict such as {{'filters': [...], 'limit': 100}}, "
                             f"got {type(value).__name__} {value!r:.60}")
        return super().validate(obj, dict(value))


class QueryBuilder(widgets.VBox):
    """A form that builds a query dict for one entity type of a DAO, and runs it.

    Display it as the last expression of a cell. Filter rows offer the
    schema's fields and the JSON paths sampled from the data
    (``job_spec.resources.cpus``), the ops that fit each field and a value
    input that fits field and op; results are read with a LIMIT, so the form
    stays quick on large databases, read-only ones included.

    Parameters
    ----------
    dao : SqliteDAO
        The DAO to query, e.g. ``JobmanSqliteDAO(db_uri=path, read_only=True)``.
    ent_type : str
        The entity type (``'job'``, ``'kvp'``, ...).
    query : dict, optional
        A query dict to fill the form with (see :attr:`query`).
    limit : int
        The limit of a new form (a query always has one).
    count_cap : int
        A count over filters no index serves (JSON paths) stops after this
        many matches ("more than 10,000"), so it never scans millions of rows.
    path_map : dict or PathMap, optional
        Where the recorded job directories live locally, for the inspector's job
        directory section; by default the ``path_map`` given to
        :func:`~jobman_nb.open_db` for the database *dao* came from.

    Raises
    ------
    QueryError
        If *ent_type* is unknown, or *query* is invalid or cannot be shown by the form.
    PathMapError
        If *path_map* is malformed.

    Examples
    --------
    >>> qb = QueryBuilder(dao, query={"filters": [{"field": "status", "op": "=", "arg": "FAILED"}],
    ...                               "limit": 20})           # doctest: +SKIP
    >>> frame = qb.run()                                      # doctest: +SKIP
    >>> dao.query_jobs_df(qb.query)                           # doctest: +SKIP
    """

    #: The form's query dict: always valid for the DAO, always with a limit. Setting it fills the form.
    query = _QueryTrait(help="The current query dict; setting it fills the form.")
    #: The last message shown in the form ('' when all is well).
    message = traitlets.Unicode("", read_only=True, help="The message the form shows.")

    def __init__(self, dao: SqliteDAO, ent_type: str = "job", query: Query | None = None, *,
                 limit: int = 100, count_cap: int = _paging.COUNT_CAP, path_map: PathMapLike = None) -> None:
        super().__init__()
        self._path_map = path_map_of(dao) if path_map is None else as_path_map(path_map)
        self.add_class("jobman-qb")
        if ent_type not in dao.orms:
            raise QueryError(f"unknown ent_type {ent_type!r}; this DAO has {', '.join(map(repr, dao.orms))}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ArgumentError(f"limit must be a positive integer, got {limit!r}")
        self.dao = dao
        self.ent_type = ent_type
        self._default_limit = limit
        self._result: pd.DataFrame | None = None
        self._count: int | None = None
        self._count_cap: int | None = None
        self._shown: Query | None = None
        self._shown_columns: list[str] | None = None
        self._has_next = False
        self._filling = False
        orm = dao.orms[ent_type]
        self._indexed = _paging.indexed_fields(dao, ent_type)
        self._counter = _paging.Counter(dao, ent_type, self._indexed, count_cap)
        self._fields = self._discover_fields(orm.table, orm.columns)
        self._statuses = _fields.distinct_statuses(dao, ent_type) if "status" in orm.columns else []
        self._rows: list[_FilterRow] = []
        self._build()
        self.query = query if query is not None else {"limit": limit}

    def _discover_fields(self, table: str, columns: Mapping[str, str]) -> dict[str, FieldSpec]:
        first = [c for c in ("key", "status", "created", "modified") if c in columns]
        names = [*first, *(c for c in columns if c not in first)]
        fields = {name: FieldSpec(name, _fields.column_kind(name, columns[name])) for name in names}
        for name, sql_type in columns.items():
            if sql_type == "JSON":
                for spec in _fields.sample_json_paths(self.dao, self.ent_type, name):
                    fields[spec.name] = spec
        return fields

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        layout = widgets.Layout
        self._match = widgets.ToggleButtons(options=[("all", "all"), ("any", "any")], value="all",
                                            tooltips=["every filter must hold", "at least one filter holds"],
                                            style={"button_width": "4em"})
        self._filters = widgets.VBox(layout=layout(margin="2px 0 2px 1.5em"))
        self._add = widgets.Button(description="add filter", icon="plus", layout=layout(width="9em"))
        self._order = widgets.Dropdown(options=[_NO_ORDER, *self._fields], value=_NO_ORDER,
                                       layout=layout(width="17em"))
        self._direction = widgets.ToggleButtons(options=_DIRECTIONS, value="ASC", style={"button_width": "4.5em"})
        self._limit = widgets.IntText(value=self._default_limit, layout=layout(width="7em"))
        self._offset = widgets.IntText(value=0, layout=layout(width="8em"))
        self._run = widgets.Button(description="Run", icon="play", button_style="primary",
                                   layout=layout(width="7em"))
        self._prev = widgets.Button(description="previous", icon="chevron-left", disabled=True,
                                    layout=layout(width="8em"))
        self._next = widgets.Button(description="next", icon="chevron-right", disabled=True,
                                    layout=layout(width="8em"))
        self._count_label = widgets.HTML()
        self._stale = widgets.HTML()
        self._message = widgets.HTML()
        self._table = ResultView(self._on_header_sort, self._on_rows_select)
        self._inspector = JobInspector(self.dao, self.ent_type, selection=self._selected_frame,
                                       matching=lambda: dict(self.query), on_change=self.run,
                                       path_map=self._path_map)
        self._code = widgets.HTML()
        for w, css in [(self._match, "match"), (self._filters, "filters"), (self._add, "add"),
                       (self._order, "order-field"), (self._direction, "order-direction"),
                       (self._limit, "limit"), (self._offset, "offset"), (self._run, "run"),
                       (self._prev, "prev"), (self._next, "next"), (self._count_label, "count"),
                       (self._message, "message"), (self._table, "result"), (self._code, "code"),
                       (self._stale, "stale"), (self._inspector, "inspector")]:
            w.add_class(f"jobman-qb-{css}")
        label = widgets.HTML
        where = str(getattr(self.dao, "path", None) or ":memory:")
        mode = " (read-only)" if getattr(self.dao, "read_only", False) else ""
        title = label(f"<b>Query {html.escape(self.ent_type)}s</b> <span style='color:#777' "
                      f"title='{html.escape(where)}'>in {html.escape(Path(where).name)}{mode}</span>")
        self.children = (
            title,
            _box([label("match&nbsp;"), self._match, label("&nbsp;of these filters:")], "jobman-qb-match-row"),
            self._filters,
            _box([self._add], "jobman-qb-add-row", margin="0 0 0 1.5em"),
            _box([label("order by&nbsp;"), self._order, self._direction, label("&nbsp;&nbsp;limit&nbsp;"),
                  self._limit, label("&nbsp;&nbsp;offset&nbsp;"), self._offset], "jobman-qb-order-row"),
            _box([self._run, self._prev, self._next, label("&nbsp;"), self._count_label, label("&nbsp;"),
                  self._stale], "jobman-qb-run-row"),
            self._message,
            self._table,
            self._inspector,
            self._code,
        )
        self._match.observe(self._on_match_change, "value")
        self._order.observe(self._on_order_change, "value")
        self._direction.observe(self._on_order_change, "value")
        self._limit.observe(self._on_page_change, "value")
        self._offset.observe(self._on_page_change, "value")
        self._add.on_click(self._on_add_click)
        self._run.on_click(self._on_run_click)
        self._prev.on_click(self._on_prev_click)
        self._next.on_click(self._on_next_click)

    def _new_row(self) -> _FilterRow:
        row = _FilterRow(self._fields, self._statuses, self._on_filters_change, self._on_remove_row)
        self._rows.append(row)
        self._filters.children = tuple(self._rows)
        return row

    # -- public ---------------------------------------------------------------------------
    @property
    def result(self) -> pd.DataFrame | None:
        """The frame of the last run (None before the first)."""
        return self._result

    @property
    def count(self) -> int | None:
        """How many records matched the last run's filters, ignoring limit and offset.

        Waits for a count still running. When the filters use a field no index
        serves (a JSON path), the count stops at :data:`~jobman_nb.widgets._paging.COUNT_CAP`
        + 1 and :attr:`count_capped` is True ("more than 10,000").
        """
        self._counter.wait()
        return self._count

    @property
    def count_capped(self) -> bool:
        """Whether :attr:`count` is a lower bound (the count stopped at its cap)."""
        self._counter.wait()
        return self._count_cap is not None and self._count is not None and self._count > self._count_cap

    @property
    def stale(self) -> bool:
        """Whether the form no longer matches the rows shown (run it to refresh them)."""
        return self._shown is not None and self._shown != self.query

    @property
    def inspector(self) -> JobInspector:
        """The inspector under the table: a clicked row's job in full (and actions on a writable DAO)."""
        return self._inspector

    @property
    def columns(self) -> list[str]:
        """The result columns shown (the column chooser's value)."""
        return self._table.columns

    @columns.setter
    def columns(self, names: list[str]) -> None:
        self._table.columns = names

    def select(self, positions: list[int]) -> None:
        """Select result rows by position (as clicks would); the last one opens in the inspector."""
        self._table.select(positions)

    @property
    def selected(self) -> pd.DataFrame | None:
        """The selected rows of :attr:`result`."""
        return self._selected_frame()

    def _selected_frame(self) -> pd.DataFrame | None:
        if self._result is None:
            return None
        return self._result.iloc[self._table.selected]

    def close(self) -> None:
        """Close the form and every widget it made (a count still running is stopped)."""
        self._counter.cancel()
        close_all([*self.children, self.layout])
        super().close()

    @property
    def fields(self) -> list[str]:
        """The fields the form offers: schema columns, then JSON paths sampled from the data."""
        return list(self._fields)

    def run(self) -> pd.DataFrame | None:
        """Run the form's query; show and return its frame.

        Returns
        -------
        pandas.DataFrame or None
            The frame (also in :attr:`result`), or None if the form holds bad
            input or the query failed; :attr:`message` then says why.
        """
        try:
            query = self._collect()
            self._set_query_quietly(query)  # validates it (compiling a 100,000-value list once per click)
        except (InputError, QueryError) as exc:
            self._say(str(exc))
            return None
        self._counter.cancel()
        if self._result is not None and self._table.columns:
            self._shown_columns = self._table.columns  # keep the user's column choice
        try:
            frame, self._has_next = _paging.read_page(self.dao, self.ent_type, query, self._indexed)
        except (QueryError, sqlite3.Error) as exc:
            self._say(f"the query failed: {exc}")
            return None
        self._result, self._shown = frame, dict(query)
        self._count, self._count_cap = None, None
        self._say("")
        self._show_result(query)
        self._show_stale()
        # rows first, then the count (never with an order_by), on a thread for a database file
        self._counter.start(query.get("filters"), self._on_count_done)
        return frame

    def _on_count_done(self, count: int | None, cap: int | None, error: str | None) -> None:
        self._count, self._count_cap = count, cap
        if error:
            self._say(f"the count failed: {error}")
        if self._shown is not None:
            self._show_count(self._shown)

    # -- query <-> form -------------------------------------------------------------------
    @traitlets.validate("query")
    def _validate_query(self, proposal: dict[str, Any]) -> Query:
        return self._canonical(proposal["value"])

    @traitlets.observe("query")
    def _on_query_change(self, change: dict[str, Any]) -> None:
        if not self._filling:
            self._fill(change["new"])
        self._code.value = self._code_html(change["new"])
        if hasattr(self, "_stale"):
            self._show_stale()

    def _canonical(self, query: Any) -> Query:
        """The query as the form writes it; QueryError if invalid or beyond what the form shows."""
        query = self.dao.validate_query(self.ent_type, query)
        extra = [k for k in query if k not in ("filters", "order_by", "limit", "offset")]
        if extra:
            raise QueryError(f"the form cannot show {extra[0]!r} (it shows filters, order_by, limit and "
                             "offset); run such queries from code")
        out: Query = {}
        match, items = self._split_filters(query.get("filters") or [])
        if items:
            filters = [self._canonical_filter(item, f"filters[{i}]") for i, item in enumerate(items)]
            out["filters"] = [{"any": filters}] if match == "any" else filters
        order = query.get("order_by")
        if isinstance(order, (list, tuple)):
            if len(order) > 1:
                raise QueryError("the form orders by one field; run queries with several order_by "
                                 "fields from code")
            order = order[0] if order else None
        if order is not None:
            out["order_by"] = {"field": order["field"], "direction": str(order.get("direction", "ASC")).upper()}
        limit = query.get("limit")
        if limit == 0:
            raise QueryError("limit: the form needs a limit of at least 1")
        out["limit"] = self._default_limit if limit is None else limit
        if query.get("offset"):
            out["offset"] = query["offset"]
        return out

    @staticmethod
    def _split_filters(filters: list[Any]) -> tuple[str, list[Any]]:
        if len(filters) == 1 and isinstance(filters[0], Mapping) and len(filters[0]) == 1 \
                and next(iter(filters[0])) in ("any", "all"):
            match = next(iter(filters[0]))
            items = list(filters[0][match])
        else:
            match, items = "all", list(filters)
        for item in items:
            if "any" in item or "all" in item:
                raise QueryError("the form has one any/all choice for its filters; run queries with nested "
                                 "any/all groups from code")
        return match, items

    def _canonical_filter(self, item: Mapping[str, Any], where: str) -> dict[str, Any]:
        name, arg = item["field"], item.get("arg")
        op = _fields.canonical_op(item["op"])
        if op is None:
            raise QueryError(f"{where}: the form has no op {item['op']!r}")
        if arg is None and op in ("=", "!="):
            op = "IS" if op == "=" else "IS NOT"
        arity = _fields.op_arity(op)
        if arity == 0:
            if arg is not None:
                raise QueryError(f"{where}: the form shows {op!r} only with arg None")
            return {"field": name, "op": op, "arg": None}
        spec = self._fields.get(name)
        if spec is None:
            spec = FieldSpec(name, _fields.kind_of_value(arg))
            self._fields[name] = spec
            with holding(self):
                current = self._order.value
                self._order.options = [_NO_ORDER, *self._fields]
                self._order.value = current
        if op not in spec.ops:
            raise QueryError(f"{where}: the form does not offer {op!r} for {name!r} ({spec.kind}); "
                             f"it offers {', '.join(spec.ops)}")
        values = list(arg) if arity != 1 else [arg]
        misfit = _first_misfit(spec.kind, values)
        if misfit is not _ALL_FIT:
            raise QueryError(f"{where}: the form cannot show {misfit!r} as a value of the {spec.kind} "
                             f"field {name!r}")
        if arity == -1 and not values:
            raise QueryError(f"{where}: op {op!r} needs at least one value")
        return {"field": name, "op": op, "arg": list(arg) if arity != 1 else arg}

    def _fill(self, query: Query) -> None:
        with holding(self):
            match, items = self._split_filters(query.get("filters") or [])
            self._match.value = match
            close_all(self._rows)
            self._rows = []
            for item in items:
                self._new_row().fill(item)
            self._filters.children = tuple(self._rows)
            order = query.get("order_by")
            self._order.value = order["field"] if order else _NO_ORDER
            self._direction.value = order["direction"] if order else "ASC"
            self._limit.value = query["limit"]
            self._offset.value = query.get("offset", 0)
        self._say("")

    def _collect(self) -> Query:
        """The form's query dict; InputError if some input does not fit (assigning it to ``query`` validates it)."""
        query: Query = {}
        filters = [row.filter(f"filter {i + 1}") for i, row in enumerate(self._rows)]
        if filters:
            query["filters"] = [{"any": filters}] if self._match.value == "any" else filters
        if self._order.value != _NO_ORDER:
            query["order_by"] = {"field": self._order.value, "direction": self._direction.value}
        if self._limit.value < 1:
            raise InputError(f"limit must be at least 1, got {self._limit.value}")
        if self._offset.value < 0:
            raise InputError(f"offset must be 0 or more, got {self._offset.value}")
        query["limit"] = self._limit.value
        if self._offset.value:
            query["offset"] = self._offset.value
        return query

    def _set_query_quietly(self, query: Query) -> None:
        """Set :attr:`query` without filling the form again; QueryError (from its validator) if invalid."""
        with holding(self):
            self.query = query

    def _update(self) -> None:
        """Collect the form into :attr:`query`, or say what is wrong."""
        if self._filling:
            return
        try:
            self._set_query_quietly(self._collect())
        except (InputError, QueryError) as exc:
            self._say(str(exc))
            return
        self._say("")
        self._show_stale()

    # -- display --------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.set_trait("message", text)
        self._message.value = (f"<div style='color:#b00020; padding:2px 0'>&#9888; {html.escape(text)}</div>"
                               if text else "")

    def _show_result(self, query: Query) -> None:
        frame = self._result
        order = query.get("order_by")
        if frame is None or frame.empty:
            self._table.clear()
        else:
            used = [f for f in _paging.filter_fields(query.get("filters")) if f not in DEFAULT_COLUMNS]
            if order and order["field"] not in DEFAULT_COLUMNS:
                used.append(order["field"])
            wanted = list(dict.fromkeys([*DEFAULT_COLUMNS, *used]))
            if self._shown_columns is not None:
                wanted = [*self._shown_columns, *(c for c in used if c not in self._shown_columns)]
            self._table.show(frame, wanted, (order["field"], order["direction"]) if order else None)
        offset = query.get("offset", 0)
        self._prev.disabled = offset == 0
        self._next.disabled = not self._has_next
        self._show_count(query)

    def _show_count(self, query: Query) -> None:
        frame, count = self._result, self._count
        offset = query.get("offset", 0)
        noun = f"{self.ent_type}s"
        if count is None:
            total = "… (counting)"
        elif self._count_cap is not None and count > self._count_cap:
            total = f"more than {self._count_cap:,}"
        else:
            total = f"{count:,}"
        if frame is None or frame.empty:
            self._count_label.value = (f"no {noun} on this page (offset {offset:,}); {total} match"
                                       if offset and count != 0 else f"no matching {noun}")
        else:
            self._count_label.value = (f"<b>{offset + 1:,}–{offset + len(frame):,}</b> of <b>{total}</b> "
                                       f"matching {noun}")

    def _show_stale(self) -> None:
        self._stale.value = ("<span style='color:#b26a00' title='the form changed since these rows were read'>"
                             "&#9888; the rows below are for the previous form: press Run</span>"
                             if self.stale else "")

    @staticmethod
    def _code_html(query: Query) -> str:
        cuts: list[_Elided] = []
        code = "query = " + pprint.pformat(_shortened(query, cuts), sort_dicts=False, width=100)
        long = len(code) > PREVIEW_CHARS
        if long:
            code = code[:PREVIEW_CHARS] + f"\n…(cut at {PREVIEW_CHARS:,} characters)"
        how = ("shortened: <code>builder.query</code> holds all of it" if cuts or long
               else "copy into code, or use <code>builder.query</code>")
        return (f"<details open><summary style='color:#555'>query dict ({how})</summary>"
                f"<pre class='jobman-qb-code-text' style='{_CODE_STYLE}'>{html.escape(code)}</pre></details>")

    # -- handlers -------------------------------------------------------------------------
    def _reset_offset(self) -> None:
        """Filters or order changed: page one again (the old offset means nothing for the new rows)."""
        if self._offset.value:
            with holding(self):
                self._offset.value = 0

    def _on_filters_change(self) -> None:
        self._reset_offset()
        self._update()

    def _on_remove_row(self, row: _FilterRow) -> None:
        self._rows.remove(row)
        self._filters.children = tuple(self._rows)
        close_all([row])
        self._reset_offset()
        self._update()

    def _on_match_change(self, change: dict[str, Any]) -> None:
        self._reset_offset()
        self._update()

    def _on_order_change(self, change: dict[str, Any]) -> None:
        self._reset_offset()
        self._update()

    def _on_page_change(self, change: dict[str, Any]) -> None:
        self._update()

    def _on_add_click(self, button: widgets.Button) -> None:
        self._new_row()
        self._reset_offset()
        self._update()

    def _on_header_sort(self, field: str) -> None:
        """A header click: order by that column (again: the other direction), from the first page, and run."""
        with holding(self):
            if self._order.value == field:
                self._direction.value = "DESC" if self._direction.value == "ASC" else "ASC"
            else:
                if field not in self._order.options:
                    self._fields.setdefault(field, FieldSpec(field, _fields.ANY))
                    self._order.options = [_NO_ORDER, *self._fields]
                self._order.value = field
                self._direction.value = "ASC"
            self._offset.value = 0
        self.run()

    def _on_rows_select(self, positions: list[int], clicked: int | None) -> None:
        if self._result is None:
            return
        pick = clicked if clicked is not None else (positions[-1] if len(positions) == 1 else None)
        if pick is not None:
            key_col = self.dao.orms[self.ent_type].primary_key or "key"
            self._inspector.show(self._result.iloc[pick][key_col])

    def _on_run_click(self, button: widgets.Button) -> None:
        self.run()

    def _on_prev_click(self, button: widgets.Button) -> None:
        self._offset.value = max(0, self._offset.value - max(self._limit.value, 1))
        self.run()

    def _on_next_click(self, button: widgets.Button) -> None:
        self._offset.value = self._offset.value + max(self._limit.value, 1)
        self.run()


class _Elided:
    """Stands in the preview for what was left out; its repr says how much (and is not valid Python)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shortened(value: Any, cuts: list[_Elided]) -> Any:
    """*value* with long lists, dicts and strings cut for the preview (each cut appended to *cuts*).

    Its cost grows with what is shown, not with the size of *value*.
    """
    if isinstance(value, str) and len(value) > PREVIEW_STRING:
        cuts.append(_Elided(f"{value[:PREVIEW_STRING]!r}…({len(value):,} characters)"))
        return cuts[-1]
    if isinstance(value, Mapping):
        short: Any = {k: _shortened(v, cuts) for k, v in itertools.islice(value.items(), PREVIEW_ITEMS)}
        if len(value) > PREVIEW_ITEMS:
            cuts.append(_Elided(f"…({len(value) - PREVIEW_ITEMS:,} more keys)"))
            short["…"] = cuts[-1]
        return short
    if isinstance(value, (list, tuple)):
        short = [_shortened(v, cuts) for v in value[:PREVIEW_ITEMS]]
        if len(value) > PREVIEW_ITEMS:
            cuts.append(_Elided(f"…({len(value) - PREVIEW_ITEMS:,} more, {len(value):,} in all)"))
            short.append(cuts[-1])
        return short
    return value


_ALL_FIT = object()


def _first_misfit(kind: str, values: list[Any]) -> Any:
    """The first of *values* the form cannot show in a value input of *kind*, or ``_ALL_FIT``.

    One generator per kind rather than a call per value: an IN list may hold 100,000.
    """
    if kind in (_fields.NUMBER, _fields.TIME):
        bad = (v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)))
    elif kind in (_fields.TEXT, _fields.STATUS):
        bad = (v for v in values if not isinstance(v, str))
    elif kind == _fields.BOOL:
        bad = (v for v in values if not isinstance(v, bool))
    else:
        bad = (v for v in values if not isinstance(v, (str, int, float)))
    return next(bad, _ALL_FIT)
