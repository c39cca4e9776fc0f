"""Query results as pandas DataFrames, JSON fields expanded to dotted columns.

The frame of a query has one row per record, in query order, and these columns:

- every selected field (``key`` first), in schema (or projection) order;
- a JSON field holding objects is expanded, recursively, into dotted columns
  (``job_spec.dir``, ``job_spec.resources.cpus``, ...) placed after it; keys
  missing from a row give missing values. The JSON field's own column is
  kept only when some row holds a value that is not an object: it holds those
  values (lists stay Python lists, scalars stay scalars) and is missing where
  the row held an object. The same rule applies at every depth: a key that
  holds an object in some rows and a scalar in others gives both ``a.b`` (the
  scalars) and ``a.b.<key>`` columns. An empty object adds no column; a field
  that is NULL in every row keeps its (all-missing) column.

Dtypes are chosen, not inferred by pandas, so they are the same under pandas
2 and 3:

========================  ==============================================
field / JSON value        dtype
========================  ==============================================
``created``, ``modified`` ``datetime64[ns, UTC]``
``status``                ``category`` over :data:`~jobman_nb.STATUSES`,
                          then any other value present (sorted)
TEXT, JSON strings        ``string[pyarrow]`` (missing: ``pd.NA``)
INTEGER, JSON integers    ``Int64`` (nullable)
FLOAT, JSON numbers       ``float64`` (missing: NaN; integers among
                          the numbers become floats, exact up to 2**53)
JSON booleans             ``boolean`` (nullable)
anything else             ``object`` holding the Python values (lists,
                          mixed types, values that do not fit the
                          declared type, integers beyond 64 bits)
========================  ==============================================

``string[pyarrow]`` is deliberate: pandas 3's default ``str`` dtype marks
missing values with NaN and pandas 2 defaults to ``object``; the pyarrow-backed
``StringDtype`` exists in both, uses ``pd.NA`` like the ``Int64`` and
``boolean`` columns, and takes a quarter of the memory of Python strings.

Name clashes never overwrite data: if two different values would get the
same column name (a JSON key containing a dot, such as ``{"a.b": 1, "a":
{"b": 2}}``, or a projected JSON path beside the expansion of its field that
reaches a different value), :class:`ColumnClashError` is raised, naming both.
Two routes to the *same* JSON path (``fields=['job_spec',
'job_spec.cfg.code']``) hold the same values and give one column.

JSON text is parsed chunk by chunk with pyarrow's JSON reader; columns whose
rows disagree on types (or hold values pyarrow would change, such as
ISO-8601 strings it reads as timestamps) are parsed with :func:`json.loads`
instead, giving the same frame.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from . import vocabulary
from .dao import query as _query
from .dao.utils import check_chunksize, generate_timestamp
from .errors import ArgumentError, ArgumentTypeError, ColumnClashError, CorruptRecordError, QueryError

if TYPE_CHECKING:
    from .dao.sqlite_dao import SqliteDAO

__all__ = ["ColumnClashError", "STRING_DTYPE", "query_ents_df", "iter_ents_df", "to_frame", "common_dtype",
           "conform", "concat_frames", "merge_column_order", "dtype_votes", "arrow_dtype"]

#: The dtype of text columns (identical under pandas 2 and 3).
STRING_DTYPE = pd.StringDtype("pyarrow")
#: Rows fetched and converted at a time by :func:`query_ents_df` (bounds peak memory).
READ_CHUNK = 16_384
#: ``progress=None`` shows a bar when interactive and at least this many rows are read.
PROGRESS_MIN_ROWS = 500_000

_INT64 = (-(2**63), 2**63 - 1)
_ARROW_PANDAS = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
                 pa.string(): STRING_DTYPE, pa.large_string(): STRING_DTYPE}


def arrow_dtype(arrow_type: pa.DataType) -> Any:
    """The frame dtype of an arrow type where it is not pandas' default (a ``types_mapper`` for ``to_pandas``)."""
    return _ARROW_PANDAS.get(arrow_type)

_NONE = type(None)
Path = tuple[str, ...]


def check_chunking(chunksize: Any, progress: Any) -> None:
    """Raise a clear error unless *chunksize* is a positive int and *progress* True, False or None."""
    check_chunksize(chunksize)
    if progress is not None and not isinstance(progress, bool):
        raise ArgumentTypeError(f"progress must be True, False or None, got {progress!r}")


def epoch_to_utc(values: Any) -> pd.Series:
    """Epoch seconds (numbers, None) as a ``datetime64[ns, UTC]`` Series (NaT for missing)."""
    seconds = pd.to_numeric(pd.Series(values), errors="coerce")
    return pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")


# -- column kinds ---------------------------------------------------------------------------
def _kinds(fields: Any) -> dict[str, str]:
    """Map field name -> :class:`~jobman_nb.vocabulary.ColumnKind`."""
    if isinstance(fields, type):
        fields = fields.get_field_infos()
    if not isinstance(fields, Mapping) or not fields:
        raise ArgumentTypeError(f"fields must be a non-empty dict {{name: field info or type}}, got {fields!r}")
    kinds = {}
    for name, info in fields.items():
        sql_type = info if isinstance(info, str) else (info.get("type") if isinstance(info, Mapping) else None)
        if not isinstance(sql_type, str):
            raise ArgumentTypeError(f"field {name!r}: expected a field info dict with a 'type' or a type name, "
                                    f"got {info!r}")
        timestamp = isinstance(info, Mapping) and generate_timestamp in (info.get("default"), info.get("auto_update"))
        kinds[name] = vocabulary.column_kind(name, sql_type, timestamp=timestamp)
    return kinds


