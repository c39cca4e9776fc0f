"""One table of records: schema, bulk saves, queries and updates.

Mirrors ``jobman.dao.orm.ORM``. Its methods take ``connection=``: a
``sqlite3.Connection`` or a ``sqlite_utils.Database``. The ORM runs
statements; transactions belong to the caller (the DAO wraps every write in
one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json as _json
import logging
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import sqlite_utils

from .. import vocabulary
from ..errors import (
    ArgumentTypeError,
    CorruptRecordError,
    InsertError,
    IntegrityError,
    QueryError,
    SchemaError,
    UpdateError,
)
from . import query as _query
from .utils import FieldInfo, Schema, generate_timestamp

__all__ = ["ORM", "Connection", "StampedUpdate", "fast_loads", "raw_connection", "iter_rows"]

Connection = sqlite3.Connection | sqlite_utils.Database
Record = dict[str, Any]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PREFIX = re.compile(r"[A-Za-z0-9_]*\Z")
#: Declared types a field may have ('JSON' is stored as TEXT holding JSON text).
FIELD_TYPES = vocabulary.FIELD_TYPES
_INT64_MAX = 2**63 - 1
# json.dumps(value, allow_nan=False) builds a JSONEncoder per call; one shared encoder gives
# the same text without that cost (save_jobs spends most of its time serializing JSON).
_ENCODE = _json.JSONEncoder(allow_nan=False).encode
# json.loads(text) runs a whitespace regex before and after the C scanner and wraps it in two
# Python calls; for the compact text json.dumps writes, the scanner alone gives the same value
# at less than half the cost (JSON decoding is most of a claim's and a query's Python time).
_SCAN = _json.JSONDecoder().scan_once


def fast_loads(text: Any) -> Any:
    """``json.loads(text)``, calling the C scanner directly when *text* is one JSON value with no padding.

    Anything else (whitespace around the value, trailing data, invalid JSON,
    bytes) goes to ``json.loads``, which returns or raises exactly as always.
    """
    try:
        value, end = _SCAN(text, 0)
    except (StopIteration, TypeError, ValueError):
        return _json.loads(text)
    if end != len(text):
        return _json.loads(text)
    return value


def raw_connection(connection: Connection) -> sqlite3.Connection:
    """Return the ``sqlite3.Connection`` behind *connection*."""
    if isinstance(connection, sqlite_utils.Database):
        return connection.conn
    if isinstance(connection, sqlite3.Connection):
        return connection
    raise ArgumentTypeError(f"connection must be a sqlite3.Connection or sqlite_utils.Database, got {connection!r}")


def _check_identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise SchemaError(f"{what} {value!r} is not a valid name: use letters, digits and '_', "
                          "not starting with a digit")
    return value


def normalize_fields(fields: Any) -> dict[str, FieldInfo]:
    """Validate field infos (a dict or a :class:`Schema` subclass) and return a copy.

    Raises
    ------
    SchemaError
        For a bad field name, a missing or unknown type, or two primary keys.
    """
    if isinstance(fields, type) and issubclass(fields, Schema):
        fields = fields.get_field_infos()
    if not isinstance(fields, Mapping) or not fields:
        raise SchemaError(f"fields must be a non-empty dict of {{name: field info}}, got {fields!r}")
    out: dict[str, FieldInfo] = {}
    for name, info in fields.items():
        _check_identifier(name, "field name")
        if not isinstance(info, Mapping) or not isinstance(info.get("type"), str):
            raise SchemaError(f"field {name!r}: a field info is a dict with a 'type', got {info!r}")
        if info["type"].upper() not in FIELD_TYPES:
            raise SchemaError(f"field {name!r}: unknown type {info['type']!r}; types are {', '.join(FIELD_TYPES)}")
        out[name] = dict(info)
    if sum(bool(i.get("primary_key")) for i in out.values()) > 1:
        raise SchemaError("at most one field may be the primary key")
    return out


def invalid_json_error(connection: Connection, table: str, json_columns: Sequence[str],
                       exc: sqlite3.Error) -> CorruptRecordError | None:
    """The :class:`CorruptRecordError` behind SQLite's "malformed JSON" *exc*, naming the table and record.

    Runs only once a statement failed: a scan for the first row of *table*
    whose JSON column holds text that is not JSON. None if *exc* is another error.
    """
    if "malformed JSON" not in str(exc):
        return None
    conn = raw_connection(connection)
    q = _query.quote_identifier
    info = conn.execute(f"PRAGMA table_info({q(table)})").fetchall()
    key = next((r[1] for r in info if r[5]), None)
    present = {r[1] for r in info}
    for column in (c for c in json_columns if c in present):
        row = conn.execute(f"SELECT {q(key) if key else 'rowid'} FROM {q(table)} WHERE typeof({q(column)}) = 'text' "
                           f"AND NOT json_valid({q(column)}) LIMIT 1").fetchone()
        if row is not None:
            return CorruptRecordError(
                f"{table}: record {row[0]!r} holds invalid JSON in {column!r}, which a JSON-path filter, order or "
                "field cannot read; fix or delete that record (a query without JSON paths still reads it)")
    return CorruptRecordError(f"{table}: a record holds invalid JSON, which a JSON-path filter, order or field "
                              f"cannot read ({exc})")


@contextlib.contextmanager
def reading_json(connection: Connection, table: str, json_columns: Sequence[str]) -> Iterator[None]:
    """Turn SQLite's "malformed JSON" inside the block into a :class:`CorruptRecordError` naming the record."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        error = invalid_json_error(connection, table, json_columns, exc)
        if error is None:
            raise
        raise error from exc


