"""How the commands print records: for a person (a table that fits the terminal) or for a program.

The format options are sqlite-utils' (``sqlite-utils rows --help``): ``--csv``,
``--tsv``, ``--json`` (one array), ``--nl`` (one object per line), ``-t/--table``
with ``--fmt`` (tabulate's formats), ``--no-headers``. Without any of them the
records are printed as a table fitted to the terminal's width
(``shutil.get_terminal_size``, which honours ``COLUMNS``). Every text value
goes through :mod:`jobman_nb.encode`.
"""

from __future__ import annotations

import csv
import functools
import json
import shutil
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import click

from ..encode import encode_times, frame_records, json_text, json_value, text_cell
from ._app import UsageProblem

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["output_options", "Output", "Source", "emit", "emit_frame", "fit_table", "terminal_width", "SCREEN_LIMIT"]

#: Records printed to the screen when no ``--limit`` is given.
SCREEN_LIMIT = 20
_GAP = "  "
_ELLIPSIS = "…"
# Time renderings from widest to narrowest: a too-wide table drops seconds, then the year.
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m-%d %H:%M")


def terminal_width() -> int:
    """Columns of the terminal (``COLUMNS`` first; 80 when not a terminal)."""
    return max(20, shutil.get_terminal_size((80, 24)).columns)


def _tabulate_formats() -> list[str]:
    import tabulate

    return list(tabulate.tabulate_formats)


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add sqlite-utils' output options; the command receives one :class:`Output` as ``output``."""
    options = [
        click.option("--csv", "as_csv", is_flag=True, help="Output CSV (JSON as dotted columns, JSON text in cells)."),
        click.option("--tsv", "as_tsv", is_flag=True, help="Output TSV."),
        click.option("--json", "as_json", is_flag=True, help="Output one JSON array of objects."),
        click.option("--nl", "as_nl", is_flag=True, help="Output newline-delimited JSON, one object per line, "
                                                         "streamed."),
        click.option("-t", "--table", "as_table", is_flag=True, help="Output a table through tabulate (--fmt)."),
        click.option("--fmt", metavar="FORMAT", help="Table format for --table, e.g. simple, github, grid, psql "
                                                     "(tabulate's formats; implies --table)."),
        click.option("--no-headers", is_flag=True, help="Omit the header row of CSV/TSV and table output."),
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, as_csv: bool, as_tsv: bool, as_json: bool, as_nl: bool, as_table: bool,
                fmt: str | None, no_headers: bool, **kwargs: Any) -> Any:
        chosen = [name for name, on in (("--csv", as_csv), ("--tsv", as_tsv), ("--json", as_json),
                                        ("--nl", as_nl), ("--table", as_table or fmt is not None)) if on]
        if len(chosen) > 1:
            raise UsageProblem(f"choose one output format, got {' and '.join(chosen)}")
        if fmt is not None and fmt not in _tabulate_formats():
            raise UsageProblem(f"--fmt {fmt!r} is not a table format; one of {', '.join(_tabulate_formats())}")
        kind = chosen[0].lstrip("-") if chosen else "screen"
        return fn(*args, output=Output(kind, fmt or "simple", not no_headers), **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@dataclass(frozen=True)
class Output:
    """The output format a command was asked for."""

    kind: str  #: 'screen', 'table', 'csv', 'tsv', 'json' or 'nl'
    fmt: str = "simple"
    headers: bool = True

    @property
    def for_person(self) -> bool:
        """Screen and --table output: default columns and a default limit."""
        return self.kind in ("screen", "table")

    @property
    def is_json(self) -> bool:
        return self.kind in ("json", "nl")

    def write(self, columns: Sequence[str], chunks: Iterable[Sequence[Mapping[str, Any]]], *,
              time_fields: Collection[str] = (), more: int = 0, empty: str = "no matching records") -> int:
        """Print the records of *chunks* (lists of dicts) as *columns*; return how many were printed.

        *time_fields* hold epoch seconds (or datetimes); *more* is how many
        further records matched (announced on stderr after screen output).
        """
        n = 0
        out = sys.stdout
        if self.is_json:
            n = _write_json(out, chunks, time_fields, nl=self.kind == "nl")
        elif self.kind in ("csv", "tsv"):
            writer = csv.writer(out, dialect="excel-tab" if self.kind == "tsv" else "excel", lineterminator="\n")
            if self.headers:
                writer.writerow(columns)
            for chunk in chunks:
                rows = encode_times(chunk, time_fields)
                writer.writerows([text_cell(r.get(c)) for c in columns] for r in rows)
                n += len(chunk)
        else:
            records = [r for chunk in chunks for r in chunk]
            n = len(records)
            if not records:
                click.echo(empty, err=True)
                return 0
            if self.kind == "table":
                import tabulate

                cells = [[_screen_cell(r.get(c), c in time_fields) for c in columns] for r in records]
                text = tabulate.tabulate(cells, headers=list(columns) if self.headers else (), tablefmt=self.fmt,
                                         disable_numparse=True)
                click.echo(text)
            else:
                for line in fit_table(columns, records, terminal_width(), time_fields=time_fields,
                                      headers=self.headers):
                    click.echo(line)
        if more > 0 and self.for_person:
            out.flush()
            click.echo(f"{_ELLIPSIS} {more:,} more; -n to see more", err=True)
        return n


def _write_json(out: Any, chunks: Iterable[Sequence[Mapping[str, Any]]], time_fields: Collection[str], *,
                nl: bool) -> int:
    n = 0
    for chunk in chunks:
        lines = [json_text(r) for r in encode_times(chunk, time_fields)]
        if not lines:
            continue
        if nl:
            out.write("\n".join(lines) + "\n")
        else:
            out.write(("[" if n == 0 else ",\n ") + ",\n ".join(lines))
        n += len(lines)
        out.flush()
    if not nl:
        out.write("]\n" if n else "[]\n")
    return n


# -- what to print: records of a query, or a frame ----------------------------------------
@dataclass(frozen=True)
class Source:
    """Where the records of a query dict come from (a DAO table, the events, ...)."""

    columns: Sequence[str]  #: the fields of the table
    time_fields: Collection[str]  #: fields holding epoch seconds
    run: Callable[[dict[str, Any]], list[dict[str, Any]]]  #: the records of a query
    iterate: Callable[[dict[str, Any], int], Iterable[list[dict[str, Any]]]]  #: the same, in chunks
    count: Callable[[dict[str, Any]], int]  #: how many records match
    frame: Callable[[dict[str, Any]], pd.DataFrame] | None = None  #: JSON expanded to dotted columns
    defaults: Sequence[str] = ()  #: the columns a person sees first

    def default_fields(self, query: Mapping[str, Any]) -> list[str]:
        """The default columns, then the fields named in the query's filters and order."""
        fields = [c for c in self.defaults if c in self.columns] or list(self.columns)
        return _merge(fields, _query_fields(query))


def _query_fields(query: Mapping[str, Any]) -> list[str]:
    names: list[str] = []

    def walk(items: Any) -> None:
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, Mapping):
                if "field" in item:
                    names.append(item["field"])
                for group in ("any", "all"):
                    if group in item:
                        walk(item[group])

    walk(query.get("filters", []))
    walk(query.get("order_by", []))
    return names


