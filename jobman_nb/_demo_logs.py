"""What the demo's jobs print: the logs of quantum-chemistry codes run under Slurm, by outcome.

Pure text, no I/O: :mod:`jobman_nb.demo` decides which job ran where and how
it ended, and writes what these functions return into the job directories.
The texts follow what ORCA 5, Gaussian 16, Psi4 and xtb print, and what
Slurm's ``slurmstepd`` / ``srun`` write when a job is killed, with numbers,
dates, node names and job ids varying from job to job like real logs; several
wordings per failure kind, as real campaigns show.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

#: Outcomes of a job (what really happened, whatever jobman recorded).
OK, QUOTA, NODE, OOM, SCF, WALL = range(6)


class Run(NamedTuple):
    """One job's run, as the logs need it; *u* are uniforms in [0, 1) that vary the text."""

    code: str
    method: str
    basis: str | None
    cpus: int
    mem_gb: int
    walltime: int
    node: str
    jobid: int
    t_start: float
    t_end: float
    outcome: int
    need: float
    dir: str
    u: tuple[float, float, float, float, float, float]


def iso(t: float) -> str:
    """Slurm's time format (UTC)."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _ctime(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%a %b %d %H:%M:%S %Y")


def _energy(r: Run) -> float:
    return -(150.0 + 900.0 * r.u[0])


def _iterations(r: Run, n: int, fmt: str, converge: bool = True) -> str:
    """*n* SCF iteration lines; the energy change shrinks if *converge*, else it stalls and oscillates."""
    e, lines = _energy(r), []
    for i in range(1, n + 1):
        de = 10.0 ** (-i * 9 / n) if converge else (1.5 + (i * 7919 % 13) / 10) * 1e-4 * (-1) ** i
        lines.append(fmt.format(i=i, e=e + de, de=de, rms=abs(de) / 7))
    return "".join(lines)


# -- one code each -------------------------------------------------------------------------
def _orca(r: Run, ended: bool) -> tuple[str, str]:
    head = ("\n                                 *****************\n"
            "                                 * O   R   C   A *\n"
            "                                 *****************\n\n"
            "                  Program Version 5.0.4 -  RELEASE  -\n\n"
            f"|  1> ! {r.method.upper()} {(r.basis or '').upper()} TightSCF\n"
            f"|  2> %pal nprocs {r.cpus} end\n|  3> %maxcore {r.mem_gb * 1000 // r.cpus}\n"
            "|  4> * xyzfile 0 1 mol.xyz\n\n"
            "--------------\nSCF ITERATIONS\n--------------\n"
            "ITER       Energy         Delta-E        Max-DP      RMS-DP      [F,P]     Damp\n")
    it = "{i:4d}  {e:16.10f}  {de:12.9f}  {rms:10.7f}  {rms:10.7f}  0.0000   0.7000\n"
    if r.outcome == SCF:
        n = 125 if r.u[1] < 0.7 else 250
        out = (head + _iterations(r, n, it, converge=False) +
               "\n               *****************************************************\n"
               "               *                      ERROR                        *\n"
               f"               *          SCF NOT CONVERGED AFTER {n:3d} CYCLES             *\n"
               "               *****************************************************\n")
        err = ("ORCA finished by error termination in SCF\n"
               f"Calling Command: mpirun -np {r.cpus}  /opt/orca/5.0.4/orca_scf_mpi input.gbw b input \n"
               "[file orca_tools/qcmsg.cpp, line 465]: \n  .... aborting the run\n\n")
        return out, err
    n = 8 + int(r.u[1] * 14)
    if not ended:
        return head + _iterations(r, n // 2, it), ""
    secs = int(r.t_end - r.t_start)
    return (head + _iterations(r, n, it) +
            "\n               *****************************************************\n"
            "               *                     SUCCESS                       *\n"
            f"               *           SCF CONVERGED AFTER {n:3d} CYCLES              *\n"
            "               *****************************************************\n\n"
            f"FINAL SINGLE POINT ENERGY     {_energy(r):18.12f}\n\n"
            "                             ****ORCA TERMINATED NORMALLY****\n"
            f"TOTAL RUN TIME: 0 days {secs // 3600} hours {secs % 3600 // 60} minutes {secs % 60} seconds "
            f"{int(r.u[2] * 1000)} msec\n"), ""


def _gaussian(r: Run, ended: bool) -> tuple[str, str]:
    head = (" Entering Gaussian System, Link 0=g16\n"
            f" Input=input.gjf\n Output=stdout\n %nprocshared={r.cpus}\n %mem={r.mem_gb}GB\n"
            f" # {r.method}/{r.basis} SCF=Tight\n\n")
    label = f"R{r.method.upper()}"
    cycles = 12 + int(r.u[1] * 10)
    if r.outcome == SCF:
        cycles = 129 if r.u[1] < 0.5 else 513
        return (head + " >>>>>>>>>> Convergence criterion not met.\n"
                f" SCF Done:  E({label}) =  {_energy(r):.9f}     A.U. after  {cycles} cycles\n"
                " Convergence failure -- run terminated.\n"
                f" Error termination via Lnk1e in /opt/g16/l502.exe at {_ctime(r.t_end)}.\n"
                f" Job cpu time:       0 days  {int(r.u[2] * 5)} hours {int(r.u[3] * 60)} minutes.\n"), ""
    if not ended:
        return head, ""
    return (head + f" SCF Done:  E({label}) =  {_energy(r):.9f}     A.U. after   {cycles} cycles\n"
            f" Job cpu time:       0 days  {int(r.u[2] * 5)} hours {int(r.u[3] * 60)} minutes.\n"
            f" Normal termination of Gaussian 16 at {_ctime(r.t_end)}.\n"), ""


_PSI4_STACK = ('Traceback (most recent call last):\n'
               '  File "/opt/psi4/bin/psi4", line 338, in <module>\n    exec(content)\n'
               '  File "<string>", line 31, in <module>\n'
               '  File "/opt/psi4/lib/psi4/driver/driver.py", line 492, in energy\n'
               '    wfn = procedures[\'energy\'][lowername](lowername, molecule=molecule, **kwargs)\n')


def _psi4(r: Run, ended: bool) -> tuple[str, str]:
    head = (f"\n  Memory set to  {r.mem_gb:.3f} GiB by Python driver.\n  Threads set to {r.cpus} by Python driver.\n\n"
            f"  ==> Iterations <==\n\n")
    it = "   @DF-RHF iter {i:3d}:  {e:20.14f}   {de:12.5e}   {rms:12.5e} DIIS\n"
    if r.outcome == SCF:
        n = 100 if r.u[1] < 0.6 else 200
        return (head + _iterations(r, n, it, converge=False),
                _PSI4_STACK + '  File "/opt/psi4/lib/psi4/driver/procrouting/proc.py", line 2045, in run_scf\n'
                "    scf_wfn = scf_helper(name, post_scf=False, **kwargs)\n\n"
                f"psi4.driver.p4util.exceptions.SCFConvergenceError: Could not converge SCF iterations in {n} "
                "iterations.\n")
    n = 10 + int(r.u[1] * 10)
    if not ended:
        return head + _iterations(r, n // 2, it), ""
    return (head + _iterations(r, n, it) + "\n  Energy and wave function converged.\n\n"
            f"    Psi4 stopped on: {_ctime(r.t_end)}\n"
            "*** Psi4 exiting successfully. Buy a developer a beer!\n"), ""


def _xtb(r: Run, ended: bool) -> tuple[str, str]:
    head = ("      -----------------------------------------------------------\n"
            "     |                   =====================                   |\n"
            "     |                           x T B                           |\n"
            "     |                   =====================                   |\n"
            "      -----------------------------------------------------------\n"
            "   * xtb version 6.6.1 (8d0f1dd) compiled by 'conda@1efc2f54142f'\n"
            f"   program call: xtb mol.xyz --{r.method}\n\n"
            "  iter      E             dE          RMSdq      gap      omega  full diag\n")
    it = "   {i:2d}   {e:12.7f}  {de:11.7e}  {rms:9.3e}  5.92  -0.00    0.1\n"
    if r.outcome == SCF:
        return (head + _iterations(r, 250, it, converge=False),
                "\n[ERROR] Program stopped due to fatal error\n"
                "  -2- xtb_calculator_singlepoint: Electronic structure method terminated\n"
                "  -1- scf: Self consistent charge iterator did not converge\n")
    n = 8 + int(r.u[1] * 8)
    if not ended:
        return head + _iterations(r, n // 2, it), ""
    return (head + _iterations(r, n, it) +
            f"\n          :: total energy        {_energy(r):18.12f} Eh    ::\n"
            f"   * finished run on {datetime.fromtimestamp(r.t_end, timezone.utc):%Y/%m/%d at %H:%M:%S.%f}\n"
            " normal termination of xtb\n"), ""


_CODES = {"orca": _orca, "gaussian": _gaussian, "psi4": _psi4, "xtb": _xtb}


# -- failures from outside the code --------------------------------------------------------
def _killed(r: Run) -> str:
    """What Slurm writes when it ends the job itself (time limit, node failure)."""
    if r.outcome == WALL:
        return f"slurmstepd: error: *** JOB {r.jobid} ON {r.node} CANCELLED AT {iso(r.t_end)} DUE TO TIME LIMIT ***\n"
    if r.u[4] < 0.6:
        return (f"slurmstepd: error: *** JOB {r.jobid} ON {r.node} CANCELLED AT {iso(r.t_end)} DUE TO NODE FAILURE, "
                "SEE SLURMCTLD LOG FOR DETAILS ***\n")
    return (f"srun: error: Node failure on {r.node}\n"
            f"srun: error: {r.node}: task {int(r.u[5] * r.cpus)}: Killed\n"
            f"srun: Force Terminated StepId={r.jobid}.0\n")


def _oom(r: Run) -> str:
    if r.code == "psi4" and r.u[4] < 0.5:
        shape = int((r.need * 2**30 / 8) ** 0.5)
        return (_PSI4_STACK + '  File "/opt/psi4/lib/psi4/driver/procrouting/proc.py", line 1311, in run_dfmp2\n'
                "    dfmp2_wfn.compute_energy()\n"
                f"MemoryError: Unable to allocate {r.need * (1 + r.u[5]):.1f} GiB for an array with shape "
                f"({shape}, {shape}) and data type float64\n")
    events = 1 + int(r.u[5] * 3)
    return (f"slurmstepd: error: Detected {events} oom-kill event(s) in StepId={r.jobid}.batch. Some of your "
            "processes may have been killed by the cgroup out-of-memory handler.\n")


def _quota(r: Run) -> str:
    if r.code == "xtb":
        return ("forrtl: Disk quota exceeded\n"
                f"forrtl: severe (38): error during write, unit 10, file {r.dir}/xtbrestart\n")
    if r.code == "psi4" or r.u[4] < 0.3:
        return (f'Traceback (most recent call last):\n  File "{r.dir}/prepare.py", line 12, in <module>\n'
                f"    shutil.copy(src, scratch)\nOSError: [Errno 122] Disk quota exceeded: '{r.dir}/scratch/psi.dat'\n")
    return f"cp: error writing '{r.dir}/scratch/input.tmp': Disk quota exceeded\n"


_NOISE = [
    b"",
    b"",
    b"",
    b"OMP: Info #276: omp_set_nested routine deprecated, please use omp_set_max_active_levels instead.\n",
    b"warning: bad char \xff\xfe in basis file\n",
]


def logs(r: Run, ended: bool) -> tuple[bytes, bytes]:
    """The job's ``(stdout, stderr)``: complete if *ended*, else what a running job has printed so far.

    The first stdout line names the node and the Slurm job id; a failure's
    cause is where real jobs leave it (the code's own error text, or Slurm's
    line when Slurm killed the job).
    """
    noise = _NOISE[int(r.u[3] * 7919) % len(_NOISE)] if r.u[3] < 0.3 else b""
    first = f"running on {r.node} at {iso(r.t_start)}Z (SLURM_JOB_ID={r.jobid}, {r.cpus} cpus, {r.mem_gb} GB)\n"
    if r.outcome == QUOTA and ended:
        return first.encode(), noise + _quota(r).encode()
    if not ended or r.outcome == OK:
        out, err = _CODES[r.code](r, ended)
        return (first + out).encode(), noise + err.encode()
    if r.outcome == SCF:
        out, err = _CODES[r.code](r, True)
        return (first + out).encode(), noise + err.encode()
    out, _ = _CODES[r.code](r._replace(outcome=OK), False)  # cut off mid-run
    if r.outcome == OOM:
        return (first + out).encode(), noise + _oom(r).encode()
    return (first + out).encode(), noise + _killed(r).encode()


def results(r: Run) -> bytes:
    """A completed job's ``results.json``."""
    return (f'{{"energy": {_energy(r):.6f}, "converged": true, "code": "{r.code}", '
            f'"wall_seconds": {r.t_end - r.t_start:.1f}}}\n').encode()


