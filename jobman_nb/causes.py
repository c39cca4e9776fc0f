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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["cause_line", "find_cause", "normalize_error", "MAX_CAUSE_CHARS"]

#: Longest cause kept, in characters (a cause is one line, not a log).
MAX_CAUSE_CHARS = 300

_I = re.IGNORECASE
_STDOUT_LINES = 200  # stdout is chatty: only its last lines are searched (the end is where jobs die)


@dataclass(frozen=True)
class _Pattern:
    """A line pattern: *literal* (lower case) must occur in the line, then *regex* (if any) must match it.

    The literal is what makes the search fast: ``in`` on lowered text rules out most patterns at C
    speed, where Python's regex engine would try every position of a 16 KiB tail.
    """

    literal: str
    regex: re.Pattern[str] | None = None

    def matches(self, line: str, lowered: str) -> bool:
        return self.literal in lowered and (self.regex is None or self.regex.search(line) is not None)


def _ps(*specs: str | tuple[str, str]) -> list[_Pattern]:
    return [_Pattern(s.lower()) if isinstance(s, str) else _Pattern(s[0].lower(), re.compile(s[1], _I))
            for s in specs]


# Each entry: (kind, patterns in preference order, search stdout too?). The kind names are
# documentation and test vocabulary; the frame carries only the cause line itself.
_KINDS: list[tuple[str, list[_Pattern], bool]] = [
    ("gpu-memory", _ps("CUDA out of memory", "OutOfMemoryError", "cudaErrorMemoryAllocation",
                       "CUBLAS_STATUS_ALLOC_FAILED", "out of memory on device", "RESOURCE_EXHAUSTED: OOM"), True),
    ("out-of-memory", _ps(("oom", r"oom[-_ ]kill"), "Out Of Memory", ("memory", r"out[- ]of[- ]memory"),
                          "OOM Killer", "Memory cgroup out of memory",
                          ("exceeded", r"\bmem(?:ory)?\b.*exceeded (?:the )?limit"),
                          ("memory limit", r"exceeded (?:the )?(?:job )?memory limit"), "TERM_MEMLIMIT",
                          ("MemoryError", r"^\s*(?:\w+\.)*MemoryError\b"), "std::bad_alloc",
                          "cannot allocate memory", "Unable to allocate"), True),
    ("time-limit", _ps("DUE TO TIME LIMIT", ("walltime", r"walltime\b.*exceeded|exceeded\b.*walltime"),
                       "TIME LIMIT", "TERM_RUNLIMIT", ("clock limit", r"wall ?clock limit")), True),
    ("cancelled", _ps("DUE TO PREEMPTION", "DUE TO NODE FAIL", "NODE_FAIL", ("cancelled", r"\bCANCELLED\b"),
                      "TERM_OWNER", "TERM_PREEMPT", ("job killed", r"job killed\b")), True),
    ("signal", _ps("Segmentation fault", "SIGSEGV", ("bus error", r"\bBus error\b"), "SIGBUS",
                   "Illegal instruction", "SIGILL", "Floating point exception", "SIGFPE",
                   ("aborted", r"\bAborted\b.*core dumped"), "SIGABRT", ("killed", r"\bKilled\b"), "SIGKILL",
                   ("signal", r"\bsignal (?:6|7|8|9|11)\b"), "core dumped"), True),
    ("disk", _ps("Disk quota exceeded", "No space left on device", "EDQUOT", "ENOSPC", "quota exceeded",
                 "disk full", "Read-only file system"), True),
]

_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):\s*$")
_EXC_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Fault|Failure|"
                       r"Warning|Abort)?(?::\s|:?$)")

_PROGRAM = _ps(
    "Fortran runtime error", ("forrtl", r"^\s*forrtl: (?:severe|error)"), ("error stop", r"^\s*ERROR STOP\b"),
    "error termination", "ABORTING THE RUN", "fatal error occurred in module", "Q-Chem fatal error",
    ("PSIO_ERROR", r"^\s*PSIO_ERROR"), "PsiException", "terminate called after throwing",
    ("what():", r"^\s*what\(\):"), ("converge", r"SCF (?:NOT|failed to|did not) CONVERGE"), "not converged",
    "convergence failure",
)
_MPI = _ps("MPI_ABORT was invoked", "MPI_Abort", "APPLICATION TERMINATED WITH THE EXIT STRING",
           "BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES", "noticed that process rank",
           ("fatal error in", r"Fatal error in P?MPI"), ("exited on signal", r"(?:prterun|mpirun).*exited on signal"))
_GENERIC = re.compile(r"\b(?:error|fatal|abort(?:ed|ing)?|exception|failed|failure|cannot|unable to)\b", _I)
_WARNING = re.compile(r"\bwarn(?:ing)?\b", _I)


class _Log:
    """One log's text as the search needs it: lowered once; split into stripped lines only when needed.

    Most patterns are ruled out by ``literal in lowered`` on the whole text (C speed); the lines,
    which cost a Python string per line, are made the first time some literal is present.
    """

    __slots__ = ("_last", "_lines", "_lowered", "_text", "low")

    def __init__(self, text: str | None, last: int | None = None) -> None:
        self._text = text or ""
        self._last = last
        self.low = self._text.lower()
        self._lines: list[str] | None = None
        self._lowered: list[str] | None = None

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            lines = [ln for ln in (raw.strip() for raw in self._text.splitlines()) if ln]
            self._lines = lines[-self._last:] if self._last is not None else lines
            self._lowered = [ln.lower() for ln in self._lines]
        return self._lines

    @property
    def lowered(self) -> list[str]:
        self.lines  # noqa: B018  (makes both lists)
        assert self._lowered is not None
        return self._lowered


