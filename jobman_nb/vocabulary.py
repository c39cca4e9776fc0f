"""The words of jobman_nb's domain, each defined once.

The query ops (name, arity, negation, aliases, labels, which kinds of field
they apply to), the kinds of field and the one rule that gives a field its
kind, the job statuses and their order, the finished statuses, and the
status colours. The compiler (:mod:`jobman_nb.dao.query`), the CLI parser,
the query form, the frames, the plots and the property tests read these
tables; none keeps its own list.

Standard library only: this is the lowest layer, beside :mod:`jobman_nb.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import MissingKeyError

__all__ = [
    "JOB_STATUSES",
    "STATUSES",
    "FINISHED",
    "status_order",
    "STATUS_COLORS",
    "OTHER_STATUS_COLOR",
    "status_color",
    "FIELD_TYPES",
    "ColumnKind",
    "ValueKind",
    "TIME_FIELDS",
    "STATUS_FIELD",
    "declared_field_type",
    "column_kind",
    "value_kind",
    "json_value_kind",
    "Op",
    "OPS",
    "OP_NAMES",
    "OP_ALIASES",
    "parse_op",
    "op_spelling",
    "offered_ops",
    "op_label",
    "op_arity",
    "WORD_OPS",
    "SYMBOL_OPS",
]


# -- job statuses -------------------------------------------------------------------------
class JOB_STATUSES:  # noqa: N801 - jobman's name
    """The job statuses; each equals its name."""

    CLAIMED = "CLAIMED"
    COMPLETED = "COMPLETED"
    EXECUTED = "EXECUTED"
    FAILED = "FAILED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    UNKNOWN = "UNKNOWN"


#: Every job status, in alphabetical order (the categories of frame ``status`` columns).
STATUSES: tuple[str, ...] = tuple(sorted(v for k, v in vars(JOB_STATUSES).items() if k.isupper()))
#: The statuses a job ends in.
FINISHED: tuple[str, ...] = (JOB_STATUSES.COMPLETED, JOB_STATUSES.FAILED)


def _missing(value: Any) -> bool:
    # None, NaN, NaT and pandas.NA, without importing pandas.
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA: its comparisons are NA, which has no truth value
        return True


def status_order(values: Iterable[Any] = (), *, every: bool = True) -> list[Any]:
    """The job statuses in :data:`STATUSES` order, then any other value of *values*, sorted.

    Parameters
    ----------
    values
        Status values seen in the data (missing values are ignored).
    every
        Put every job status first (the categories of a ``status`` column);
        False keeps only the job statuses found in *values*.

    Returns
    -------
    list
        Others are sorted by their text, so mixed types sort too.
    """
    seen = {v for v in values if not _missing(v)}
    head = [s for s in STATUSES if every or s in seen]
    return [*head, *sorted((v for v in seen if v not in STATUSES), key=str)]


#: One colour per job status, in every plot and widget.
STATUS_COLORS: dict[str, str] = {
    "PENDING": "#b0b0b0", "CLAIMED": "#f2c14e", "RUNNING": "#4e79a7", "EXECUTED": "#76b7b2",
    "COMPLETED": "#59a14f", "FAILED": "#e15759", "UNKNOWN": "#9c755f",
}
#: The colour of any value that is not a job status.
OTHER_STATUS_COLOR = "#cccccc"


def status_color(status: Any) -> str:
    """The colour of *status* (:data:`OTHER_STATUS_COLOR` for values that are not job statuses)."""
    return STATUS_COLORS.get(str(status), OTHER_STATUS_COLOR)


# -- field kinds --------------------------------------------------------------------------
#: The declared types a DAO field may have (``JSON`` is TEXT holding JSON).
FIELD_TYPES: tuple[str, ...] = ("TEXT", "INTEGER", "FLOAT", "REAL", "NUMERIC", "BLOB", "JSON")
#: Numeric fields holding epoch seconds.
TIME_FIELDS: tuple[str, ...] = ("created", "modified")
#: The text field holding a job's status.
STATUS_FIELD = "status"


class ColumnKind:
    """What a column holds, which decides its DataFrame dtype."""

    TEXT = "TEXT"
    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    NUMERIC = "NUMERIC"
    BLOB = "BLOB"
    TIME = "TIME"
    STATUS = "STATUS"
    JSON = "JSON"


class ValueKind:
    """What a query compares a field with, which decides the ops offered for it."""

    NUMBER = "number"
    TIME = "time"
    TEXT = "text"
    STATUS = "status"
    BOOL = "bool"
    ANY = "any"
    JSON = "json"


def declared_field_type(declared: str | None) -> str:
    """The field type (one of :data:`FIELD_TYPES`) of a column declared *declared* (SQLite's affinity rules)."""
    upper = (declared or "").upper()
    if upper in FIELD_TYPES:
        return upper
    if "INT" in upper:
        return "INTEGER"
    if any(s in upper for s in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not upper or "BLOB" in upper:
        return "BLOB"
    if any(s in upper for s in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def column_kind(name: str, field_type: str, *, timestamp: bool = False) -> str:
    """The :class:`ColumnKind` of field *name* of type *field_type*: the one rule.

    A numeric ``created`` or ``modified`` (or any numeric field stamped with
    the time, *timestamp*) holds epoch seconds; a TEXT ``status`` holds job
    statuses; ``REAL`` is a ``FLOAT``; other types are their own kind.
    """
    sql_type = field_type.upper()
    if sql_type in ("FLOAT", "REAL", "NUMERIC", "INTEGER") and (name in TIME_FIELDS or timestamp):
        return ColumnKind.TIME
    if sql_type == "TEXT" and name == STATUS_FIELD:
        return ColumnKind.STATUS
    if sql_type == "REAL":
        return ColumnKind.FLOAT
    return sql_type


_VALUE_KINDS = {ColumnKind.INTEGER: ValueKind.NUMBER, ColumnKind.FLOAT: ValueKind.NUMBER,
                ColumnKind.NUMERIC: ValueKind.NUMBER, ColumnKind.TIME: ValueKind.TIME,
                ColumnKind.STATUS: ValueKind.STATUS, ColumnKind.JSON: ValueKind.JSON}


def value_kind(kind: str) -> str:
    """The :class:`ValueKind` of a column of :class:`ColumnKind` *kind*."""
    return _VALUE_KINDS.get(kind, ValueKind.TEXT)


def json_value_kind(types: Iterable[str]) -> str:
    """The :class:`ValueKind` of a JSON path whose values have these SQLite ``json_type`` names."""
    seen = set(types) - {"null"}
    if seen and seen <= {"integer", "real"}:
        return ValueKind.NUMBER
    if seen and seen <= {"true", "false"}:
        return ValueKind.BOOL
    if seen == {"text"}:
        return ValueKind.TEXT
    return ValueKind.ANY


# -- query ops ----------------------------------------------------------------------------
_EVERY_KIND = frozenset(v for k, v in vars(ValueKind).items() if k.isupper())
_ORDERED = frozenset({ValueKind.NUMBER, ValueKind.TIME, ValueKind.TEXT, ValueKind.ANY})
_SCALAR = _ORDERED | {ValueKind.STATUS, ValueKind.BOOL}


@dataclass(frozen=True)
class Op:
    """One base op of the query language.

    Attributes
    ----------
    name
        The op in a query dict (a leading ``!`` negates any op).
    arity
        0 (no value), 1 (one value), 2 (``[low, high]``) or -1 (a list).
    negatable
        Whether the form and the CLI offer its negation (``!=``, ``!IN``, ``not like``...).
    label, negated_label
        What the form shows for the op and for its negation.
    kinds
        The :class:`ValueKind` s of field the form and the CLI offer it for.
    aliases
        Other spellings, as users type them, of the op (``'=='``) or of its
        negation (``'NOT IN'`` means ``'!IN'``).
    """

    name: str
    arity: int
    negatable: bool
    label: str
    negated_label: str
    kinds: frozenset[str]
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def negated(self) -> str:
        """The spelling of the negation in the form and the CLI (``'!='`` for ``'='``)."""
        return {"=": "!=", "IS": "IS NOT", "IS NOT": "IS"}.get(self.name, "!" + self.name)


#: The base ops, by name, in the order the form lists them (and errors name them).
OPS: dict[str, Op] = {op.name: op for op in (
    Op("=", 1, True, "=", "!=", _SCALAR, (("==", "="), ("<>", "!="))),
    Op("<", 1, False, "<", "", _ORDERED),
    Op("<=", 1, False, "<=", "", _ORDERED),
    Op(">", 1, False, ">", "", _ORDERED),
    Op(">=", 1, False, ">=", "", _ORDERED),
    Op("IN", -1, True, "in", "not in",
       frozenset({ValueKind.NUMBER, ValueKind.TEXT, ValueKind.STATUS, ValueKind.ANY}), (("NOT IN", "!IN"),)),
    Op("LIKE", 1, True, "like", "not like", frozenset({ValueKind.TEXT, ValueKind.ANY}), (("NOT LIKE", "!LIKE"),)),
    Op("GLOB", 1, True, "glob", "not glob", frozenset({ValueKind.TEXT, ValueKind.ANY}), (("NOT GLOB", "!GLOB"),)),
    Op("IS", 0, False, "is empty", "is not empty", _EVERY_KIND),
    Op("IS NOT", 0, False, "is not empty", "is empty", _EVERY_KIND),
    Op("BETWEEN", 2, True, "between", "not between", frozenset({ValueKind.NUMBER, ValueKind.TIME, ValueKind.ANY}),
       (("NOT BETWEEN", "!BETWEEN"),)),
)}
#: The base op names (before negation with a leading ``!``).
OP_NAMES: tuple[str, ...] = tuple(OPS)
#: Other spellings accepted for an op or its negation.
OP_ALIASES: dict[str, str] = {a: target for op in OPS.values() for a, target in op.aliases}


def parse_op(op: Any) -> tuple[str, bool] | None:
    """The base op and whether it is negated, for any accepted spelling of *op*.

    Case and spaces do not matter (``'! in'``, ``'not like'``, ``'<>'``).
    None if *op* is not an op, or is negated twice.
    """
    if not isinstance(op, str):
        return None
    text = " ".join(op.upper().split())
    negate = text.startswith("!")
    if negate:
        text = text[1:].lstrip()
    text = OP_ALIASES.get(text, text)
    if text.startswith("!"):
        if negate:
            return None
        negate, text = True, text[1:].lstrip()
    return (text, negate) if text in OPS else None


def op_spelling(op: Any) -> str | None:
    """The form's and the CLI's spelling of *op* (``'!='``, ``'!IN'``, ``'IS NOT'``); None if not offered."""
    parsed = parse_op(op)
    if parsed is None:
        return None
    base, negate = parsed
    spec = OPS[base]
    if not negate:
        return base
    if base in ("IS", "IS NOT"):
        return spec.negated
    return spec.negated if spec.negatable else None


def offered_ops(kind: str) -> list[str]:
    """The op spellings offered for a field of :class:`ValueKind` *kind*, in the form's order."""
    out: list[str] = []
    for spec in OPS.values():
        if kind in spec.kinds:
            out.append(spec.name)
            if spec.negatable:
                out.append(spec.negated)
    return out


def _spec(spelling: str) -> tuple[Op, bool]:
    parsed = parse_op(spelling)
    if parsed is None:
        raise MissingKeyError(spelling)
    return OPS[parsed[0]], parsed[1]


def op_label(spelling: str) -> str:
    """The label the form shows for an op spelling such as ``'!IN'``."""
    spec, negate = _spec(spelling)
    return spec.negated_label if negate else spec.label


def op_arity(spelling: str) -> int:
    """0 (no value), 1 (one value), 2 (low and high) or -1 (a list)."""
    return _spec(spelling)[0].arity


def _word_spellings() -> list[str]:
    words = []
    for spec in OPS.values():
        if re.fullmatch(r"[A-Z ]+", spec.name):
            words.append(spec.name)
            if spec.negatable:
                words.append("NOT " + spec.name)
    return sorted(words, key=len, reverse=True)


#: Word ops of the CLI's ``--where`` (``IN``, ``NOT LIKE``, ``IS NOT``...), longest first.
WORD_OPS: tuple[str, ...] = tuple(_word_spellings())
#: Symbol ops of the CLI's ``--where``, longest first.
SYMBOL_OPS: tuple[str, ...] = tuple(sorted(
    {s for s in [*OPS, *(OPS[n].negated for n in OPS if OPS[n].negatable), *OP_ALIASES]
     if not re.search(r"[A-Z]", s)}, key=lambda s: (-len(s), s)))
