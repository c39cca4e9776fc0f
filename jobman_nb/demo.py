"""A generator of realistic, reproducible jobman histories for notebooks, tests and benchmarks.

:func:`make_history` writes what a jobman database holds after some days of
use: ``jobman_job`` rows submitted by a few sources, each worker's tables
(``_worker_<key>_job``) and each engine's (``engine_<key>_job``), linked the way
jobman 0.0.1 links them (``worker_meta.key`` → worker job, whose key equals the
jobman job's; ``engine_meta.key`` → engine job), batch jobs with subjobs, kvps,
and FAILED jobs whose errors have causes an analysis can find: out-of-memory
for heavy methods given little memory, SCF convergence failures for one
method/basis, walltime exceeded, a user over quota, a flaky cluster node.

Everything, timestamps and keys included, derives from the seed: the history
starts at :data:`START` (2026-01-05 00:00 UTC), not at the current time, so two
runs with the same seed (and numpy version) write identical records.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .dao import EngineSqliteDAO, JobmanSqliteDAO, WorkerSqliteDAO
from .dao import history as _history
from .dao.sqlite_dao import SqliteDAO

__all__ = ["START", "SOURCES", "WORKERS", "make_history"]

#: Epoch seconds of the history's first day, 2026-01-05 00:00 UTC.
START: float = datetime(2026, 1, 5, tzinfo=timezone.utc).timestamp()

#: Sources submitting jobs, with their share of the jobs and the user whose scratch they write to.
SOURCES: dict[str, tuple[float, str]] = {
    "inbox": (0.45, "alice"),
    "screening": (0.35, "bob"),
    "benchmark": (0.15, "carol"),
    "adhoc_dave": (0.05, "dave"),
}

#: Workers (key → engine key): cpu_w runs ordinary jobs, gpu_w batches batchable ones, hpc_w takes big ones.
WORKERS: dict[str, str] = {"cpu_w": "cpu_w_engine", "gpu_w": "gpu_w_engine", "hpc_w": "hpc_w_engine"}

_DAY = 86_400.0
_CHUNK = 50_000

# (code, method, basis or None, run-time seconds on 1 cpu, memory need in GB)
_CALCS: list[tuple[str, str, str | None, float, float]] = [
    ("xtb", "gfn2", None, 40, 0.5),
    ("xtb", "gfn1", None, 30, 0.5),
    ("orca", "b3lyp", "def2-svp", 900, 1.5),
    ("orca", "b3lyp", "def2-tzvp", 2400, 3),
    ("orca", "pbe0", "def2-tzvp", 2400, 3),
    ("orca", "wb97x-d", "cc-pvtz", 4000, 4),
    ("orca", "dlpno-ccsd(t)", "cc-pvtz", 14000, 20),
    ("gaussian", "b3lyp", "6-31g*", 800, 1.5),
    ("gaussian", "m06-2x", "6-311+g**", 2600, 3),
    ("psi4", "mp2", "cc-pvdz", 3000, 8),
    ("psi4", "ccsd", "cc-pvtz", 20000, 28),
]
# Each source's preference over _CALCS (screening runs mostly xtb, benchmark the expensive methods).
_CALC_WEIGHTS = {
    "inbox": [2, 1, 4, 3, 2, 2, 1, 3, 2, 1, 0.5],
    "screening": [20, 6, 2, 1, 0.5, 0.5, 0, 1, 0.2, 0, 0],
    "benchmark": [1, 1, 1, 2, 2, 3, 3, 1, 2, 3, 2],
    "adhoc_dave": [1, 0, 2, 2, 1, 1, 0.5, 1, 1, 0.5, 0],
}
_CPUS = np.array([1, 2, 4, 8, 16, 32])
_MEM_GB = np.array([2, 4, 8, 16, 32, 64])
_WALLTIME = np.array([3_600, 4 * 3_600, 12 * 3_600, 24 * 3_600])
# Submissions per hour of day (UTC): busiest in working hours.
_HOURLY = np.array([2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 11, 9, 11, 12, 12, 11, 9, 7, 6, 5, 4, 3, 2], float)

_OK, _QUOTA, _NODE, _OOM, _SCF, _WALL = range(6)


# -- numbers --------------------------------------------------------------------------------
def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    """Return *n* seed-derived uuid4 strings."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


def _times(x: np.ndarray) -> list[float]:
    return np.round(x, 6).tolist()


