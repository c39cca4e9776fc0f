"""How values become text: ISO-8601 times and JSON text, for every text output of jobman_nb.

One encoder for the CLI's ``--csv``/``--tsv``/``--json``/``--nl`` and for
export's CSV, so the same record gives the same text whichever way it leaves:

* durations are ISO-8601 durations (``P0DT3H12M5.5S``);
* times (``datetime``, ``pd.Timestamp``, or epoch seconds in a field known to
  hold times) are ISO-8601 in UTC, to the microsecond:
  ``2026-01-05T00:11:41.675220+00:00``;
* in CSV and TSV, a missing value is an empty cell, and lists, dicts and
  booleans are JSON text (``["Traceback ..."]``, ``true``) — never Python's
  ``repr``;
* in JSON, values stay JSON; NaN and infinities become ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .errors import ArgumentTypeError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["iso_time", "iso_duration", "text_cell", "json_value", "json_text", "encode_times", "frame_records",
           "text_frame"]


def iso_time(value: Any) -> str | None:
    """Return a time as ISO-8601 UTC text; *value* is epoch seconds, a ``datetime`` or a ``pd.Timestamp``.

    A naive ``datetime`` is taken to be UTC. Missing values (None, NaN, NaT) give None.
    """
    if value is None or _is_nan(value):
        return None
    if isinstance(value, datetime):
        if hasattr(value, "nanosecond"):  # pd.Timestamp: float epochs leave nanosecond noise
            value = value.round("us").to_pydatetime()
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc).isoformat()
    raise ArgumentTypeError(f"expected epoch seconds or a datetime, got {value!r}")


def iso_duration(value: timedelta) -> str:
    """A duration as ISO-8601 text, in days, hours, minutes and seconds: ``P1DT2H3M4.5S``."""
    micros = round(value / timedelta(microseconds=1))
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    days, rem = divmod(micros, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds = f"{rem // 1_000_000}" + (f".{rem % 1_000_000:06d}".rstrip("0") if rem % 1_000_000 else "")
    return f"{sign}P{days}DT{hours}H{minutes}M{seconds}S"


def _is_nan(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN, NaT
    except TypeError:  # pd.NA compares to NA, whose truth value is undefined
        return True
    except ValueError:  # an array: compared element by element
        return False


def json_value(value: Any) -> Any:
    """*value* as plain JSON data: times as ISO text, NaN/NA as None, numpy scalars as Python numbers."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return iso_time(value)
    if isinstance(value, timedelta):
        return None if _is_nan(value) else iso_duration(value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return json_value(value.item())
    if _is_nan(value):
        return None
    if hasattr(value, "tolist"):  # numpy array
        return json_value(value.tolist())
    raise ArgumentTypeError(f"cannot encode {type(value).__name__} {value!r} as JSON")


def json_text(value: Any) -> str:
    """*value* as one line of JSON text (non-ASCII kept), through :func:`json_value`."""
    return json.dumps(json_value(value), ensure_ascii=False, allow_nan=False)


def text_cell(value: Any) -> str:
    """*value* as a CSV/TSV cell: empty when missing, JSON text for lists, dicts and booleans, ISO times."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or isinstance(value, (Mapping, list, tuple)):
        return json_text(value)
    if isinstance(value, (datetime, date)):
        return iso_time(value) or ""
    if _is_nan(value):
        return ""
    if isinstance(value, timedelta):
        return iso_duration(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return text_cell(value.item())
    if hasattr(value, "tolist"):
        return json_text(value)
    return str(value)


def encode_times(records: Iterable[Mapping[str, Any]], time_fields: Collection[str]) -> Iterator[dict[str, Any]]:
    """Yield each record with the epoch seconds of *time_fields* replaced by ISO-8601 text."""
    for record in records:
        out = dict(record)
        for name in time_fields:
            if name in out:
                out[name] = iso_time(out[name])
        yield out


def frame_records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Yield the rows of a frame as dicts of Python values (missing values as None), column order kept."""
    columns = list(frame.columns)
    data = frame.astype(object).where(frame.notna(), None)
    for row in data.itertuples(index=False, name=None):
        yield dict(zip(columns, row, strict=True))


def text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of *frame* whose every cell is its :func:`text_cell` text, for writing CSV with pandas."""
    import pandas as pd

    cells = {name: [text_cell(v) for v in values] for name, values in
             zip(frame.columns, (r for r in _columns_as_objects(frame)), strict=True)}
    return pd.DataFrame(cells, index=frame.index, columns=frame.columns, dtype=object)


def _columns_as_objects(frame: pd.DataFrame) -> Iterator[list[Any]]:
    data = frame.astype(object).where(frame.notna(), None)
    for name in range(data.shape[1]):
        yield data.iloc[:, name].tolist()