def iter_rows(select: _query.Select, connection: Connection, chunksize: int = 50_000
              ) -> Iterator[list[tuple[Any, ...]]]:
    """Run a compiled SELECT now and return an iterator over its rows, as plain tuples in lists of *chunksize*.

    The values are as stored (JSON text undecoded), in ``select.names`` order.
    The cursor closes when the iterator is exhausted or closed.

    Raises
    ------
    CorruptRecordError
        If a JSON path meets a record whose JSON text is invalid.
    """
    cur = raw_connection(connection).cursor()
    cur.row_factory = None  # plain tuples: no dicts are built
    with reading_json(connection, select.table, select.json_columns):
        cur.execute(select.sql, select.params)

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        try:
            while True:
                with reading_json(connection, select.table, select.json_columns):
                    rows = cur.fetchmany(chunksize)
                if not rows:
                    break
                yield rows
        finally:
            with contextlib.suppress(sqlite3.ProgrammingError):  # the connection may be closed already
                cur.close()

    return chunks()


@dataclasses.dataclass(frozen=True)
class StampedUpdate:
    """A compiled UPDATE whose auto-update parameters (``modified``) are filled in when it is bound."""

    sql: str
    params: list[Any]
    #: (parameter index, function giving its value now) for each auto-update field.
    stamps: tuple[tuple[int, Any], ...] = ()
    #: The auto-update fields, in the order of ``stamps``.
    stamped: tuple[str, ...] = ()

    def bind(self) -> list[Any]:
        """The parameters, auto-update values taken now."""
        params = list(self.params)
        for index, auto in self.stamps:
            params[index] = auto()
        return params

    def stamp(self, name: str, params: Sequence[Any]) -> tuple[bool, Any]:
        """``(True, value)``: the value *params* (from :meth:`bind`) give auto-update field *name*.

        ``(False, None)`` if *name* is not stamped by this update.
        """
        if name not in self.stamped:
            return False, None
        return True, params[self.stamps[self.stamped.index(name)][0]]


