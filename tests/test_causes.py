"""Causes of failure from log text: the explaining line is found, one kind normalizes to one text.

The log texts are written here, in the shapes real schedulers, runtimes and
codes print (two occurrences each, differing in what varies between jobs).
"""

from __future__ import annotations

import pytest

from jobman_nb.analytics import normalize_error as analytics_normalize_error
from jobman_nb.causes import MAX_CAUSE_CHARS, cause_line, find_cause, normalize_error

# kind -> (phrase the cause must contain, [(stderr, stdout), (stderr, stdout)])
LOGS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "slurm-oom": ("oom-kill", [
        ("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=812345.batch. Some of your processes "
         "may have been killed by the cgroup out-of-memory handler.\n", "step 1\n"),
        ("Reading input\nslurmstepd: error: Detected 3 oom-kill event(s) in StepId=99.0. Some of your processes "
         "may have been killed by the cgroup out-of-memory handler.\n", ""),
    ]),
    "slurm-timeout": ("DUE TO TIME LIMIT", [
        ("slurmstepd: error: *** JOB 4242 ON cn0421 CANCELLED AT 2026-03-01T12:00:03 DUE TO TIME LIMIT ***\n", ""),
        ("srun: Job step aborted\nslurmstepd: error: *** JOB 77 ON gpu-node017 CANCELLED AT 2025-11-30T01:02:59 "
         "DUE TO TIME LIMIT ***\n", ""),
    ]),
    "slurm-preempt": ("PREEMPTION", [
        ("slurmstepd: error: *** JOB 4243 ON cn0422 CANCELLED AT 2026-03-01T12:00:03 DUE TO PREEMPTION ***\n", ""),
        ("slurmstepd: error: *** JOB 9 ON cn1000 CANCELLED AT 2026-01-01T00:00:00 DUE TO PREEMPTION ***\n", ""),
    ]),
    "pbs-walltime": ("walltime", [
        ("=>> PBS: job killed: walltime 86420 exceeded limit 86400\n", ""),
        ("=>> PBS: job killed: walltime 3605 exceeded limit 3600\n", "iteration 12\n"),
    ]),
    "pbs-memory": ("exceeded limit", [
        ("=>> PBS: job killed: mem 8388608kb exceeded limit 4194304kb\n", ""),
        ("=>> PBS: job killed: mem 17.2gb exceeded limit 16gb\n", ""),
    ]),
    "python": ("KeyError", [
        ('Traceback (most recent call last):\n  File "/home/a/run.py", line 10, in <module>\n'
         '    main()\n  File "/home/a/run.py", line 8, in main\n    cfg["basis"]\nKeyError: \'basis\'\n', ""),
        ('Traceback (most recent call last):\n  File "/opt/x/run.py", line 99, in <module>\n'
         '    cfg["basis"]\nKeyError: \'basis\'\n', ""),
    ]),
    "python-chained": ("ValueError", [
        ('Traceback (most recent call last):\n  File "a.py", line 1, in <module>\nKeyError: 1\n\n'
         "During handling of the above exception, another exception occurred:\n\n"
         'Traceback (most recent call last):\n  File "a.py", line 3, in <module>\n'
         "ValueError: bad geometry in frame 17\n", ""),
        ('Traceback (most recent call last):\n  File "b.py", line 9, in f\nValueError: bad geometry in frame 2\n',
         ""),
    ]),
    "fortran": ("Fortran runtime error", [
        ("At line 214 of file src/io.f90 (unit = 10, file = 'input.dat')\n"
         "Fortran runtime error: End of file\n\nError termination. Backtrace:\n#0  0x7f3a2b in ???\n", ""),
        ("At line 9 of file /build/src/io.f90 (unit = 11, file = 'x.dat')\nFortran runtime error: End of file\n",
         ""),
    ]),
    "forrtl": ("forrtl: severe", [
        ("forrtl: severe (174): SIGSEGV, segmentation fault occurred\nImage PC Routine Line Source\n", ""),
        ("forrtl: severe (174): SIGSEGV, segmentation fault occurred\n", ""),
    ]),
    "mpi-abort": ("MPI_ABORT", [
        ("--------------------------------------------------------------------------\n"
         "MPI_ABORT was invoked on rank 3 in communicator MPI_COMM_WORLD\nwith errorcode 1.\n"
         "NOTE: invoking MPI_ABORT causes Open MPI to kill all MPI processes.\n", ""),
        ("MPI_ABORT was invoked on rank 0 in communicator MPI_COMM_WORLD\n", ""),
    ]),
    "orca-scf": ("error termination in SCF", [
        ("ORCA finished by error termination in SCF\n[file orca_main/scf.cpp, line 512]: SCF not converged\n", ""),
        ("\nORCA finished by error termination in SCF\n", "  SCF ITER 125\n"),
    ]),
    "orca-gtoint": ("GTOInt", [
        ("ORCA finished by error termination in GTOInt\nCalling Command: mpirun -np 8 /opt/orca/orca_gtoint_mpi "
         "job.int.tmp job\n", ""),
        ("ORCA finished by error termination in GTOInt\n", ""),
    ]),
    "gaussian-l502": ("l502.exe", [
        ("", " Convergence failure -- run terminated.\n Error termination via Lnk1e in /opt/g16/l502.exe at "
             "Wed Dec  2 03:18:00 2026.\n Job cpu time:       0 days  0 hours  5 minutes  3.1 seconds.\n"),
        ("", " Error termination via Lnk1e in /usr/local/g16/l502.exe at Mon Jan 12 21:04:51 2026.\n"),
    ]),
    "gaussian-l9999": ("l9999.exe", [
        ("", " Error termination via Lnk1e in /opt/g16/l9999.exe at Wed Dec  2 03:18:00 2026.\n"),
        ("", " Error termination via Lnk1e in /apps/g16/l9999.exe at Tue Feb  3 11:00:09 2026.\n"),
    ]),
    "qchem": ("Q-Chem fatal error", [
        (" Q-Chem fatal error occurred in module /builds/qchem/libscf/scf_guess.C, line 1234:\n\n"
         "  SCF failed to converge\n\n", ""),
        (" Q-Chem fatal error occurred in module /opt/qchem/libscf/scf_guess.C, line 99:\n", ""),
    ]),
    "psi4": ("SCFConvergenceError", [
        ('Traceback (most recent call last):\n  File "/opt/psi4/bin/psi4", line 338, in <module>\n'
         "psi4.driver.p4util.exceptions.SCFConvergenceError: Could not converge SCF iterations in 100 "
         "iterations.\n", ""),
        ('Traceback (most recent call last):\n  File "input.py", line 7\n'
         "psi4.driver.p4util.exceptions.SCFConvergenceError: Could not converge SCF iterations in 50 "
         "iterations.\n", ""),
    ]),
    "cuda-oom": ("CUDA out of memory", [
        ('Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n'
         "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
         "of 15.78 GiB of which 1.20 GiB is free.\n", ""),
        ('Traceback (most recent call last):\n  File "train.py", line 30, in step\n'
         "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 512.00 MiB. GPU 1 has a total capacity "
         "of 79.10 GiB of which 20.00 MiB is free.\n", ""),
    ]),
    "segfault": ("Segmentation fault", [
        ("/var/spool/slurmd/job4242/slurm_script: line 12: 31337 Segmentation fault      (core dumped) "
         "./prog in.inp\n", ""),
        ("/var/spool/slurmd/job7/slurm_script: line 3: 2 Segmentation fault (core dumped) ./prog in.inp\n", ""),
    ]),
    "killed": ("Killed", [
        ("/tmp/job.sh: line 5: 1234 Killed                  python big.py\n", ""),
        ("/home/u/run.sh: line 50: 99999 Killed python big.py\n", ""),
    ]),
    "quota": ("Disk quota exceeded", [
        ("OSError: [Errno 122] Disk quota exceeded: '/scratch/alice/tmp042.gbw'\n", ""),
        ("OSError: [Errno 122] Disk quota exceeded: '/scratch/bob/run/7/tmp.chk'\n", ""),
    ]),
    "no-space": ("No space left", [
        ("write error: No space left on device\n", ""),
        ("\nwrite error: No space left on device\n", ""),
    ]),
    "cpp": ("terminate called", [
        ("terminate called after throwing an instance of 'std::runtime_error'\n  what():  bad basis\n", ""),
        ("terminate called after throwing an instance of 'std::runtime_error'\n", ""),
    ]),
}


