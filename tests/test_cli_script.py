"""The installed console script, as a shell runs it: exit codes, a terminal's width, a closed pipe, a prompt.

Each spawn costs about half a second, so only what needs a real process is here;
the commands' logic is tested in-process (test_cli.py, test_cli_ops.py).
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobman_nb import JobmanSqliteDAO, find_stale_jobs

EXE = str(Path(sys.executable).with_name("jobman-nb"))
if not Path(EXE).exists():  # not a venv layout: the one on PATH
    EXE = shutil.which("jobman-nb") or EXE


def spawn(*args, columns: int = 100, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=300, env=env, **kwargs)


def test_exit_codes_and_a_100_column_terminal(cli_demo, tmp_path):
    ok = spawn("query", cli_demo, "-w", "status=FAILED")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert len(lines) == 22 and max(map(len, lines)) <= 100
    assert lines[0].split() == ["key", "status", "created", "modified", "worker_key"]
    assert ok.stderr.endswith("more; -n to see more\n")
    missing = spawn("info", tmp_path / "nope.sqlite")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: no database file")
    bad = spawn("query", cli_demo, "-w", "nope>1")
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: ") and "Traceback" not in bad.stderr


def test_a_closed_pipe_ends_quietly(cli_demo):
    """`jobman-nb query DB --nl | head -1`: the reader goes away; exit 0, no 'Broken pipe' message."""
    proc = subprocess.Popen([EXE, "query", str(cli_demo), "--nl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline()
        proc.stdout.close()  # more than a pipe's buffer is still to come
        err = proc.stderr.read()
        code = proc.wait(timeout=300)
    finally:
        proc.stderr.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first.startswith(b'{"created": ')
    assert code == 0, err
    assert err == b""


@pytest.mark.parametrize("answer", ["y", "n"])
def test_requeue_asks_on_a_terminal_and_rechecks_each_job(cli_demo_copy, answer):
    """While the question waits, a worker touches one job: it is skipped as changed; the others are requeued."""
    with JobmanSqliteDAO(db_uri=str(cli_demo_copy), read_only=True) as dao:
        stale = list(find_stale_jobs(dao, "2h")["key"])
    assert len(stale) > 2
    master, slave = pty.openpty()
    proc = subprocess.Popen([EXE, "requeue", str(cli_demo_copy), "--stale", "--older-than", "2h"],
                            stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "100"})
    os.close(slave)
    out = b""
    try:
        while b"[y/N]" not in out:
            ready, _, _ = select.select([master], [], [], 300)
            assert ready, out
            out += os.read(master, 4096)
        with JobmanSqliteDAO(db_uri=str(cli_demo_copy)) as dao:  # a worker reports on the first job
            dao.update_jobs({"status": "RUNNING"}, {"filters": [{"field": "key", "op": "=", "arg": stale[0]}]})
        os.write(master, answer.encode() + b"\n")
        while True:
            ready, _, _ = select.select([master], [], [], 300)
            assert ready, out
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(timeout=300)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode()
    assert f"Requeue {len(stale)} jobs to PENDING? [y/N]" in text
    with JobmanSqliteDAO(db_uri=str(cli_demo_copy), read_only=True) as dao:
        now = {j["key"]: j["status"] for j in dao.query_jobs({"filters": [
            {"field": "key", "op": "IN", "arg": stale}]})}
    if answer == "n":
        assert code == 1 and "Aborted" in text
        assert "PENDING" not in now.values()
        return
    assert code == 0, text
    assert f"requeued {len(stale) - 1}, skipped 1" in text
    assert "changed since it was read" in text
    assert now[stale[0]] == "RUNNING"
    assert all(now[k] == "PENDING" for k in stale[1:])