def _kind_of(name: str, kinds: Mapping[str, str]) -> str:
    if name in kinds:
        return kinds[name]
    head = name.partition(".")[0]
    if kinds.get(head) == "JSON":
        return "JSON"  # a projected path into a JSON field
    raise QueryError(f"unknown field {name!r}; fields are {', '.join(kinds)}, or dotted paths into "
                     f"JSON fields ({', '.join(n for n, k in kinds.items() if k == 'JSON') or 'none'})")


# -- pieces: one column of one chunk -------------------------------------------------------
#: One column of one chunk while rows are read: arrow values, turned into a Series once, when
#: the chunks are stacked (:func:`_stack`), or a Series already where Python values were needed.
Piece = pa.Array | pa.ChunkedArray | pd.Series
_KIND_ARROW = {"TEXT": pa.string(), "STATUS": pa.string(), "INTEGER": pa.int64()}


def _object_series(values: Sequence[Any]) -> pd.Series:
    # fromiter keeps each value one element (np.array would broadcast lists into 2-D)
    return pd.Series(np.fromiter(values, dtype=object, count=len(values)), dtype=object, copy=False)


def _infer_series(values: Sequence[Any]) -> pd.Series:
    """A Series of Python values with the dtype the module docstring promises."""
    types = set(map(type, values)) - {_NONE}
    try:
        if not types:
            return _object_series(values)
        if types == {str}:
            return pd.Series(pa.array(values, pa.string()).to_pandas(types_mapper=_ARROW_PANDAS.get))
        if types == {bool}:
            return pd.Series(pd.array(values, dtype="boolean"))
        if types == {int}:
            if all(_INT64[0] <= v <= _INT64[1] for v in values if v is not None):
                return pd.Series(pd.array(values, dtype="Int64"))
        elif types <= {int, float}:
            return pd.Series(np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64))
    except OverflowError:  # an integer beyond float range
        pass
    return _object_series(values)


def _column_piece(kind: str, values: Sequence[Any]) -> Piece:
    """A non-JSON column of a declared kind: arrow values of its type, or the Python values if they do not fit."""
    if isinstance(values, pa.Array):  # from _typed_read: already of the kind's arrow type
        return values
    if kind in ("BLOB", "NUMERIC"):
        return _infer_series(values) if kind == "NUMERIC" else _object_series(values)
    try:
        arr = pa.array(values)  # pyarrow's own inference refuses mixed types (a cast would not)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return _object_series(values)
    t = arr.type
    if pa.types.is_null(t):
        return arr.cast(_KIND_ARROW.get(kind, pa.float64()))
    if kind in ("TEXT", "STATUS") and not pa.types.is_string(t):
        return _object_series(values)
    if kind == "INTEGER" and not pa.types.is_int64(t):
        return _object_series(values)
    if kind in ("FLOAT", "TIME"):
        if not (pa.types.is_int64(t) or pa.types.is_float64(t)):
            return _object_series(values)
        return arr.cast(pa.float64())
    return arr


def _arrow_series(arr: pa.Array | pa.ChunkedArray, time: bool = False) -> pd.Series:
    """The Series of arrow values (epoch seconds if *time*), with the dtype the module docstring promises."""
    if time:
        return epoch_to_utc(arr.to_numpy(zero_copy_only=False))
    if pa.types.is_float64(arr.type):
        return pd.Series(arr.to_numpy(zero_copy_only=False))
    if pa.types.is_list(arr.type) or pa.types.is_null(arr.type):
        with _collector_paused():  # a list per row: collections set off by them, not garbage
            return _object_series(arr.to_pylist())
    return pd.Series(arr.to_pandas(types_mapper=_ARROW_PANDAS.get))


def _piece_series(piece: Piece, time: bool = False) -> pd.Series:
    return piece if isinstance(piece, pd.Series) else _arrow_series(piece, time)


def _has_values(piece: Piece) -> bool:
    if isinstance(piece, pd.Series):
        return bool(piece.notna().any())
    return piece.null_count < len(piece)


def _column_series(kind: str, values: Sequence[Any]) -> pd.Series:
    """A non-JSON column of a declared kind; values that do not fit keep their Python values."""
    return _piece_series(_column_piece(kind, values), kind == "TIME")


# -- JSON -----------------------------------------------------------------------------------
def _loads(value: Any, name: str, key: Any, table: str) -> Any:
    if value is None or value.__class__ is not str:
        return value  # SQL NULL, or a bare number written by another tool
    if value == "":
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise CorruptRecordError(f"{table}: record {key!r}, field {name!r} holds invalid JSON "
                                 f"{value!r:.80}: {exc}") from None


def _flatten(values: Sequence[Any], root: Path) -> list[tuple[Path, pd.Series]]:
    """Expand parsed JSON values (dicts expand, anything else stays) into (path, Series) pairs."""
    n = len(values)
    own: list[Any] = [None] * n
    tree: dict[str, list] = {}  # key -> [children, values or None, held an object]

    def visit(obj: Mapping[str, Any], node: dict[str, list], i: int) -> None:
        for k, v in obj.items():
            child = node.get(k)
            if child is None:
                child = node[k] = [{}, None, False]
            if isinstance(v, dict):
                child[2] = True
                visit(v, child[0], i)
            else:
                if child[1] is None:
                    child[1] = [None] * n
                child[1][i] = v

    for i, v in enumerate(values):
        if isinstance(v, dict):
            visit(v, tree, i)
        else:
            own[i] = v
    out = [(root, _infer_series(own))]

    def walk(node: dict[str, list], path: Path) -> None:
        for k, (children, vals, held_object) in node.items():
            p = (*path, str(k))
            if vals is not None and not (held_object and all(v is None for v in vals)):
                out.append((p, _infer_series(vals)))
            walk(children, p)

    walk(tree, root)
    return out


