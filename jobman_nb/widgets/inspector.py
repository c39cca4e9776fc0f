"""``JobInspector``: one job in full — its record, lineage, history events and job directory.

The QueryBuilder opens the job of a clicked row here. On a writable DAO the
inspector also acts on the builder's selection: requeue it (through
:func:`jobman_nb.requeue`'s compare-and-set, after a confirmation that says how
many), or first edit a spec field (``job_spec.resources.mem_gb`` doubled for the
jobs killed for memory) and requeue, then shows what was requeued and what was
skipped and why.
"""

from __future__ import annotations

import datetime
import html
import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from ..errors import ArgumentError, JobmanError
from ..explore import path_map_of
from ..pathmap import PathMap, PathMapLike, as_path_map
from ..vocabulary import TIME_FIELDS
from ._results import close_all, format_cell

if TYPE_CHECKING:
    import pandas as pd

    from ..dao.sqlite_dao import SqliteDAO

__all__ = ["JobInspector"]

#: Lines of a checkpoint or log shown from its end.
TAIL_LINES = 40
_PRE = ("margin: 2px 0; padding: 6px 8px; background: #f7f7f7; font: 12px/1.4 monospace; white-space: pre-wrap; "
        "word-break: break-all; max-height: 24em; overflow: auto")
#: Statuses a requeue takes jobs from (everything but the target itself).
REQUEUE_FROM = ("FAILED", "CLAIMED", "RUNNING", "EXECUTED", "UNKNOWN", "COMPLETED")


def _section(title: str, body: str, *, open_: bool = True) -> str:
    return (f"<details{' open' * open_}><summary><b>{html.escape(title)}</b></summary>{body}</details>")


def _pre(text: str, css: str = "") -> str:
    return f"<pre class='{css}' style='{_PRE}'>{html.escape(text)}</pre>"


