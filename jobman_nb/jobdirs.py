"""Read the job directories jobman leaves behind: checkpoints, log tails, causes of failure.

jobman records little about a failure (``errors`` is usually null); the cause
is in the job's directory: ``stdout`` / ``stderr`` (or the names in
``job_spec.std_log_file_names``), the ``JOBMAN-COMPLETED`` / ``JOBMAN-FAILED``
checkpoint files, and the job's outputs. :func:`read_job_dirs` reads them for
a job frame, one row per job, and never writes a byte.

Reading is built for many directories on a network file system: a thread
pool, each directory opened once (its files listed and opened relative to that
one handle), and only the last bytes of each log read, by seeking. Anything
unusual is a value in the frame, never an exception that stops the read: a
missing directory is ``exists=False``; an unreadable log, a dangling symlink,
a directory where a log should be, a FIFO, a log that is a symlink out of the
job's directory each leave that tail missing and say why in ``note``.

Batched jobs (a BatchingWorker's subjobs) ran inside a batch job whose logs are
the batch's, in a directory the database does not record: jobman 0.0.1 makes it
with ``mkdtemp(dir=scratch_dir, prefix='batch.')``, and ``scratch_dir`` is engine
configuration, not data. With ``db=``, the lineage gives each subjob's batch
(``batch_key``) and its other subjobs. The batch dir is the one whose
``subjob_commands`` runs the job's directory (or, when a DirSource moved it
since, its batch's other subjobs, or a dir of its name); batch dirs are looked
for in ``batch_dirs=`` when given, else in the places a jobman project keeps its
scratch dir (beside the database file, and above the job dirs). Its logs are
read (``logs_from='batch'``, ``log_dir``), and ``note`` says how the batch was
found, or that the logs are the batch's and where they would be.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .causes import find_cause
from .errors import JobDirsError, NotAFileError
from .pathmap import PathMap, PathMapLike, as_path_map

if TYPE_CHECKING:
    import pandas as pd

    from .explore import JobDatabase

__all__ = ["read_job_dirs", "read_tail", "COLUMNS", "CHECKPOINTS", "DEFAULT_LOG_NAMES", "MAX_TAIL_BYTES"]

#: The checkpoint files jobman's engines touch, by checkpoint value.
CHECKPOINTS = {"COMPLETED": "JOBMAN-COMPLETED", "FAILED": "JOBMAN-FAILED"}
#: Log names when ``job_spec.std_log_file_names`` does not say (what jobman's bash engines write).
DEFAULT_LOG_NAMES = {"stdout": "stdout", "stderr": "stderr"}
#: The largest tail read from one log.
MAX_TAIL_BYTES = 64 * 1024
#: Columns of :func:`read_job_dirs`'s frame, in order.
COLUMNS = ("key", "dir", "exists", "checkpoint", "logs_from", "log_dir", "batch_key", "stdout_tail",
           "stderr_tail", "stdout_size", "stderr_size", "cause", "files", "note")

_CHUNK = 256  # jobs per task of the thread pool
_BATCH_PREFIX = "batch."  # jobman's BaseEngine.submit_batch_job: mkdtemp(dir=scratch_dir, prefix='batch.')
_SEARCH_ROOTS = 16  # at most this many dirs are searched for batch dirs nobody named
_SEARCH_FANOUT = 256  # ... and at most this many of each one's children
_DONE, _FAILED = CHECKPOINTS["COMPLETED"], CHECKPOINTS["FAILED"]
_COMMANDS_MAX = 1 << 20  # a batch's subjob_commands read up to this many bytes
_PUSHD = re.compile(r"""pushd\s+(?:"([^"]+)"|'([^']+)'|([^\s;&|]+))""")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_DIRECTORY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LOG_NOFOLLOW = _OPEN_FLAGS | _NOFOLLOW
_PROC_FD = sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd")
_HAS_DIR_FD = os.open in os.supports_dir_fd and os.scandir in os.supports_fd
# The quick path opens a dir without following a last-component symlink (O_NOFOLLOW: a symlink
# fails, and goes the careful way), lists it by its descriptor and opens its logs relative to it.
_QUICK = bool(_NOFOLLOW) and _HAS_DIR_FD and os.listdir in os.supports_fd