def _faithful(t: pa.DataType) -> bool:
    """Whether pyarrow's value of this JSON type converts back to what json.loads gives."""
    if t in _ARROW_PANDAS or pa.types.is_null(t) or pa.types.is_float64(t):
        return True
    if pa.types.is_list(t):
        # Not lists of nulls: pyarrow (26) fails to convert list<null> to Python. Not lists of
        # floats: pyarrow makes the integers among them floats too, where a list cell holds the
        # json.loads values (2**53 + 1 stays itself, 1 stays an int).
        item = t.value_type
        return not (pa.types.is_null(item) or pa.types.is_floating(item)) and _faithful(item)
    return False  # timestamps parsed from strings, objects inside lists, ...


def _valid(arr: pa.ChunkedArray) -> bool:
    if not pa.types.is_list(arr.type):
        return True
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return False  # pyarrow (26) builds broken lists from JSON lists holding null
    return True


def _leaf_piece(arr: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """A leaf column parsed by pyarrow, or None if json.loads must give its values."""
    numbers = arr
    while pa.types.is_list(numbers.type):
        numbers = pc.list_flatten(numbers)
    if pa.types.is_float64(numbers.type):
        top = pc.max(pc.abs(numbers)).as_py()
        if top is not None and top >= 2.0**63:
            return None  # maybe an integer beyond 64 bits, which json.loads keeps exact
    return arr


def _positions(pos: np.ndarray, n: int) -> pa.Array:
    """A take index placing row j of a parsed subset at row pos[j] of n (null elsewhere)."""
    index = np.full(n, -1, dtype=np.int64)
    index[pos] = np.arange(len(pos), dtype=np.int64)
    return pa.array(index, mask=index < 0)


#: ``submit(fn, *args)``: a Future of ``fn(*args)``, run by a worker thread or already done (:func:`_now`).
Submit = Callable[..., Future]


def _now(fn: Callable[..., Any], *args: Any) -> Future:
    """Run *fn* here and now: the *submit* of a read in one piece."""
    done: Future = Future()
    done.set_result(fn(*args))
    return done


def _json_buffer(lines: pa.Array) -> tuple[pa.Buffer, bool]:
    """The JSON texts of *lines* (no nulls) back to back, from the array's own character buffer, and
    whether one spans lines. JSON needs no separator between objects; a row count tells if two texts
    merged or one split."""
    _, offsets, chars = lines.buffers()
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[lines.offset:lines.offset + len(lines) + 1]
    data = chars[int(bounds[0]):int(bounds[-1])] if len(lines) and chars is not None else pa.py_buffer(b"")
    return data, bool(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 10))


def _parse_json(data: pa.Buffer, multiline: bool) -> pa.Table | None:
    """Parse a :func:`_json_buffer` with pyarrow's JSON reader; None if it refuses it.

    One block, on purpose: over several blocks (what would let it use threads), pyarrow 26 reads
    a number as text when an earlier block made the column a string column, where one block refuses
    the mixed types (and json.loads keeps the number).
    """
    try:
        return pa_json.read_json(pa.BufferReader(data),
                                 read_options=pa_json.ReadOptions(block_size=max(len(data), 1) + 1),
                                 parse_options=pa_json.ParseOptions(newlines_in_values=multiline))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _read_json_lines(lines: pa.Array) -> pa.Table | None:
    """Parse JSON object texts (no nulls) with pyarrow's JSON reader in one pass; None if it refuses them."""
    return _parse_json(*_json_buffer(lines))


def _own_arrow(text: pa.Array, pos: np.ndarray, n: int) -> Piece | None:
    """The JSON field's own column parsed by pyarrow: its values that are not objects (at *pos*),
    missing elsewhere; None unless pyarrow parses them all alike (each text wrapped as
    ``{"v": ...}``), with types that convert back faithfully."""
    if not len(pos):
        return pa.nulls(n)
    parsed = _read_json_lines(pc.binary_join_element_wise('{"v":', text.take(pa.array(pos)), "}", ""))
    if parsed is not None and parsed.num_rows == len(pos) and parsed.column_names == ["v"]:
        arr = parsed.column("v")
        if not pa.types.is_struct(arr.type) and _faithful(arr.type) and _valid(arr):
            return _leaf_piece(arr if len(pos) == n else arr.take(_positions(pos, n)))
    return None


def _own_python(text: pa.Array, pos: np.ndarray, n: int, name: str, keys: Sequence[Any],
                table: str) -> Piece | None:
    """The JSON field's own column by json.loads (where :func:`_own_arrow` gave up); None if one
    of the values is an object after all."""
    own: list[Any] = [None] * n
    for i, v in zip(pos.tolist(), text.take(pa.array(pos)).to_pylist(), strict=True):
        own[i] = _loads(v, name, keys[i], table)
        if isinstance(own[i], dict):
            return None
    return _infer_series(own)


class _Scan(NamedTuple):
    """What pyarrow alone makes of one chunk of a JSON text column (see :func:`_scan_text`)."""

    obj_pos: np.ndarray  # the rows holding objects
    other_pos: np.ndarray  # the rows holding other values (not null)
    objects: pa.Array | None  # the texts of the objects (None: there are none)
    # the objects' leaves, depth first: (keys below the root, values at every row, or None where
    # pyarrow's values would not convert back faithfully); None if pyarrow refused the objects
    leaves: list[tuple[Path, Piece | None]] | None
    own: Piece | None  # the other values (None: pyarrow could not tell them)