class _History:
    """Every column of the history as numpy arrays, computed up front (vectorized)."""

    def __init__(self, n_jobs: int, seed: int, days: float) -> None:
        rng = self.rng = np.random.default_rng(seed)
        n = self.n = n_jobs
        self.now = START + days * _DAY

        # Submission times: a day, then an hour weighted to working hours.
        day = rng.integers(0, max(int(np.ceil(days)), 1), n)
        hour = rng.choice(24, n, p=_HOURLY / _HOURLY.sum())
        created = START + day * _DAY + hour * 3_600.0 + rng.random(n) * 3_600.0
        created = np.sort(np.minimum(created, self.now - 1.0))
        self.created = created
        self.keys = _uuids(rng, n)

        names = list(SOURCES)
        self.source = rng.choice(len(names), n, p=[SOURCES[s][0] for s in names])
        self.source_names = names
        calc = np.empty(n, dtype=np.int64)
        for i, s in enumerate(names):
            mask = self.source == i
            w = np.array(_CALC_WEIGHTS[s], float)
            calc[mask] = rng.choice(len(_CALCS), int(mask.sum()), p=w / w.sum())
        self.calc = calc
        code = np.array([c[0] for c in _CALCS])[calc]
        base_time = np.array([c[3] for c in _CALCS])[calc]
        mem_need = np.array([c[4] for c in _CALCS])[calc]
        is_xtb = code == "xtb"

        # Resources: xtb asks for little; the rest spread, users often under-ask memory.
        cpus_i = np.where(is_xtb, rng.integers(0, 3, n), rng.integers(1, 6, n))
        mem_i = np.where(is_xtb, rng.integers(0, 2, n), rng.choice(6, n, p=[0.06, 0.12, 0.3, 0.3, 0.14, 0.08]))
        wall_i = np.where(is_xtb, 0, rng.integers(0, 4, n))
        self.cpus, self.mem_gb, self.walltime = _CPUS[cpus_i], _MEM_GB[mem_i], _WALLTIME[wall_i]
        self.batchable = is_xtb & (rng.random(n) < 0.85)
        self.source_tag = np.where(rng.random(n) < 0.1, 1, 0)

        # Workers: batchable → gpu_w (batches), big → hpc_w, else cpu_w.
        worker = np.where(self.batchable, 1, np.where(self.cpus >= 16, 2, 0))
        self.worker = worker
        self.worker_names = list(WORKERS)

        # Outcomes, decided up front; their times follow.
        duration = base_time / np.sqrt(self.cpus) * rng.lognormal(0.0, 0.6, n)
        need = mem_need * rng.lognormal(0.0, 0.35, n)
        p_quota = np.where(self.source == names.index("adhoc_dave"), 0.12, 0.002)
        outcome = np.full(n, _OK)
        u = rng.random((4, n))
        scf_prone = np.array([c[1] == "wb97x-d" and c[2] == "cc-pvtz" for c in _CALCS])[calc]
        outcome[(outcome == _OK) & (duration > self.walltime)] = _WALL
        outcome[(u[2] < np.where(scf_prone, 0.45, 0.01)) & ~is_xtb] = _SCF
        outcome[need > self.mem_gb] = _OOM
        outcome[(worker == 2) & (u[1] < 0.03)] = _NODE
        outcome[u[0] < p_quota] = _QUOTA
        self.outcome, self.need = outcome, need
        run = np.where(outcome == _WALL, self.walltime.astype(float), duration)
        run = np.where(np.isin(outcome, [_OOM, _SCF, _NODE]), duration * rng.uniform(0.05, 0.9, n), run)
        run = np.where(outcome == _QUOTA, rng.uniform(1, 20, n), run)

        # Queueing: a backlog builds up in the last day, so recent jobs are still waiting.
        backlog = 1.0 + 360.0 * np.clip((created - (self.now - _DAY)) / _DAY, 0, None) ** 2
        t_claim = created + rng.exponential(120.0, n) * backlog
        t_submit = t_claim + rng.exponential(30.0, n)
        queue = np.select([worker == 2, worker == 1], [3_600.0, 300.0], 120.0)
        t_start = t_submit + rng.exponential(queue)
        t_end = t_start + run
        self.run = run
        self.batch_of = np.full(n, -1)
        self._make_batches(t_submit, t_start, t_end)
        t_end = np.where(self.batch_of >= 0, self.batch_end[np.maximum(self.batch_of, 0)], t_end)
        t_start = np.where(self.batch_of >= 0, self.batch_start[np.maximum(self.batch_of, 0)], t_start)
        t_final = t_end + rng.exponential(60.0, n)
        self.t_claim, self.t_submit, self.t_start, self.t_end, self.t_final = t_claim, t_submit, t_start, t_end, t_final

        # Jobman-level status from where `now` falls.
        now = self.now
        status = np.select(
            [t_claim > now, t_submit > now, t_end > now, t_final > now, outcome == _OK],
            ["PENDING", "CLAIMED", "RUNNING", "EXECUTED", "COMPLETED"], "FAILED").astype(object)
        modified = np.select([t_claim > now, t_submit > now, t_end > now, t_final > now],
                             [created, t_claim, t_submit, t_end], t_final)
        # Losses: a few finished ordinary jobs went UNKNOWN (their engine job vanished) or were
        # left CLAIMED/RUNNING by a process that died (stale jobs); none of them batched.
        done_long_ago = (t_final < now - _DAY) & (self.batch_of < 0)
        v = rng.random(n)
        unknown = done_long_ago & (v < 0.002)
        stale_claimed = done_long_ago & (v >= 0.002) & (v < 0.003)
        stale_running = done_long_ago & (v >= 0.003) & (v < 0.005)
        status[unknown], modified[unknown] = "UNKNOWN", t_end[unknown]
        status[stale_claimed], modified[stale_claimed] = "CLAIMED", t_claim[stale_claimed]
        status[stale_running], modified[stale_running] = "RUNNING", t_submit[stale_running]
        self.status, self.modified = status, modified
        self.stale_claimed = stale_claimed
        self.purgeable = (status == "COMPLETED") & (created < START + 2 * _DAY) & (rng.random(n) < 0.5)

    def _make_batches(self, t_submit: np.ndarray, t_start: np.ndarray, t_end: np.ndarray) -> None:
        """Group gpu_w's jobs, in order of hand-over, into batches of 4-32 that start and end together."""
        now, rng = self.now, self.rng
        idx = np.flatnonzero((self.worker == 1) & (t_submit <= now))
        idx = idx[np.argsort(t_submit[idx], kind="stable")]
        sizes = rng.integers(4, 33, len(idx) // 4 + 1)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        bounds = bounds[bounds < len(idx)]
        nb = len(bounds)
        self.batch_members = [idx[a:b] for a, b in zip(bounds, [*bounds[1:], len(idx)], strict=True)]
        self.batch_of[idx] = np.repeat(np.arange(nb), np.diff(np.append(bounds, len(idx))))
        formed = np.array([t_submit[m].max() for m in self.batch_members]) if nb else np.empty(0)
        self.batch_start = formed + rng.exponential(300.0, nb)
        self.batch_end = np.array([self.batch_start[b] + self.run[m].max()
                                   for b, m in enumerate(self.batch_members)]) if nb else np.empty(0)
        self.batch_keys = _uuids(rng, nb)


# -- records --------------------------------------------------------------------------------
_FRAMES = {
    _OOM: ('  File "{dir}/run.py", line 41, in <module>\n    result = calc.run()\n'
           '  File "/opt/qcrunner/qcrunner/{code}.py", line 218, in run\n    self._integrals()\n'
           '  File "/opt/qcrunner/qcrunner/base.py", line 131, in _integrals\n    buf = np.empty(shape)\n'),
    _SCF: ('  File "{dir}/run.py", line 41, in <module>\n    result = calc.run()\n'
           '  File "/opt/qcrunner/qcrunner/{code}.py", line 240, in run\n    self._check_output(out)\n'
           '  File "/opt/qcrunner/qcrunner/base.py", line 96, in _check_output\n    raise SCFConvergenceError(msg)\n'),
    _WALL: ('  File "/opt/jobman/engines/local_engine.py", line 88, in _poll\n    self._enforce_walltime(job)\n'
            '  File "/opt/jobman/engines/local_engine.py", line 112, in _enforce_walltime\n'
            '    raise WalltimeExceeded(msg)\n'),
    _QUOTA: ('  File "/opt/jobman/workers/base_worker.py", line 64, in _prepare_dir\n'
             '    shutil.copytree(src, dst)\n'),
    _NODE: ('  File "/opt/jobman/engines/slurm_engine.py", line 203, in _poll\n    out = self._ssh(cmd)\n'
            '  File "/opt/jobman/engines/slurm_engine.py", line 77, in _ssh\n    return conn.run(cmd)\n'),
}


def _traceback(kind: int, h: _History, i: int, salt: float) -> str:
    code, method, _, _, _ = _CALCS[h.calc[i]]
    user = SOURCES[h.source_names[h.source[i]]][1]
    dir_ = f"/scratch/{user}/jobs/{h.keys[i][:8]}"
    if kind == _OOM:
        last = f"MemoryError: Unable to allocate {h.need[i] * (1 + salt):.1f} GiB for {method} integrals"
    elif kind == _SCF:
        last = (f"qcrunner.errors.SCFConvergenceError: SCF not converged after {100 + int(salt * 400)} cycles "
                f"(last dE={10 ** (-3 - 3 * salt):.1e})")
    elif kind == _WALL:
        last = (f"jobman.engines.errors.WalltimeExceeded: job killed after {int(h.walltime[i])} s "
                f"(walltime {int(h.walltime[i])} s)")
    elif kind == _QUOTA:
        last = f"OSError: [Errno 122] Disk quota exceeded: '{dir_}/input.xyz'"
    else:
        last = f"ConnectionResetError: [Errno 104] Connection reset by peer (node cn{int(salt * 512):04d})"
    return ("Traceback (most recent call last):\n" + _FRAMES[kind].format(dir=dir_, code=code) + last)


def _jobman_jobs(h: _History, lo: int, hi: int) -> list[dict[str, Any]]:
    sl = slice(lo, hi)
    salts = h.rng.random(hi - lo).tolist()
    retried = (h.rng.random(hi - lo) < 0.2).tolist()
    resources = {}
    cfgs = {}
    jobs = []
    for j, (i, key, created, modified, status, calc, cpus, mem, wall, batchable, src, tag, worker, purge) in enumerate(
            zip(range(lo, hi), h.keys[sl], _times(h.created[sl]), _times(h.modified[sl]), h.status[sl].tolist(),
                h.calc[sl].tolist(), h.cpus[sl].tolist(), h.mem_gb[sl].tolist(), h.walltime[sl].tolist(),
                h.batchable[sl].tolist(), h.source[sl].tolist(), h.source_tag[sl].tolist(),
                h.worker[sl].tolist(), h.purgeable[sl].tolist(), strict=True)):
        res = resources.get((cpus, mem, wall))
        if res is None:  # shared between rows: the DAO serializes each row anyway
            res = resources[cpus, mem, wall] = {"cpus": cpus, "mem_gb": mem, "walltime": wall}
        cfg = cfgs.get(calc)
        if cfg is None:
            code, method, basis, _, _ = _CALCS[calc]
            cfg = cfgs[calc] = {"code": code, "method": method, **({"basis": basis} if basis else {})}
        source = h.source_names[src]
        assigned = status not in ("PENDING", "CLAIMED")
        errors = None
        if status == "FAILED":
            tb = _traceback(int(h.outcome[i]), h, i, salts[j])
            errors = [_traceback(int(h.outcome[i]), h, i, salts[j] / 2), tb] if retried[j] else [tb]
        jobs.append({
            "key": key, "created": created, "modified": modified, "status": status,
            "job_spec": {"dir": f"/scratch/{SOURCES[source][1]}/jobs/{key[:8]}", "entrypoint": "./entrypoint.sh",
                         "batchable": batchable, "resources": res, "cfg": cfg},
            "batchable": int(batchable),
            "worker_key": h.worker_names[worker] if assigned else None,
            "worker_meta": {"key": key} if assigned else None,
            "errors": errors,
            "source_key": source,
            "source_meta": {"i": i, "tags": ["rerun"] if tag else []},
            "source_tag": "postprocess" if tag else None,
            "purgeable": 1 if purge else None,
        })
    return jobs


def _worker_status(h: _History, i: np.ndarray, t_start: np.ndarray, t_end: np.ndarray,
                   t_done: np.ndarray) -> np.ndarray:
    now = h.now
    outcome = np.where(h.outcome[i] == _OK, "COMPLETED", "FAILED")
    return np.select([t_start > now, t_end > now, t_done > now], ["PENDING", "RUNNING", "EXECUTED"],
                     outcome).astype(object)


def _worker_and_engine_jobs(h: _History, w: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return worker *w*'s job records and its engine's job records."""
    rng, now = h.rng, h.now
    # Handed to the worker: past t_submit, and not lost between claim and hand-over.
    idx = np.flatnonzero((h.worker == w) & (h.t_submit <= now) & ~h.stale_claimed)
    created = h.t_submit[idx] + rng.uniform(0.01, 1.0, len(idx))
    t_start, t_end = h.t_start[idx], h.t_end[idx]
    t_done = t_end + rng.uniform(0.5, 30.0, len(idx))
    wstatus = _worker_status(h, idx, t_start, t_end, t_done)
    unknown = h.status[idx] == "UNKNOWN"
    wstatus[unknown] = "UNKNOWN"
    modified = np.select([t_start > now, t_end > now, t_done > now], [created, t_start, t_end], t_done)
    modified = np.where(unknown, t_end, modified)
    quota = h.outcome[idx] == _QUOTA  # failed preparing the dir: never reached the engine
    engine_keys = _uuids(rng, len(idx))
    has_engine = (t_start <= now) & ~quota & (h.batch_of[idx] < 0)
    worker_jobs, engine_jobs = [], []
    for key, c, m, s, ek, he, b, unk, ts, te in zip(
            [h.keys[i] for i in idx.tolist()], _times(created), _times(modified), wstatus.tolist(), engine_keys,
            has_engine.tolist(), h.batch_of[idx].tolist(), unknown.tolist(), _times(t_start), _times(t_end),
            strict=True):
        worker_jobs.append({"key": key, "created": c, "modified": m, "status": s, "batchable": 1 if b >= 0 else 0,
                            "batch_meta": None, "is_batch": 0, "parent_batch_key": h.batch_keys[b] if b >= 0 else None,
                            "engine_key": None, "engine_meta": {"key": ek} if he else None})
        if he and not unk:  # an UNKNOWN job's engine record is gone: its link points nowhere
            engine_jobs.append({"key": ek, "created": ts, "modified": te if te <= now else ts,
                                "status": "EXECUTED" if te <= now else "RUNNING"})
    if w == h.worker_names.index("gpu_w") and h.batch_keys:
        nb = len(h.batch_keys)
        formed = np.array([h.t_submit[m].max() for m in h.batch_members]) + 0.5
        b_done = h.batch_end + rng.uniform(0.5, 30.0, nb)
        b_engine = _uuids(rng, nb)
        for b, (bkey, members) in enumerate(zip(h.batch_keys, h.batch_members, strict=True)):
            start, end, done = h.batch_start[b], h.batch_end[b], b_done[b]
            if start > now:
                status, mod = "PENDING", formed[b]
            elif end > now:
                status, mod = "RUNNING", start
            elif done > now:
                status, mod = "EXECUTED", end
            else:
                status, mod = ("COMPLETED" if (h.outcome[members] == _OK).any() else "FAILED"), done
            worker_jobs.append({"key": bkey, "created": round(float(formed[b]), 6), "modified": round(float(mod), 6),
                                "status": status, "batchable": 0, "is_batch": 1,
                                "batch_meta": {"subjobs": [h.keys[i] for i in members.tolist()]},
                                "parent_batch_key": None, "engine_key": None,
                                "engine_meta": {"key": b_engine[b]} if start <= now else None})
            if start <= now:
                engine_jobs.append({"key": b_engine[b], "created": round(float(start), 6),
                                    "modified": round(float(end if end <= now else start), 6),
                                    "status": "EXECUTED" if end <= now else "RUNNING"})
    return worker_jobs, engine_jobs


def _kvps(h: _History) -> list[dict[str, Any]]:
    last = {s: int(np.flatnonzero(h.source == i).max(initial=-1)) for i, s in enumerate(h.source_names)}
    stamp = round(h.now - 5.0, 6)
    return [
        {"key": "source_cursors", "value": last, "created": START, "modified": stamp},
        {"key": "last_tick", "value": {"t": stamp, "claimed": int((h.status == "CLAIMED").sum())},
         "created": START, "modified": stamp},
        {"key": "paused_sources", "value": [], "created": START, "modified": START},
    ]


# -- writing --------------------------------------------------------------------------------
def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


def _chunks(records: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for lo in range(0, len(records), _CHUNK):
        yield records[lo:lo + _CHUNK]


def _batches(h: _History, bar: tqdm) -> Iterator[tuple[str, str, Sequence[dict[str, Any]]]]:
    """Yield ``(table prefix, ent_type, records)`` in writing order, built lazily (counted on *bar*)."""
    for lo in range(0, h.n, _CHUNK):
        yield "jobman_", "job", _jobman_jobs(h, lo, min(lo + _CHUNK, h.n))
    yield "jobman_", "kvp", _kvps(h)
    for i, worker in enumerate(h.worker_names):
        wjobs, ejobs = _worker_and_engine_jobs(h, i)
        bar.total += len(wjobs) + len(ejobs)
        bar.refresh()
        for chunk in _chunks(wjobs):
            yield f"_worker_{worker}_", "job", chunk
        for chunk in _chunks(ejobs):
            yield f"engine_{WORKERS[worker]}_", "job", chunk


class _Writer:
    """Writes batches through the DAOs; lives in one thread, which owns every connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dao: SqliteDAO | None = None
        self.tables: dict[str, int] = {}

    def _open(self, prefix: str) -> SqliteDAO:
        if self.dao is not None and self.dao.table_prefix == prefix:
            return self.dao
        self.close()
        uri = str(self.path)
        if prefix == "jobman_":
            dao: SqliteDAO = JobmanSqliteDAO(db_uri=uri)
        elif prefix.startswith("_worker_"):
            dao = WorkerSqliteDAO(db_uri=uri, table_prefix=prefix)
        else:
            dao = EngineSqliteDAO(db_uri=uri, table_prefix=prefix)
        # The file is renamed into place only when complete, so a crash loses nothing:
        # skip fsyncs, and give SQLite room for the B-trees of random uuid keys.
        dao.connection.execute("PRAGMA synchronous=OFF")
        dao.connection.execute("PRAGMA cache_size=-262144")
        for orm in dao.orms.values():
            self.tables.setdefault(orm.table, 0)
        self.dao = dao
        return dao

    def write(self, prefix: str, ent_type: str, records: Sequence[dict[str, Any]]) -> int:
        dao = self._open(prefix)
        dao.save_ents(ent_type, records, replace=False, auto_update=False)
        self.tables[prefix + ent_type] += len(records)
        return len(records)

    def close(self, *, finished: bool = False) -> None:
        if self.dao is not None:
            if finished:
                # Rollback-journal mode, as jobman leaves its files: read-only readers then
                # need no -wal/-shm side files, so reading leaves the directory as it was.
                self.dao.connection.execute("PRAGMA journal_mode=DELETE")
            self.dao.close()
        self.dao = None


def _write(h: _History, path: Path, bar: tqdm) -> dict[str, int]:
    """Write the history to *path*: building records here overlaps SQLite's work in the writer thread."""
    writer = _Writer(path)
    with ThreadPoolExecutor(1, thread_name_prefix="jobman_nb-demo") as pool:
        pending: deque[Future[int]] = deque()
        try:
            for batch in _batches(h, bar):
                pending.append(pool.submit(writer.write, *batch))
                while len(pending) > 1:
                    bar.update(pending.popleft().result())
            while pending:
                bar.update(pending.popleft().result())
            pool.submit(writer.close, finished=True).result()
        finally:
            for future in pending:
                future.cancel()
            pool.submit(writer.close).result()
    return writer.tables


def _job_events(h: _History, retried: set[int]) -> list[tuple[str, str | None, str, float]]:
    """Every status change of the jobman jobs, ending at each job's status and ``modified``, in time order.

    A job goes PENDING (created) → CLAIMED → RUNNING (handed to its worker) →
    EXECUTED → COMPLETED or FAILED, as far as it got by the end of the history;
    UNKNOWN jobs lost their engine job while RUNNING. A FAILED job whose
    errors hold two tracebacks failed once before: that attempt runs and fails
    while it waits, and it returns to PENDING.
    """
    rows: list[tuple[str, str | None, str, float]] = []
    flow = ("PENDING", "CLAIMED", "RUNNING", "EXECUTED")
    # The same rounding as the jobs' created and modified, so the last event's time equals modified.
    times = zip(h.keys, h.status.tolist(), _times(h.created), _times(h.t_claim), _times(h.t_submit),
                _times(h.t_end), _times(h.modified), strict=True)
    for i, (key, status, created, t_claim, t_submit, t_end, modified) in enumerate(times):
        chain = list(zip(flow, (created, t_claim, t_submit, t_end), strict=True))
        if status == "UNKNOWN":
            chain = [*chain[:3], ("UNKNOWN", modified)]
        elif status in flow:
            chain = chain[:flow.index(status) + 1]
        else:
            chain.append((status, modified))
        if i in retried:  # the failed first attempt, while waiting for the second
            wait = t_claim - created
            first = [(s, round(created + f * wait, 6)) for s, f in
                     (("CLAIMED", 0.1), ("RUNNING", 0.2), ("FAILED", 0.7), ("PENDING", 0.75))]
            chain = [chain[0], *first, *chain[1:]]
        old = None
        for new, t in chain:
            rows.append((key, old, new, t))
            old = new
    rows.sort(key=lambda r: r[3])
    return rows


def _write_events(h: _History, path: Path) -> int:
    """Write the jobman jobs' history to ``jobman_job_event`` and turn history on."""
    dao = JobmanSqliteDAO(db_uri=str(path))
    try:
        conn = dao.connection
        conn.execute("PRAGMA synchronous=OFF")
        index = {k: i for i, k in enumerate(h.keys)}
        retried = {index[r[0]] for r in conn.execute(
            "SELECT key FROM jobman_job WHERE status = 'FAILED' AND json_array_length(errors) = 2")}
        orm = dao.orms["job"]
        with dao.transaction():
            _history.create_event_table(conn, orm)
            n = _history.insert_events(conn, orm, _job_events(h, retried))
        dao.enable_history()  # consistent events: nothing to snapshot
    finally:
        dao.close()
    return n


def make_history(path: str | os.PathLike[str], n_jobs: int = 10_000, seed: int = 0, *, days: float = 7.0,
                 overwrite: bool = False, progress: bool | None = False, events: bool = False) -> dict[str, Any]:
    """Write a realistic jobman history to a new SQLite file.

    The file holds jobman's tables (``jobman_job``, ``jobman_kvp``), one table
    pair per worker (``_worker_cpu_w_``, ``_worker_gpu_w_``, ``_worker_hpc_w_``)
    and per engine (``engine_cpu_w_engine_``, ...), linked as jobman links them.
    Jobs are submitted over *days* days from :data:`START`; the last ones are
    still pending or running at the end. It is written to a temporary file
    next to *path* and renamed into place only when complete.

    Parameters
    ----------
    path : str or path-like
        The database file to create.
    n_jobs : int
        Number of jobman jobs (worker, engine and batch jobs come on top).
    seed : int
        Seed of every random choice, keys and timestamps included.
    days : float
        Length of the history in days.
    overwrite : bool
        Replace *path* if it exists (otherwise an existing file is an error).
    progress : bool or None
        Show a progress bar (tqdm; None shows it only on a terminal or notebook).
    events : bool
        Also write every status change of the jobman jobs to ``jobman_job_event``
        (consistent with the jobs, retries of failed jobs included) and turn
        history on (see :meth:`~jobman_nb.JobmanSqliteDAO.enable_history`).

    Returns
    -------
    dict
        A summary: ``path``, ``seed``, ``jobs`` (jobman jobs), ``statuses``
        (counts of jobman job statuses), ``tables`` (rows per table),
        ``first_created`` / ``last_modified`` (ISO 8601 UTC) and ``seconds``
        (time taken).

    Raises
    ------
    FileExistsError
        If *path* exists and *overwrite* is False.
    ValueError
        If *n_jobs*, *seed* or *days* is not valid.
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= 3650:
        raise ValueError(f"days must be a number of days in (0, 3650], got {days!r}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"no directory {path.parent} to write {path.name} into")
    t0 = time.perf_counter()
    h = _History(int(n_jobs), int(seed), float(days))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    _remove(tmp)
    try:
        with tqdm(total=h.n + 3, unit="rec", desc=f"writing {path.name}",
                  disable=None if progress is None else not progress, leave=False) as bar:
            tables = _write(h, tmp, bar)
        if events:
            tables["jobman_job_event"] = _write_events(h, tmp)
        _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).isoformat()

    return {
        "path": str(path),
        "seed": int(seed),
        "jobs": h.n,
        "statuses": dict(sorted(Counter(h.status.tolist()).items())),
        "tables": tables,
        "first_created": iso(float(h.created.min())),
        "last_modified": iso(float(h.modified.max())),
        "seconds": round(time.perf_counter() - t0, 3),
    }
