"""Several jobman databases as one: the same query dict over many files, read-only.

A group that runs jobman on several clusters holds one database file per
cluster. :func:`open_many` opens each with ``open_db(path, read_only=True)``
(nothing in any file is created or changed) and runs one query dict against
every file's jobman jobs. Results carry a ``db`` column naming the file they
came from (the file's stem, or a name you give), because job keys are unique
only within one file.

Two ways to read:

- :meth:`ManyDatabases.iter_jobs_df` yields chunks of at most ``chunksize``
  rows, file after file: memory stays bounded by the chunk size whatever the
  number and size of the files. :func:`jobman_nb.export.export_parquet` builds
  on it.
- :meth:`ManyDatabases.query_jobs_df` returns one frame of every matching job,
  its columns unified across files (see below).

A query's ``order_by``, ``limit`` and ``offset`` apply within each file.

Column unification (:meth:`~ManyDatabases.query_jobs_df`, by
:func:`jobman_nb.frames.concat_frames`): a column missing from one file's frame
is all-missing there; a column whose dtype differs between files takes a
common dtype: ``Int64`` and ``float64`` give ``float64``, two categoricals
give the union of their categories, anything else gives ``object`` (the
Python values). An all-missing ``object`` column (a JSON key only ever
``null``) takes whichever dtype the other files give.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ArgumentError, ArgumentTypeError, MissingKeyError
from .explore import JobDatabase, open_db

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ManyDatabases", "open_many", "DB_COLUMN"]

#: Name of the column identifying the database a row comes from.
DB_COLUMN = "db"

PathLike = str | os.PathLike[str]


class ManyDatabases:
    """Several jobman databases queried as one; made by :func:`open_many`.

    Parameters
    ----------
    databases : dict
        ``{name: JobDatabase}`` in the order results should come.
    owned : bool
        Whether :meth:`close` closes the databases (True when
        :func:`open_many` opened them).
    """

    def __init__(self, databases: Mapping[str, JobDatabase], *, owned: bool = True) -> None:
        if not databases:
            raise ArgumentError("ManyDatabases needs at least one database")
        for name, db in databases.items():
            if not isinstance(name, str) or not name:
                raise ArgumentError(f"database names must be non-empty strings, got {name!r}")
            if not isinstance(db, JobDatabase):
                raise ArgumentTypeError(f"database {name!r} is a {type(db).__name__}, not a JobDatabase from open_db()")
        self.databases: dict[str, JobDatabase] = dict(databases)
        self._owned = owned

    # -- access -----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The databases' names, in order (the values of the ``db`` column)."""
        return list(self.databases)

    def __getitem__(self, name: str) -> JobDatabase:
        try:
            return self.databases[name]
        except KeyError:
            raise MissingKeyError(f"no database named {name!r}; names are {', '.join(self.names)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.databases)

    def __len__(self) -> int:
        return len(self.databases)

    def items(self) -> Iterable[tuple[str, JobDatabase]]:
        """``(name, JobDatabase)`` pairs, in order."""
        return self.databases.items()

    # -- queries ----------------------------------------------------------------------------
    def validate_query(self, query: dict[str, Any] | None = None) -> None:
        """Check *query* against every file's jobman job table, before anything runs.

        Raises
        ------
        QueryError
            If the query is malformed or names a field one file lacks; the
            message names that file.
        LookupError
            If a file has no jobman tables.
        """
        from .errors import QueryError

        for name, db in self.databases.items():
            try:
                db.jobman.validate_query("job", query)
            except QueryError as exc:
                raise QueryError(f"database {name!r} ({db.path.name}): {exc}") from None

    def count_jobs(self, query: dict[str, Any] | None = None) -> pd.Series:
        """Number of jobs matching *query* in each database.

        Returns
        -------
        pandas.Series
            ``int64`` counts indexed by database name (index named ``db``).
        """
        import pandas as pd

        self.validate_query(query)
        counts = {name: db.jobman.count_ents("job", query) for name, db in self.databases.items()}
        return pd.Series(counts, dtype="int64", name="jobs").rename_axis(DB_COLUMN)

    def iter_jobs_df(self, query: dict[str, Any] | None = None, *, chunksize: int = 50_000,
                     expand_json: bool = True, progress: bool | None = None) -> Iterator[pd.DataFrame]:
        """Yield the matching jobs of every database, file after file, in chunks.

        Each chunk comes from one file and is that file's
        :meth:`~jobman_nb.JobmanSqliteDAO.iter_jobs_df` chunk with a ``db``
        column in front (a categorical over :attr:`names`). Columns are
        consistent within a file; across files they may differ (a JSON key
        only one cluster uses): :func:`jobman_nb.export.export_parquet` and
        :meth:`query_jobs_df` unify them.

        Parameters
        ----------
        query : dict, optional
            A query dict over jobman jobs, checked on every file first.
        chunksize : int
            Rows per chunk; bounds the memory used.
        expand_json : bool
            Expand JSON objects into dotted columns.
        progress : bool, optional
            One tqdm bar over all files (None: only when interactive and large).

        Yields
        ------
        pandas.DataFrame

        Raises
        ------
        QueryError
            If the query does not fit some file (raised before any chunk).
        """
        from .frames import check_chunking

        check_chunking(chunksize, progress)
        self.validate_query(query)
        bar = None
        if progress or progress is None:
            from .frames import PROGRESS_MIN_ROWS, interactive

            if progress or (interactive() and int(self.count_jobs(query).sum()) >= PROGRESS_MIN_ROWS):
                from tqdm.auto import tqdm

                bar = tqdm(total=int(self.count_jobs(query).sum()), unit="jobs", desc=f"{len(self)} databases")
        return self._chunks(query, chunksize, expand_json, bar)

    def _chunks(self, query: dict[str, Any] | None, chunksize: int, expand_json: bool, bar: Any
                ) -> Iterator[pd.DataFrame]:
        import pandas as pd

        names = self.names
        try:
            for name, db in self.databases.items():
                for chunk in db.jobman.iter_jobs_df(query, chunksize=chunksize, expand_json=expand_json,
                                                    progress=False):
                    chunk.insert(0, DB_COLUMN, pd.Categorical([name] * len(chunk), categories=names))
                    if bar is not None:
                        bar.update(len(chunk))
                    yield chunk
        finally:
            if bar is not None:
                bar.close()

    def query_jobs_df(self, query: dict[str, Any] | None = None, *, expand_json: bool = True) -> pd.DataFrame:
        """Return the matching jobs of every database as one frame with a ``db`` column.

        Parameters
        ----------
        query : dict, optional
            A query dict over jobman jobs, checked on every file first.
        expand_json : bool
            Expand JSON objects into dotted columns.

        Returns
        -------
        pandas.DataFrame
            ``db`` (categorical over :attr:`names`) then the frame columns of
            :meth:`~jobman_nb.JobmanSqliteDAO.query_jobs_df`, unified across
            files as the module docstring says; rows file after file, index
            ``0..n-1``. The whole result is in memory: for more jobs than fit,
            use :meth:`iter_jobs_df` or export to Parquet.

        Raises
        ------
        QueryError
            If the query does not fit some file (nothing runs).
        """
        import pandas as pd

        self.validate_query(query)
        frames = []
        for name, db in self.databases.items():
            frame = db.jobman.query_jobs_df(query, expand_json=expand_json)
            frame.insert(0, DB_COLUMN, pd.Categorical([name] * len(frame), categories=self.names))
            frames.append(frame)
        from .frames import concat_frames

        return concat_frames(frames)

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the databases this object opened."""
        if self._owned:
            for db in self.databases.values():
                db.close()

    def __enter__(self) -> ManyDatabases:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ManyDatabases {', '.join(f'{n}={db.path.name}' for n, db in self.databases.items())}>"


def _default_names(paths: Sequence[Path]) -> list[str]:
    names = [p.stem for p in paths]
    if len(set(names)) == len(names):
        return names
    dup = next(n for n in names if names.count(n) > 1)
    raise ArgumentError(f"two files would both be named {dup!r} (the file stem); pass names=[...] or a "
                     "{name: path} dict to open_many")


def open_many(paths: Sequence[PathLike] | Mapping[str, PathLike], names: Sequence[str] | None = None
              ) -> ManyDatabases:
    """Open several jobman database files read-only, to query them as one.

    Parameters
    ----------
    paths : list of path, or dict
        The SQLite files; or ``{name: path}``, naming each file's rows.
    names : list of str, optional
        Names for the ``db`` column, one per path (default: each file's stem,
        e.g. ``'cluster_a'`` for ``cluster_a.sqlite``).

    Returns
    -------
    ManyDatabases
        Use it as a context manager, or call ``close()``.

    Raises
    ------
    ValueError
        If no paths are given, names and paths differ in number, or two
        names are equal.
    FileNotFoundError, SchemaError
        As :func:`jobman_nb.open_db`, naming the file.
    """
    if isinstance(paths, (str, os.PathLike)):
        raise ArgumentTypeError("open_many takes a list of paths (or a {name: path} dict); for one file use open_db")
    if isinstance(paths, Mapping):
        if names is not None:
            raise ArgumentError("give names either as the keys of a {name: path} dict or as names=, not both")
        names, path_list = list(paths), [Path(os.fspath(p)) for p in paths.values()]
    else:
        path_list = [Path(os.fspath(p)) for p in paths]
        names = _default_names(path_list) if names is None else list(names)
    if not path_list:
        raise ArgumentError("open_many needs at least one database path")
    if len(names) != len(path_list):
        raise ArgumentError(f"{len(names)} names for {len(path_list)} paths; give one name per path")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ArgumentError(f"database name {dup!r} is given twice; names identify the rows' files")
    opened: dict[str, JobDatabase] = {}
    try:
        for name, path in zip(names, path_list, strict=True):
            if not isinstance(name, str) or not name:
                raise ArgumentError(f"database names must be non-empty strings, got {name!r}")
            opened[name] = open_db(path, read_only=True)
    except BaseException:
        for db in opened.values():
            db.close()
        raise
    return ManyDatabases(opened)