def _scan_text(text: pa.Array) -> _Scan:
    """Find the rows of a JSON text column holding objects and other values, column-wise (no loop
    over the rows), and parse both with pyarrow: the part of a chunk's expansion that needs no
    Python values, so a worker thread runs it while this thread reads the next batch."""
    n = len(text)
    is_obj = pc.fill_null(pc.starts_with(text, "{"), False)
    is_other = pc.fill_null(pc.and_(pc.invert(is_obj), pc.not_equal(text, "null")), False)
    obj_pos = np.flatnonzero(is_obj.to_numpy(zero_copy_only=False))
    other_pos = np.flatnonzero(is_other.to_numpy(zero_copy_only=False))
    objects = text.filter(is_obj) if len(obj_pos) else None
    leaves = None
    parsed = None if objects is None else _parse_json(*_json_buffer(objects))
    if parsed is not None and parsed.num_rows == len(obj_pos):  # else types differ, or invalid JSON
        take = None if len(obj_pos) == n else _positions(obj_pos, n)
        leaves = []
        # Depth first with a stack, not a recursive closure: that would be a reference cycle
        # holding this chunk's arrow arrays until the next collection.
        todo = [((f.name,), col) for f, col in zip(parsed.schema, parsed.columns, strict=True)][::-1]
        while todo:
            path, arr = todo.pop()
            if pa.types.is_struct(arr.type):
                todo.extend([((*path, f.name), child) for f, child in zip(arr.type, arr.flatten(), strict=True)][::-1])
                continue
            piece = None
            if _faithful(arr.type) and _valid(arr):
                piece = _leaf_piece(arr if take is None else arr.take(take))
            leaves.append((path, piece))
    return _Scan(obj_pos, other_pos, objects, leaves, _own_arrow(text, other_pos, n))