_INPUTS = {
    "orca": ("input.inp", "! {method} {basis} TightSCF\n%pal nprocs {cpus} end\n%maxcore {maxcore}\n"
                          "* xyzfile 0 1 mol.xyz\n"),
    "gaussian": ("input.gjf", "%nprocshared={cpus}\n%mem={mem}GB\n# {method}/{basis} SCF=Tight\n\nmolecule\n\n"
                              "0 1\n@mol.xyz\n\n"),
    "psi4": ("input.dat", "memory {mem} GB\nset basis {basis}\nmolecule {{\n@mol.xyz\n}}\nenergy('{method}')\n"),
    "xtb": ("mol.xyz", "3\nwater\nO 0.000 0.000 0.117\nH 0.000 0.757 -0.469\nH 0.000 -0.757 -0.469\n"),
}
_RUN = {
    "orca": "/opt/orca/5.0.4/orca input.inp",
    "gaussian": "g16 < input.gjf",
    "psi4": "psi4 -n $SLURM_CPUS_PER_TASK input.dat -o stdout",
    "xtb": "xtb mol.xyz --{method} --parallel $SLURM_CPUS_PER_TASK",
}


def inputs(code: str, method: str, basis: str | None, cpus: int, mem_gb: int) -> tuple[str, bytes, bytes]:
    """The user's input file (name, text) and ``entrypoint.sh`` for one calculation."""
    name, text = _INPUTS[code]
    body = text.format(method=method, basis=basis, cpus=cpus, mem=mem_gb, maxcore=mem_gb * 1000 // cpus)
    entry = ('#!/bin/bash\necho "running on $(hostname) at $(date -u +%FT%TZ) (SLURM_JOB_ID=$SLURM_JOB_ID, '
             '$SLURM_CPUS_PER_TASK cpus, $SLURM_MEM_GB GB)"\n'
             f"{_RUN[code].format(method=method)}\n"
             "status=$?\n[ $status -eq 0 ] && python3 /opt/qcrunner/collect.py > results.json\nexit $status\n")
    return name, body.encode(), entry.encode()


def jobman_entrypoint(job_dir: str) -> bytes:
    """The ``JOBMAN.ENTRYPOINT.sh`` jobman's engine writes for a job it submits."""
    return ("#!/bin/bash\n\n# start preamble\n# engine_preamble\n\n# env_vars_for_cfg_specs\n\n# end preamble\n\n"
            f'pushd "{job_dir}" > /dev/null && ./entrypoint.sh\nRESULT=$?\nif [ $RESULT -eq 0 ]; then\n'
            "    touch JOBMAN-COMPLETED\nelse\n    touch JOBMAN-FAILED\nfi\npopd > /dev/null\nexit $RESULT\n").encode()


def batch_scripts(batch_dir: str, subjob_dirs: list[str]) -> tuple[bytes, bytes]:
    """A batch's ``entrypoint.sh`` and ``subjob_commands.sh``, as jobman's BatchingWorker writes them."""
    entry = ("#!/bin/bash\n\n# parallel preamble\nPARALLEL=${PARALLEL:-/bin/bash}\n\n# parallel command\n"
             f"$PARALLEL < {batch_dir}/subjob_commands.sh\n")
    commands = "".join(f"pushd {d} > /dev/null; if ./entrypoint.sh; then touch JOBMAN-COMPLETED; "
                       "else touch JOBMAN-FAILED; fi; popd > /dev/null\n" for d in subjob_dirs)
    return entry.encode(), commands.encode()


def no_checkpoint_error(job_dir: str) -> str:
    """The one error text jobman 0.0.1 records: a batch subjob that left no JOBMAN-COMPLETED."""
    return ("Traceback (most recent call last):\n"
            '  File "/home/jobman/.local/lib/python3.11/site-packages/jobman/jobman.py", line 348, '
            "in _process_executed_job\n    raise Exception(\n"
            f"Exception: No completed checkpoint file found for job. job_dir was: '{job_dir}'.\n")
