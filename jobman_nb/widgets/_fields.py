"""What the query form offers for each field: kinds, ops, and parsing typed values.

Pure helpers plus the two bounded look-ups the form needs from a database
(sampled JSON paths, distinct statuses). Nothing here touches ipywidgets.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import vocabulary
from ..dao.query import quote_identifier
from ..vocabulary import ValueKind, json_value_kind, offered_ops, op_spelling, status_order, value_kind

#: Rows sampled from each end of a table to find JSON paths.
SAMPLE_ROWS = 500
#: At most this many JSON paths are offered per JSON column.
MAX_PATHS = 300
#: At most this many distinct statuses are read.
MAX_STATUSES = 50

NUMBER, TIME, TEXT, STATUS, BOOL, ANY, JSON = (ValueKind.NUMBER, ValueKind.TIME, ValueKind.TEXT, ValueKind.STATUS,
                                             ValueKind.BOOL, ValueKind.ANY, ValueKind.JSON)
#: The op spellings the form offers for each kind of field (from the vocabulary's op table).
OPS_BY_KIND: dict[str, list[str]] = {kind: offered_ops(kind) for kind in (NUMBER, TIME, TEXT, STATUS, BOOL, ANY, JSON)}
_PLACEHOLDERS = {NUMBER: "a number", TIME: "epoch seconds or 2024-05-01T12:00", TEXT: "text",
                 ANY: 'a number, true/false, or text ("quote" text that looks like a number)'}


op_label = vocabulary.op_label
op_arity = vocabulary.op_arity


class InputError(ValueError):
    """A value typed into the form cannot be used; the message says why."""


def canonical_op(op: Any) -> str | None:
    """The form's spelling of *op* (``'!IN'`` for ``'not in'``), or None if the form has no such op."""
    return op_spelling(op)


def placeholder(kind: str) -> str:
    """Placeholder text for a value box of *kind*."""
    return _PLACEHOLDERS.get(kind, "")


@dataclass(frozen=True)
class FieldSpec:
    """A field the form offers: its name (column or dotted JSON path) and value kind."""

    name: str
    kind: str

    @property
    def ops(self) -> list[str]:
        """The ops that make sense for this field."""
        return OPS_BY_KIND[self.kind]


def column_kind(name: str, sql_type: str) -> str:
    """The value kind of a schema column."""
    return value_kind(vocabulary.column_kind(name, sql_type))


def sample_json_paths(connection: sqlite3.Connection, table: str, column: str,
                      sample: int = SAMPLE_ROWS, max_paths: int = MAX_PATHS) -> list[FieldSpec]:
    """Leaf JSON paths in the first and last *sample* rows of *column*, with their kinds.

    Bounded whatever the table's size: two LIMITed reads by rowid, then
    ``json_tree`` over at most ``2 * sample`` values. Paths through arrays, and
    keys the query language cannot spell, are left out.
    """
    t, c = quote_identifier(table), quote_identifier(column)
    sql = f"""
        SELECT j.fullkey, group_concat(DISTINCT j.type)
        FROM (SELECT * FROM (SELECT {c} AS v FROM {t} WHERE {c} IS NOT NULL ORDER BY rowid LIMIT ?)
              UNION ALL
              SELECT * FROM (SELECT {c} AS v FROM {t} WHERE {c} IS NOT NULL ORDER BY rowid DESC LIMIT ?)) AS s,
             json_tree(CASE WHEN json_valid(s.v) THEN s.v ELSE '{{}}' END) AS j
        WHERE j.type NOT IN ('object', 'array')
        GROUP BY j.fullkey ORDER BY j.fullkey LIMIT ?"""
    try:
        rows = connection.execute(sql, (sample, sample, max_paths)).fetchall()
    except sqlite3.Error:  # a missing table or column, an old SQLite: offer no paths
        return []
    specs = []
    for fullkey, types in rows:
        keys = path_keys(fullkey)
        if keys:
            specs.append(FieldSpec(".".join([column, *keys]), json_value_kind(types.split(","))))
    return sorted(specs, key=lambda s: s.name)