def _expand_text(values: Sequence[Any], root: Path, keys: Sequence[Any], table: str,
                 submit: Submit = _now) -> Callable[[], list[tuple[Path, Piece]]]:
    """Expand one chunk of a JSON text column, in two steps.

    This call makes the texts an arrow array and hands it to *submit*, to be scanned and parsed
    by pyarrow (:func:`_scan_text`); the function it returns waits for that and makes the columns.
    """
    n = len(values)
    name = ".".join(root)

    def python_route() -> list[tuple[Path, Piece]]:
        return _flatten([_loads(v, name, keys[i], table) for i, v in enumerate(_python(values))], root)

    if isinstance(values, pa.Array):  # from _typed_read
        text = values
    else:
        try:
            text = pa.array(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # bare numbers written by another tool
            return python_route
    scanning = submit(_scan_text, text)

    def finish() -> list[tuple[Path, Piece]]:
        obj_pos, other_pos, objects, leaves, own = scanning.result()
        if own is None:
            own = _own_python(text, other_pos, n, name, keys, table)
        if own is None:  # JSON text of an object with leading blanks, from another tool
            return python_route()
        if objects is None:
            return [(root, own)]
        if leaves is None:  # types differ between rows (or invalid JSON, which json.loads reports)
            return python_route()
        loaded: list[Any] = []

        def python_leaf(path: Path) -> pd.Series:
            if not loaded:
                loaded.extend(json.loads(t) for t in objects.to_pylist())
            vals: list[Any] = [None] * n
            for j, obj in enumerate(loaded):
                for k in path:
                    obj = obj.get(k) if isinstance(obj, dict) else None
                vals[obj_pos[j]] = obj
            return _infer_series(vals)

        return [(root, own), *(((*root, *path), python_leaf(path) if piece is None else piece)
                               for path, piece in leaves)]

    return finish


# -- frames ---------------------------------------------------------------------------------
Paths = dict[str, Path]


def _tree_order(path_groups: Iterable[Iterable[Path]]) -> list[Path]:
    """Order column paths as a walk of their key tree: each key where first seen, children after it."""
    tree: dict[str, list] = {}  # key -> [children, is a column]
    for paths in path_groups:
        for path in paths:
            node = tree
            for k in path[:-1]:
                node = node.setdefault(k, [{}, False])[0]
            node.setdefault(path[-1], [{}, False])[1] = True
    out: list[Path] = []

    def walk(node: dict[str, list], prefix: Path) -> None:
        for k, (children, is_column) in node.items():
            p = (*prefix, k)
            if is_column:
                out.append(p)
            walk(children, p)

    walk(tree, ())
    return out


def _check_clash(paths: Paths, name: str, path: Path) -> bool:
    """Record *path* as column *name*; False if already there (same path), raise if a different path."""
    known = paths.get(name)
    if known is None:
        paths[name] = path
        return True
    if known == path:
        return False  # the same JSON path reached twice holds the same values
    raise ColumnClashError(
        f"two values would both be column {name!r}: {_describe(known)} and {_describe(path)}; "
        "nothing was overwritten. Use expand_json=False, or select fields that avoid one of them")


def _ordered(names: Iterable[str], paths: Paths, path_groups: Iterable[Iterable[Path]]) -> list[str]:
    by_path = {p: n for n, p in paths.items()}
    order = [by_path[p] for p in _tree_order(path_groups) if p in by_path]
    order += [n for n in names if n not in order]
    if "key" in order:
        order.remove("key")
        order.insert(0, "key")
    return order


def _object_roots(columns: Mapping[str, Any], paths: Paths) -> list[str]:
    """Columns of JSON values that held only objects: all missing, with dotted columns beneath them.

    Such a column says nothing its dotted columns do not, so it is left out; it stays
    where some row held a value that is not an object (a scalar, a list).
    """
    parents = {path[:i] for path in paths.values() for i in range(1, len(path))}
    return [name for name, path in paths.items()
            if path in parents and name in columns and not _has_values(columns[name])]


def _describe(path: Path) -> str:
    if len(path) == 1:
        return f"field {path[0]!r}"
    return f"key path {list(path[1:])!r} of {path[0]!r}"


class _Chunk(NamedTuple):
    """The columns of one chunk of rows, by name, with the JSON path each comes from."""

    rows: int
    pieces: dict[str, Piece]
    paths: Paths


def _prepare_chunk(names: Sequence[str], columns: Sequence[Sequence[Any]], kinds: Mapping[str, str], *,
                   parsed: bool, expand_json: bool, table: str, start: int = 0,
                   submit: Submit = _now) -> Callable[[], _Chunk]:
    """Convert one chunk of column-wise values (JSON as text, or already *parsed*), in two steps.

    The JSON texts are handed to *submit* to parse; the function returned waits for those
    parses and gives the chunk.
    """
    n = len(columns[0]) if columns else 0
    keys = _python(columns[names.index("key")]) if "key" in names else range(start, start + n)
    parts: list[list[tuple[Path, Piece]] | Callable[[], list[tuple[Path, Piece]]]] = []
    for name, values in zip(names, columns, strict=True):
        kind = _kind_of(name, kinds)
        if kind != "JSON":
            parts.append([((name,), _column_piece(kind, values))])
            continue
        root = tuple(name.split("."))
        if not expand_json:
            if not parsed:
                values = [_loads(v, name, k, table) for v, k in zip(_python(values), keys, strict=True)]
            parts.append([(root, _object_series(values))])
        elif parsed:
            parts.append(_flatten(values, root))
        else:
            parts.append(_expand_text(values, root, keys, table, submit))

    def finish() -> _Chunk:
        pieces: dict[str, Piece] = {}
        paths: Paths = {}
        for part in parts:
            for path, piece in (part() if callable(part) else part):
                name = ".".join(path)
                if _check_clash(paths, name, path):
                    pieces[name] = piece
        for name in _object_roots(pieces, paths):
            del pieces[name], paths[name]
        return _Chunk(n, pieces, paths)

    return finish


def _stack_column(pieces: Sequence[Piece | None], sizes: Sequence[int], name: str, time: bool) -> pd.Series:
    """One column from its pieces in each chunk (None: not in that chunk), as if read in one piece."""
    present = [p for p in pieces if p is not None]
    if not any(isinstance(p, pd.Series) for p in present):
        types = {p.type for p in present} - {pa.null()}
        if len(types) <= 1:  # one arrow type (or nothing but nulls): converted once
            t = types.pop() if types else pa.null()
            arrays: list[pa.Array] = []
            for p, size in zip(pieces, sizes, strict=True):
                if p is None or p.type != t:
                    arrays.append(pa.nulls(size, t))
                else:
                    arrays.extend(p.chunks if isinstance(p, pa.ChunkedArray) else [p])
            return _arrow_series(pa.chunked_array(arrays, t), time)
    # Pieces that differ: each becomes a Series and they stack by the one rule, common_dtype.
    series = [None if p is None else _piece_series(p, time) for p in pieces]
    votes = [s.dtype for s in series if s is not None and not (s.dtype == object and s.isna().all())]
    dtype = common_dtype(votes, name)
    if pd.api.types.is_object_dtype(dtype) and np.dtype(np.float64) in votes and all(
            s is None or s.dtype == np.float64 or s.dtype == "Int64" or (s.dtype == object and _only_ints(s))
            for s in series):
        # integers beyond 64 bits (an object piece) among floats: floats, as in one piece
        # (_infer_series), unless one is beyond float range too
        try:
            return pd.concat([_conform_series(s, np.dtype(np.float64), size) for s, size in
                              zip(series, sizes, strict=True)], ignore_index=True)
        except OverflowError:
            pass
    return pd.concat([_conform_series(s, dtype, size) for s, size in zip(series, sizes, strict=True)],
                     ignore_index=True)


def _only_ints(values: pd.Series) -> bool:
    """Whether the non-missing values are all Python ints (not bools)."""
    return all(v.__class__ is int for v in values if v is not None and v is not pd.NA)


def _stack(chunks: list[_Chunk], kinds: Mapping[str, str], start: int = 0) -> tuple[pd.DataFrame, Paths]:
    """The frame of the chunks, each column given one dtype and place, converted column by column.

    The chunks' pieces are let go of column by column, so the chunks and the frame never
    both exist in full, which keeps the peak memory near the frame's own size.
    """
    paths: Paths = {}
    for chunk in chunks:
        for name, path in chunk.paths.items():
            _check_clash(paths, name, path)
    order = _ordered(paths, paths, [chunk.paths.values() for chunk in chunks])
    sizes = [chunk.rows for chunk in chunks]
    index = pd.RangeIndex(start, start + sum(sizes))
    columns: dict[str, pd.Series] = {}
    for name in order:
        columns[name] = _stack_column([chunk.pieces.pop(name, None) for chunk in chunks], sizes, name,
                                      kinds.get(name) == "TIME")
        columns[name].index = index
    for name in _object_roots(columns, paths):  # all missing in every chunk, objects in some
        del columns[name], paths[name]
    frame = pd.DataFrame(columns, copy=False)
    frame.index = index
    return frame, paths


def _chunk_frame(names: Sequence[str], columns: Sequence[Sequence[Any]], kinds: Mapping[str, str], *,
                 parsed: bool, expand_json: bool, table: str, start: int = 0) -> tuple[pd.DataFrame, Paths]:
    """Build one frame from column-wise values (JSON as text, or already *parsed*)."""
    chunk = _prepare_chunk(names, columns, kinds, parsed=parsed, expand_json=expand_json, table=table, start=start)()
    return _stack([chunk], kinds, start)


def _status_categories(values: Iterable[Any]) -> list[Any]:
    return vocabulary.status_order(values)


def _set_status(frame: pd.DataFrame, categories: Sequence[Any] | None = None) -> pd.DataFrame:
    if "status" in frame.columns and not isinstance(frame["status"].dtype, pd.CategoricalDtype):
        col = frame["status"]
        if categories is None:
            categories = _status_categories(col.dropna().unique())
        if col.dtype == object:
            col = col.where(col.notna(), None)
        frame["status"] = pd.Categorical(col, categories=categories)
    return frame


# -- stacking: the one place that decides a stacked column's dtype -------------------------
def common_dtype(dtypes: Sequence[Any], name: Any = None) -> Any:
    """The dtype a column takes when pieces with these dtypes are stacked.

    One dtype stays; ``Int64`` with ``float64`` gives ``float64``;
    categoricals give the union of their categories (for ``status``: the job
    statuses in order, then the others sorted); anything else, or no dtype at
    all, gives ``object`` (the Python values).
    """
    unique = list(dict.fromkeys(dtypes))
    if not unique:
        return np.dtype(object)
    if all(isinstance(d, pd.CategoricalDtype) for d in unique):
        cats: dict[Any, None] = {}
        for d in unique:
            cats.update(dict.fromkeys(d.categories))
        return pd.CategoricalDtype(vocabulary.status_order(cats) if name == "status" else list(cats))
    if len(unique) == 1:
        return unique[0]
    if all(d == "Int64" or d == np.float64 for d in unique):
        return np.dtype(np.float64)
    return np.dtype(object)


def dtype_votes(frames: Iterable[pd.DataFrame]) -> dict[Any, list[Any]]:
    """``{column: dtypes it has in the frames}``, columns in first-seen order.

    An all-missing ``object`` column (a JSON key only ever null there) casts
    no vote: it takes whatever dtype the other pieces give.
    """
    votes: dict[Any, list[Any]] = {}
    for f in frames:
        for name, col in f.items():
            votes.setdefault(name, [])
            if not (col.dtype == object and col.isna().all()):
                votes[name].append(col.dtype)
    return votes


def merge_column_order(order: Sequence[Any], columns: Iterable[Any]) -> list[Any]:
    """Add *columns* new to *order*, each after its predecessor in *columns* (so JSON siblings stay together)."""
    out = list(order)
    present = set(out)
    previous = None
    for c in columns:
        if c not in present:
            at = out.index(previous) + 1 if previous is not None else 0
            out.insert(at, c)
            present.add(c)
        previous = c
    return out


def _conform_series(col: pd.Series | None, dtype: Any, size: int, index: Any = None) -> pd.Series:
    """*col* as *dtype*, as stacking gives it (None: *size* missing values)."""
    if col is None:
        return pd.Series(pd.array([None] * size, dtype=dtype), index=index)
    if col.dtype == dtype:
        return col
    if isinstance(dtype, pd.CategoricalDtype):
        return col.astype(object).where(col.notna(), None).astype(dtype)
    if pd.api.types.is_object_dtype(dtype):
        return col.astype(object).where(col.notna(), None)
    return col.astype(dtype)


def conform(frame: pd.DataFrame, dtypes: Mapping[Any, Any]) -> pd.DataFrame:
    """Return *frame* with exactly the columns of *dtypes*, in that order (all-missing if absent), with those dtypes."""
    out = {name: _conform_series(frame[name] if name in frame.columns else None, dtype, len(frame), frame.index)
           for name, dtype in dtypes.items()}
    return pd.DataFrame(out, index=frame.index, copy=False)


def concat_frames(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Stack frames whose columns may differ, giving each column one place and one :func:`common_dtype`.

    Returns
    -------
    pandas.DataFrame
        Index ``0..n-1``.

    Raises
    ------
    ValueError
        If there is no frame.
    """
    if not frames:
        raise ArgumentError("concat_frames needs at least one frame")
    order: list[Any] = []
    for f in frames:
        order = merge_column_order(order, f.columns)
    votes = dtype_votes(frames)
    target = {name: common_dtype(votes[name], name) for name in order}
    return pd.concat([conform(f, target) for f in frames], ignore_index=True)


def to_frame(records: Iterable[Mapping[str, Any]], fields: Any, *, expand_json: bool = True) -> pd.DataFrame:
    """Turn records already in hand (e.g. from ``query_jobs``) into the frame ``query_jobs_df`` gives.

    Parameters
    ----------
    records : iterable of dict
        Records with JSON fields holding parsed values; keys may also be
        dotted JSON paths (records of a projection).
    fields : dict or Schema subclass
        The field infos (``orm.fields``) or the ``{name: type}`` mapping
        (``orm.columns``).
    expand_json : bool
        Expand JSON objects into dotted columns (default); False keeps the
        parsed values in one column per field.

    Returns
    -------
    pandas.DataFrame
        Columns in the records' key order (the schema's order for no records).

    Raises
    ------
    QueryError
        For a record key that is not a field (or a path into a JSON field).
    ColumnClashError
        If two different values would get the same column name.
    """
    kinds = _kinds(fields)
    records = list(records)
    names: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ArgumentTypeError(f"record {i} is a {type(rec).__name__}, not a dict")
        names.update(dict.fromkeys(rec))
    if not records:
        names = dict.fromkeys(kinds)
    for name in names:
        _kind_of(name, kinds)
    columns = [[rec.get(name) for rec in records] for name in names]
    frame, _ = _chunk_frame(list(names), columns, kinds, parsed=True, expand_json=expand_json, table="records")
    return _set_status(frame)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (as it was before, if it was off already).

    Reading a batch makes a tracked tuple per row and transposing it a tracked iterator per
    row, none of them in a cycle; each 700 of them set off a collection, and with the rows
    alive the collector ends up running full passes over everything in the process.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _LazyList(Sequence):
    """The Python values of an arrow array, made on first use (error messages and fallbacks only)."""

    def __init__(self, arr: pa.Array) -> None:
        self._arr, self._values = arr, None

    def _list(self) -> list[Any]:
        if self._values is None:
            self._values = self._arr.to_pylist()
        return self._values

    def __getitem__(self, i: Any) -> Any:
        return self._list()[i]

    def __len__(self) -> int:
        return len(self._arr)


def _python(values: Sequence[Any] | pa.Array) -> Sequence[Any]:
    return _LazyList(values) if isinstance(values, pa.Array) else values


#: The arrow type each column kind converts to in one pass over the rows (:func:`_typed_read`).
_ROW_TYPES = {"TEXT": pa.string(), "STATUS": pa.string(), "JSON": pa.string(), "INTEGER": pa.int64(),
              "FLOAT": pa.float64(), "TIME": pa.float64()}
#: The SQLite value types that such a conversion would take silently, but not as the column-wise
#: one does: a BLOB in a text column (arrow makes it text) and a REAL in an integer column
#: (arrow truncates it). Any other misfit makes the conversion fail.
_MISFITS = {"TEXT": "blob", "STATUS": "blob", "INTEGER": "real"}
ColumnsOf = Callable[[list[tuple]], list[Any]]


def _typed_read(select: _query.Select, kinds: Mapping[str, str]) -> tuple[_query.Select, ColumnsOf]:
    """The SELECT to run, and the function from a batch of its rows to their columns.

    When every column read is a plain column whose kind has one arrow type, each batch becomes
    arrow arrays in one pass over its rows (one C++ loop, instead of a transposition and a
    conversion per column), which gives the same arrays. The SELECT then also computes, per
    row, whether a value is of a type that pass would take differently (:data:`_MISFITS`); a
    batch holding one, or a value that does not fit at all, goes column by column, as Python
    values, like any batch when the fast pass does not apply.
    """
    names = select.names
    width = len(names)
    plain = partial(_rows_to_columns, width=width)
    types = [_ROW_TYPES.get(kinds.get(name, "")) for name in names]
    if not names or None in types or select.columns_sql != ", ".join(map(_query.quote_identifier, names)):
        return select, plain
    prefix = "SELECT " + select.columns_sql + " FROM "
    if not select.sql.startswith(prefix):
        return select, plain
    checks = [f"typeof({_query.quote_identifier(name)}) = '{_MISFITS[kinds[name]]}'"
              for name in names if kinds[name] in _MISFITS]
    misfit = "(" + " OR ".join(checks) + ")" if checks else "0"
    flagged = replace(select, sql=f"SELECT {select.columns_sql}, {misfit} FROM " + select.sql[len(prefix):])
    row_type = pa.struct([*(pa.field(f"c{i}", t) for i, t in enumerate(types)), pa.field("misfit", pa.int64())])

    def columns(rows: list[tuple]) -> list[Any]:
        try:
            *arrays, misfits = pa.array(rows, type=row_type).flatten()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            misfits = None
        if misfits is None or pc.sum(misfits).as_py():
            return _rows_to_columns(rows, width + 1)[:width]  # column by column, the flag left out
        return arrays

    return flagged, columns


def _rows_to_columns(rows: list[tuple], width: int) -> list[Sequence[Any]]:
    if not rows:
        return [() for _ in range(width)]
    with _collector_paused():  # more than half of the transposing, at 16k rows
        return list(zip(*rows, strict=True))


def _next_batch(batches: Iterator[list[tuple]]) -> list[tuple] | None:
    with _collector_paused():
        return next(batches, None)


def _convert(batches: Iterator[list[tuple]], columns_of: ColumnsOf,
             prepare: Callable[[list[Sequence[Any]], int, Submit], Callable[[], _Chunk]]) -> list[_Chunk]:
    """Convert every batch of rows; a worker thread parses one batch's JSON while the next is read.

    The worker runs only pyarrow's JSON reader, which lets go of the GIL; the rest (reading,
    the columns) stays on this thread, so the two never queue for the GIL. At most two batches
    are held.
    """
    rows = _next_batch(batches)
    if rows is None or len(rows) < READ_CHUNK:  # nothing, or the only batch: no thread
        return [prepare(columns_of(rows or []), 0, _now)()]
    chunks: list[_Chunk] = []
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobman_nb-frames")
    try:
        finish: Callable[[], _Chunk] | None = None
        start = 0
        while rows is not None:
            following = prepare(columns_of(rows), start, pool.submit)
            start += len(rows)
            del rows
            if finish is not None:
                chunks.append(finish())
            finish = following
            rows = _next_batch(batches)
        chunks.append(following())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return chunks


def _read(dao: SqliteDAO, ent_type: str | None, query: Any, chunksize: int
          ) -> tuple[Any, dict[str, str], _query.Select, ColumnsOf, Iterator[list[tuple]]]:
    orm = dao.get_orm(ent_type)
    kinds = _kinds(orm.columns)
    select, columns_of = _typed_read(dao.compile_query(ent_type, query), kinds)
    return orm, kinds, select, columns_of, dao.iter_rows(select, chunksize=chunksize)


def query_ents_df(dao: SqliteDAO, ent_type: str | None, query: Any = None, *,
                  expand_json: bool = True) -> pd.DataFrame:
    """Return the records of *ent_type* matching *query* as a DataFrame.

    Rows are read through a cursor and converted in chunks, so the Python
    rows never all exist at once.

    Parameters
    ----------
    dao : SqliteDAO
    ent_type : str
    query : dict, optional
        A query dict, as for ``query_ents`` (``fields`` projections included).
    expand_json : bool
        Expand JSON objects into dotted columns (default); False keeps each
        JSON field's parsed values in one column.

    Returns
    -------
    pandas.DataFrame
        See the module docstring for columns and dtypes. An empty result has
        the selected fields as columns, with their dtypes.

    Raises
    ------
    QueryError
        If the query is malformed (nothing runs).
    ColumnClashError
        If two different values would get the same column name.
    CorruptRecordError
        If a JSON field holds invalid JSON text.
    """
    orm, kinds, select, columns_of, batches = _read(dao, ent_type, query, READ_CHUNK)

    def convert(columns: list[Sequence[Any]], start: int, submit: Submit) -> Callable[[], _Chunk]:
        return _prepare_chunk(select.names, columns, kinds, parsed=False, expand_json=expand_json, table=orm.table,
                              start=start, submit=submit)

    with contextlib.closing(batches):
        chunks = _convert(batches, columns_of, convert)
    frame, _ = _stack(chunks, kinds)
    return _set_status(frame)


def interactive() -> bool:
    """Whether Python runs interactively (a REPL, IPython or a Jupyter kernel): where progress bars are shown."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return True
    ipython = sys.modules.get("IPython")
    return ipython is not None and getattr(ipython, "get_ipython", lambda: None)() is not None


