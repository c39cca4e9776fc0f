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
from typing import TYPE_CHECKING, Any

from .. import vocabulary
from ..errors import JobmanError
from ..vocabulary import ValueKind, json_value_kind, offered_ops, op_spelling, status_order, value_kind

if TYPE_CHECKING:
    from ..dao.sqlite_dao import SqliteDAO

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


class InputError(JobmanError, ValueError):
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


def sample_json_paths(dao: SqliteDAO, ent_type: str, column: str,
                      sample: int = SAMPLE_ROWS, max_paths: int = MAX_PATHS) -> list[FieldSpec]:
    """Leaf JSON paths in the first and last *sample* rows of *column*, with their kinds.

    Bounded whatever the table's size (see :meth:`SqliteDAO.sample_json_paths`).
    """
    paths = dao.sample_json_paths(ent_type, column, sample=sample, max_paths=max_paths)
    return [FieldSpec(name, json_value_kind(types)) for name, types in paths.items()]


def distinct_statuses(dao: SqliteDAO, ent_type: str, limit: int = MAX_STATUSES) -> list[str]:
    """The job statuses plus any other status found in *ent_type*'s table (one indexed DISTINCT, LIMITed)."""
    try:
        found = dao.distinct_values(ent_type, "status", limit=limit)
    except (sqlite3.Error, JobmanError):
        found = []
    return status_order(v for v in found if isinstance(v, str))


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


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def join_list(items: list[str]) -> str:
    """The inverse of :func:`split_list`: items joined by ", ", CSV-quoted where they hold a comma, quote or newline.

    One pass and one join, linear in the total length (a form may hold 100,000 values).
    """
    return ", ".join(f'"{item.replace(chr(34), chr(34) * 2)}"' if _NEEDS_QUOTES.search(item) else item
                     for item in items)