_CAREFUL = object()  # a log the quick path leaves to the careful one


@dataclass(slots=True)
class _Job:
    key: Any
    dir: str | None
    names: dict[str, str]
    status: str | None
    batchable: bool
    batch_key: str | None = None


# -- input ------------------------------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, (list, dict, tuple)) else False
    except (TypeError, ValueError):
        return False


def _spec_of(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _names(std: Any) -> dict[str, str]:
    """The job's log names (the shared default dict when it names none: never mutated)."""
    if not std or not isinstance(std, Mapping):
        return DEFAULT_LOG_NAMES
    names = dict(DEFAULT_LOG_NAMES)
    for log in names:
        if isinstance(std.get(log), str) and std[log]:
            names[log] = std[log]
    return names


def _jobs_from_records(records: Iterable[Mapping[str, Any]]) -> list[_Job]:
    jobs = []
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or "key" not in rec:
            raise JobDirsError(f"jobs[{i}] is not a job record with a 'key' (got {type(rec).__name__}); "
                               "pass a job frame or dao.query_jobs() records")
        spec = _spec_of(rec.get("job_spec"))
        d = spec.get("dir", rec.get("dir"))
        jobs.append(_Job(rec["key"], d if isinstance(d, str) and d else None,
                         _names(spec.get("std_log_file_names")), rec.get("status"),
                         bool(spec.get("batchable") or rec.get("batchable"))))
    return jobs


def _jobs_from_frame(df: pd.DataFrame) -> list[_Job]:
    cols = set(df.columns)
    if "key" not in cols:
        raise JobDirsError(f"the job frame has no 'key' column; columns are: {', '.join(map(str, df.columns))}")
    n = len(df)

    def column(*names: str) -> list[Any]:
        for name in names:
            if name in cols:
                return df[name].tolist()
        return [None] * n

    specs = [_spec_of(v) for v in column("job_spec")] if "job_spec" in cols else [{}] * n
    if not ({"job_spec.dir", "dir"} & cols or any("dir" in s for s in specs)):
        raise JobDirsError("the job frame has no job directories: it needs a 'job_spec.dir' column (as "
                           "query_jobs_df() gives), a 'job_spec' column of dicts, or a 'dir' column")
    dirs = column("job_spec.dir", "dir")
    outs = column("job_spec.std_log_file_names.stdout")
    errs = column("job_spec.std_log_file_names.stderr")
    batch = column("job_spec.batchable", "batchable")
    status = column("status")
    jobs = []
    for i, key in enumerate(df["key"].tolist()):
        spec = specs[i]
        d = dirs[i] if not _is_missing(dirs[i]) else spec.get("dir")
        std = dict(spec.get("std_log_file_names") or {})
        for log, v in (("stdout", outs[i]), ("stderr", errs[i])):
            if isinstance(v, str) and v:
                std[log] = v
        b = batch[i] if not _is_missing(batch[i]) else spec.get("batchable")
        s = status[i]
        jobs.append(_Job(key, d if isinstance(d, str) and d else None, _names(std),
                         None if _is_missing(s) else str(s), bool(b) if not _is_missing(b) else False))
    return jobs


def _jobs_of(jobs: Any) -> list[_Job]:
    import pandas as pd

    if isinstance(jobs, pd.DataFrame):
        return _jobs_from_frame(jobs)
    if isinstance(jobs, (str, bytes, Mapping)) or not isinstance(jobs, Iterable):
        raise JobDirsError(f"jobs must be a job frame or a list of job records, got {type(jobs).__name__}")
    return _jobs_from_records(jobs)


# -- reading ----------------------------------------------------------------------------------------
def _decode(data: bytes, started_mid_file: bool) -> str:
    if started_mid_file:
        # drop the partial first line (and any split UTF-8 sequence with it) unless it is all there is
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1:]
    return data.decode("utf-8", errors="replace")