def iter_ents_df(dao: SqliteDAO, ent_type: str | None, query: Any = None, *, chunksize: int = 50_000,
                 expand_json: bool = True, progress: bool | None = None) -> Iterator[pd.DataFrame]:
    """Yield the frame of :func:`query_ents_df` in chunks of at most *chunksize* rows.

    Every chunk has the selected fields with fixed dtypes (``status`` has the
    same categories in every chunk: the job statuses, then any other status
    in the table, so they are known before the first chunk). Dotted JSON
    columns come from the data: a chunk has every dotted column seen in it or
    in an earlier chunk (all-missing where its rows lack the key, with the
    dtype it first had), so a key that first appears in a later chunk adds a
    column from that chunk on. Indexes continue across chunks, so
    ``pd.concat(chunks)`` has the index of :func:`query_ents_df`.

    Parameters
    ----------
    dao : SqliteDAO
    ent_type : str
    query : dict, optional
    chunksize : int
        Rows per chunk.
    expand_json : bool
    progress : bool, optional
        Show a tqdm progress bar (``tqdm.auto``: a widget in notebooks). None
        shows one when running interactively and the result has at least
        :data:`PROGRESS_MIN_ROWS` rows.

    Yields
    ------
    pandas.DataFrame

    Raises
    ------
    QueryError
        If the query is malformed (raised on the first ``next``).
    """
    check_chunking(chunksize, progress)
    orm, kinds, select, columns_of, batches = _read(dao, ent_type, query, chunksize)
    categories = None
    if "status" in select.names and kinds.get("status") == "STATUS":
        # the statuses of the table, not only of the result: read from the status index in a few
        # seeks, so the first chunk does not wait for a pass over every matching row
        categories = _status_categories(dao.distinct_values(ent_type, "status"))
    total = None
    if progress is None:
        progress = interactive() and dao.count_ents(ent_type, query, cap=PROGRESS_MIN_ROWS) >= PROGRESS_MIN_ROWS
    if progress:
        from tqdm.auto import tqdm

        total = tqdm(total=dao.count_ents(ent_type, query), unit="rows", desc=f"{orm.table}")
    return _iter_chunks(orm.table, select, kinds, batches, columns_of, expand_json, categories, total)


