"""Why a job failed: find the line of its logs that explains it, and normalize it so causes group.

Pure functions over text; nothing here reads files (:mod:`jobman_nb.jobdirs`
does, and calls :func:`find_cause` on the tails it read).

:func:`cause_line` looks for explanations in order of how much they explain,
first in stderr, then in stdout (Slurm writes both to one file by default):

1. the scheduler or the kernel stopped the job: an oom-kill, "CANCELLED ... DUE TO TIME LIMIT",
   PBS/LSF walltime or memory limits, preemption, node failure, GPU memory;
2. a fatal signal: "Segmentation fault", bus error, illegal instruction, "Killed";
3. the file system: "Disk quota exceeded", "No space left on device";
4. the program said why: the exception line of the last Python traceback, a
   Fortran runtime error, a quantum-chemistry code's error termination
   (ORCA, Gaussian, Q-Chem, Psi4, ...), a C++ ``terminate called ...``;
5. an MPI abort (which usually only relays one of the above);
6. in stderr only: the last line that says error/fatal/abort/exception
   (not a warning), else the last line of stderr.

:func:`normalize_error` replaces what varies between jobs failing the same way
(numbers, UUIDs, paths, node names, job ids, dates, addresses) with
placeholders, so one kind of failure gives one text to group on, while
different messages stay different.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["cause_line", "find_cause", "normalize_error", "MAX_CAUSE_CHARS"]

#: Longest cause kept, in characters (a cause is one line, not a log).
MAX_CAUSE_CHARS = 300

_I = re.IGNORECASE


def _rx(*patterns: str, flags: int = _I) -> list[re.Pattern[str]]:
    return [re.compile(p, flags) for p in patterns]


# Each entry: (kind, patterns in preference order, search stdout too?). The kind names are
# documentation and test vocabulary; the frame carries only the cause line itself.
_KINDS: list[tuple[str, list[re.Pattern[str]], bool]] = [
    ("gpu-memory", _rx(r"CUDA out of memory", r"OutOfMemoryError", r"cudaErrorMemoryAllocation",
                       r"CUBLAS_STATUS_ALLOC_FAILED", r"out of memory on device",
                       r"RESOURCE_EXHAUSTED: OOM"), True),
    ("out-of-memory", _rx(r"oom[-_ ]kill", r"Out Of Memory", r"out[- ]of[- ]memory", r"OOM Killer",
                          r"Memory cgroup out of memory", r"\bmem(?:ory)?\b.*exceeded (?:the )?limit",
                          r"exceeded (?:the )?(?:job )?memory limit", r"TERM_MEMLIMIT",
                          r"^\s*(?:\w+\.)*MemoryError\b", r"std::bad_alloc",
                          r"cannot allocate memory", r"Unable to allocate"), True),
    ("time-limit", _rx(r"DUE TO TIME LIMIT", r"walltime\b.*exceeded", r"exceeded\b.*walltime",
                       r"TIME LIMIT", r"TERM_RUNLIMIT", r"wall ?clock limit"), True),
    ("cancelled", _rx(r"DUE TO PREEMPTION", r"DUE TO NODE FAIL", r"NODE_FAIL", r"\bCANCELLED\b",
                      r"TERM_OWNER|TERM_PREEMPT", r"job killed\b", r"PBS: job killed"), True),
    ("signal", _rx(r"Segmentation fault", r"SIGSEGV", r"\bBus error\b", r"SIGBUS", r"Illegal instruction",
                   r"SIGILL", r"Floating point exception", r"SIGFPE", r"\bAborted\b.*core dumped",
                   r"SIGABRT", r"\bKilled\b", r"SIGKILL", r"\bsignal (?:6|7|8|9|11)\b",
                   r"core dumped"), True),
    ("disk", _rx(r"Disk quota exceeded", r"No space left on device", r"EDQUOT", r"ENOSPC",
                 r"quota exceeded", r"disk full", r"Read-only file system"), True),
]

_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):\s*$")
_EXC_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Fault|Failure|"
                       r"Warning|Abort)?(?::\s|:?$)")

_PROGRAM = _rx(
    r"Fortran runtime error", r"^\s*forrtl: (?:severe|error)", r"^\s*ERROR STOP\b",
    r"error termination", r"ABORTING THE RUN", r"fatal error occurred in module",
    r"Q-Chem fatal error", r"^\s*PSIO_ERROR", r"PsiException", r"terminate called after throwing",
    r"^\s*what\(\):", r"SCF (?:NOT|failed to|did not) CONVERGE", r"not converged", r"convergence failure",
)
_MPI = _rx(r"MPI_ABORT was invoked", r"MPI_Abort", r"APPLICATION TERMINATED WITH THE EXIT STRING",
           r"BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES", r"noticed that process rank",
           r"Fatal error in (?:P?MPI|MPI)", r"prterun|mpirun.*(?:exited|abort)")
_GENERIC = re.compile(r"\b(?:error|fatal|abort(?:ed|ing)?|exception|failed|failure|cannot|unable to)\b", _I)
_WARNING = re.compile(r"\bwarn(?:ing)?\b", _I)


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _last_match(lines: Sequence[str], patterns: Sequence[re.Pattern[str]]) -> str | None:
    """The last line matching the first pattern (in preference order) that matches any line."""
    for pattern in patterns:
        for line in reversed(lines):
            if pattern.search(line):
                return line
    return None


def _exception_line(raw: str | None) -> str | None:
    """The exception line of the last Python traceback in *raw* (indentation kept to tell frames apart)."""
    if not raw:
        return None
    lines = raw.splitlines()
    starts = [i for i, ln in enumerate(lines) if _TRACEBACK.match(ln.strip())]
    if not starts:
        return None
    for ln in lines[starts[-1] + 1:]:
        if ln.strip() and not ln[:1].isspace() and _EXC_LINE.match(ln.strip()):
            return ln.strip()
    return None


def cause_line(stderr: str | None, stdout: str | None = None) -> str | None:
    """Return the log line that best explains a failure, as written (not normalized).

    Parameters
    ----------
    stderr, stdout : str or None
        The end of each log (e.g. the tails :func:`jobman_nb.read_job_dirs` reads).

    Returns
    -------
    str or None
        One stripped line, at most :data:`MAX_CAUSE_CHARS` characters; None
        when the logs hold nothing (an empty stderr and no recognized line in
        stdout).
    """
    err, out = _lines(stderr), _lines(stdout)
    found = None
    for _kind, patterns, in_stdout in _KINDS:
        found = _last_match(err, patterns) or (_last_match(out, patterns) if in_stdout else None)
        if found:
            break
    if not found:
        found = (_exception_line(stderr) or _last_match(err, _PROGRAM)
                 or _exception_line(stdout) or _last_match(out, _PROGRAM)
                 or _last_match(err, _MPI) or _last_match(out, _MPI))
    if not found:
        generic = [ln for ln in err if _GENERIC.search(ln) and not _WARNING.search(ln)]
        found = generic[-1] if generic else (err[-1] if err else None)
    if found is None:
        return None
    return found if len(found) <= MAX_CAUSE_CHARS else found[: MAX_CAUSE_CHARS - 1] + "…"


def find_cause(stderr: str | None, stdout: str | None = None) -> str | None:
    """Return the normalized cause of a failure: :func:`normalize_error` of :func:`cause_line`."""
    line = cause_line(stderr, stdout)
    return normalize_error(line) if line is not None else None


# -- normalization ---------------------------------------------------------------------------------
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_TIME = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    # dates: ISO (2026-12-02T03:18:00.5Z), ctime (Wed Dec  2 03:18:00 2026), '02 Dec 2026', 2026/12/02
    (re.compile(rf"\b\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]{_TIME}(?:Z|[+-]\d{{2}}:?\d{{2}})?)?(?![\w:])"), "<date>"),
    (re.compile(rf"\b(?:{_DAY},?\s+)?{_MONTH}\.?\s+\d{{1,2}},?\s+(?:{_TIME}\s*(?:[A-Z]{{3,4}}\s+)?)?(?:\d{{4}}\b)?",
                _I), "<date>"),
    (re.compile(rf"\b\d{{1,2}}\s+{_MONTH}\s+\d{{4}}(?:\s+{_TIME})?\b", _I), "<date>"),
    (re.compile(r"\b\d{4}/\d{2}/\d{2}\b"), "<date>"),
    (re.compile(rf"(?<![\w:]){_TIME}(?![\w:])"), "<time>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    # paths keep the name of a program or source file (l502.exe, scf.cpp: where it failed),
    # not of data files (geom.xyz, tmp042.gbw: which job it was)
    (re.compile(r"(?<![\w.<>])(?:~|\.{1,2})?(?:/[\w.\-@+]+)+/?"), "\x00path"),
    (re.compile(r"(?<![\w/])[A-Za-z][A-Za-z_\-]*\d{3,}\w*\b"), "<id>"),  # cn0421, nid001234, job44042
    # Slurm step ids: 44002.batch, StepId=99.0, STEP 12.3
    (re.compile(r"(?<![\w.])\d+\.(?:batch|extern|interactive)\b|(?:(?<=StepId=)|(?<=STEP ))\d+\.\d+\b"), "<n>"),
    # a number with its unit: sizes vary in both (2.00 GiB / 512 MiB), so the unit goes too
    (re.compile(r"(?<![\w<.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
                r"(?:\s?(?:[kKmMgGtTpP]i?[bB]|bytes?)\b|(?:[kKmMgG]|[bB]|ms|us|ns|[smh]|min)(?![A-Za-z_])"
                r"|(?![A-Za-z_]))"), "<n>"),
]
_CODE_FILE = re.compile(r"/([\w\-+]+\.(?:exe|c|cc|cpp|cxx|C|h|hpp|f|F|f90|F90|f77|py|so|x))$")


def _path(match: re.Match[str]) -> str:
    m = _CODE_FILE.search(match.group(0))
    return f"<path>/{m.group(1)}" if m else "<path>"


def normalize_error(line: str) -> str:
    """Replace the parts of an error message that vary between occurrences.

    UUIDs become ``<uuid>``; dates and times ``<date>`` / ``<time>``; hex
    numbers (addresses) ``<hex>``; file paths ``<path>`` (keeping the name of
    a program or source file, such as ``<path>/l502.exe``, which tells where a
    code failed); names with three or more digits (hosts such as ``cn0421``,
    ``job44042``) ``<id>``; standalone numbers with their unit, if any
    (``137``, ``2.5 GB``, ``4194304kb``), and Slurm step ids (``44002.batch``) ``<n>``. Words with a few digits
    inside (``b3lyp``, ``def2-svp``, ``gfn2``) are kept, and whitespace runs
    become one space.
    """
    for pattern, repl in _RULES:
        line = pattern.sub(_path, line) if repl == "\x00path" else pattern.sub(repl, line)
    return " ".join(line.split())