def _last_match(log: _Log, patterns: Sequence[_Pattern]) -> str | None:
    """The last line matching the first pattern (in preference order) that matches any line.

    The literal tested on the whole lowered text is a necessary condition for any of its lines
    (a stdout's last lines included), so the lines are only made when it holds.
    """
    for pattern in patterns:
        if pattern.literal not in log.low:
            continue
        lines, lowered = log.lines, log.lowered
        for i in range(len(lines) - 1, -1, -1):
            if pattern.matches(lines[i], lowered[i]):
                return lines[i]
    return None


def _exception_line(raw: str | None) -> str | None:
    """The exception line of the last Python traceback in *raw* (indentation kept to tell frames apart)."""
    if not raw or "Traceback (most recent call last)" not in raw:
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
    err, out = _Log(stderr), _Log(stdout, last=_STDOUT_LINES)
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
        generic = [ln for ln in err.lines if _GENERIC.search(ln) and not _WARNING.search(ln)]
        found = generic[-1] if generic else (err.lines[-1] if err.lines else None)
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
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _has_month(line: str) -> bool:
    low = line.lower()
    return any(m in low for m in _MONTHS)


def _has(*parts: str) -> Callable[[str], bool]:
    return lambda line: any(p in line for p in parts)


# (quick test the line must pass, pattern, replacement): the tests skip most rules at C speed
_RULES: list[tuple[Callable[[str], bool] | None, re.Pattern[str], str]] = [
    (lambda line: line.count("-") >= 4,
     re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    # dates: ISO (2026-12-02T03:18:00.5Z), ctime (Wed Dec  2 03:18:00 2026), '02 Dec 2026', 2026/12/02
    (_has("-"), re.compile(rf"\b\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]{_TIME}(?:Z|[+-]\d{{2}}:?\d{{2}})?)?(?![\w:])"),
     "<date>"),
    (_has_month, re.compile(rf"\b(?:{_DAY},?\s+)?{_MONTH}\.?\s+\d{{1,2}},?\s+(?:{_TIME}\s*(?:[A-Z]{{3,4}}\s+)?)?"
                            rf"(?:\d{{4}}\b)?", _I), "<date>"),
    (_has_month, re.compile(rf"\b\d{{1,2}}\s+{_MONTH}\s+\d{{4}}(?:\s+{_TIME})?\b", _I), "<date>"),
    (_has("/"), re.compile(r"\b\d{4}/\d{2}/\d{2}\b"), "<date>"),
    (_has(":"), re.compile(rf"(?<![\w:]){_TIME}(?![\w:])"), "<time>"),
    (_has("0x", "0X"), re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    # paths keep the name of a program or source file (l502.exe, scf.cpp: where it failed),
    # not of data files (geom.xyz, tmp042.gbw: which job it was)
    (_has("/"), re.compile(r"(?<![\w.<>])(?:~|\.{1,2})?(?:/[\w.\-@+]+)+/?"), "\x00path"),
    (None, re.compile(r"(?<![\w/])[A-Za-z][A-Za-z_\-]*\d{3,}\w*\b"), "<id>"),  # cn0421, nid001234, job44042
    # Slurm step ids: 44002.batch, StepId=99.0, STEP 12.3
    (_has(".batch", ".extern", ".interactive", "StepId=", "STEP "),
     re.compile(r"(?<![\w.])\d+\.(?:batch|extern|interactive)\b|(?:(?<=StepId=)|(?<=STEP ))\d+\.\d+\b"), "<n>"),
    # a number with its unit: sizes vary in both (2.00 GiB / 512 MiB), so the unit goes too
    (None, re.compile(r"(?<![\w<.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
                      r"(?:\s?(?:[kKmMgGtTpP]i?[bB]|bytes?)\b|(?:[kKmMgG]|[bB]|ms|us|ns|[smh]|min)(?![A-Za-z_])"
                      r"|(?![A-Za-z_]))"), "<n>"),
]
# The memo's key: digits become 1, except 0, 7 and 9, which rules spell out ('0x', 'f90', 'f77'). A
# rule that names another digit must keep it here too (tests/test_causes.py checks same-shape pairs).
_DIGIT_SHAPE = str.maketrans("234568", "111111")
_HAS_DIGIT = re.compile(r"\d")
_MEMO: dict[str, str] = {}
_MEMO_SIZE = 4096
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
    (``137``, ``2.5 GB``, ``4194304kb``) and Slurm step ids (``44002.batch``)
    ``<n>``. Words with a few digits inside (``b3lyp``, ``def2-svp``,
    ``gfn2``) are kept, and whitespace runs become one space.

    Results are memoized on the line's digit shape (digits read as ``1``,
    except those the rules name literally): every rule matches the same spans
    of two lines of one shape, so they normalize alike whenever the result
    keeps no digit, as one failure's lines across many jobs do
    (``StepId=812345`` and ``StepId=812399``).
    """
    shape = line.translate(_DIGIT_SHAPE)
    found = _MEMO.get(shape)
    if found is not None:
        return found
    out = _normalize(line)
    if not _HAS_DIGIT.search(out):
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()  # a crude bound: causes repeat, so the memo refills with the common ones
        _MEMO[shape] = out
    return out


def _normalize(line: str) -> str:
    for applies, pattern, repl in _RULES:
        if applies is None or applies(line):
            line = pattern.sub(_path, line) if repl == "\x00path" else pattern.sub(repl, line)
    return " ".join(line.split())