def _iter_chunks(table: str, select: _query.Select, kinds: Mapping[str, str], batches: Iterator[list[tuple]],
                 columns_of: ColumnsOf, expand_json: bool, categories: list[Any] | None,
                 bar: Any) -> Iterator[pd.DataFrame]:
    seen: Paths = {}
    dtypes: dict[str, Any] = {}
    start = 0
    try:
        for rows in batches:
            frame, paths = _chunk_frame(select.names, columns_of(rows), kinds,
                                        parsed=False, expand_json=expand_json, table=table, start=start)
            frame = _set_status(frame, categories)
            # a JSON field NULL throughout this chunk, objects in an earlier one: still no column of its own
            known = {**paths, **{n: p for n, p in seen.items() if n not in paths}}
            drop = [n for n in _object_roots(frame, known) if n in paths and n not in seen]
            if drop:
                frame = frame.drop(columns=drop)
                paths = {n: p for n, p in paths.items() if n not in drop}
            groups = [list(seen.values()), list(paths.values())]
            for name, path in paths.items():
                _check_clash(seen, name, path)
            dtypes.update(frame.dtypes.items())  # a column keeps the dtype it last had
            order = _ordered(seen, seen, groups)
            if list(frame.columns) != order:
                frame = conform(frame, {name: dtypes[name] for name in order})
            start += len(rows)
            if bar is not None:
                bar.update(len(rows))
            yield frame
    finally:
        if bar is not None:
            bar.close()
