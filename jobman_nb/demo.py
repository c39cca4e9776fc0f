"""A generator of realistic, reproducible jobman histories for notebooks, tests and benchmarks.

:func:`make_history` writes what a jobman database holds after some days of
use: ``jobman_job`` rows submitted by a few sources, each worker's tables
(``_worker_<key>_job``) and each engine's (``engine_<key>_job``), linked the way
jobman 0.0.1 links them (``worker_meta.key`` → worker job, whose key equals the
jobman job's; ``engine_meta.key`` → engine job), batch jobs with subjobs, kvps,
and FAILED jobs. Like jobman, it records almost nothing about why a job failed
(``errors`` is null, or jobman's generic "No completed checkpoint" traceback for
a batch's subjob); the causes are in the job directories it writes beside the
file, as jobman and Slurm leave them: out-of-memory kills for heavy methods
given little memory, SCF convergence failures for one method/basis, walltime
exceeded, a user over quota, a flaky cluster node. The history is written in
chunks, so memory stays bounded whatever the number of jobs.

Everything, timestamps and keys included, derives from the seed: the history
starts at :data:`START` (2026-01-05 00:00 UTC), not at the current time, so two
runs with the same seed (and numpy version) write identical records.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from . import _demo_logs as _logs
from .dao import EngineSqliteDAO, JobmanSqliteDAO, WorkerSqliteDAO
from .dao import history as _history
from .dao import query as _query
from .dao.orm import ORM
from .dao.sqlite_dao import SqliteDAO
from .errors import ArgumentError, MissingFileError, OutputExistsError

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
_CHUNK = 20_000  # jobs per chunk: what bounds the memory
_CACHE_KIB = 262_144  # SQLite's page cache while loading

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

_OK, _QUOTA, _NODE, _OOM, _SCF, _WALL = _logs.OK, _logs.QUOTA, _logs.NODE, _logs.OOM, _logs.SCF, _logs.WALL


_HEX_PAIRS = np.frombuffer(bytes.hex(bytes(range(256))).encode(), dtype=np.uint8).reshape(256, 2)


# -- numbers --------------------------------------------------------------------------------
def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    """Return *n* seed-derived uuid4 strings."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    # The text as ASCII codes (two hex digits a byte, dashes between groups), made strings in bulk.
    digits = np.take(_HEX_PAIRS, raw, axis=0).reshape(n, 32)
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dashes, (lo, hi) in enumerate(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))):
        text[:, lo + dashes:hi + dashes] = digits[:, lo:hi]
    return text.view("S36").ravel().astype("U36").tolist()


def _times(x: np.ndarray) -> list[float]:
    return np.round(x, 6).tolist()


class _Plan:
    """What the whole history shares, small whatever its size: the clock, the chunks and their seeds.

    The jobs come in chunks of :data:`_CHUNK`, each drawn from its own seed
    (spawned from *seed*), so a chunk is computed, written and dropped before
    the next: memory is bounded by the chunk, not by the history. Creation
    times are sorted across the whole history without holding them: the jobs'
    order statistics of a uniform draw are cumulative sums of exponential
    spacings, and each chunk's share of the total is drawn up front (a Gamma
    sum per chunk), then mapped through the inverse distribution of
    submissions over days and working hours.
    """

    def __init__(self, n_jobs: int, seed: int, days: float) -> None:
        self.n = n_jobs
        self.now = START + days * _DAY
        self.bounds = [(lo, min(lo + _CHUNK, n_jobs)) for lo in range(0, n_jobs, _CHUNK)]
        children = np.random.SeedSequence(seed).spawn(2 * len(self.bounds) + 1)
        # The dirs' noise has seeds of its own: writing dirs or not leaves the records as they are.
        self.seeds, self.dir_seeds = children[1:len(self.bounds) + 1], children[len(self.bounds) + 1:]
        rng = np.random.default_rng(children[0])
        sums = rng.gamma(np.array([hi - lo for lo, hi in self.bounds], float))
        total = sums.sum() + rng.exponential()
        self.spans = sums / total
        self.offsets = np.concatenate([[0.0], np.cumsum(sums)[:-1]]) / total
        hours = np.tile(_HOURLY, max(int(np.ceil(days)), 1))
        self.cdf = np.concatenate([[0.0], np.cumsum(hours)]) / hours.sum()
        self.edges = START + 3_600.0 * np.arange(len(hours) + 1)

    def chunks(self) -> Iterator[_History]:
        """The history's chunks, in order of creation time."""
        for k, (lo, hi) in enumerate(self.bounds):
            yield _History(self, k, lo, hi - lo)