def _merge(*lists: Iterable[str]) -> list[str]:
    out: list[str] = []
    for items in lists:
        out.extend(i for i in items if i not in out)
    return out


#: Records per chunk of --nl, --json and (with -f) CSV output.
CHUNK = 2_000


def emit(output: Output, source: Source, query: Mapping[str, Any], *, fields: Sequence[str] = (),
         limit: int | None = None, everything: bool = False) -> int:
    """Print the records of *query* from *source* in the chosen format; return how many were printed.

    A person (screen or ``--table``) sees the default columns and at most
    :data:`SCREEN_LIMIT` records unless *fields*, *limit* or *everything* say
    otherwise, with a note of how many more matched. A program gets every
    field (JSON as stored, or expanded to dotted columns in CSV) and every
    record, streamed in chunks.
    """
    query = dict(query)
    if output.for_person:
        cols = list(fields) or source.default_fields(query)
        cap = None if everything else (limit if limit is not None else SCREEN_LIMIT)
        page = {**query, "fields": cols, **({"limit": cap} if cap is not None else {})}
        records = source.run(page)
        more = source.count(query) - len(records) if cap is not None and len(records) == cap else 0
        return output.write(cols, [records], time_fields=source.time_fields, more=more)
    if limit is not None:
        query["limit"] = limit
    if output.kind in ("csv", "tsv") and not fields and source.frame is not None:
        frame = source.frame(query)
        return output.write(list(frame.columns), [list(frame_records(frame))])
    if fields:
        query["fields"] = list(fields)
    cols = list(fields) or list(source.columns)
    return output.write(cols, source.iterate(query, CHUNK), time_fields=source.time_fields)


def emit_frame(output: Output, frame: pd.DataFrame, *, defaults: Sequence[str] = (), fields: Sequence[str] = (),
               more: int = 0, empty: str = "no matching records") -> int:
    """Print a frame: the *defaults* columns (or *fields*) for a person, every column (or *fields*) for a program."""
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise UsageProblem(f"-f: no column {', '.join(map(repr, missing))}; columns are {', '.join(frame.columns)}")
    if fields:
        cols = list(fields)
    elif output.for_person and defaults:
        cols = [c for c in defaults if c in frame.columns]
    else:
        cols = list(frame.columns)
    records = list(frame_records(frame[cols]))
    return output.write(cols, [records], more=more, empty=empty)


# -- a table for a person ---------------------------------------------------------------------
def _screen_cell(value: Any, is_time: bool = False, time_format: str = _TIME_FORMATS[0]) -> str:
    """A value as a person reads it: times in UTC without a zone, JSON compact, nothing for missing."""
    if value is None:
        return ""
    if is_time and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value:
            return ""
        value = datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, datetime):
        return value.strftime(time_format)
    if isinstance(value, timedelta):
        return _duration(value.total_seconds())
    if isinstance(value, str):
        return value.replace("\n", "⏎ ").replace("\t", " ")
    if isinstance(value, float) and value != value:
        return ""
    if isinstance(value, (bool, list, tuple, dict)):
        return json.dumps(json_value(value), ensure_ascii=False).replace("\\n", "⏎ ")
    return str(value)


