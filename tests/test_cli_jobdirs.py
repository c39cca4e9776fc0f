"""`jobman-nb failures` and `jobman-nb show`, driven through the installed console script on the real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jobman_nb

EXE = str(Path(sys.executable).with_name("jobman-nb"))


def run(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # a wide terminal: screen tables are fitted to it
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def cmd(campaign):
    ((old, new),) = campaign["path_map"].items()
    return [campaign["db"], "--path-map", f"{old}={new}", "--batch-dirs", campaign["root"] / "scratch"]


def test_failures_lists_the_causes_with_counts_and_example_keys(cmd):
    done = run("failures", *cmd)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["count", "share", "cause"] and "example_keys" in lines[0]
    oom = next(ln for ln in lines if "oom-kill" in ln)
    assert oom.split()[0] == "12" and len(oom.split()[-1]) == 8  # an example key's first 8 characters
    for phrase in ("No such file", "error termination in SCF", "Segmentation fault", "Disk quota exceeded"):
        assert any(phrase in ln for ln in lines), phrase
    assert "19 FAILED jobs, 19 with a cause" in done.stderr


def test_failures_json_is_the_recurring_causes(cmd, campaign):
    done = run("failures", *cmd, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sum(r["count"] for r in rows) == 19 and len(rows) == 5
    assert all(set(r) == {"count", "share", "cause", "example_keys"} for r in rows)
    assert all(len(k) == 36 for r in rows for k in r["example_keys"])


def test_failures_without_the_path_map_explains_nothing_and_says_so(campaign):
    done = run("failures", campaign["db"])
    assert done.returncode == 0, done.stderr
    assert "19 FAILED jobs, 0 with a cause, 19 without (dir missing: 19)" in done.stderr
    assert "no causes found" in done.stderr


def test_show_prints_record_lineage_dir_and_logs(cmd, campaign):
    key = next(r["example_keys"][0] for r in json.loads(run("failures", *cmd, "--json").stdout)
               if "quota" in r["cause"])
    done = run("show", cmd[0], key[:8], *cmd[1:], "--lines", "3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for section in ("== record", "== lineage", "== job dir", "== stdout (last 3 lines", "== stderr"):
        assert section in out
    assert f'"key": "{key}"' in out and "worker.batch_key:" in out
    assert "logs_from: batch" in out and "Disk quota exceeded: '/scratch/alice" in out  # the raw line
    assert "cause: OSError: [Errno <n>] Disk quota exceeded" in out


def test_show_json_is_one_object(cmd, campaign):
    key = json.loads(run("failures", *cmd, "--json").stdout)[0]["example_keys"][0]
    done = run("show", cmd[0], key, *cmd[1:], "--json")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert set(obj) == {"record", "lineage", "job_dir"} and obj["record"]["key"] == key
    assert obj["job_dir"]["checkpoint"] == "FAILED" and "oom-kill" in obj["job_dir"]["stderr_tail"]
    assert obj["lineage"]["worker.link"] == "ok"


def test_failures_csv(cmd):
    done = run("failures", *cmd, "--csv")
    assert done.returncode == 0, done.stderr
    head, first = done.stdout.splitlines()[:2]
    assert head == "count,share,cause,example_keys" and first.startswith("12,")


def test_show_of_a_purged_job(cmd, campaign):
    with jobman_nb.open_db(campaign["db"]) as db:
        (job,) = db.jobman.query_jobs({"filters": [{"field": "job_spec.label", "op": "=", "arg": "job_006"}]})
    key = job["key"]
    done = run("show", cmd[0], key, *cmd[1:])
    assert done.returncode == 0, done.stderr
    assert "exists: False" in done.stdout and "note: no such directory" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["show", "{db}", "ffffffff"], "no job with key 'ffffffff'"),
    (["failures", "{db}", "--path-map", "/scratch"], "OLD=NEW"),
])
def test_errors_are_one_plain_line(campaign, args, message):
    done = run(*[a.format(db=campaign["db"]) for a in args])
    assert done.returncode in (1, 2) and message in done.stderr and "Traceback" not in done.stderr


def test_failures_finds_the_batched_cause_without_batch_dirs(campaign):
    ((old, new),) = campaign["path_map"].items()
    done = run("failures", campaign["db"], "--path-map", f"{old}={new}")
    assert done.returncode == 0, done.stderr
    assert "Disk quota exceeded" in done.stdout and "19 FAILED jobs, 19 with a cause" in done.stderr