@pytest.mark.parametrize("kind", list(LOGS))
def test_each_kind_is_found_and_its_occurrences_group(kind):
    phrase, logs = LOGS[kind]
    causes = [find_cause(err, out) for err, out in logs]
    assert all(c is not None and phrase in c for c in causes), causes
    assert causes[0] == causes[1]


def test_different_kinds_never_merge():
    causes = {kind: find_cause(*logs[0]) for kind, (_, logs) in LOGS.items()}
    assert len(set(causes.values())) == len(causes), causes


def test_stripped_parts_are_placeholders():
    c = find_cause("slurmstepd: error: *** JOB 4242 ON cn0421 CANCELLED AT 2026-03-01T12:00:03 DUE TO TIME LIMIT ***")
    assert c == "slurmstepd: error: *** JOB <n> ON <id> CANCELLED AT <date> DUE TO TIME LIMIT ***"
    assert normalize_error("job 0c85364d-98a5-4692-8ecd-22d1ebad56e2 at 0x7ffd12 in /a/b/c.txt") == \
        "job <uuid> at <hex> in <path>"
    assert normalize_error("b3lyp/def2-svp gfn2 failed") == "b3lyp/def2-svp gfn2 failed"
    assert normalize_error("at 03:18:00 on Wed Dec  2 2026") == "at <time> on <date>"