def _read_fd_tail(fd: int, size: int, tail_bytes: int) -> tuple[str, str | None]:
    offset = max(0, size - tail_bytes)
    chunks = []
    want, pos = size - offset, offset
    while want > 0:  # pread may return short reads (network file systems)
        chunk = os.pread(fd, want, pos)
        if not chunk:
            break
        chunks.append(chunk)
        want -= len(chunk)
        pos += len(chunk)
    data = b"".join(chunks)
    note = None
    if data and data[-1] == 0 and data.count(0) == len(data):
        note = "is NUL bytes at its end (a sparse or preallocated file)"
    return _decode(data, offset > 0), note


def read_tail(path: str | os.PathLike[str], tail_bytes: int = 16384) -> str:
    """Return the last *tail_bytes* of a text file, decoded (bytes that are not UTF-8 are replaced).

    Seeks to the end: a 10 GB log costs the same as a small one. When the tail
    starts mid-file, its partial first line is dropped.

    Raises
    ------
    OSError
        If the file cannot be opened or is not a regular file.
    """
    tail_bytes = _check_tail_bytes(tail_bytes)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotAFileError(f"{path} is not a regular file")
        return _read_fd_tail(fd, st.st_size, tail_bytes)[0]
    finally:
        os.close(fd)


class _Dir:
    """One opened directory: its entries, and files opened relative to it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, _DIR_FLAGS) if _HAS_DIR_FD else -1
        try:
            with os.scandir(self.fd if _HAS_DIR_FD else path) as it:
                self.entries = {e.name: e for e in it}
        except BaseException:
            self.close()
            raise

    def real(self) -> str:
        if _PROC_FD and self.fd >= 0:
            try:
                return os.readlink(f"/proc/self/fd/{self.fd}")
            except OSError:
                pass
        return os.path.realpath(self.path)

    def open(self, name: str, follow: bool) -> int:
        flags = _OPEN_FLAGS | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
        if _HAS_DIR_FD:
            return os.open(name, flags, dir_fd=self.fd)
        return os.open(os.path.join(self.path, name), flags)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _log_tail(d: _Dir, log: str, name: str, tail_bytes: int, boundary: str | None,
              notes: list[str]) -> tuple[str | None, int | None]:
    """Tail and size of one log of an opened dir; problems go to *notes*."""
    entry = d.entries.get(name)
    if entry is None:
        return None, None
    label = f"{log} ({name})" if name != log else log
    try:
        if entry.is_symlink():
            target = os.path.realpath(os.path.join(d.real(), name))
            if not os.path.exists(target):
                notes.append(f"{label} is a dangling symlink")
                return None, None
            if boundary is not None and not _inside(target, boundary):
                notes.append(f"{label} is a symlink out of the job dir; not followed")
                return None, None
        elif entry.is_dir(follow_symlinks=False):
            notes.append(f"{label} is a directory, not a log")
            return None, None
        fd = d.open(name, follow=entry.is_symlink())
    except OSError as exc:
        notes.append(f"{label} cannot be opened: {exc.strerror or exc}")
        return None, None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            notes.append(f"{label} is a directory, not a log")
            return None, None
        if not stat.S_ISREG(st.st_mode):
            notes.append(f"{label} is not a regular file")
            return None, None
        text, note = _read_fd_tail(fd, st.st_size, tail_bytes)
        if note:
            notes.append(f"{label} {note}")
        return text, st.st_size
    except OSError as exc:
        notes.append(f"{label} cannot be read: {exc.strerror or exc}")
        return None, None
    finally:
        os.close(fd)


def _open_dir(path: str, notes: list[str]) -> tuple[_Dir | None, bool]:
    """The opened dir (or None) and whether something exists at *path*."""
    try:
        return _Dir(path), True
    except FileNotFoundError:
        notes.append("the job dir is a dangling symlink" if os.path.islink(path) else "no such directory")
        return None, False
    except NotADirectoryError:
        notes.append("the job dir path is not a directory")
        return None, False
    except OSError as exc:
        notes.append(f"the job dir cannot be listed: {exc.strerror or exc}")
        return None, True


class _Reader:
    def __init__(self, path_map: PathMap, tail_bytes: int, causes: bool) -> None:
        self.path_map = path_map
        self.tail_bytes = tail_bytes
        self.causes = causes
        self.batches: _Batches | None = None
        self.pending: list[int] = []  # ids of batched jobs whose logs wait for the batch dirs
        self._real_roots: dict[str, str] = {}
        self._real_parents: dict[str, str] = {}

    def _real_root(self, root: str) -> str:
        real = self._real_roots.get(root)
        if real is None:
            real = self._real_roots[root] = os.path.realpath(root)
        return real

    def _real_parent(self, parent: str) -> str:
        # many job dirs share a parent: its real path is resolved once (dict writes are atomic under the GIL)
        real = self._real_parents.get(parent)
        if real is None:
            real = self._real_parents[parent] = os.path.realpath(parent)
        return real

    def read_all(self, jobs: Sequence[_Job]) -> list[tuple]:
        read = self.read_quick if _QUICK else self.read
        return [read(job) for job in jobs]

    def read_quick(self, job: _Job) -> tuple:
        """One job's row the quick way; anything unusual goes to :meth:`read` (the careful way).

        The dir is opened without following a symlink as its last component, so its real path is
        its parent's (resolved once per parent) plus its name; its logs are opened without
        following symlinks either. A symlink, a missing or odd entry, a batched job without logs
        of its own: each takes the careful way, which gives the same row.
        """
        if job.dir is None:
            return self.read(job)
        local, root, _ = self.path_map.resolve(job.dir)
        if local is None:
            return self.read(job)
        try:
            fd = os.open(local, _DIR_FLAGS | _NOFOLLOW)
        except OSError:
            return self.read(job)
        try:
            if root is not None and local != root:
                parent, _, name = local.rpartition("/")
                real = posixpath.join(self._real_parent(parent or "/"), name)
                if not _inside(real, self._real_root(root)):
                    return self.read(job)
            names = os.listdir(fd)
            present = set(names)
            lognames = job.names
            out_name, err_name = lognames["stdout"], lognames["stderr"]
            has_out, has_err = out_name in present, err_name in present
            if not (has_out or has_err) and (job.batch_key or job.batchable):
                return self.read(job)
            out = err = None
            out_size = err_size = None
            if has_out:
                out, out_size = self._quick_tail(fd, out_name)
                if out is _CAREFUL:
                    return self.read(job)
            if has_err:
                err, err_size = self._quick_tail(fd, err_name)
                if err is _CAREFUL:
                    return self.read(job)
        finally:
            os.close(fd)
        done, failed = _DONE in present, _FAILED in present
        if done and failed:
            return self.read(job)
        checkpoint = "COMPLETED" if done else "FAILED" if failed else None
        cause = None
        if self.causes and not done and job.status != "COMPLETED":
            cause = find_cause(err, out)
        names.sort()
        return (job.key, local, True, checkpoint, "job", local if (has_out or has_err) else None, job.batch_key,
                out, err, out_size, err_size, cause, names, None)

    def _quick_tail(self, fd: int, name: str) -> tuple[Any, int | None]:
        """Tail and size of a log opened relative to its dir; ``_CAREFUL`` when it needs the careful way."""
        try:
            lfd = os.open(name, _LOG_NOFOLLOW, dir_fd=fd)
        except OSError:
            return _CAREFUL, None  # a symlink (ELOOP), a socket, no permission: the careful way says which
        try:
            st = os.fstat(lfd)
            size = st.st_size
            if not stat.S_ISREG(st.st_mode):
                return _CAREFUL, None
            offset = size - self.tail_bytes if size > self.tail_bytes else 0
            data = os.pread(lfd, size - offset, offset) if size else b""
        except OSError:
            return _CAREFUL, None
        finally:
            os.close(lfd)
        if len(data) != size - offset or (data and data[-1] == 0):
            return _CAREFUL, None  # a short read (the careful way loops), or NUL bytes to look at
        return _decode(data, offset > 0), size

    def read(self, job: _Job) -> tuple:
        notes: list[str] = []
        row = dict.fromkeys(COLUMNS)
        row["key"] = job.key
        row["exists"] = False
        row["logs_from"] = "job"
        row["batch_key"] = job.batch_key
        if job.dir is None:
            notes.append("the job records no job_spec.dir")
            return self._finish(row, notes, job)
        mapped = self.path_map.map(job.dir)
        if mapped.local is None:
            notes.append(mapped.note or "the path map refused the dir")
            return self._finish(row, notes, job)
        row["dir"] = mapped.local
        d, row["exists"] = _open_dir(mapped.local, notes)
        if d is None:
            return self._finish(row, notes, job)
        try:
            boundary = None
            if mapped.root is not None:
                root = self._real_root(mapped.root)
                real = d.real()
                if not _inside(real, root):
                    notes.append(f"the job dir resolves to {real}, outside the mapped target {mapped.root}; "
                                 "not read")
                    return self._finish(row, notes, job)
                boundary = real
            names = sorted(d.entries)
            row["files"] = names
            done, failed = CHECKPOINTS["COMPLETED"] in d.entries, CHECKPOINTS["FAILED"] in d.entries
            row["checkpoint"] = "COMPLETED" if done else "FAILED" if failed else None
            if done and failed:
                notes.append("both JOBMAN-COMPLETED and JOBMAN-FAILED are present")
            has_logs = any(n in d.entries for n in job.names.values())
            if has_logs or not (job.batch_key or job.batchable):
                self._tails(row, d, job.names, boundary, notes)
                row["log_dir"] = mapped.local if has_logs else None
            else:
                self._batch_logs(row, job, mapped.local, notes)
        finally:
            d.close()
        return self._finish(row, notes, job)

    def _tails(self, row: dict, d: _Dir, names: Mapping[str, str], boundary: str | None, notes: list[str]) -> None:
        for log in ("stdout", "stderr"):
            row[f"{log}_tail"], row[f"{log}_size"] = _log_tail(d, log, names[log], self.tail_bytes,
                                                               boundary or d.real(), notes)

    def _batch_logs(self, row: dict, job: _Job, local: str, notes: list[str]) -> None:
        row["logs_from"] = "batch"
        assert job.dir is not None
        if self.batches is None:  # the batch dirs are found once, after the first pass (read_job_dirs)
            self.pending.append(id(job))
            return
        found, how = self.batches.find(job.dir, local, job.batch_key)
        if found is None:
            notes.append(self._unfound(job))
            return
        row["log_dir"] = found
        if how == "batch":
            notes.append("batch found by its other subjobs: this job's dir moved after the batch ran (a "
                         "DirSource moves dirs when they finish)")
        elif how == "name":
            notes.append("batch found by the job dir's name: the batch ran it at another path (a DirSource "
                         "moves dirs when they finish)")
        if self.batches.searched:
            notes.append(f"the batch dir was found by looking in or below {self.batches.where} (jobman does not "
                         "record it)")
        bd, _ = _open_dir(found, notes)
        if bd is None:
            return
        try:
            self._tails(row, bd, DEFAULT_LOG_NAMES, None, notes)
        finally:
            bd.close()

    def _unfound(self, job: _Job) -> str:
        assert self.batches is not None
        which = f" (batch {job.batch_key})" if job.batch_key else ""
        head = f"a batched job{which}: its logs are its batch's"
        if self.batches.searched:
            looked = (f"no batch dir in or below {self.batches.where} runs this job's dir" if self.batches.where
                      else "there was nowhere to look (no database file; job dirs less than 3 deep)")
            return (f"{head}, in a 'batch.*' dir under its engine's scratch_dir, which jobman does not record; "
                    f"{looked}; pass batch_dirs=[...] (the scratch dir)")
        if not self.batches.by_dir and self.batches.where == "":
            return (f"{head}, in a dir the database does not record; pass batch_dirs=[...] (the directories "
                    "holding the batch dirs) to read them")
        return f"{head}, in a dir the database does not record; no batch dir in batch_dirs runs this job's dir"

    def _finish(self, row: dict, notes: list[str], job: _Job) -> tuple:
        if self.causes and row["checkpoint"] != "COMPLETED" and job.status != "COMPLETED":
            row["cause"] = find_cause(row["stderr_tail"], row["stdout_tail"])
        row["note"] = "; ".join(notes) if notes else None
        return tuple(row[c] for c in COLUMNS)


# -- batches ----------------------------------------------------------------------------------------
class _Batches:
    """Batch dirs found, by the subjob dirs their commands run (and by those dirs' last names).

    *where* says where they were looked for, for the notes; *siblings* gives, per batch key
    (from the lineage), the recorded dirs of that batch's subjobs.
    """

    def __init__(self, by_dir: dict[str, str], where: str = "batch_dirs", searched: bool = False,
                 siblings: Mapping[str, Sequence[str]] | None = None) -> None:
        self.by_dir = by_dir
        self.where = where
        self.searched = searched
        self.siblings = siblings or {}
        names: dict[str, set[str]] = {}
        for sub, batch in by_dir.items():
            names.setdefault(posixpath.basename(sub), set()).add(batch)
        self.by_name = {n: next(iter(b)) for n, b in names.items() if len(b) == 1 and n}

    def __bool__(self) -> bool:
        return bool(self.by_dir)

    def find(self, recorded: str, local: str, batch_key: str | None = None) -> tuple[str | None, str]:
        """The batch dir of a subjob, and how it was matched: 'dir', 'batch' (its batch's other
        subjobs ran there: this one's dir moved since) or 'name' (its dir's last name only)."""
        for path in (recorded, local):
            found = self.by_dir.get(posixpath.normpath(path))
            if found:
                return found, "dir"
        if batch_key is not None:
            ran = {self.by_dir.get(posixpath.normpath(d)) or self.by_name.get(posixpath.basename(posixpath.normpath(d)))
                   for d in self.siblings.get(batch_key, ()) if d != recorded} - {None}
            if len(ran) == 1:
                return ran.pop(), "batch"
        found = self.by_name.get(posixpath.basename(posixpath.normpath(recorded)))
        return found, "name"


def _commands_of(batch_dir: str) -> list[str]:
    """The subjob dirs a batch dir's ``subjob_commands*`` files run (``pushd DIR``), in order."""
    try:
        with os.scandir(batch_dir) as it:
            names = sorted(e.name for e in it if e.name.startswith("subjob_commands") and e.is_file())
    except OSError:
        return []
    subs = []
    for name in names:
        try:
            with open(os.path.join(batch_dir, name), "rb") as fh:
                text = fh.read(_COMMANDS_MAX).decode("utf-8", errors="replace")
        except OSError:
            continue
        subs += [posixpath.normpath(next(g for g in m.groups() if g)) for m in _PUSHD.finditer(text)]
    return subs


def _index(candidates: Iterable[str]) -> dict[str, str]:
    index: dict[str, str] = {}
    for cand in candidates:
        for sub in _commands_of(cand):
            index.setdefault(sub, cand)
    return index


def _batch_index(batch_dirs: Iterable[str | os.PathLike[str]], path_map: PathMap) -> dict[str, str]:
    """The batch dirs in or at *batch_dirs*, indexed by the subjob dirs their commands run."""
    candidates = []
    for root in batch_dirs:
        local = path_map(os.fspath(root)) or os.fspath(root)
        candidates.append(local)
        try:
            with os.scandir(local) as it:
                candidates += sorted(e.path for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    return _index(candidates)


def _search_roots(db: JobDatabase | None, jobs: Iterable[_Job], path_map: PathMap) -> list[str]:
    """Where to look for batch dirs that nobody named: beside the database, and above the batched jobs.

    jobman makes a batch's dir with ``mkdtemp(dir=scratch_dir, prefix='batch.')``, and a jobman
    config usually keeps its ``scratch_dir`` in the project, beside the database and the job dirs.
    So the roots are the database file's dir and each batched job dir's grandparent (the project,
    when job dirs sit in a ``jobs/`` dir), when that is at least two components deep.
    """
    roots: list[str] = []
    path = getattr(db, "path", None) if db is not None else None
    if isinstance(path, (str, os.PathLike)) and os.path.isfile(path):
        roots.append(os.path.dirname(os.path.abspath(path)))
    for job in jobs:
        local = path_map(job.dir) if job.dir else None
        if local:
            up = posixpath.dirname(posixpath.dirname(posixpath.normpath(local)))
            if up.count("/") >= 2 and up not in roots:
                roots.append(up)
    return roots[:_SEARCH_ROOTS]


def _search(roots: Sequence[str], skip: set[str]) -> list[str]:
    """Dirs named ``batch.*`` among the children and grandchildren of *roots* (not below job dirs)."""
    found: list[str] = []
    seen: set[str] = set()
    for root in roots:
        level = [root]
        for depth in range(2):
            below = []
            for d in level:
                if d in seen:
                    continue
                seen.add(d)
                try:
                    with os.scandir(d) as it:
                        for e in it:
                            if not e.is_dir(follow_symlinks=False):
                                continue
                            if e.name.startswith(_BATCH_PREFIX):
                                found.append(e.path)
                            elif depth == 0 and e.path not in skip:
                                below.append(e.path)
                except OSError:
                    continue
            level = sorted(below)[:_SEARCH_FANOUT]
    return sorted(set(found))


def _looked_in(roots: Sequence[str]) -> str:
    return ", ".join(roots[:3]) + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")


def _siblings(db: JobDatabase | None, jobs: Sequence[_Job], keys: Mapping[Any, str]) -> dict[str, list[str]]:
    """Recorded dirs of every subjob of the batches that *jobs* belong to (from the database when given)."""
    wanted = {j.batch_key for j in jobs if j.batch_key}
    out: dict[str, list[str]] = {}
    if db is not None and wanted:
        subs = [k for k, b in keys.items() if b in wanted]
        for start in range(0, len(subs), 500):
            chunk = subs[start:start + 500]
            for job in _jobs_from_records(db.jobman.query_jobs({"filters": [{"field": "key", "op": "IN",
                                                                             "arg": chunk}]})):
                if job.dir and keys.get(job.key):
                    out.setdefault(keys[job.key], []).append(job.dir)
    else:
        for job in jobs:
            if job.batch_key and job.dir:
                out.setdefault(job.batch_key, []).append(job.dir)
    return out


def _batch_keys(db: JobDatabase) -> dict[Any, str]:
    lin = db.lineage()
    if "worker.batch_key" not in lin.columns:
        return {}
    has = lin["worker.batch_key"].notna()
    return dict(zip(lin.loc[has, "key"].tolist(), lin.loc[has, "worker.batch_key"].tolist(), strict=True))


# -- the public function ----------------------------------------------------------------------------
def _check_tail_bytes(tail_bytes: Any) -> int:
    if isinstance(tail_bytes, bool) or not isinstance(tail_bytes, int) or not 0 < tail_bytes <= MAX_TAIL_BYTES:
        raise JobDirsError(f"tail_bytes must be an int in 1..{MAX_TAIL_BYTES} (64 KiB), got {tail_bytes!r}")
    return tail_bytes


def _frame(rows: list[tuple]) -> pd.DataFrame:
    import pandas as pd

    from .frames import STRING_DTYPE

    cols = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    data: dict[str, Any] = {}
    for name, values in zip(COLUMNS, cols, strict=True):
        if name == "key":
            data[name] = pd.Series(values, dtype=object if any(not isinstance(v, str) for v in values)
                                   else STRING_DTYPE)
        elif name == "exists":
            data[name] = pd.Series(values, dtype=bool)
        elif name in ("stdout_size", "stderr_size"):
            data[name] = pd.Series(values, dtype="Int64")
        elif name == "files":
            data[name] = pd.Series(values, dtype=object)
        else:
            data[name] = pd.Series(values, dtype=STRING_DTYPE)
    return pd.DataFrame(data, columns=list(COLUMNS))


def read_job_dirs(jobs: Any, *, path_map: PathMapLike = None, db: JobDatabase | None = None,
                  batch_dirs: Sequence[str | os.PathLike[str]] | None = None, tail_bytes: int = 16384,
                  causes: bool = True, max_workers: int | None = None) -> pd.DataFrame:
    """Read each job's directory: checkpoint, files, log tails and the cause of a failure.

    Parameters
    ----------
    jobs : DataFrame or list of dict
        A job frame (:meth:`~jobman_nb.JobmanSqliteDAO.query_jobs_df`; it needs
        ``key`` and ``job_spec.dir``) or job records (``dao.query_jobs()``).
        ``job_spec.std_log_file_names`` names the logs (default ``stdout`` and
        ``stderr``); ``status`` COMPLETED skips the cause.
    path_map : dict, optional
        ``{recorded prefix: local prefix}`` (see :class:`~jobman_nb.PathMap`);
        default *db*'s ``path_map``. A mapped dir whose real path (after
        symlinks) leaves the mapped target is not read.
    db : JobDatabase, optional
        The database the jobs come from: its path map, and its lineage for
        each batched job's batch (``batch_key``).
    batch_dirs : list of paths, optional
        Directories holding batch dirs (e.g. the batching engine's scratch
        dir), or batch dirs themselves: a batched job's logs are read from the
        batch dir whose ``subjob_commands`` runs the job's dir. By default
        (None), ``batch.*`` dirs are looked for among the children and
        grandchildren of the database file's dir and of each batched job dir's
        grandparent, and only when some batched job has no logs of its own;
        ``[]`` looks nowhere.
    tail_bytes : int
        How much of the end of each log to read, at most 64 KiB (a partial
        first line is dropped).
    causes : bool
        Find the ``cause`` of jobs that did not complete.
    max_workers : int, optional
        Threads reading directories (default 16; 1 reads in the calling thread).

    Returns
    -------
    DataFrame
        One row per job, in the order given: ``key``; ``dir`` (the local path,
        after the path map); ``exists``; ``checkpoint`` ('COMPLETED', 'FAILED'
        or <NA>); ``logs_from`` ('job', or 'batch' for a batched job whose logs
        are its batch's); ``log_dir`` (where the tails were read); ``batch_key``;
        ``stdout_tail`` / ``stderr_tail`` (decoded text, <NA> when there is no
        such log); ``stdout_size`` / ``stderr_size`` (bytes); ``cause`` (one
        normalized line, see :func:`jobman_nb.causes.find_cause`; <NA> for
        completed jobs and when nothing explains the failure); ``files`` (names
        in the dir, sorted; None when it was not listed); ``note`` (why
        something could not be read, <NA> when all was well).

    Raises
    ------
    JobDirsError
        If *jobs* is not a job frame or records, lacks keys or dirs, or
        *tail_bytes* / *max_workers* are out of range (before anything is read).
    PathMapError
        If *path_map* is malformed.
    """
    tail_bytes = _check_tail_bytes(tail_bytes)
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                    or max_workers < 1):
        raise JobDirsError(f"max_workers must be a positive int, got {max_workers!r}")
    if path_map is None and db is not None:
        path_map = db.path_map
    pm = as_path_map(path_map)
    if isinstance(batch_dirs, (str, bytes, os.PathLike)):
        batch_dirs = [batch_dirs]  # type: ignore[list-item]
    job_list = _jobs_of(jobs)
    keys = _batch_keys(db) if db is not None else {}
    for job in job_list:
        job.batch_key = keys.get(job.key)
    reader = _Reader(pm, tail_bytes, causes)
    workers = 16 if max_workers is None else max_workers
    if workers == 1 or len(job_list) <= _CHUNK:
        rows = reader.read_all(job_list)
    else:
        chunks = [job_list[i:i + _CHUNK] for i in range(0, len(job_list), _CHUNK)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jobman-nb-jobdirs") as pool:
            rows = [row for part in pool.map(reader.read_all, chunks) for row in part]
    if reader.pending:  # batched jobs without logs of their own: find their batches' dirs, once
        pending = set(reader.pending)
        todo = [i for i, job in enumerate(job_list) if id(job) in pending]
        waiting = [job_list[i] for i in todo]
        if batch_dirs is None:
            roots = _search_roots(db, waiting, pm)
            skip = {local for local in (pm(j.dir) for j in job_list if j.dir) if local}
            reader.batches = _Batches(_index(_search(roots, skip)), where=_looked_in(roots), searched=True,
                                      siblings=_siblings(db, waiting, keys))
        else:
            reader.batches = _Batches(_batch_index(batch_dirs, pm), where="batch_dirs" if batch_dirs else "",
                                      siblings=_siblings(db, waiting, keys))
        for i in todo:
            rows[i] = reader.read(job_list[i])
    return _frame(rows)
