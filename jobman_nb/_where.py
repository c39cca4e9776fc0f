"""Parse the CLI's ``--where`` / ``--order`` expressions into query-dict parts.

``--where`` takes ``FIELD OP VALUE``: ``status=FAILED``,
``job_spec.resources.cpus>=4``, ``status!=COMPLETED``,
``worker_key in cpu_w,gpu_w``, ``errors is null``, ``source_tag like foo%``,
``created between 1767571200,1767657600``. Word operators (``in``, ``like``,
``glob``, ``between``, ``is``) take ``not`` (``not in``, ``is not``). Values
that look like numbers, ``true``/``false`` or ``null`` become those; quote a
value (``'4'``) to keep it a string. Given the kinds of the fields
(``kind_of``), values are checked against them: ``cpus>=eight`` is an error
naming the value, and ISO dates for a time field become epoch seconds. Field
names and operators are validated against the schema by the DAO.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .dao.query import epoch_seconds
from .errors import QueryError
from .vocabulary import OPS, SYMBOL_OPS, WORD_OPS, ValueKind, parse_op

__all__ = ["parse_where", "parse_order", "parse_value"]

_WORD_OP = "|".join(r"\s+".join(map(re.escape, w.lower().split())) for w in WORD_OPS)
_EXPR = re.compile(
    r"\s*(?P<field>[^\s<>=!]+?)\s*"
    rf"(?:(?P<symbol>{'|'.join(map(re.escape, SYMBOL_OPS))})|\s(?P<word>{_WORD_OP})(?=\s|$))"
    r"\s*(?P<value>.*?)\s*\Z",
    re.IGNORECASE | re.DOTALL)
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_CONSTANTS = {"null": None, "none": None, "true": True, "false": False}


def parse_value(text: str) -> Any:
    """Return *text* as an int, float, bool or None where it looks like one, else as a string.

    A value in single or double quotes is always the string inside them.
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.lower() in _CONSTANTS:
        return _CONSTANTS[text.lower()]
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _split_list(text: str) -> list[str]:
    # Commas split, except inside quotes: "a,b" stays one value.
    return [m.group(1) for m in re.finditer(r"""\s*('[^']*'|"[^"]*"|[^,]+)""", text) if m.group(1).strip()]


def parse_where(expr: str, kind_of: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """Return the query-dict filter for one ``--where`` expression.

    Parameters
    ----------
    expr : str
        ``FIELD OP VALUE``, e.g. ``'status=FAILED'`` or ``'worker_key in cpu_w,gpu_w'``.
    kind_of : callable, optional
        The :class:`~jobman_nb.vocabulary.ValueKind` of a field name (None
        when unknown). With it the values are checked against the field: a
        word for a field of numbers or of true/false is an error, and dates
        for a time field become epoch seconds.

    Returns
    -------
    dict
        ``{'field': ..., 'op': ..., 'arg': ...}``.

    Raises
    ------
    QueryError
        If *expr* is not of that form, or the value does not fit the operator
        or the field.
    """
    if not isinstance(expr, str):
        raise QueryError(f"--where: expected a string like 'status=FAILED', got {expr!r}")
    m = _EXPR.match(expr)
    if not m:
        raise QueryError(f"--where {expr!r}: expected FIELD OP VALUE, e.g. 'status=FAILED', "
                         f"'job_spec.resources.cpus>=4', 'worker_key in a,b', 'errors is null'; "
                         f"operators: {' '.join(SYMBOL_OPS)} {' '.join(w.lower() for w in WORD_OPS)}")
    field, value = m.group("field"), m.group("value")
    op = m.group("symbol") or " ".join(m.group("word").upper().split())
    if m.group("symbol"):
        out = op  # the compiler reads symbols and their aliases as typed
        base = parse_op(op)[0]  # type: ignore[index]  # every symbol op parses
    else:
        base, negate = parse_op(op)  # type: ignore[misc]
        out = ("!" + base) if negate else base
    arity = OPS[base].arity
    if arity in (-1, 2):
        items = [parse_value(v) for v in _split_list(value)]
        if arity == 2 and len(items) != 2:
            raise QueryError(f"--where {expr!r}: {base.lower()} takes two values, LOW,HIGH")
        if arity == -1 and not items:
            raise QueryError(f"--where {expr!r}: {base.lower()} takes a comma-separated list of values")
        arg: Any = items
    elif value == "":
        raise QueryError(f"--where {expr!r}: no value after {op.lower()!r}")
    else:
        arg = parse_value(value)
    if arity == 0 and arg is not None:
        raise QueryError(f"--where {expr!r}: 'is' / 'is not' compare with null only; use = or != for values")
    if kind_of is not None and arity != 0 and base not in _PATTERN_OPS:
        arg = _fit_kind(expr, field, arg, kind_of(field))
    return {"field": field, "op": out, "arg": arg}


_PATTERN_OPS = ("LIKE", "GLOB")  # patterns are text whatever the field holds


def _fit_kind(expr: str, field: str, arg: Any, kind: str | None) -> Any:
    """*arg* checked against the kind of values *field* holds; dates as epoch seconds for a time field."""
    values = arg if isinstance(arg, list) else [arg]
    if kind == ValueKind.TIME:
        fitted = [epoch_seconds(v, f"--where {expr!r} ({field} holds times)") for v in values]
        return fitted if isinstance(arg, list) else fitted[0]
    if kind == ValueKind.NUMBER:
        bad = [v for v in values if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
        if bad:
            raise QueryError(f"--where {expr!r}: {field} holds numbers; {bad[0]!r} is not a number")
    elif kind == ValueKind.BOOL:
        bad = [v for v in values if v is not None and not isinstance(v, bool)]
        if bad:
            raise QueryError(f"--where {expr!r}: {field} holds true/false; {bad[0]!r} is neither")
    return arg


def parse_order(expr: str) -> dict[str, str]:
    """Return the query-dict order_by item for ``FIELD`` (ascending) or ``-FIELD`` (descending).

    Raises
    ------
    QueryError
        If no field is named.
    """
    text = expr.strip() if isinstance(expr, str) else ""
    direction = "DESC" if text.startswith("-") else "ASC"
    field = text.lstrip("+-").strip()
    if not field:
        raise QueryError(f"--order {expr!r}: name a field, e.g. 'created' or '-created' for newest first")
    return {"field": field, "direction": direction}