def test_the_scheduler_explains_more_than_the_program():
    # the MemoryError traceback is what the kill looked like from inside; the oom line is why
    err = ('Traceback (most recent call last):\n  File "a.py", line 1\nMemoryError\n'
           "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=1.batch. Some of your processes may have "
           "been killed by the cgroup out-of-memory handler.\n")
    assert "oom-kill" in find_cause(err)
    # Slurm's default writes stderr into the one output file: stdout
    assert "TIME LIMIT" in find_cause("", "step 9\nslurmstepd: error: *** JOB 1 ON n1 CANCELLED AT "
                                          "2026-01-01T00:00:00 DUE TO TIME LIMIT ***\n")


def test_warnings_are_not_causes_and_an_unexplained_stderr_gives_its_last_line():
    assert find_cause("warning: bad char in basis file\nERROR: input file has no geometry\n") == \
        "ERROR: input file has no geometry"
    assert find_cause("loading\nbad input, giving up\n") == "bad input, giving up"
    assert find_cause("", "") is None and find_cause(None, None) is None
    # stdout alone is too chatty to guess from: only recognized lines count there
    assert find_cause("", "iteration 1\niteration 2\n") is None


def test_a_cause_is_one_bounded_line():
    line = cause_line("ValueError: " + "x" * 10_000)
    assert len(line) == MAX_CAUSE_CHARS and "\n" not in line


def test_one_normalizer():
    assert analytics_normalize_error is normalize_error


@pytest.mark.parametrize("a, b", [
    # same digit shape (the normalizer's memo key), different answers: both orders must give each its own
    ("error in /src/io.f90 at step", "error in /src/io.f50 at step"),
    ("bad pointer 0x1f at", "bad pointer 1x1f at"),
    ("failed in /opt/l502.exe", "failed in /opt/l503.exe"),
    ("node cn0421 lost", "node cn0421 lost"),
])
def test_the_normalizer_memo_never_mixes_up_lines_of_one_shape(a, b):
    fresh = {line: normalize_error(line) for line in (a, b)}
    for first, second in ((a, b), (b, a), (a, b)):
        assert normalize_error(first) == fresh[first] and normalize_error(second) == fresh[second]
    assert (fresh[a] != fresh[b]) == (a != b)  # the pairs do normalize differently