class _History:
    """Every column of one chunk of the history as numpy arrays, computed up front (vectorized)."""

    def __init__(self, plan: _Plan, k: int, lo: int, n: int) -> None:
        rng = self.rng = np.random.default_rng(plan.seeds[k])
        self.n, self.lo = n, lo
        self.dir_seed = plan.dir_seeds[k]
        self._dirs: list[str] | None = None
        self.now = plan.now

        # Submission times: this chunk's stretch of the sorted uniforms, through the hourly distribution.
        spacing = np.cumsum(rng.exponential(size=n))
        u = plan.offsets[k] + spacing / spacing[-1] * plan.spans[k]
        created = np.minimum(np.interp(u, plan.cdf, plan.edges), self.now - 1.0)
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
        outcome[u[2] < np.select([scf_prone, is_xtb], [0.45, 0.02], 0.01)] = _SCF
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
        # A job's batch times (index -1, no batch, picks the NaN that np.where drops).
        t_end = np.where(self.batch_of >= 0, np.append(self.batch_end, np.nan)[self.batch_of], t_end)
        t_start = np.where(self.batch_of >= 0, np.append(self.batch_start, np.nan)[self.batch_of], t_start)
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
        # Noise of the failed jobs' logs (a salt), and which of them failed once before.
        self.salts, self.retried = rng.random(n), rng.random(n) < 0.2

    def dirs(self) -> list[str]:
        """The jobs' directories as the cluster sees them: ``/scratch/<user>/<source>/job_<index>``."""
        if self._dirs is None:
            prefix = np.array([f"/scratch/{SOURCES[s][1]}/{s}/job_" for s in self.source_names], dtype=object)
            self._dirs = [f"{p}{g:07d}" for p, g in
                          zip(prefix[self.source].tolist(), range(self.lo, self.lo + self.n), strict=True)]
        return self._dirs

    def _make_batches(self, t_submit: np.ndarray, t_start: np.ndarray, t_end: np.ndarray) -> None:
        """Group gpu_w's jobs, in order of hand-over, into batches of 4-32 that start and end together."""
        now, rng = self.now, self.rng
        idx = np.flatnonzero((self.worker == 1) & (t_submit <= now))
        idx = idx[np.argsort(t_submit[idx], kind="stable")]
        sizes = rng.integers(4, 33, len(idx) // 4 + 1)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        bounds = bounds[bounds < len(idx)]
        nb = len(bounds)
        ends = [*bounds[1:], len(idx)] if nb else []
        self.batch_members = [idx[a:b] for a, b in zip(bounds, ends, strict=True)]
        self.batch_of[idx] = np.repeat(np.arange(nb), np.diff(np.append(bounds, len(idx))))
        formed = np.array([t_submit[m].max() for m in self.batch_members]) if nb else np.empty(0)
        self.batch_start = formed + rng.exponential(300.0, nb)
        self.batch_end = np.array([self.batch_start[b] + self.run[m].max()
                                   for b, m in enumerate(self.batch_members)]) if nb else np.empty(0)
        self.batch_keys = _uuids(rng, nb)


# -- records --------------------------------------------------------------------------------
#: The source whose jobs name their logs themselves (``job_spec.std_log_file_names``).
_CUSTOM_LOGS_SOURCE = "benchmark"
_LOG_NAMES = {"stdout": "job.out", "stderr": "job.err"}


def _spec(batchable: bool, cpus: int, mem: int, wall: int, calc: int, custom_logs: bool) -> dict[str, Any]:
    """A job's spec without its dir, as the user's JOBMAN-JOB_SPEC.json and jobman's entrypoint give it."""
    prog, method, basis, _, _ = _CALCS[calc]
    return {"entrypoint": "./entrypoint.sh", "batchable": batchable,
            "resources": {"cpus": cpus, "mem_gb": mem, "walltime": wall},
            "cfg": {"code": prog, "method": method, **({"basis": basis} if basis else {})},
            **({"std_log_file_names": _LOG_NAMES} if custom_logs else {})}


# JSON text is built from templates: json.dumps of an object holding _MARK where a value goes,
# split there. The values put in (hex keys, ASCII paths, integers) need no escaping, so the
# text equals json.dumps of the whole object, which is what the DAO would store.
_MARK = "\x1e"
_NULL = "null"  # the DAO stores None in a JSON field as JSON null


def _template(obj: Any) -> tuple[str, str]:
    """Return the JSON text of *obj* before and after its one :data:`_MARK` value (quotes excluded)."""
    before, after = _query.dumps(obj).split(_query.dumps(_MARK))
    return before, after


_KEY_META = _template({"key": _MARK})


def _key_meta(keys: Iterator[str] | Sequence[str], present: Sequence[bool]) -> list[str]:
    """``{"key": key}`` as JSON text where *present*, else JSON null."""
    a, b = _KEY_META
    return [f'{a}"{k}"{b}' if p else _NULL for k, p in zip(keys, present, strict=True)]


def _rows(orm: ORM, cols: dict[str, Sequence[Any]]) -> list[tuple]:
    """Zip column lists into rows in the table's field order (JSON already as text)."""
    names = list(orm.fields)
    if set(cols) != set(names):
        raise AssertionError(f"demo columns {sorted(cols)} do not match {orm.table}'s fields {names}")
    return list(zip(*(cols[n] for n in names), strict=True))


def _jobman_columns(h: _History) -> dict[str, Sequence[Any]]:
    """Columns of the chunk's jobman jobs, JSON fields as text."""
    sl = slice(0, h.n)
    keys = h.keys[sl]
    status = h.status[sl]
    assigned = (status != "PENDING") & (status != "CLAIMED")

    # job_spec: one template per distinct (batchable, resources, cfg); the dir goes in the mark.
    choices = (np.array([0, 1]), _CPUS, _MEM_GB, _WALLTIME, np.arange(len(_CALCS)))
    values = (h.batchable[sl], h.cpus[sl], h.mem_gb[sl], h.walltime[sl], h.calc[sl])
    combo = np.ravel_multi_index([np.searchsorted(c, v) for c, v in zip(choices, values, strict=True)],
                                 [len(c) for c in choices])
    codes, which = np.unique(combo, return_inverse=True)
    templates = []
    for code in codes.tolist():
        batchable, cpus, mem, wall, calc = (int(c[i]) for c, i in
                                            zip(choices, np.unravel_index(code, [len(c) for c in choices]),
                                                strict=True))
        templates.append(_template({"dir": _MARK, **_spec(bool(batchable), cpus, mem, wall, calc, False)}))
        templates.append(_template({"dir": _MARK, **_spec(bool(batchable), cpus, mem, wall, calc, True)}))
    dirs = h.dirs()
    custom = (h.source == h.source_names.index(_CUSTOM_LOGS_SOURCE)).astype(np.int64)
    specs = [f'{a}"{d}"{b}' for (a, b), d in
             zip([templates[t] for t in (2 * which + custom).tolist()], dirs, strict=True)]

    # What jobman 0.0.1 records: nothing, except for a batch's subjob that left no
    # JOBMAN-COMPLETED, which gets its generic traceback. The causes are in the job dirs.
    errors = [_NULL] * h.n
    for i in np.flatnonzero((status == "FAILED") & (h.batch_of >= 0)).tolist():
        errors[i] = _query.dumps([_logs.no_checkpoint_error(dirs[i])])

    tag = h.source_tag[sl].astype(bool)
    meta_a, meta_b = _template({"i": _MARK, "tags": []})
    rerun_a, rerun_b = _template({"i": _MARK, "tags": ["rerun"]})
    source_meta = [f"{rerun_a}{i}{rerun_b}" if t else f"{meta_a}{i}{meta_b}"
                   for i, t in zip(range(h.lo, h.lo + h.n), tag.tolist(), strict=True)]
    worker_key = np.array(h.worker_names, dtype=object)[h.worker[sl]]
    worker_key[~assigned] = None
    return {
        "key": keys, "created": _times(h.created[sl]), "modified": _times(h.modified[sl]),
        "status": status.tolist(), "job_spec": specs, "batchable": h.batchable[sl].astype(np.int64).tolist(),
        "worker_key": worker_key.tolist(), "worker_meta": _key_meta(keys, assigned.tolist()), "errors": errors,
        "source_key": np.array(h.source_names, dtype=object)[h.source[sl]].tolist(),
        "source_meta": source_meta,
        "source_tag": np.where(tag, "postprocess", None).tolist(),
        "purgeable": np.where(h.purgeable[sl], 1, None).tolist(),
    }


def _worker_status(h: _History, i: np.ndarray, t_start: np.ndarray, t_end: np.ndarray,
                   t_done: np.ndarray) -> np.ndarray:
    now = h.now
    outcome = np.where(h.outcome[i] == _OK, "COMPLETED", "FAILED")
    return np.select([t_start > now, t_end > now, t_done > now], ["PENDING", "RUNNING", "EXECUTED"],
                     outcome).astype(object)


def _worker_and_engine_columns(h: _History, w: int) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Return the columns of worker *w*'s jobs and of its engine's jobs, JSON fields as text."""
    rng, now = h.rng, h.now
    # Handed to the worker: past t_submit, and not lost between claim and hand-over.
    idx = np.flatnonzero((h.worker == w) & (h.t_submit <= now) & ~h.stale_claimed)
    m = len(idx)
    created = h.t_submit[idx] + rng.uniform(0.01, 1.0, m)
    t_start, t_end = h.t_start[idx], h.t_end[idx]
    t_done = t_end + rng.uniform(0.5, 30.0, m)
    wstatus = _worker_status(h, idx, t_start, t_end, t_done)
    unknown = h.status[idx] == "UNKNOWN"
    wstatus[unknown] = "UNKNOWN"
    modified = np.select([t_start > now, t_end > now, t_done > now], [created, t_start, t_end], t_done)
    modified = np.where(unknown, t_end, modified)
    engine_keys = _uuids(rng, m)
    batch_of = h.batch_of[idx]
    has_engine = (t_start <= now) & (batch_of < 0)
    parent = np.array([*h.batch_keys, None], dtype=object)[batch_of]  # -1 picks the None
    workers: dict[str, list[Any]] = {
        "key": [h.keys[i] for i in idx.tolist()], "created": _times(created), "modified": _times(modified),
        "status": wstatus.tolist(), "batchable": (batch_of >= 0).astype(np.int64).tolist(),
        "batch_meta": [_NULL] * m, "is_batch": [0] * m, "parent_batch_key": parent.tolist(),
        "engine_key": [None] * m, "engine_meta": _key_meta(engine_keys, has_engine.tolist()),
    }
    # An UNKNOWN job's engine record is gone: its link points nowhere.
    sel = np.flatnonzero(has_engine & ~unknown)
    ts, te = np.round(t_start[sel], 6), np.round(t_end[sel], 6)  # as _times rounds
    ended = te <= now
    engines: dict[str, list[Any]] = {
        "key": [engine_keys[i] for i in sel.tolist()], "created": ts.tolist(),
        "modified": np.where(ended, te, ts).tolist(), "status": np.where(ended, "EXECUTED", "RUNNING").tolist(),
    }
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
            batch = {"key": bkey, "created": round(float(formed[b]), 6), "modified": round(float(mod), 6),
                     "status": status, "batchable": 0, "is_batch": 1,
                     "batch_meta": _query.dumps({"subjob_keys": [h.keys[i] for i in members.tolist()]}),
                     "parent_batch_key": None, "engine_key": None,
                     "engine_meta": _key_meta([b_engine[b]], [start <= now])[0]}
            for name, value in batch.items():
                workers[name].append(value)
            if start <= now:
                engine = {"key": b_engine[b], "created": round(float(start), 6),
                          "modified": round(float(end if end <= now else start), 6),
                          "status": "EXECUTED" if end <= now else "RUNNING"}
                for name, value in engine.items():
                    engines[name].append(value)
    return workers, engines


def _kvps(plan: _Plan, last: dict[str, int], claimed: int) -> list[dict[str, Any]]:
    """The kvps a jobman run leaves: *last* is each source's last job (index), *claimed* the CLAIMED count."""
    stamp = round(plan.now - 5.0, 6)
    return [
        {"key": "source_cursors", "value": {s: last.get(s, -1) for s in SOURCES}, "created": START,
         "modified": stamp},
        {"key": "last_tick", "value": {"t": stamp, "claimed": claimed}, "created": START, "modified": stamp},
        {"key": "paused_sources", "value": [], "created": START, "modified": START},
    ]


# -- job directories ------------------------------------------------------------------------
#: Where gpu_w's BatchingWorker runs its batches, as the cluster sees it.
_BATCH_ROOT = "/scratch/jobman/gpu_w/scratch"
#: The cluster prefix of every dir the demo records; the local root stands for it.
_CLUSTER_ROOT = "/scratch"
#: The nodes of each worker's engine (name pattern, how many), and hpc_w's flaky ones.
_NODES = {"cpu_w": ("cn{:04d}", 256), "gpu_w": ("gpu{:02d}", 16), "hpc_w": ("hpc{:03d}", 64)}
_FLAKY = ("hpc017", "hpc042")
_PURGED = 0.3  # share of the purgeable jobs whose users deleted their dirs afterwards
_MARKER = ".jobman_nb-demo"  # in a root the demo made: one it may replace
_STD_NAMES = {"stdout": "stdout", "stderr": "stderr"}


#: One file of a job dir: (name, bytes, mtime, mode).
_File = tuple[str, bytes, float, int]
_DIR_THREADS = 8  # writer threads: creating files is I/O (and the GIL is released), so they overlap
_DIR_BATCH = 64  # dirs a thread writes per task; 4 tasks a thread may wait (what bounds the memory, ~25 KB a dir)


def _put(path: str, data: bytes, mtime: float, mode: int) -> None:
    """Create *path* (never replacing a file), write *data*, stamp its mtime: open, write, futimens, close."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)


def _write_dirs(batch: list[tuple[str, list[_File], float]]) -> None:
    """Write job dirs (in a writer thread): each dir, its files, then the dir's own mtime."""
    for d, files, mtime in batch:
        os.mkdir(d)
        for name, data, t, mode in files:
            _put(f"{d}/{name}", data, t, mode)
        os.utime(d, (mtime, mtime))


class _DirWriter:
    """Writes each chunk's job directories under *root*, the local stand-in for :data:`_CLUSTER_ROOT`.

    What jobman 0.0.1 leaves behind: the user's ``JOBMAN-JOB_SPEC.json``,
    ``entrypoint.sh`` and input; once the engine submitted the job, jobman's
    ``JOBMAN.ENTRYPOINT.sh`` and the logs (``stdout`` / ``stderr``, or the
    names in ``job_spec.std_log_file_names``); when it ended, the checkpoint
    ``JOBMAN-COMPLETED`` or ``JOBMAN-FAILED`` (none when Slurm killed the
    whole job: time limit, node failure) and, if it succeeded, ``results.json``.
    Batched jobs run inside their batch's dir, which holds the logs; their own
    dirs get only the checkpoint. Purged dirs are missing. Files carry the
    times of the history (mtime), so the same seed gives the same dirs.

    The files' contents are made in the calling thread, and written by
    *threads* writer threads, :data:`_DIR_BATCH` dirs a task, at most
    four tasks a thread waiting; no fsync (the tree is renamed into
    place when complete). Call :meth:`finish` to wait for every write, and
    :meth:`close` in any case.
    """

    def __init__(self, root: Path, threads: int | None = None) -> None:
        threads = _DIR_THREADS if threads is None else threads
        self.root = root
        self.dirs = 0
        self._made: set[str] = set()
        self._specs: dict[tuple, bytes] = {}
        self._inputs: dict[tuple, tuple[str, bytes, bytes]] = {}
        self._batch: list[tuple[str, list[_File], float]] = []
        self._queued: deque[Future[None]] = deque()
        self._max_queued = 4 * threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="jobman_nb-demo-dirs") if threads > 1 else None
        root.mkdir()
        _put(str(root / _MARKER), b"job directories of a jobman_nb demo history (jobman_nb.demo.make_history)\n",
             START, 0o644)

    def _local(self, cluster_dir: str) -> str:
        return f"{self.root}{cluster_dir[len(_CLUSTER_ROOT):]}"

    def _add(self, path: str, files: list[_File], mtime: float) -> None:
        """Queue the dir *path* with its *files* (its parents are made now, in order)."""
        parent = os.path.dirname(path)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        self._batch.append((path, files, mtime))
        self.dirs += 1
        if len(self._batch) >= _DIR_BATCH:
            self._flush()

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if self._pool is None:
            _write_dirs(batch)
            return
        while len(self._queued) >= self._max_queued:
            self._queued.popleft().result()
        self._queued.append(self._pool.submit(_write_dirs, batch))

    def finish(self) -> None:
        """Write what is queued and wait for every write (raising the first failure)."""
        self._flush()
        while self._queued:
            self._queued.popleft().result()

    def close(self) -> None:
        """Stop the writer threads (what is not written yet is dropped)."""
        for future in self._queued:
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def chunk(self, h: _History) -> None:
        """Queue the dirs of the chunk's jobs, and of its batches."""
        rng = np.random.default_rng(h.dir_seed)
        n, now, lo = h.n, h.now, h.lo
        u = rng.random((n, 6)).tolist()
        pick = rng.random(n)
        purged = (h.purgeable & (rng.random(n) < _PURGED)).tolist()
        started = ((h.t_submit <= now) & ~h.stale_claimed & (h.t_start <= now)).tolist()
        ended = (np.asarray(started) & (h.t_end <= now) & (h.status != "UNKNOWN")).tolist()
        nodes = np.empty(n, dtype=object)
        for w, name in enumerate(h.worker_names):
            fmt, count = _NODES[name]
            sel = np.flatnonzero(h.worker == w)
            nodes[sel] = [fmt.format(1 + int(p * count)) for p in pick[sel].tolist()]
        flaky = np.flatnonzero(h.outcome == _NODE)
        nodes[flaky] = np.where(pick[flaky] < 0.7, _FLAKY[0], _FLAKY[1])
        jobids = 4_100_000 + lo + np.arange(n)
        for members in h.batch_members:  # a batch is one Slurm job on one node
            nodes[members], jobids[members] = nodes[members[0]], jobids[members[0]]
        jobids = jobids.tolist()
        custom = (h.source == h.source_names.index(_CUSTOM_LOGS_SOURCE)).tolist()
        dirs = h.dirs()
        cols = zip(range(n), dirs, h.calc.tolist(), h.cpus.tolist(), h.mem_gb.tolist(), h.walltime.tolist(),
                   h.batchable.tolist(), h.batch_of.tolist(), h.outcome.tolist(), h.need.tolist(),
                   h.created.tolist(), h.t_start.tolist(), h.t_end.tolist(), strict=True)
        batch_logs: dict[int, list[tuple[bytes, bytes]]] = {}
        batch_end = h.batch_end.tolist()
        for i, cdir, calc, cpus, mem, wall, batchable, b, outcome, need, created, t_start, t_end in cols:
            code, method, basis, _, _ = _CALCS[calc]
            run = _logs.Run(code, method, basis, cpus, mem, wall, nodes[i], jobids[i], t_start,
                            t_end, outcome, need, cdir, tuple(u[i]))
            if b >= 0 and started[i]:  # the subjob prints into its batch's logs
                batch_logs.setdefault(b, []).append(_logs.logs(run, batch_end[b] <= now))
            if purged[i]:
                continue
            spec_key = (batchable, cpus, mem, wall, calc, custom[i])
            spec = self._specs.get(spec_key)
            if spec is None:
                spec = self._specs[spec_key] = _query.dumps(
                    {k: v for k, v in _spec(*spec_key).items() if k != "entrypoint"}).encode()
            in_key = (code, method, basis, cpus, mem)
            inputs = self._inputs.get(in_key)
            if inputs is None:
                inputs = self._inputs[in_key] = _logs.inputs(*in_key)
            files: list[_File] = [("JOBMAN-JOB_SPEC.json", spec, created, 0o644),
                                  (inputs[0], inputs[1], created, 0o644), ("entrypoint.sh", inputs[2], created, 0o755)]
            last = created
            if b >= 0:
                if started[i] and batch_end[b] <= now:
                    last = batch_end[b]
                    self._checkpoint(files, run, last)
            elif started[i]:
                files.append(("JOBMAN.ENTRYPOINT.sh", _logs.jobman_entrypoint(cdir), t_start, 0o755))
                out, err = _logs.logs(run, ended[i])
                last = t_end if ended[i] else now
                names = _LOG_NAMES if custom[i] else _STD_NAMES
                files.append((names["stdout"], out, last, 0o644))
                files.append((names["stderr"], err, last, 0o644))
                if ended[i]:
                    self._checkpoint(files, run, last)
            self._add(self._local(cdir), files, last)
        self._batches(h, batch_logs)

    @staticmethod
    def _checkpoint(files: list[_File], run: _logs.Run, t: float) -> None:
        if run.outcome == _OK:
            files.append(("results.json", _logs.results(run), t, 0o644))
            files.append(("JOBMAN-COMPLETED", b"", t, 0o644))
        elif run.outcome not in (_WALL, _NODE):  # Slurm killed the wrapper too: no checkpoint
            files.append(("JOBMAN-FAILED", b"", t, 0o644))

    def _batches(self, h: _History, logs: dict[int, list[tuple[bytes, bytes]]]) -> None:
        now, dirs = h.now, h.dirs()
        for b, (key, members) in enumerate(zip(h.batch_keys, h.batch_members, strict=True)):
            start, end = float(h.batch_start[b]), float(h.batch_end[b])
            if start > now:
                continue
            cdir = f"{_BATCH_ROOT}/batch.{key[:8]}"
            entry, commands = _logs.batch_scripts(cdir, [dirs[i] for i in members.tolist()])
            done = end <= now
            last = end if done else now
            files: list[_File] = [
                ("entrypoint.sh", entry, start, 0o755), ("subjob_commands.sh", commands, start, 0o644),
                ("JOBMAN.ENTRYPOINT.sh", _logs.jobman_entrypoint(cdir), start, 0o755),
                ("stdout", b"".join(o for o, _ in logs.get(b, [])), last, 0o644),
                ("stderr", b"".join(e for _, e in logs.get(b, [])), last, 0o644)]
            if done:
                ok = bool((h.outcome[members] == _OK).any())
                files.append(("JOBMAN-COMPLETED" if ok else "JOBMAN-FAILED", b"", last, 0o644))
            self._add(self._local(cdir), files, last)


