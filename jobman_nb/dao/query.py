"""The query-dict language: validation and compilation to SQL.

Pure functions, no I/O. A *query dict* is::

    {'filters': [...], 'order_by': {...} | [{...}, ...],
     'limit': n, 'offset': n, 'fields': [...]}

Every identifier is checked against the schema (a mapping of column name to
declared type, ``'JSON'`` marking JSON columns) and quoted; every value is a
bound parameter. Anything else raises :class:`~jobman_nb.errors.QueryError`
before SQL is built. The grammar is documented in ``docs/query-language.md``.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import math
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import vocabulary
from ..errors import ArgumentError, QueryError

__all__ = [
    "Query",
    "OPS",
    "QUERY_KEYS",
    "quote_identifier",
    "json_path",
    "field_sql",
    "compile_where",
    "compile_select",
    "compile_updates",
    "check_json_depth",
    "dumps",
    "TIME_FIELDS",
    "epoch_seconds",
    "MAX_NESTING",
    "MAX_FILTERS",
    "MAX_TERMS",
    "MAX_VARIABLES",
    "check_variables",
]

Query = dict[str, Any]
Columns = Mapping[str, str]

#: Top-level keys a query dict may hold.
QUERY_KEYS = ("filters", "order_by", "limit", "offset", "fields")
#: The base operators (before negation with a leading ``!``); see :mod:`jobman_nb.vocabulary`.
OPS = vocabulary.OP_NAMES
_GROUP_KEYS = ("any", "all")
_FILTER_KEYS = ("field", "op", "arg")
_INT64 = (-(2**63), 2**63 - 1)

# -- limits, chosen inside SQLite's own (defaults of the SQLite >= 3.38 this package needs) --
#: Deepest nesting of ``any``/``all`` groups. SQLite's parser stack (YYSTACKDEPTH 100 before
#: 3.46) overflows near 94 nested parentheses; each level costs at most two here, a filter ~8.
MAX_NESTING = 16
#: Most filters and groups in one query. A filter binds at most 5 values (a long ``IN`` list
#: binds as one), so 2,000 stay far inside SQLITE_MAX_VARIABLE_NUMBER (32,766), and SQLite
#: still prepares the largest such statement in about a second.
MAX_FILTERS = 2_000
#: Most entries of ``fields`` and of ``order_by`` (SQLITE_MAX_COLUMN is 2,000).
MAX_TERMS = 1_000
#: Most values one statement binds (SQLITE_MAX_VARIABLE_NUMBER, 32,766 since SQLite 3.32).
MAX_VARIABLES = 32_000
#: ``IN`` lists longer than this bind as one JSON array read by ``json_each``, so any length works.
IN_LIST_BIND_MAX = 250
# Items of one group are joined in chains of at most this many, chains nested as a tree:
# SQLite's expression depth (SQLITE_MAX_EXPR_DEPTH 1000) then grows with the log of the count.
_CHAIN = 16
#: Fields holding epoch seconds (float) that also take dates in filters: ISO-8601 text,
#: ``datetime``/``date`` and ``pd.Timestamp`` (naive means UTC), see :func:`epoch_seconds`.
TIME_FIELDS = vocabulary.TIME_FIELDS
_NUMERIC_TYPES = ("FLOAT", "REAL", "INTEGER", "NUMERIC")
# ISO-8601 calendar dates, with an optional time ('T' or a space), fraction and zone;
# parsed here rather than by datetime.fromisoformat, whose accepted forms differ
# between Python 3.10 and 3.11+.
_ISO_DATETIME = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*\Z", re.IGNORECASE)
_DATE_FORMS = ("epoch seconds, an ISO-8601 date or time ('2026-01-10', '2026-01-10T12:30:00Z', "
               "'2026-01-10 12:30+02:00'), a datetime or a pd.Timestamp (naive means UTC)")
# JSON-path segments that may be written into SQL as a literal (so that an
# expression index on the same path can serve the query); anything else is a
# bound parameter.
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+\Z")
_PATH_SEGMENT = re.compile(r'[^".\x00-\x1f]+\Z')


#: SQLite's JSON functions refuse text nested deeper than this (JSON_MAX_DEPTH in its json.c).
#: Python 3.10 and 3.11 stop serializing near depth 1000 (RecursionError); 3.13 goes far
#: deeper, so the depth is checked on the text itself and the limit is the same everywhere.
JSON_MAX_DEPTH = 1000
#: A text nested N deep has at least 2 N brackets: shorter texts need no depth check.
JSON_DEPTH_MIN_LENGTH = 2 * JSON_MAX_DEPTH
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in the JSON *text*."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def dumps(value: Any) -> str:
    """Serialize *value* as jobman does (``json.dumps``), refusing NaN and infinities.

    Raises
    ------
    TypeError, ValueError
        If the value cannot be represented as JSON, or is nested deeper than
        ``JSON_MAX_DEPTH`` (``ArgumentError``, a ValueError).
    RecursionError
        If Python's own recursion limit stops the serialization first.
    """
    return check_json_depth(json.dumps(value, allow_nan=False))


def check_json_depth(text: str) -> str:
    """*text*, if it is nested no deeper than ``JSON_MAX_DEPTH``, which SQLite's JSON functions accept.

    Raises
    ------
    ArgumentError
        If *text* is nested deeper.
    """
    # a text nested N deep opens at least N arrays or objects: str.count (C) clears almost every
    # text before the scan, which must skip brackets inside strings
    if (len(text) > JSON_DEPTH_MIN_LENGTH and text.count("{") + text.count("[") > JSON_MAX_DEPTH
            and _json_depth(text) > JSON_MAX_DEPTH):
        raise ArgumentError(f"value is nested more than {JSON_MAX_DEPTH:,} deep, which SQLite's JSON "
                            "functions refuse")
    return text


def quote_identifier(name: str) -> str:
    """Quote an identifier for SQLite (double quotes, inner quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 120, 120, 8, 6


def _show(value: Any) -> str:
    """``repr`` for messages, shortened (a million-value list or a 5,000-deep value stays readable)."""
    return _REPR.repr(value)


def _suggest(name: Any, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {_show(close[0])}?)" if close else ""


def _fail(where: str, message: str) -> QueryError:
    return QueryError(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class FieldRef:
    """A resolved field: a column, a whole JSON column, or a path into one."""

    name: str
    column: str
    path: tuple[str, ...] = ()
    is_json: bool = False
    sql: str = ""
    params: tuple[Any, ...] = field(default=())

    @property
    def whole_json(self) -> bool:
        return self.is_json and not self.path


def json_path(segments: Sequence[str]) -> str:
    """Return the SQLite JSON path (``$."a"."b"``) for dotted-key *segments*."""
    return "$" + "".join(f'."{s}"' for s in segments)


def json_path_variants(segments: Sequence[str]) -> tuple[str, ...]:
    """The JSON paths that can name *segments* in stored text.

    ``json.dumps`` escapes non-ASCII keys (``"\\u00e7"``) and SQLite before
    3.45 matches path labels against the escaped text, so a non-ASCII key is
    looked up both as written and escaped.
    """
    plain = json_path(segments)
    if all(s.isascii() for s in segments):
        return (plain,)
    return plain, json_path([json.dumps(s)[1:-1] for s in segments])


def path_sql(column: str, segments: Sequence[str], operator: str = "json_extract") -> tuple[str, tuple[str, ...]]:
    """SQL (and parameters) reading *segments* of JSON *column* with json_extract or '->'."""
    col = quote_identifier(column)
    variants = json_path_variants(segments)
    if operator == "->":
        parts = [f"{col} -> ?" for _ in variants]
    else:
        parts = [f"json_extract({col}, ?)" for _ in variants]
    sql = parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"
    return sql, variants


def field_sql(name: Any, columns: Columns, where: str = "field") -> FieldRef:
    """Resolve a field name or dotted JSON path against *columns*.

    Parameters
    ----------
    name
        A column name, or ``'<json column>.<key>[.<key>...]'``.
    columns
        Mapping of column name to declared type; ``'JSON'`` marks JSON columns.
    where
        Where in the query the name came from, for error messages.

    Returns
    -------
    FieldRef
        The SQL expression (with its parameters) that evaluates the field.

    Raises
    ------
    QueryError
        For an unknown column, a path into a non-JSON column, or a bad path.
    """
    if not isinstance(name, str) or not name:
        raise _fail(where, f"a field must be a non-empty string, got {_show(name)}")
    json_columns = [c for c, t in columns.items() if t == "JSON"]
    if name in columns:
        return FieldRef(name, name, (), columns[name] == "JSON", quote_identifier(name))
    head, _, rest = name.partition(".")
    if not rest:
        raise _fail(
            where,
            f"unknown field {_show(name)}{_suggest(name, list(columns))}; expected one of "
            f"{', '.join(columns)}, or a dotted path into a JSON field "
            f"({', '.join(json_columns) or 'none in this table'})",
        )
    if head not in columns:
        raise _fail(where, f"unknown field {_show(head)} in {_show(name)}{_suggest(head, list(columns))}; "
                    f"JSON fields are: {', '.join(json_columns) or 'none'}")
    if columns[head] != "JSON":
        raise _fail(where, f"{_show(name)}: {_show(head)} is not a JSON field, so it has no keys; "
                    f"JSON fields are: {', '.join(json_columns) or 'none'}")
    segments = tuple(rest.split("."))
    for seg in segments:
        if not _PATH_SEGMENT.match(seg):
            raise _fail(where, f"{_show(name)}: bad key {_show(seg)} in JSON path (keys are non-empty and "
                        "contain no '.', '\"' or control characters)")
    if all(_LITERAL_SEGMENT.match(s) for s in segments):
        return FieldRef(name, head, segments, True, f"json_extract({quote_identifier(head)}, '{json_path(segments)}')")
    sql, params = path_sql(head, segments)
    return FieldRef(name, head, segments, True, sql, params)


def _check_scalar(value: Any, where: str, *, allow_none: bool = True) -> Any:
    if value is None:
        if allow_none:
            return None
        raise _fail(where, "None is not accepted here (use op 'IS' to match missing values)")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise _fail(where, f"integer {value} does not fit SQLite's 64-bit integers")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(where, f"{_show(value)} cannot be compared (only finite numbers)")
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _fail(where, f"string is not valid Unicode text ({exc.reason})") from None
        return value
    raise _fail(where, f"value {_show(value)} of type {type(value).__name__} is not accepted; "
                "expected a str, int, float, bool or None")


def _parse_iso(text: str) -> float | None:
    match = _ISO_DATETIME.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = _dt.timezone.utc
    if zone and zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        tz = _dt.timezone(-offset if zone[0] == "-" else offset)
    try:
        moment = _dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                              int(second or 0), tzinfo=tz)
    except ValueError:
        return None
    return moment.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def epoch_seconds(value: Any, where: str = "arg") -> Any:
    """Return a date as float seconds since the epoch, as ``created``/``modified`` store them.

    Parameters
    ----------
    value
        An ISO-8601 string (``'2026-01-10'``, ``'2026-01-10T12:30:00.5Z'``,
        ``'2026-01-10 12:30+02:00'``), a ``datetime``, ``date`` or
        ``pd.Timestamp`` (naive values are UTC), a ``numpy.datetime64``, or a
        number (returned unchanged, as are None and bools).
    where
        Where the value came from, for the error message.

    Returns
    -------
    float or the value unchanged

    Raises
    ------
    QueryError
        If *value* is a string that is not an ISO-8601 date, or a missing time (NaT).
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        seconds = _parse_iso(value)
        if seconds is None:
            raise _fail(where, f"{_show(value)} is not a date; expected {_DATE_FORMS}")
        return seconds
    if type(value).__name__ == "datetime64":  # numpy, without importing it
        if value != value:
            raise _fail(where, f"{_show(value)} is not a time (NaT); use op 'IS' with None for missing values")
        return int(value.astype("datetime64[ns]").astype("int64")) / 1e9
    if isinstance(value, _dt.datetime):
        if value != value:  # pd.NaT is a datetime that equals nothing
            raise _fail(where, f"{_show(value)} is not a time (NaT); use op 'IS' with None for missing values")
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc).timestamp()
    return value


def _is_time_field(ref: FieldRef, columns: Columns) -> bool:
    return not ref.path and ref.name in TIME_FIELDS and columns.get(ref.column) in _NUMERIC_TYPES


def _plain_values(values: list[Any], is_time: bool) -> list[Any] | None:
    """*values* if they are all of one plain type and valid (checked in bulk), else None.

    The fast path of long ``IN`` lists (a million values); None sends the
    caller to the value-by-value check, which names the first bad one.
    """
    kinds = set(map(type, values))
    if kinds == {str} and not is_time:
        try:
            "".join(values).encode("utf-8")
        except UnicodeEncodeError:
            return None
        return values
    if kinds == {int} and _INT64[0] <= min(values) and max(values) <= _INT64[1]:
        return values
    if kinds == {float} and all(map(math.isfinite, values)):
        return values
    return None


def _json_value(value: Any, where: str) -> str:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"value {_show(value)} cannot be compared with a JSON field: {exc}") from None
    except RecursionError:
        raise _fail(where, "value is nested too deeply to serialize as JSON "
                    "(SQLite's JSON functions stop at depth 1000 anyway)") from None


def _normalize_op(op: Any, where: str) -> tuple[str, bool]:
    """Return (base op, negated) for an op string such as '! IN', '!=', 'not like'."""
    accepted = (f"ops are {', '.join(OPS)}, or their aliases "
                f"{', '.join(repr(a) for a in vocabulary.OP_ALIASES)}; a leading '!' negates")
    if not isinstance(op, str):
        raise _fail(where, f"op must be a string, got {_show(op)}; {accepted}")
    parsed = vocabulary.parse_op(op)
    if parsed is None:
        text = " ".join(op.upper().split()).lstrip("! ")
        if text in OPS or vocabulary.OP_ALIASES.get(text, "").lstrip("!") in OPS:
            raise _fail(where, f"unknown op {_show(op)}: negate at most once")
        raise _fail(where, f"unknown op {_show(op)}{_suggest(text, OPS)}; {accepted}")
    return parsed


def _null_test(ref: FieldRef, negate: bool) -> str:
    # jobman writes a JSON None as the text 'null': both mean "no value".
    if ref.whole_json:
        test = f"({ref.sql} IS NULL OR {ref.sql} = 'null')"
    else:
        test = f"{ref.sql} IS NULL"
    return f"(NOT {test})" if negate else test


def _compile_filter(item: Mapping[str, Any], columns: Columns, where: str) -> tuple[str, list[Any]]:
    unknown = [k for k in item if k not in _FILTER_KEYS]
    if unknown:
        raise _fail(where, f"unknown key {_show(unknown[0])} in filter{_suggest(unknown[0], _FILTER_KEYS)}; "
                    "a filter has 'field', 'op' and 'arg' (or is a group {'any': [...]} / {'all': [...]})")
    if "field" not in item or "op" not in item:
        missing = "field" if "field" not in item else "op"
        raise _fail(where, f"filter has no {_show(missing)}; a filter is {{'field': ..., 'op': ..., 'arg': ...}}")
    ref = field_sql(item["field"], columns, f"{where}.field")
    op, negate = _normalize_op(item["op"], f"{where}.op")
    awhere = f"{where}.arg"
    if "arg" not in item and op not in ("IS", "IS NOT"):
        raise _fail(where, f"filter with op {_show(op)} has no 'arg'")
    arg = item.get("arg")
    params: list[Any] = list(ref.params)
    lhs = ref.sql

    is_time = _is_time_field(ref, columns)

    def value(v: Any, w: str = awhere, *, allow_none: bool = True) -> Any:
        if ref.whole_json:
            return _json_value(v, w)
        if is_time:
            v = epoch_seconds(v, f"{w} (time field {_show(ref.name)})")
        return _check_scalar(v, w, allow_none=allow_none)

    if op in ("IS", "IS NOT") or (op == "=" and arg is None):
        is_not = (op == "IS NOT") ^ negate
        if arg is None:
            return _null_test(ref, is_not), params
        v = value(arg)
        sql = f"{lhs} IS NOT ?" if is_not else f"{lhs} IS ?"
        return sql, [*params, v]
    if op == "IN":
        if isinstance(arg, (str, bytes)) or not isinstance(arg, (list, tuple, set, frozenset)):
            raise _fail(awhere, f"op 'IN' takes a list or tuple of values, got {type(arg).__name__} {_show(arg)}")
        values = list(arg)
        has_none = any(v is None for v in values)
        bound = None
        if not ref.whole_json:
            bound = _plain_values([v for v in values if v is not None], is_time)
        if bound is None:
            bound = [value(v, f"{awhere}[{i}]") for i, v in enumerate(values) if v is not None]
        parts = []
        if len(bound) > IN_LIST_BIND_MAX:
            parts.append(_in_json_array(ref, columns, bound, params))
        elif bound:
            parts.append(f"{lhs} IN ({', '.join('?' * len(bound))})")
            params += bound
        if has_none:
            parts.append(_null_test(ref, False))
            params += list(ref.params) if len(parts) > 1 else []
        sql = " OR ".join(parts) if parts else "0"
        sql = f"({sql})"
    elif op == "BETWEEN":
        if ref.whole_json:
            raise _fail(where, f"op 'BETWEEN' on the whole JSON field {_show(ref.name)}: use a path such as "
                        f"'{ref.name}.<key>'")
        if isinstance(arg, (str, bytes)) or not isinstance(arg, (list, tuple)) or len(arg) != 2:
            raise _fail(awhere, f"op 'BETWEEN' takes a list of two values [low, high], got {_show(arg)}")
        lo, hi = (value(v, f"{awhere}[{i}]", allow_none=False) for i, v in enumerate(arg))
        sql = f"{lhs} BETWEEN ? AND ?"
        params += [lo, hi]
    elif op in ("LIKE", "GLOB"):
        if not isinstance(arg, str):
            raise _fail(awhere, f"op {_show(op)} takes a pattern string, got {_show(arg)}")
        sql = f"{lhs} {op} ?"
        params.append(_check_scalar(arg, awhere))
    else:  # =, <, <=, >, >=
        if ref.whole_json and op != "=":
            raise _fail(where, f"op {_show(op)} on the whole JSON field {_show(ref.name)} compares JSON text; "
                        f"use a path such as '{ref.name}.<key>'")
        sql = f"{lhs} {op} ?"
        params.append(value(arg, allow_none=False))
    if negate:
        # The complement: rows where the filter is false *or unknown (NULL)*.
        sql = f"(({sql}) IS NOT 1)"
    return sql, params


def _in_json_array(ref: FieldRef, columns: Columns, bound: list[Any], params: list[Any]) -> str:
    """``lhs IN`` a long list, bound as one JSON array (appends to *params*)."""
    # json_each cuts text at a NUL character: such strings are bound one by one
    with_nul = [v for v in bound if isinstance(v, str) and "\x00" in v]
    packed = [v for v in bound if not (isinstance(v, str) and "\x00" in v)] if with_nul else bound
    # 'col IN (?, ...)' converts the values to a TEXT column's affinity, 'IN (SELECT ...)' does
    # not: cast, so both forms select the same rows
    text = not ref.path and vocabulary.declared_field_type(columns.get(ref.column)) in ("TEXT", "JSON")
    tests = [f"{ref.sql} IN (SELECT {'CAST(value AS TEXT)' if text else 'value'} FROM json_each(?))"]
    params.append(json.dumps(packed, ensure_ascii=False, allow_nan=False))
    if with_nul:
        tests.append(f"{ref.sql} IN ({', '.join('?' * len(with_nul))})")
        params += [*ref.params, *with_nul]
    return " OR ".join(tests)


class _Budget:
    """Counts the filters and groups of one query against :data:`MAX_FILTERS`."""

    def __init__(self) -> None:
        self.nodes = 0

    def take(self, where: str) -> None:
        self.nodes += 1
        if self.nodes > MAX_FILTERS:
            raise _fail(where, f"more than {MAX_FILTERS:,} filters and groups in one query (MAX_FILTERS); "
                        "use 'IN' with a list for many values of one field")


def _compile_node(item: Any, columns: Columns, where: str, depth: int, budget: _Budget) -> tuple[str, list[Any]]:
    if not isinstance(item, Mapping):
        raise _fail(where, f"a filter must be a dict, got {type(item).__name__} {_show(item)}")
    budget.take(where)
    groups = [k for k in _GROUP_KEYS if k in item]
    if groups:
        if len(item) != 1:
            raise _fail(where, f"a group has exactly one key, 'any' or 'all'; got keys {sorted(map(str, item))}")
        key = groups[0]
        if depth >= MAX_NESTING:
            raise _fail(where, f"groups are nested more than {MAX_NESTING} deep (MAX_NESTING); "
                        "SQLite cannot parse deeper conditions")
        return _compile_group(item[key], columns, f"{where}.{key}", "OR" if key == "any" else "AND",
                              depth + 1, budget)
    return _compile_filter(item, columns, where)


def _join(parts: list[str], joiner: str) -> str:
    """Join conditions in chains of at most ``_CHAIN``, nested as a tree of such chains."""
    while len(parts) > _CHAIN:
        parts = [f"({f' {joiner} '.join(parts[i:i + _CHAIN])})" for i in range(0, len(parts), _CHAIN)]
    return f" {joiner} ".join(parts)


def _compile_group(items: Any, columns: Columns, where: str, joiner: str, depth: int = 0,
                   budget: _Budget | None = None) -> tuple[str, list[Any]]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, (list, tuple)):
        raise _fail(where, f"expected a list of filters, got {type(items).__name__} {_show(items)}")
    budget = budget or _Budget()
    parts, params = [], []
    for i, item in enumerate(items):
        sql, p = _compile_node(item, columns, f"{where}[{i}]", depth, budget)
        parts.append(f"({sql})")
        params += p
    if not parts:
        return ("1" if joiner == "AND" else "0"), []
    return _join(parts, joiner), params


def compile_where(filters: Any, columns: Columns) -> tuple[str, list[Any]]:
    """Compile a ``filters`` list (ANDed) into an SQL condition and its parameters.

    Parameters
    ----------
    filters
        A list of filters ``{'field', 'op', 'arg'}`` and groups
        ``{'any': [...]}`` / ``{'all': [...]}``; None means no condition.
    columns
        Mapping of column name to declared type.

    Returns
    -------
    tuple of (str, list)
        The condition (``''`` when there is none) and its parameters.

    Raises
    ------
    QueryError
        If any part of the filters is malformed.
    """
    if filters is None:
        return "", []
    sql, params = _compile_group(filters, columns, "filters", "AND")
    return ("" if sql == "1" else sql), params


def _compile_order(order_by: Any, columns: Columns) -> tuple[str, list[Any]]:
    if order_by is None:
        return "", []
    items = [order_by] if isinstance(order_by, Mapping) else order_by
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        raise _fail("order_by", f"expected {{'field': ..., 'direction': 'ASC'|'DESC'}} or a list of them, "
                    f"got {_show(order_by)}")
    if len(items) > MAX_TERMS:
        raise _fail("order_by", f"{len(items):,} terms; at most {MAX_TERMS:,} (MAX_TERMS)")
    parts, params = [], []
    for i, item in enumerate(items):
        where = "order_by" if isinstance(order_by, Mapping) else f"order_by[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(where, f"expected {{'field': ..., 'direction': 'ASC'|'DESC'}}, got {_show(item)}")
        unknown = [k for k in item if k not in ("field", "direction")]
        if unknown:
            raise _fail(where, f"unknown key {_show(unknown[0])}; order_by items have 'field' and 'direction'")
        if "field" not in item:
            raise _fail(where, "order_by item has no 'field'")
        ref = field_sql(item["field"], columns, f"{where}.field")
        direction = item.get("direction", "ASC")
        if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
            raise _fail(f"{where}.direction", f"unknown direction {_show(direction)}; expected 'ASC' or 'DESC'")
        parts.append(f"{ref.sql} {direction.upper()}")
        params += ref.params
    return ", ".join(parts), params


def _check_count(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(key, f"expected an integer >= 0, got {_show(value)}")
    if value > _INT64[1]:
        raise _fail(key, f"{value} is too large")
    return value


@dataclass(frozen=True)
class Select:
    """A compiled SELECT: SQL, parameters, output names and which to JSON-decode."""

    sql: str
    params: list[Any]
    names: list[str]
    json_names: list[str]
    #: The select list alone, and the parameters it uses (for composing other statements).
    columns_sql: str = ""
    columns_params: list[Any] = field(default_factory=list)
    #: The table read, and its JSON columns (to name a record holding invalid JSON).
    table: str = ""
    json_columns: tuple[str, ...] = ()


def compile_select(query: Any, table: str, columns: Columns,
                   present: Sequence[str] | Callable[[], Sequence[str]] | None = None, *,
                   rowid: bool = False, walk_order: bool = False) -> Select:
    """Compile a query dict into a SELECT over *table*.

    The whole query is validated before anything else happens (before
    *present* is called), so a malformed query never reaches the database.

    Parameters
    ----------
    query
        A query dict (None for all rows).
    table
        The table name (already validated).
    columns
        Mapping of column name to declared type.
    present
        Columns the table really has (or a function returning them, called
        once the query is valid); schema columns missing from it read as NULL.
    rowid
        Select only the rowid (for UPDATE ... WHERE rowid IN (...)); 'fields'
        is validated, then ignored.
    walk_order
        Read rows in ``order_by``'s order and test the filters on each (the
        WHERE becomes one term no index can serve), instead of letting SQLite
        pick the filters' index and sort every match. For a page of a query
        whose filters match many rows, ordered by an indexed field: a status
        holding 144,000 of 1,000,000 jobs ordered by ``created`` takes ms, not
        the seconds of sorting all its rows; with few matches it is slower.

    Returns
    -------
    Select

    Raises
    ------
    QueryError
        If the query is malformed.
    """
    query = check_query(query)
    fields = query.get("fields")
    if fields is None:
        fields = list(columns)
    elif isinstance(fields, (str, bytes)) or not isinstance(fields, (list, tuple)) or not fields:
        raise _fail("fields", f"expected a non-empty list of field names, got {_show(fields)}")
    if len(fields) > MAX_TERMS:
        raise _fail("fields", f"{len(fields):,} fields; at most {MAX_TERMS:,} (MAX_TERMS)")
    refs: list[FieldRef] = []
    for i, name in enumerate(fields):
        ref = field_sql(name, columns, f"fields[{i}]")
        if any(r.name == ref.name for r in refs):
            raise _fail(f"fields[{i}]", f"{_show(ref.name)} is listed twice")
        refs.append(ref)
    where, params = compile_where(query.get("filters"), columns)
    order, order_params = _compile_order(query.get("order_by"), columns)
    limit = _check_count(query.get("limit"), "limit")
    offset = _check_count(query.get("offset"), "offset")
    # valid: from here on nothing raises QueryError
    if rowid:
        refs = []
    if callable(present):
        present = present()
    names: list[str] = []
    json_names: list[str] = []
    exprs: list[str] = []
    select_params: list[Any] = []
    for ref in refs:
        if ref.path:
            # '->' returns JSON text (strings quoted), decoded like a JSON column.
            sql, path_params = path_sql(ref.column, ref.path, "->")
            exprs.append(sql)
            select_params += path_params
            json_names.append(ref.name)
        else:
            missing = present is not None and ref.column not in present
            exprs.append(f"NULL AS {quote_identifier(ref.name)}" if missing else ref.sql)
            if ref.is_json:
                json_names.append(ref.name)
        names.append(ref.name)
    sql = f"SELECT {', '.join(exprs) or 'rowid'} FROM {quote_identifier(table)}"
    all_params = select_params + params
    if where:
        sql += f" WHERE +({where})" if walk_order else f" WHERE {where}"
    if order:
        sql += f" ORDER BY {order}"
        all_params += order_params
    if limit is not None or offset is not None:
        sql += " LIMIT ? OFFSET ?"
        all_params += [-1 if limit is None else limit, offset or 0]
    check_variables(all_params)
    return Select(sql, all_params, names, json_names, ", ".join(exprs) or "rowid", select_params, table,
                  tuple(c for c, t in columns.items() if t == "JSON"))


def check_variables(params: Sequence[Any], where: str = "query") -> None:
    """Refuse a statement binding more than :data:`MAX_VARIABLES` values.

    Raises
    ------
    QueryError
        Naming the count and the limit.
    """
    if len(params) > MAX_VARIABLES:
        raise _fail(where, f"the query binds {len(params):,} values; SQLite takes at most {MAX_VARIABLES:,} "
                    "in one statement (MAX_VARIABLES): use fewer filters")


def check_query(query: Any) -> Query:
    """Check the shape of a query dict's top level and return it (``{}`` for None).

    Raises
    ------
    QueryError
        If *query* is not a dict or has an unknown key.
    """
    if query is None:
        return {}
    if not isinstance(query, Mapping):
        raise QueryError(f"a query must be a dict with keys {', '.join(QUERY_KEYS)}; "
                         f"got {type(query).__name__} {_show(query)}")
    for key in query:
        if key not in QUERY_KEYS:
            raise _fail("query", f"unknown key {_show(key)}{_suggest(key, QUERY_KEYS)}; "
                        f"accepted keys are {', '.join(QUERY_KEYS)}")
    return dict(query)


def validate_query(query: Any, columns: Columns, table: str = "t") -> Query:
    """Validate a query dict against *columns* without running it.

    Returns
    -------
    dict
        The query (``{}`` for None).

    Raises
    ------
    QueryError
        If the query is malformed.
    """
    compile_select(query, table, columns)
    return check_query(query)


def _stored_json(value: Any, where: str) -> str:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"value cannot be stored as JSON: {exc}") from None
    except RecursionError:
        raise _fail(where, "value is nested too deeply to serialize as JSON") from None


def compile_updates(updates: Any, columns: Columns) -> tuple[list[str], list[Any]]:
    """Compile an ``updates`` dict into SET items and parameters.

    A key is a field (set whole; JSON fields are serialized with
    :func:`dumps`, other values must be scalars) or a dotted path into a JSON
    field (``'job_spec.resources.mem_gb'``), set with ``json_set`` so the rest
    of the object stays as it was; missing objects on the way are created.
    Several paths into one field become one ``json_set``.

    Raises
    ------
    QueryError
        For an unknown field or path, a non-dict, an empty dict, a bad value,
        or a field set both whole and through a path.
    """
    if not isinstance(updates, Mapping) or not updates:
        raise QueryError(f"updates must be a non-empty dict of {{field or JSON path: new value}}, got {_show(updates)}")
    whole: dict[str, Any] = {}
    paths: dict[str, list[tuple[FieldRef, Any]]] = {}
    for name, new in updates.items():
        where = f"updates[{_show(name)}]"
        if isinstance(name, str) and name in columns:
            whole[name] = new
            continue
        if not isinstance(name, str) or name.partition(".")[0] not in columns:
            raise _fail("updates", f"unknown field {_show(name)}{_suggest(name, list(columns))}; "
                        f"fields are {', '.join(columns)}, or dotted paths into JSON fields")
        ref = field_sql(name, columns, where)
        paths.setdefault(ref.column, []).append((ref, new))
    items, params = [], []
    for name, new in whole.items():
        if name in paths:
            raise _fail("updates", f"{_show(name)} is set whole and through the path {paths[name][0][0].name!r}; "
                        "set one or the other")
        if columns[name] == "JSON":
            params.append(_stored_json(new, f"updates[{_show(name)}]"))
        else:
            params.append(_check_scalar(new, f"updates[{_show(name)}]"))
        items.append(f"{quote_identifier(name)} = ?")
    for column, refs in paths.items():
        col = quote_identifier(column)
        args = []
        for ref, new in refs:
            # json(?) stores the value as JSON (a number stays a number, a dict an object)
            args.append("?, json(?)")
            params += [json_path(ref.path), _stored_json(new, f"updates[{_show(ref.name)}]")]
        # a NULL or non-object field becomes an object holding the new keys
        items.append(f"{col} = json_set(CASE WHEN json_type({col}) = 'object' THEN {col} ELSE '{{}}' END, "
                     f"{', '.join(args)})")
    return items, params


# SQLite's json_tree writes a key in a fullkey bare, or "quoted" when it is not a plain identifier.
_FULLKEY_SEGMENT = re.compile(r'\.(?:"((?:[^"\\]|\\.)*)"|([^."\[\]]+))')
_BAD_KEY = re.compile(r'[."\x00-\x1f]')


def json_tree_keys(fullkey: str) -> list[str] | None:
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