# SQLite writes a key in a fullkey bare, or "quoted" when it is not a plain identifier.
_FULLKEY_SEGMENT = re.compile(r'\.(?:"((?:[^"\\]|\\.)*)"|([^."\[\]]+))')
_BAD_KEY = re.compile(r'[."\x00-\x1f]')


def path_keys(fullkey: str) -> list[str] | None:
    """The keys of a ``json_tree`` fullkey such as ``$.resources."mem_gb"``.

    None if the path goes through an array or has a key that a dotted field
    name cannot spell.
    """
    if not fullkey.startswith("$"):
        return None
    keys, pos = [], 1
    while pos < len(fullkey):
        m = _FULLKEY_SEGMENT.match(fullkey, pos)
        if m is None:
            return None
        key = m.group(2) if m.group(2) is not None else re.sub(r"\\(.)", r"\1", m.group(1))
        if not key or _BAD_KEY.search(key):
            return None
        keys.append(key)
        pos = m.end()
    return keys or None


def distinct_statuses(connection: sqlite3.Connection, table: str, limit: int = MAX_STATUSES) -> list[str]:
    """The job statuses plus any other status found in *table* (one indexed DISTINCT, LIMITed)."""
    try:
        rows = connection.execute(f"SELECT DISTINCT status FROM {quote_identifier(table)} "
                                  "WHERE status IS NOT NULL LIMIT ?", (limit,)).fetchall()
    except sqlite3.Error:
        rows = []
    return status_order(r[0] for r in rows if isinstance(r[0], str))


def kind_of_value(value: Any) -> str:
    """The kind of a field known only from a value in a query dict."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, (list, tuple)) and value:
        kinds = {kind_of_value(v) for v in value if v is not None}
        return kinds.pop() if len(kinds) == 1 else ANY
    return TEXT if isinstance(value, str) else ANY


# -- text in the form <-> values in the query ------------------------------------------
_INT = re.compile(r"[+-]?\d+\Z")


def parse_number(text: str, what: str = "value") -> int | float:
    """Parse an int (digits only) or a finite float.

    Raises
    ------
    InputError
        If *text* is not a number.
    """
    s = text.strip()
    if not s:
        raise InputError(f"{what} is empty: type a number")
    if _INT.match(s):
        return int(s)
    try:
        value = float(s)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{what} {text!r} is not a finite number")
    return value


def parse_time(text: str, what: str = "value") -> int | float:
    """Parse epoch seconds, or an ISO date/time (UTC unless it says otherwise) into epoch seconds."""
    try:
        return parse_number(text, what)
    except InputError:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InputError(f"{what} {text!r} is neither epoch seconds nor a date such as "
                             "2024-05-01 or 2024-05-01T12:00") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()


def parse_any(text: str) -> Any:
    """Parse a value of unknown type: JSON numbers, true/false and "quoted" text; else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return text


def format_any(value: Any) -> str:
    """The inverse of :func:`parse_any`."""
    if isinstance(value, str) and parse_any(value) == value and not isinstance(parse_any(value), bool):
        return value
    return json.dumps(value)


def parse_scalar(kind: str, text: str, what: str = "value") -> Any:
    """Parse the text of a one-value box for a field of *kind*."""
    if kind == NUMBER:
        return parse_number(text, what)
    if kind == TIME:
        return parse_time(text, what)
    if kind == ANY:
        return parse_any(text)
    return text


def format_scalar(kind: str, value: Any) -> str:
    """The text a one-value box shows for *value* (round-trips through :func:`parse_scalar`)."""
    if kind == ANY:
        return format_any(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def split_list(text: str) -> list[str]:
    """Split comma-separated text; "double quotes" keep commas inside a value."""
    rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    items = [item.strip() for row in rows for item in row]
    return [i for i in items if i]


def join_list(items: list[str]) -> str:
    """The inverse of :func:`split_list`."""
    out = []
    for item in items:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow([item])
        out.append(buf.getvalue())
    return ", ".join(out)