# -- writing --------------------------------------------------------------------------------
def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


def _chunk_rows(h: _History, orms: dict[str, ORM], events: bool) -> list[tuple[ORM, list[tuple]]]:
    """The rows of one chunk, table by table, in writing order (JSON already text)."""
    out = [(orms["jobman_job"], _rows(orms["jobman_job"], _jobman_columns(h)))]
    for i, worker in enumerate(h.worker_names):
        wcols, ecols = _worker_and_engine_columns(h, i)
        out.append((orms[f"_worker_{worker}_job"], _rows(orms[f"_worker_{worker}_job"], wcols)))
        out.append((orms[f"engine_{WORKERS[worker]}_job"], _rows(orms[f"engine_{WORKERS[worker]}_job"], ecols)))
    if events:
        retried = set(np.flatnonzero((h.status == "FAILED") & h.retried).tolist())
        out.append((_EVENTS, _job_events(h, retried)))
    return out


#: Stands for the event table in a chunk's rows (it has no ORM of its own here).
_EVENTS = ORM.__new__(ORM)


def _daos(path: Path) -> list[SqliteDAO]:
    """The DAOs of every table, creating nothing yet."""
    uri = str(path)
    daos: list[SqliteDAO] = [JobmanSqliteDAO(db_uri=uri, initialize=False)]
    for worker, engine in WORKERS.items():
        daos.append(WorkerSqliteDAO(db_uri=uri, table_prefix=f"_worker_{worker}_", initialize=False))
        daos.append(EngineSqliteDAO(db_uri=uri, table_prefix=f"engine_{engine}_", initialize=False))
    return daos