def _duration(seconds: float) -> str:
    """``3d 4h``, ``2h 05m``, ``7m 12s``, ``40s``: two units, enough to compare at a glance."""
    s = round(seconds)
    sign, s = ("-", -s) if s < 0 else ("", s)
    d, rem = divmod(s, 86_400)
    h, rem = divmod(rem, 3_600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{sign}{d}d {h}h"
    if h:
        return f"{sign}{h}h {m:02d}m"
    if m:
        return f"{sign}{m}m {sec:02d}s"
    return f"{sign}{sec}s"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + _ELLIPSIS


def _cap_to_fit(widths: list[int], floors: list[int], budget: int) -> list[int] | None:
    """Cap the widest columns at one level so the widths sum to at most *budget*; None if floors don't fit."""
    if sum(min(w, f) for w, f in zip(widths, floors, strict=True)) > budget:
        return None
    lo, hi = 0, max(widths, default=0)
    while lo < hi:  # the largest cap that fits
        mid = (lo + hi + 1) // 2
        if sum(min(w, max(mid, f)) for w, f in zip(widths, floors, strict=True)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return [min(w, max(lo, f)) for w, f in zip(widths, floors, strict=True)]


def fit_table(columns: Sequence[str], records: Sequence[Mapping[str, Any]], width: int, *,
              time_fields: Collection[str] = (), headers: bool = True,
              keep_whole: Collection[str] = ("key",), right: Collection[str] = ()) -> Iterator[str]:
    """Yield the lines of a plain table of *records* no wider than *width*.

    Too wide a table first clips long text (not keys: columns named ``*key``
    or in *keep_whole*), then shows times to the minute and
    then without the year, then clips every column (keys last) to a few
    characters, and at last leaves out the columns on the right, naming them.
    """
    columns = list(columns)
    times = [c in time_fields or any(isinstance(r.get(c), datetime) for r in records) for c in columns]
    numeric = [c in right or (bool(records) and all(_is_number(r.get(c)) or r.get(c) is None for r in records)
                              and not t) for c, t in zip(columns, times, strict=True)]

    def render(time_format: str) -> list[list[str]]:
        return [[_screen_cell(r.get(c), t, time_format) for c, t in zip(columns, times, strict=True)]
                for r in records]

    for time_format in _TIME_FORMATS:
        cells = render(time_format)
        values = [max([0] + [len(row[i]) for row in cells]) for i in range(len(columns))]
        natural = [max(v, len(c) if headers else 1) for v, c in zip(values, columns, strict=True)]
        budget = width - len(_GAP) * (len(columns) - 1)
        # clip free text to 16 characters and long headers to 12 first; times and keys stay whole
        floors = [n if t or _whole(c, keep_whole) else max(min(v, 16), min(n, 12)) for n, v, t, c in
                  zip(natural, values, times, columns, strict=True)]
        widths = _cap_to_fit(natural, floors, budget)
        if widths is not None:
            break
    else:  # even with short times: clip everything, keys last, then drop columns on the right
        floors = [min(n, 12 if _whole(c, keep_whole) else 6) for n, c in zip(natural, columns, strict=True)]
        hidden: list[str] = []
        while True:
            budget = width - len(_GAP) * (len(columns) - 1)
            widths = _cap_to_fit(natural, floors, budget)
            if widths is not None or len(columns) == 1:
                break
            hidden.insert(0, columns.pop())
            for seq in (natural, floors, numeric, *cells):
                seq.pop()
        if widths is None:
            widths = [max(1, width)]
        if hidden:
            click.echo(f"({len(hidden)} column{'s' if len(hidden) > 1 else ''} left out to fit {width} columns: "
                       f"{', '.join(hidden)}; choose with -f)", err=True)

    def line(values: Sequence[str], header: bool = False) -> str:
        parts = [((_clip_header(v, w) if header else _clip(v, w)).rjust(w) if num else
                  (_clip_header(v, w) if header else _clip(v, w)).ljust(w))
                 for v, w, num in zip(values, widths, numeric, strict=True)]
        return _GAP.join(parts).rstrip()

    if headers:
        yield line(columns, header=True)
        yield _GAP.join("-" * w for w in widths)
    for row in cells:
        yield line(row)


def _whole(column: str, keep_whole: Collection[str]) -> bool:
    # keys (key, job_key, worker.key, ...) are what a person copies into the next command
    return column in keep_whole or column.endswith("key")


def _clip_header(name: str, width: int) -> str:
    """A dotted name keeps its end (``…ources.cpus``), others their start."""
    if len(name) <= width or "." not in name:
        return _clip(name, width)
    return _ELLIPSIS + name[len(name) - width + 1:]


def echo_err(message: str) -> None:
    """One line on stderr."""
    click.echo(message, err=True)


def is_interactive() -> bool:
    """Whether stdin and stdout are both terminals (a person can answer a question)."""
    return sys.stdin.isatty() and sys.stdout.isatty()