class ORM:
    """Maps records (dicts) to rows of one table.

    Parameters
    ----------
    name : str
        Entity name; the table is ``table_prefix + name``.
    fields : dict or Schema subclass
        Field infos: ``{'type': 'TEXT'|'INTEGER'|'FLOAT'|'JSON'|..., 'primary_key': bool,
        'default': callable, 'auto_update': callable}``.
    json : module
        Object with ``dumps`` / ``loads`` used for JSON fields.
    table_prefix : str, optional
        Prefix of the table name (letters, digits, '_').
    logger : logging.Logger, optional
    """

    InsertError = InsertError
    IntegrityError = IntegrityError
    UpdateError = UpdateError

    def __init__(self, name: str | None = None, fields: Any = None, json: Any = _json,
                 table_prefix: str | None = None, logger: logging.Logger | None = None) -> None:
        self.name = _check_identifier(name, "entity name")
        if table_prefix is not None and (not isinstance(table_prefix, str) or not _PREFIX.match(table_prefix)):
            raise SchemaError(f"table_prefix {table_prefix!r} is not valid: use letters, digits and '_'")
        self.table_prefix = table_prefix
        self.fields = normalize_fields(fields)
        self.json = json
        self.logger = logger or logging.getLogger(__name__)
        #: Column name -> declared type ('JSON' for JSON fields).
        self.columns: dict[str, str] = {n: i["type"].upper() for n, i in self.fields.items()}
        self.primary_key = next((n for n, i in self.fields.items() if i.get("primary_key")), None)
        if json is _json:
            self._dumps = _query.dumps
            self._loads = fast_loads
        else:
            self._dumps = json.dumps
            self._loads = json.loads

    @property
    def table(self) -> str:
        """Name of the table: ``table_prefix + name``."""
        return (self.table_prefix or "") + self.name

    def __repr__(self) -> str:
        return f"<ORM {self.table} ({', '.join(self.fields)})>"

    # -- schema ---------------------------------------------------------------------------
    def column_types(self) -> dict[str, str]:
        """Declared SQL types of the columns (JSON fields are TEXT)."""
        return {n: ("TEXT" if t == "JSON" else t) for n, t in self.columns.items()}

    def create_table(self, connection: Connection | None = None) -> None:
        """Create the table if it does not exist, and add schema columns it lacks.

        Existing columns are never dropped, renamed or retyped, so files that
        jobman wrote stay readable by jobman.
        """
        db = sqlite_utils.Database(raw_connection(connection), recursive_triggers=False,
                                   execute_plugins=False)
        table = db.table(self.table)
        types = self.column_types()
        if not table.exists():
            table.create(types, pk=self.primary_key, column_order=list(types), if_not_exists=True)
        else:
            present = set(table.columns_dict)
            for name, sql_type in types.items():
                if name not in present:
                    table.add_column(name, sql_type)

    def present_columns(self, connection: Connection) -> list[str]:
        """Columns the table really has (empty if it does not exist)."""
        conn = raw_connection(connection)
        return [r[1] for r in conn.execute(f"PRAGMA table_info({_query.quote_identifier(self.table)})")]

    # -- writes ---------------------------------------------------------------------------
    def _insert_sql(self, names: Sequence[str], replace: bool) -> str:
        q = _query.quote_identifier
        sql = (f"INSERT INTO {q(self.table)} ({', '.join(map(q, names))}) "
               f"VALUES ({', '.join('?' * len(names))})")
        if replace:
            if self.primary_key:
                # An upsert rather than INSERT OR REPLACE: the row is updated in place, so
                # columns outside this schema survive and UPDATE triggers see a change.
                sets = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names if n != self.primary_key)
                sql += f" ON CONFLICT({q(self.primary_key)}) DO UPDATE SET {sets}"
            else:
                sql = "INSERT OR REPLACE" + sql[len("INSERT"):]
        return sql

    def execute_insert_or_replace(self, fields: Sequence[str] | None = None, values: Sequence[Any] | None = None,
                                  replace: bool | None = None, connection: Connection | None = None) -> None:
        """Insert one row of already-serialized *values* for *fields* (replacing on key clash if *replace*).

        Raises
        ------
        IntegrityError
            On a key clash with ``replace=False``.
        InsertError
            If the row cannot be written.
        """
        for f in fields or ():
            if f not in self.columns:
                raise QueryError(f"unknown field {f!r} for table {self.table}; fields are {', '.join(self.columns)}")
        self.execute_many(list(fields or ()), [list(values or ())], bool(replace), raw_connection(connection))

    def execute_many(self, names: list[str], rows: list[Sequence[Any]], replace: bool,
                     conn: sqlite3.Connection) -> None:
        """Insert already-serialized *rows* of values for the columns *names* (the caller holds the transaction).

        Raises
        ------
        IntegrityError
            On a key clash with ``replace=False``.
        InsertError
            If a row cannot be written (the message names the first bad value).
        """
        sql = self._insert_sql(names, replace)
        try:
            conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(f"cannot save to {self.table}: {exc}"
                                 + (" (a record with this key exists; use replace=True to overwrite)"
                                    if "UNIQUE" in str(exc) else "")) from exc
        except (sqlite3.Error, OverflowError, UnicodeError, TypeError, ValueError) as exc:
            raise InsertError(f"cannot save to {self.table}: {self._diagnose(names, rows) or exc}") from exc

    def _diagnose(self, names: list[str], rows: Iterable[Sequence[Any]]) -> str | None:
        """Name the first value that SQLite cannot store, for a useful error message."""
        for i, row in enumerate(rows):
            for name, value in zip(names, row, strict=False):
                problem = None
                if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64_MAX:
                    problem = "integer does not fit SQLite's 64-bit integers"
                elif isinstance(value, str):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError as exc:
                        problem = f"text is not valid Unicode ({exc.reason})"
                elif value is not None and not isinstance(value, (int, float, str, bytes)):
                    problem = f"values of type {type(value).__name__} cannot be stored"
                if problem:
                    return f"record {i}, field {name!r}: {problem}: {value!r:.80}"
        return None

    def prepare_records(self, objs: Iterable[Mapping[str, Any]], *,
                        auto_update: bool = True) -> tuple[list[str], list[tuple], list[Record]]:
        """Apply defaults and auto-updates and serialize JSON fields.

        With ``auto_update=False``, auto-update fields (``modified``) keep the
        value the record holds and are only filled in when missing (for
        importing histories).

        Returns
        -------
        names, rows, records
            Column names, the rows to insert, and the saved records (JSON
            fields holding the values passed in).

        Raises
        ------
        InsertError
            If a record is not a dict, or a JSON value cannot be serialized.
        """
        names = list(self.fields)
        now = generate_timestamp()
        plan = []
        for name, info in self.fields.items():
            default, auto = info.get("default"), info.get("auto_update")
            # One timestamp for the whole batch: the rows are written together.
            if default is generate_timestamp:
                default = partial(float, now)
            if auto is not None and not auto_update:
                default, auto = (partial(float, now) if auto is generate_timestamp else auto), None
            sql_type = self.columns[name]
            plan.append((name, default, auto, sql_type == "JSON", sql_type in ("FLOAT", "REAL")))
        dumps = _ENCODE if self._dumps is _query.dumps else self._dumps
        null = "null" if dumps is _ENCODE else None
        # a TEXT key given as bytes would be stored as a BLOB no text key ever finds
        text_key = self.primary_key if self.columns.get(self.primary_key or "") == "TEXT" else None
        rows: list[tuple] = []
        records: list[Record] = []
        for i, obj in enumerate(objs):
            if not isinstance(obj, Mapping):
                raise InsertError(f"cannot save to {self.table}: record {i} is a {type(obj).__name__}, not a dict")
            rec: Record = {}
            row = []
            for name, default, auto, is_json, is_float in plan:
                value = obj.get(name)
                if value is None and default is not None:
                    value = default()
                if auto is not None:
                    value = now if auto is generate_timestamp else auto(record=rec)
                rec[name] = value
                if is_json:
                    if value is None and null is not None:
                        row.append(null)
                        continue
                    try:
                        value = dumps(value)
                        # the length test here too: it skips a call for nearly every value
                        if value.__class__ is str and len(value) > _query.JSON_DEPTH_MIN_LENGTH:
                            _query.check_json_depth(value)
                    except (TypeError, ValueError, RecursionError) as exc:
                        key = rec.get(self.primary_key)
                        raise InsertError(f"cannot save to {self.table}: record {i} (key {key!r}), "
                                          f"field {name!r} cannot be stored as JSON: {exc}") from None
                elif is_float and value.__class__ is float and value != value:
                    raise InsertError(f"cannot save to {self.table}: record {i}, field {name!r} is NaN, "
                                      "which SQLite would store as NULL")
                row.append(value)
            if text_key is not None:
                key = rec[text_key]
                if key.__class__ is not str and key is not None and (key.__class__ is bool or not isinstance(key, int)):
                    raise InsertError(f"cannot save to {self.table}: record {i}, key {key!r:.80} is a "
                                      f"{type(key).__name__}; keys are text (a str, or an int stored as text)")
            rows.append(tuple(row))
            records.append(rec)
        return names, rows, records

    def save_objects(self, objs: Iterable[Mapping[str, Any]], connection: Connection | None = None,
                     replace: bool = True, *, auto_update: bool = True) -> list[Record]:
        """Save many records with one bulk statement (the caller owns the transaction).

        Returns
        -------
        list of dict
            The saved records: the input with defaults (key, created) and
            auto-updates (modified) filled in.
        """
        names, rows, records = self.prepare_records(objs, auto_update=auto_update)
        if rows:
            self.execute_many(names, rows, replace, raw_connection(connection))
        return records

    def save_object(self, obj: Mapping[str, Any] | None = None, connection: Connection | None = None,
                    replace: bool = True) -> Record:
        """Save one record; see :meth:`save_objects`."""
        return self.save_objects([obj], connection=connection, replace=replace)[0]

    # -- reads ----------------------------------------------------------------------------
    def compile_query(self, query: Any = None, connection: Connection | None = None) -> _query.Select:
        """Validate *query* and compile it to a SELECT (see :mod:`jobman_nb.dao._query`)."""
        present = None if connection is None else (lambda: self.present_columns(connection))
        return _query.compile_select(query, self.table, self.columns, present)

    def decode_rows(self, rows: Iterable[Sequence[Any]], select: _query.Select) -> list[Record]:
        """Turn result rows into records, parsing JSON text."""
        names = select.names
        json_names = select.json_names
        loads = self._loads
        scan = _SCAN if loads is fast_loads else None  # fast_loads inlined: one call less per value
        out = []
        for row in rows:
            rec = dict(zip(names, row, strict=True))
            for name in json_names:
                value = rec[name]
                if value is not None:
                    try:
                        if scan is not None and value.__class__ is str and value:
                            try:
                                decoded, end = scan(value, 0)
                            except (StopIteration, ValueError):
                                end = -1
                            rec[name] = decoded if end == len(value) else _json.loads(value)
                        else:
                            rec[name] = loads(value) if value != "" else None
                    except (TypeError, ValueError) as exc:
                        if isinstance(value, (int, float)):
                            continue  # a bare number written by another tool is already a value
                        raise CorruptRecordError(
                            f"{self.table}: record {rec.get(self.primary_key, '?')!r}, field {name!r} "
                            f"holds invalid JSON {value!r:.80}: {exc}") from None
            out.append(rec)
        return out

    def reading(self, connection: Connection) -> contextlib.AbstractContextManager[None]:
        """A block in which SQLite's "malformed JSON" becomes a :class:`CorruptRecordError` naming the record."""
        return reading_json(connection, self.table, [c for c, t in self.columns.items() if t == "JSON"])

    def invalid_json(self, connection: Connection, exc: sqlite3.Error) -> CorruptRecordError | None:
        """The :class:`CorruptRecordError` naming the record behind SQLite's "malformed JSON" *exc*, else None."""
        return invalid_json_error(connection, self.table, [c for c, t in self.columns.items() if t == "JSON"], exc)

    def _cursor(self, select: _query.Select, connection: Connection) -> sqlite3.Cursor:
        cur = raw_connection(connection).cursor()
        cur.row_factory = None
        return cur.execute(select.sql, select.params)

    def query_objects(self, query: Any = None, connection: Connection | None = None) -> list[Record]:
        """Return the records matching a query dict, in query order.

        Raises
        ------
        QueryError
            If the query is malformed (before any SQL runs).
        """
        select = self.compile_query(query, connection)
        with self.reading(connection):
            rows = self._cursor(select, connection).fetchall()
        return self.decode_rows(rows, select)

    def iter_objects(self, query: Any = None, connection: Connection | None = None,
                     chunksize: int = 50_000) -> Iterator[list[Record]]:
        """Yield the records matching *query* in lists of at most *chunksize*.

        The query is validated now (a malformed one raises here); it runs on
        the first ``next()``.
        """
        select = self.compile_query(query, connection)

        def chunks() -> Iterator[list[Record]]:
            with self.reading(connection):
                cur = self._cursor(select, connection)
            while True:
                with self.reading(connection):
                    rows = cur.fetchmany(chunksize)
                if not rows:
                    break
                yield self.decode_rows(rows, select)

        return chunks()

    def _scope(self, query: Any, connection: Connection | None) -> tuple[str, list[Any]]:
        """``FROM ... WHERE ...`` selecting the rows of *query* (validated whole first), and its parameters."""
        _query.compile_select(query, self.table, self.columns)  # validates the whole query; runs nothing
        query = _query.check_query(query)
        table = _query.quote_identifier(self.table)
        if "limit" in query or "offset" in query:  # the order decides which rows
            select = _query.compile_select(query, self.table, self.columns, rowid=True)
            return f"FROM {table} WHERE rowid IN ({select.sql})", select.params
        where, params = _query.compile_where(query.get("filters"), self.columns)
        return f"FROM {table}" + (f" WHERE {where}" if where else ""), params

    def _field_expr(self, name: Any, connection: Connection | None, where: str) -> tuple[_query.FieldRef, str]:
        ref = _query.field_sql(name, self.columns, where)
        present = self.present_columns(connection) if connection is not None else None
        return ref, ("NULL" if present is not None and ref.column not in present else ref.sql)

    def _skip_scan(self, column: str, connection: Connection | None, limit: int | None) -> list[Any] | None:
        """The distinct non-NULL values of *column* by a skip-scan of an index led by it (one seek per
        value instead of a pass over every row); None without such an index or with NULLs present."""
        if not self._leads_an_index(column, connection):
            return None
        conn = raw_connection(connection)
        t, c = _query.quote_identifier(self.table), _query.quote_identifier(column)
        rows = conn.execute(
            f"WITH RECURSIVE s(v) AS (SELECT min({c}) FROM {t} UNION ALL "
            f"SELECT (SELECT min({c}) FROM {t} WHERE {c} > s.v) FROM s WHERE s.v IS NOT NULL) "
            f"SELECT v FROM s WHERE v IS NOT NULL LIMIT ?", [-1 if limit is None else limit]).fetchall()
        if not rows or conn.execute(f"SELECT 1 FROM {t} WHERE {c} IS NULL LIMIT 1").fetchone():
            return None
        return [r[0] for r in rows]

    def _leads_an_index(self, column: str, connection: Connection | None) -> bool:
        """Whether an index of the table has *column* first (so min/max and skip-scans seek)."""
        if connection is None:
            return False
        conn = raw_connection(connection)
        t = _query.quote_identifier(self.table)
        for index in conn.execute(f"PRAGMA index_list({t})").fetchall():
            first = conn.execute(f"PRAGMA index_info({_query.quote_identifier(index[1])})").fetchone()
            if first is not None and first[2] == column:
                return True
        return False

    def _decode_value(self, ref: _query.FieldRef, value: Any) -> Any:
        if ref.whole_json and isinstance(value, str):
            try:
                return self._loads(value) if value != "" else None
            except ValueError as exc:
                raise CorruptRecordError(f"{self.table}: field {ref.name!r} holds invalid JSON {value!r:.80}: "
                                         f"{exc}") from None
        return value

    def count_objects(self, query: Any = None, connection: Connection | None = None, *,
                      cap: int | None = None) -> int:
        """Count the records matching *query* (honouring its limit and offset, ignoring its order).

        With *cap*, counting stops at *cap* rows: the result is ``min(count, cap)``,
        so ``count_objects(q, cap=n + 1) > n`` asks "more than n?" without scanning further.
        """
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
            raise QueryError(f"cap must be an integer >= 0 or None, got {cap!r}")
        scope, params = self._scope(query, connection)
        if cap is None:
            sql = f"SELECT count(*) {scope}"
        else:
            sql, params = f"SELECT count(*) FROM (SELECT 1 {scope} LIMIT ?)", [*params, cap]
        with self.reading(connection):
            return int(raw_connection(connection).execute(sql, params).fetchone()[0])

    def count_by(self, field: str, query: Any = None, connection: Connection | None = None) -> dict[Any, int]:
        """``{value: number of matching records}`` for a field or JSON path, in SQLite's order of the values."""
        scope, params = self._scope(query, connection)
        ref, expr = self._field_expr(field, connection, "count_by")
        with self.reading(connection):
            rows = raw_connection(connection).execute(f"SELECT {expr}, count(*) {scope} GROUP BY 1 ORDER BY 1",
                                                      [*(ref.params if expr != "NULL" else ()), *params]).fetchall()
        return {self._decode_value(ref, v): int(n) for v, n in rows}

    def distinct_values(self, field: str, query: Any = None, connection: Connection | None = None, *,
                        limit: int | None = None) -> list[Any]:
        """The distinct values of a field or JSON path among the matching records (at most *limit*), sorted."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise QueryError(f"distinct_values: limit must be an integer >= 0 or None, got {limit!r}")
        scope, params = self._scope(query, connection)
        ref, expr = self._field_expr(field, connection, "distinct_values")
        if not _query.check_query(query) and not ref.path and expr != "NULL":
            with self.reading(connection):
                values = self._skip_scan(ref.column, connection, limit)
            if values is not None:
                return [self._decode_value(ref, v) for v in values]
        sql = f"SELECT DISTINCT {expr} {scope} ORDER BY 1 LIMIT ?"
        with self.reading(connection):
            rows = raw_connection(connection).execute(
                sql, [*(ref.params if expr != "NULL" else ()), *params, -1 if limit is None else limit]).fetchall()
        return [self._decode_value(ref, r[0]) for r in rows]

    def sample_json_paths(self, field: str, connection: Connection, *, sample: int = 500,
                          max_paths: int = 300) -> dict[str, set[str]]:
        """Leaf paths of JSON *field* in its first and last *sample* rows: ``{dotted name: json types}``.

        Bounded whatever the table's size: two LIMITed reads by rowid, then
        ``json_tree`` over at most ``2 * sample`` values. Paths through arrays,
        and keys a dotted field name cannot spell, are left out; so is
        everything when the table or column is missing or SQLite lacks JSON.
        """
        if self.columns.get(field) != "JSON":
            raise QueryError(f"sample_json_paths: {field!r} is not a JSON field of {self.table}; JSON fields are "
                             f"{', '.join(c for c, t in self.columns.items() if t == 'JSON') or 'none'}")
        t, c = _query.quote_identifier(self.table), _query.quote_identifier(field)
        sql = f"""
            SELECT j.fullkey, group_concat(DISTINCT j.type)
            FROM (SELECT * FROM (SELECT {c} AS v FROM {t} WHERE {c} IS NOT NULL ORDER BY rowid LIMIT ?)
                  UNION ALL
                  SELECT * FROM (SELECT {c} AS v FROM {t} WHERE {c} IS NOT NULL ORDER BY rowid DESC LIMIT ?)) AS s,
                 json_tree(CASE WHEN json_valid(s.v) THEN s.v ELSE '{{}}' END) AS j
            WHERE j.type NOT IN ('object', 'array')
            GROUP BY j.fullkey ORDER BY j.fullkey LIMIT ?"""
        try:
            rows = raw_connection(connection).execute(sql, (sample, sample, max_paths)).fetchall()
        except sqlite3.Error:  # a missing table or column, an old SQLite: no paths
            return {}
        out: dict[str, set[str]] = {}
        for fullkey, types in rows:
            keys = _query.json_tree_keys(fullkey)
            if keys:
                out.setdefault(".".join([field, *keys]), set()).update(types.split(","))
        return dict(sorted(out.items()))

    # -- updates --------------------------------------------------------------------------
    def compile_update(self, updates: Any, query: Any = None) -> tuple[str, list[Any]]:
        """Compile ``updates`` and a query dict into an UPDATE statement.

        Auto-update fields (``modified``) are set unless *updates* sets them.
        A query with order_by, limit or offset updates just those rows.
        """
        update = self.compile_stamped_update(updates, query)
        return update.sql, update.bind()

    def compile_stamped_update(self, updates: Any, query: Any = None) -> StampedUpdate:
        """:meth:`compile_update` as a statement to run many times: its auto-update values are taken at each ``bind()``.

        Raises
        ------
        QueryError
            If *updates* or *query* is malformed.
        """
        query = _query.check_query(query)
        if "fields" in query:
            raise QueryError("query: 'fields' selects what a query returns and has no meaning in an update")
        items, params = _query.compile_updates(updates, self.columns)
        stamps, stamped = [], []
        for name, info in self.fields.items():
            auto = info.get("auto_update")
            if auto is not None and name not in updates:
                items.append(f"{_query.quote_identifier(name)} = ?")
                stamps.append((len(params), partial(auto, record=dict(updates))))
                stamped.append(name)
                params.append(None)
        table = _query.quote_identifier(self.table)
        sql = f"UPDATE {table} SET {', '.join(items)}"
        if any(k in query for k in ("order_by", "limit", "offset")):
            select = _query.compile_select(query, self.table, self.columns, rowid=True)
            sql += f" WHERE rowid IN ({select.sql})"
            params += select.params
        else:
            where, where_params = _query.compile_where(query.get("filters"), self.columns)
            if where:
                sql += f" WHERE {where}"
                params += where_params
        _query.check_variables(params)
        return StampedUpdate(sql, params, tuple(stamps), tuple(stamped))

    def update_objects(self, updates: Mapping[str, Any] | None = None, query: Any = None,
                       connection: Connection | None = None) -> dict[str, int]:
        """Update the records matching *query*; returns ``{'rowcount': n}``.

        Raises
        ------
        QueryError
            If *updates* or *query* is malformed (before any SQL runs).
        UpdateError
            If SQLite refuses the update.
        """
        sql, params = self.compile_update(updates, query)
        try:
            cursor = raw_connection(connection).execute(sql, params)
        except sqlite3.Error as exc:
            raise self.invalid_json(connection, exc) or UpdateError(f"cannot update {self.table}: {exc}") from exc
        return {"rowcount": cursor.rowcount}