def _fast(conn: sqlite3.Connection) -> None:
    # The file is renamed into place only when complete, so a crash loses nothing: skip
    # fsyncs, and give SQLite room for the B-trees of random uuid keys.
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")


class _Writer:
    """Writes rows through the DAOs' ORMs; lives in one thread, which owns every connection.

    The tables are created first and loaded through one connection, in one
    transaction, in the rollback-journal mode jobman leaves its files in (not
    WAL, which would write every page twice): pages past the file's original
    end are never journaled, so the journal stays small however much is
    written. The tables' other indexes come after the rows
    (``ensure_tables``): sorting a full column is cheaper than keeping an
    index in order row by row.
    """

    def __init__(self, path: Path, events: bool) -> None:
        self.daos = _daos(path)
        self.orms = {orm.table: orm for dao in self.daos for orm in dao.orms.values()}
        self.tables = dict.fromkeys(self.orms, 0)
        self.loader = self.daos[0]
        self._transaction = contextlib.ExitStack()
        conn = self.loader.connection
        _fast(conn)
        # Page contents are journaled in memory: a failed load still rolls back.
        conn.execute("PRAGMA journal_mode=MEMORY")
        job = self.orms["jobman_job"]
        with self.loader.transaction():
            for orm in self.orms.values():
                orm.create_table(connection=conn)
            if events:
                self.tables[_history.create_event_table(conn, job)] = 0
        self._events = _history.event_table(job.table)
        self._transaction.enter_context(self.loader.transaction())

    def write(self, chunk: list[tuple[ORM, list[tuple]]]) -> int:
        """Write one chunk's rows; returns its number of jobman jobs."""
        conn = self.loader.connection
        for orm, rows in chunk:
            if orm is _EVENTS:
                self.tables[self._events] += _history.insert_events(conn, self.orms["jobman_job"], rows)
            else:
                orm.execute_many(list(orm.fields), rows, False, conn)
                self.tables[orm.table] += len(rows)
        return len(chunk[0][1])

    def kvps(self, kvps: list[dict[str, Any]]) -> int:
        kvp = self.orms["jobman_kvp"]
        return self.write([(kvp, kvp.prepare_records(kvps, auto_update=False)[1])])

    def finish(self) -> None:
        """Commit, create every index (the rows are in), and leave the file in jobman's journal mode."""
        self._transaction.close()
        self.loader.connection.execute("PRAGMA journal_mode=DELETE")
        for dao in self.daos:  # one connection (and its cache) at a time
            _fast(dao.connection)
            dao.ensure_tables()
            dao.close()

    def close(self) -> None:
        """Roll back what is not committed, and close every connection."""
        error = RuntimeError("make_history did not finish")
        self._transaction.__exit__(type(error), error, None)
        for dao in self.daos:
            dao.close()