def _table(rows: list[Mapping[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th style='text-align:left; padding:1px 8px'>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:1px 8px'>{html.escape(format_cell(r.get(c)))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f"<table style='font: 12px monospace; border-collapse: collapse'><tr>{head}</tr>{body}</table>"


class JobInspector(widgets.VBox):
    """One job in full: record (pretty JSON), lineage, history events, job directory tails.

    Parameters
    ----------
    dao : SqliteDAO
        The DAO the job is read from (read-only is fine).
    ent_type : str
        The entity type of the records inspected.
    selection : callable, optional
        Returns the jobs an action applies to (a frame with ``key``, ``status``
        and ``modified``, as the user saw them); the QueryBuilder passes its
        selected rows. Actions are offered only on a writable DAO.
    matching : callable, optional
        Returns the query dict whose matches "requeue all matching" takes (its filters).
    on_change : callable, optional
        Called after an action wrote to the database (the builder runs again).
    path_map : dict or PathMap, optional
        Where recorded job directories live locally (see :func:`jobman_nb.read_job_dirs`);
        by default the ``path_map`` given to :func:`~jobman_nb.open_db` for the
        database *dao* came from (paths as recorded for a DAO made directly).

    Raises
    ------
    PathMapError
        If *path_map* is malformed.
    """

    def __init__(self, dao: SqliteDAO, ent_type: str = "job", *,
                 selection: Callable[[], pd.DataFrame | None] | None = None,
                 matching: Callable[[], Mapping[str, Any]] | None = None,
                 on_change: Callable[[], None] | None = None, path_map: PathMapLike = None) -> None:
        super().__init__()
        self.add_class("jobman-inspector")
        self.dao = dao
        self.ent_type = ent_type
        #: Where recorded job directories live locally (a :class:`~jobman_nb.pathmap.PathMap`).
        self.path_map: PathMap = path_map_of(dao) if path_map is None else as_path_map(path_map)
        self._selection = selection
        self._matching = matching
        self._on_change = on_change
        self._key: Any = None
        self._record: dict[str, Any] | None = None
        self._view = widgets.HTML()
        self._view.add_class("jobman-inspector-view")
        self._pending: tuple[str, dict[str, Any] | None, int] | None = None
        self._pending_edit: tuple[str, str, Any] | None = None
        self._report: pd.DataFrame | None = None
        children: list[widgets.Widget] = [self._view]
        if not dao.read_only and ent_type == "job":
            children.append(self._build_actions())
        self.children = tuple(children)

    # -- public ---------------------------------------------------------------------------
    @property
    def key(self) -> Any:
        """The key of the job shown (None before the first)."""
        return self._key

    @property
    def record(self) -> dict[str, Any] | None:
        """The record shown, as the DAO returns it."""
        return self._record

    @property
    def report(self) -> pd.DataFrame | None:
        """What the last action did: :func:`jobman_nb.requeue`'s frame (one row per job, action and reason)."""
        return self._report

    def close(self) -> None:
        """Close the inspector and every widget it made."""
        close_all([*self.children, self.layout])
        super().close()

    def show(self, key: Any) -> dict[str, Any] | None:
        """Read the job with *key* and show it; return its record (None if there is no such job)."""
        self._key = key
        try:
            record = self.dao.get_ent(self.ent_type, key)
        except JobmanError as exc:
            self._view.value = f"<span style='color:#b00020'>cannot read {html.escape(str(key))}: " \
                               f"{html.escape(str(exc))}</span>"
            return None
        self._record = record
        if record is None:
            self._view.value = f"<i>no {html.escape(self.ent_type)} {html.escape(str(key))} (deleted?)</i>"
            return None
        parts = [f"<div class='jobman-inspector-title'><b>{html.escape(self.ent_type)} "
                 f"{html.escape(str(key))}</b> — {html.escape(str(record.get('status')))}</div>",
                 _section("record", _pre(json.dumps(_readable_times(record), indent=2, default=str,
                                                    ensure_ascii=False), "jobman-inspector-record"))]
        if self.ent_type == "job":
            parts += [self._lineage_html(key), self._events_html(key), self._dirs_html(record)]
        self._view.value = "".join(p for p in parts if p)
        return record

    # -- sections -------------------------------------------------------------------------
    def _lineage_html(self, key: Any) -> str:
        path = getattr(self.dao, "path", None)
        if path is None:
            return ""
        from ..explore import open_db

        try:
            with open_db(path, read_only=True) as db:
                frame = db.lineage({"filters": [{"field": "key", "op": "=", "arg": key}]})
        except (JobmanError, LookupError, OSError) as exc:
            return _section("lineage", f"<i>not available: {html.escape(str(exc))}</i>", open_=False)
        if frame.empty:
            return ""
        row = frame.iloc[0].to_dict()
        rows = [{"": "worker job", "key": row.get("worker.key"), "status": row.get("worker.status"),
                 "link": row.get("worker.link"), "modified": row.get("worker.modified")},
                {"": "engine job", "key": row.get("engine.key"), "status": row.get("engine.status"),
                 "link": row.get("engine.link"), "modified": row.get("engine.modified")}]
        extra = {k: v for k, v in row.items() if k.startswith("engine.") and k not in
                 ("engine.key", "engine.status", "engine.link", "engine.created", "engine.modified")}
        body = _table(rows, ["", "key", "status", "link", "modified"])
        if extra:
            body += _pre(json.dumps({k: format_cell(v) for k, v in extra.items()}, indent=1))
        return _section("lineage", body)

    def _events_html(self, key: Any) -> str:
        try:
            events = self.dao.query_events({"filters": [{"field": "job_key", "op": "=", "arg": key}],
                                            "order_by": {"field": "time"}})
        except JobmanError:
            return ""  # no history recorded in this file
        if not events:
            return _section("history", "<i>no events recorded for this job</i>", open_=False)
        import pandas as pd

        from ..frames import epoch_to_utc

        times = epoch_to_utc(pd.Series([e["time"] for e in events], dtype="float64"))
        rows = [{**e, "time": t} for e, t in zip(events, times, strict=True)]
        return _section(f"history ({len(events)} events)", _table(rows, ["time", "old_status", "new_status"]))

    def _dirs_html(self, record: Mapping[str, Any]) -> str:
        errors = record.get("errors")
        parts = [_section("errors", _pre(_tail(errors if isinstance(errors, str) else
                                               json.dumps(errors, indent=2, default=str))))] if errors else []
        spec = record.get("job_spec")
        if not isinstance(spec, Mapping) or not spec.get("dir"):
            return "".join(parts)
        from ..jobdirs import read_job_dirs

        try:
            found = read_job_dirs([dict(record)], path_map=self.path_map, max_workers=1)
        except (JobmanError, OSError) as exc:
            return "".join([*parts, _section("job directory", f"<i>not readable: {html.escape(str(exc))}</i>",
                                             open_=False)])
        if found.empty:
            return "".join(parts)
        info = found.iloc[0].to_dict()
        # titled with the path the record holds; where it was looked for here (after the path map) below it
        title, local = f"job directory {spec['dir']}", format_cell(info.get("dir"))
        where = (f"<div style='color:#777; font-size:11px'>{'read from' if info.get('exists') else 'looked in'} "
                 f"{html.escape(local)}</div>" if local and local != spec["dir"] else "")
        if not info.get("exists"):
            note = format_cell(info.get("note")) or "not found here (a path_map may say where it lives)"
            return "".join([*parts, _section(title, f"{where}<i>{html.escape(note)}</i>", open_=False)])
        body = [where, f"<div>checkpoint: <b>{html.escape(format_cell(info.get('checkpoint')) or '—')}</b>; "
                f"cause: <b>{html.escape(format_cell(info.get('cause')) or '—')}</b></div>"]
        for name in ("stdout_tail", "stderr_tail"):
            text = info.get(name)
            if isinstance(text, str) and text:
                body.append(f"<div><i>{name.replace('_', ' ')}</i></div>" + _pre(_tail(text)))
        return "".join([*parts, _section(title, "".join(body))])

    # -- actions (writable DAOs) ----------------------------------------------------------
    def _build_actions(self) -> widgets.VBox:
        layout = widgets.Layout
        self._requeue = widgets.Button(description="requeue selected", icon="redo", layout=layout(width="13em"))
        self._requeue_all = widgets.Button(description="requeue all matching", icon="redo",
                                           layout=layout(width="15em"))
        self._path = widgets.Text(value="job_spec.resources.mem_gb", layout=layout(width="18em"))
        self._how = widgets.Dropdown(options=[("multiply by", "multiply"), ("set to", "set")], value="multiply",
                                     layout=layout(width="9em"))
        self._value = widgets.Text(value="2", layout=layout(width="7em"))
        self._edit = widgets.Button(description="edit and requeue selected", icon="edit",
                                    layout=layout(width="17em"))
        self._confirm_text = widgets.HTML()
        self._confirm = widgets.Button(description="confirm", button_style="danger", layout=layout(width="8em"))
        self._cancel = widgets.Button(description="cancel", layout=layout(width="7em"))
        self._confirm_box = widgets.HBox([self._confirm_text, self._confirm, self._cancel],
                                         layout=layout(align_items="center", display="none"))
        self._act_message = widgets.HTML()
        for w, css in [(self._requeue, "requeue"), (self._requeue_all, "requeue-all"), (self._path, "edit-path"),
                       (self._how, "edit-how"), (self._value, "edit-value"), (self._edit, "edit"),
                       (self._confirm, "confirm"), (self._cancel, "cancel"), (self._act_message, "act-message")]:
            w.add_class(f"jobman-inspector-{css}")
        self._requeue.on_click(self._on_requeue_click)
        self._requeue_all.on_click(self._on_requeue_all_click)
        self._edit.on_click(self._on_edit_click)
        self._confirm.on_click(self._on_confirm_click)
        self._cancel.on_click(self._on_cancel_click)
        row = widgets.HBox
        return widgets.VBox([
            widgets.HTML("<b>act</b> <span style='color:#777'>(writable database)</span>"),
            row([self._requeue, self._requeue_all], layout=layout(align_items="center")),
            row([widgets.HTML("edit&nbsp;"), self._path, self._how, self._value, self._edit],
                layout=layout(align_items="center")),
            self._confirm_box, self._act_message])

    def ask_requeue(self, *, every_match: Mapping[str, Any] | None = None,
                    edit: tuple[str, str, Any] | None = None) -> int:
        """Ask to requeue the selection (or every job matching the query *every_match*); return how many.

        *edit* is ``(path, 'set' | 'multiply', value)``: a field to change in the
        same compare-and-set. Nothing is written until :meth:`confirm`.
        """
        if every_match is not None:
            n = self.dao.count_ents("job", {"filters": every_match.get("filters") or []})
            self._pending = ("query", dict(every_match), n)
        else:
            frame = self._selection() if self._selection else None
            n = 0 if frame is None else len(frame)
            self._pending = ("selection", None, n)
        self._pending_edit = edit
        what = "" if edit is None else (f", with {html.escape(edit[0])} "
                                        f"{'×' if edit[1] == 'multiply' else '='} {html.escape(str(edit[2]))}")
        if n == 0:
            self._say("nothing to requeue: select rows first")
            self._pending = None
            return 0
        self._confirm_text.value = f"Requeue <b>{n:,}</b> job{'s' * (n != 1)} (set PENDING){what}?&nbsp;"
        self._confirm_box.layout.display = "flex"
        self._say("")
        return n

    def confirm(self) -> pd.DataFrame | None:
        """Do the requeue asked for; show and return its report (see :attr:`report`)."""
        from ..stale import requeue

        pending, self._pending = self._pending, None
        self._confirm_box.layout.display = "none"
        if pending is None:
            return None
        kind, query, _ = pending
        edit = self._pending_edit
        try:
            if kind == "query":
                report = requeue(self.dao, {"filters": query.get("filters") or []}, from_statuses=REQUEUE_FROM,
                                 updates=_set_updates(edit))
            else:
                report = self._requeue_selection(edit)
        except (JobmanError, ValueError, TypeError) as exc:
            self._say(f"nothing was requeued: {exc}")
            return None
        self._report = report
        done = report[report["action"] == "requeued"]
        skipped = report[report["action"] != "requeued"]
        rows = skipped.to_dict("records")[:50]
        self._act_message.value = (
            f"<div><b>{len(done):,}</b> requeued, <b>{len(skipped):,}</b> skipped</div>"
            + (_table(rows, ["key", "seen_status", "current_status", "reason"]) if rows else "")
            + ("<div style='color:#777; font-size:11px'>skipped: <i>changed</i> — its status or modified "
               "changed since it was shown; <i>status</i> — not in a status that is requeued; <i>missing</i> — "
               "deleted</div>" if rows else ""))
        if self._on_change is not None:
            self._on_change()
        if self._key is not None:
            self.show(self._key)
        return report

    def _requeue_selection(self, edit: tuple[str, str, Any] | None) -> pd.DataFrame:
        import pandas as pd

        from ..stale import requeue

        frame = self._selection() if self._selection else None
        if frame is None or frame.empty:
            raise ArgumentError("no rows selected")
        seen = frame[["key", "status", "modified"]]
        if edit is None or edit[1] == "set":
            return requeue(self.dao, seen, from_statuses=REQUEUE_FROM, updates=_set_updates(edit))
        # multiply: each job gets its own value; one transaction around the groups of equal values
        path, _, factor = edit
        current = {r["key"]: r for r in self.dao.query_jobs(
            {"filters": [{"field": "key", "op": "IN", "arg": list(seen["key"])}], "fields": ["key", path]})}
        groups: dict[Any, list[int]] = {}
        for i, key in enumerate(seen["key"]):
            value = current.get(key, {}).get(path)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ArgumentError(f"{path} of job {key} is {value!r}, not a number to multiply")
            groups.setdefault(value * factor, []).append(i)
        with self.dao.transaction():
            parts = [requeue(self.dao, seen.iloc[rows], from_statuses=REQUEUE_FROM, updates={path: new})
                     for new, rows in groups.items()]
        return pd.concat(parts, ignore_index=True)

    def _edit_args(self) -> tuple[str, str, Any]:
        text = self._value.value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        if self._how.value == "multiply" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise ArgumentError(f"multiply by a number, not {text!r}")
        return self._path.value.strip(), self._how.value, value

    def _say(self, text: str) -> None:
        self._act_message.value = (f"<div style='color:#b00020'>&#9888; {html.escape(text)}</div>" if text else "")

    def _on_requeue_click(self, button: widgets.Button) -> None:
        self.ask_requeue()

    def _on_requeue_all_click(self, button: widgets.Button) -> None:
        self.ask_requeue(every_match=self._matching() if self._matching else {})

    def _on_edit_click(self, button: widgets.Button) -> None:
        try:
            edit = self._edit_args()
        except ValueError as exc:
            self._say(str(exc))
            return
        self.ask_requeue(edit=edit)

    def _on_confirm_click(self, button: widgets.Button) -> None:
        self.confirm()

    def _on_cancel_click(self, button: widgets.Button) -> None:
        self._pending = None
        self._confirm_box.layout.display = "none"
        self._say("cancelled: nothing was requeued")


def _set_updates(edit: tuple[str, str, Any] | None) -> dict[str, Any] | None:
    if edit is None:
        return None
    if edit[1] != "set":
        raise ArgumentError("multiply applies to selected rows; select them, or use 'set to'")
    return {edit[0]: edit[2]}


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    parts = str(text).splitlines()
    return "\n".join(parts[-lines:]) if len(parts) > lines else str(text)


def _readable_times(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with its epoch-second time fields shown as UTC to the second, the stored number beside it."""
    shown = dict(record)
    for name in TIME_FIELDS:
        value = shown.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            try:
                when = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
            except (OverflowError, OSError, ValueError):  # far outside what a clock stamps: leave the number
                continue
            shown[name] = f"{format_cell(when)} UTC ({value!r})"  # the result table's time format
    return shown