class _Tally:
    """What the summary and the kvps need from the chunks already written."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.last: dict[str, int] = {}
        self.first_created, self.last_modified = np.inf, -np.inf

    def add(self, h: _History) -> None:
        self.statuses.update(h.status.tolist())
        for i, s in enumerate(h.source_names):
            hit = np.flatnonzero(h.source == i)
            if len(hit):
                self.last[s] = h.lo + int(hit[-1])
        self.first_created = min(self.first_created, float(h.created.min()))
        self.last_modified = max(self.last_modified, float(h.modified.max()))


def _write(plan: _Plan, path: Path, bar: tqdm, events: bool,
           dirs: _DirWriter | None) -> tuple[dict[str, int], _Tally]:
    """Write the history to *path* (and its dirs): chunks are built here while SQLite writes in its thread."""
    tally = _Tally()
    # The rows are acyclic tuples, freed by reference counting: the cycle collector, which
    # would walk every live row again and again as they pile up, has nothing to find.
    collecting = gc.isenabled()
    gc.disable()
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(1, thread_name_prefix="jobman_nb-demo") as pool:
        if collecting:
            stack.callback(gc.enable)
        writer = pool.submit(_Writer, path, events).result()
        pending: deque[Future[int]] = deque()
        try:
            for h in plan.chunks():
                tally.add(h)
                pending.append(pool.submit(writer.write, _chunk_rows(h, writer.orms, events)))
                if dirs is not None:  # while SQLite writes the chunk's rows
                    dirs.chunk(h)
                del h
                while len(pending) > 1:  # at most one chunk waits while the next is built
                    bar.update(pending.popleft().result())
            if dirs is not None:
                dirs.finish()
            while pending:
                bar.update(pending.popleft().result())
            pool.submit(writer.kvps, _kvps(plan, tally.last, tally.statuses["CLAIMED"])).result()
            pool.submit(writer.finish).result()
        finally:
            for future in pending:
                future.cancel()
            pool.submit(writer.close).result()
    return writer.tables, tally


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


def _dirs_root(path: Path, job_dirs: bool | str | os.PathLike[str], overwrite: bool) -> Path | None:
    """Where the job dirs go (None: nowhere), checked before anything is written."""
    if job_dirs is False or job_dirs is None:
        return None
    if job_dirs is True:
        root = path.with_name(f"{path.stem}.jobs")
    elif isinstance(job_dirs, (str, os.PathLike)) and str(job_dirs):
        root = Path(job_dirs)
    else:
        raise ArgumentError(f"job_dirs must be True, False or a directory, got {job_dirs!r}")
    if root.resolve() == path.resolve():
        raise ArgumentError(f"job_dirs {root} is the database file itself")
    if not root.parent.is_dir():
        raise MissingFileError(f"no directory {root.parent} to write the job dirs {root.name} into")
    if root.exists() or root.is_symlink():
        if not overwrite:
            raise OutputExistsError(f"{root} exists; pass overwrite=True (CLI: --force) to replace it")
        if not root.is_dir() or not ((root / _MARKER).is_file() or not any(root.iterdir())):
            raise OutputExistsError(f"{root} is not the job dirs of a demo; not replacing it")
    return root


def _replace_dir(new: Path, root: Path) -> None:
    """Put *new* in place of *root* (a demo's dirs or an empty directory, see :func:`_dirs_root`)."""
    if root.exists():
        old = root.with_name(f".{root.name}.{os.getpid()}.old")
        os.replace(root, old)
        os.replace(new, root)
        shutil.rmtree(old)
    else:
        os.replace(new, root)


def _enable_history(path: Path) -> None:
    """Turn history on for the jobman jobs, whose events are written and consistent: nothing to snapshot."""
    dao = JobmanSqliteDAO(db_uri=str(path))
    try:
        dao.connection.execute("PRAGMA synchronous=OFF")
        dao.enable_history()
    finally:
        dao.close()


def make_history(path: str | os.PathLike[str], n_jobs: int = 10_000, seed: int = 0, *, days: float = 7.0,
                 overwrite: bool = False, progress: bool | None = False, events: bool = False,
                 job_dirs: bool | str | os.PathLike[str] = True) -> dict[str, Any]:
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
    job_dirs : bool or path-like
        Write a directory per job, as jobman leaves them (see below): True
        puts them under ``<stem>.jobs`` beside *path* (``demo.sqlite`` →
        ``demo.jobs``), a path under that directory, False writes none (for
        very large demos: a few files per job). ``job_spec.dir`` holds the
        path the cluster sees, ``/scratch/<user>/<source>/job_<index>``, and
        the summary's ``path_map`` maps ``/scratch`` to the local root, for
        :func:`jobman_nb.read_job_dirs` or ``open_db(..., path_map=...)``;
        its ``batch_dirs`` is where the batches ran (their dirs are not in
        the database, as with jobman), for ``read_job_dirs(batch_dirs=...)``.

    Returns
    -------
    dict
        A summary: ``path``, ``seed``, ``jobs`` (jobman jobs), ``statuses``
        (counts of jobman job statuses), ``tables`` (rows per table),
        ``first_created`` / ``last_modified`` (ISO 8601 UTC), ``job_dirs``
        (the local root, or None), ``path_map``, ``batch_dirs``, ``dirs``
        (directories written) and ``seconds`` (time taken).

    Raises
    ------
    FileExistsError
        If *path* exists and *overwrite* is False.
    ValueError
        If *n_jobs*, *seed* or *days* is not valid.
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ArgumentError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= 3650:
        raise ArgumentError(f"days must be a number of days in (0, 3650], got {days!r}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    if not path.parent.is_dir():
        raise MissingFileError(f"no directory {path.parent} to write {path.name} into")
    root = _dirs_root(path, job_dirs, overwrite)
    tmp_root = None if root is None else root.with_name(f".{root.name}.{os.getpid()}.partial")
    if tmp_root is not None:
        shutil.rmtree(tmp_root, ignore_errors=True)
    t0 = time.perf_counter()
    plan = _Plan(int(n_jobs), int(seed), float(days))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    _remove(tmp)
    try:
        with tqdm(total=plan.n + 3, unit="rec", desc=f"writing {path.name}",
                  disable=None if progress is None else not progress, leave=False) as bar:
            dir_writer = None if root is None else _DirWriter(tmp_root)
            try:
                tables, tally = _write(plan, tmp, bar, events, dir_writer)
            finally:
                if dir_writer is not None:
                    dir_writer.close()
        if events:
            _enable_history(tmp)
        _remove(path)
        os.replace(tmp, path)
        if root is not None:
            _replace_dir(tmp_root, root)
    finally:
        _remove(tmp)
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).isoformat()

    return {
        "path": str(path),
        "seed": int(seed),
        "jobs": plan.n,
        "statuses": dict(sorted(tally.statuses.items())),
        "tables": tables,
        "first_created": iso(tally.first_created),
        "last_modified": iso(tally.last_modified),
        "job_dirs": None if root is None else str(root),
        "path_map": None if root is None else {_CLUSTER_ROOT: str(root)},
        "batch_dirs": None if root is None else [f"{root}{_BATCH_ROOT[len(_CLUSTER_ROOT):]}"],
        "dirs": 0 if dir_writer is None else dir_writer.dirs,
        "seconds": round(time.perf_counter() - t0, 3),
    }
