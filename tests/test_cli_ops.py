"""The jobman-nb commands that look after a queue: stale, requeue, history, events, lineage, watch."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from jobman_nb import JobmanSqliteDAO, find_stale_jobs, open_db
from jobman_nb.cli._ops import watch_counts


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stuck_keys(path: Path, older_than: str = "1h") -> list[str]:
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
        return list(find_stale_jobs(dao, older_than)["key"])


def statuses(path: Path, keys: list[str]) -> dict[str, str]:
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
        return {j["key"]: j["status"] for j in dao.query_jobs({"filters": [{"field": "key", "op": "IN",
                                                                              "arg": keys}]})}


# -- stale ----------------------------------------------------------------------------------
def test_stale_lists_what_find_stale_jobs_finds(cli, cli_demo):
    expected = stuck_keys(cli_demo, "2h")
    assert expected
    result = cli("stale", cli_demo, "--older-than", "2h", "--nl")
    assert result.exit_code == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [j["key"] for j in got] == expected
    assert {j["status"] for j in got} <= {"CLAIMED", "RUNNING"}
    assert got[0]["stale_for"].startswith("P") and got[0]["modified"].endswith("+00:00")
    screen = cli("stale", cli_demo, "--older-than", "2h")
    assert screen.stdout.splitlines()[0].split() == ["key", "status", "modified", "stale_for", "worker_key"]
    assert f"{len(expected)} jobs CLAIMED or RUNNING" in screen.stderr
    assert max(map(len, screen.stdout.splitlines())) <= 100


def test_stale_with_where_and_bad_duration(cli, cli_demo):
    result = cli("stale", cli_demo, "--older-than", "2h", "-w", "worker_key=hpc_w", "--csv", "-f", "key,worker_key")
    assert result.exit_code == 0, result.stderr
    assert {line.split(",")[1] for line in result.stdout.splitlines()[1:]} == {"hpc_w"}
    bad = cli("stale", cli_demo, "--older-than", "soon")
    assert bad.exit_code == 2 and "'soon' is not a duration" in bad.stderr


# -- requeue --------------------------------------------------------------------------------
def test_requeue_stale_with_yes(cli, cli_demo_copy):
    keys = stuck_keys(cli_demo_copy, "2h")
    result = cli("requeue", cli_demo_copy, "--stale", "--older-than", "2h", "--yes")
    assert result.exit_code == 0, result.stderr
    assert f"requeued {len(keys)}, skipped 0" in result.stdout
    assert set(statuses(cli_demo_copy, keys).values()) == {"PENDING"}
    again = cli("requeue", cli_demo_copy, "--stale", "--older-than", "2h", "--yes")
    assert again.exit_code == 0 and "nothing to requeue" in again.stderr


def test_requeue_dry_run_and_no_terminal_change_nothing(cli, cli_demo_copy):
    before = digest(cli_demo_copy)
    dry = cli("requeue", cli_demo_copy, "--stale", "--older-than", "2h", "--dry-run")
    assert dry.exit_code == 0 and "dry run: nothing written" in dry.stderr
    assert f"{len(stuck_keys(cli_demo_copy, '2h'))} jobs matched" in dry.stdout
    refused = cli("requeue", cli_demo_copy, "--stale", "--older-than", "2h", input="y\n")
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert digest(cli_demo_copy) == before
    assert sorted(p.name for p in cli_demo_copy.parent.iterdir()) == [cli_demo_copy.name]


def test_requeue_where_and_from_status(cli, cli_demo_copy):
    where = ["-w", "status=FAILED", "-w", "job_spec.cfg.code=orca"]
    with JobmanSqliteDAO(db_uri=str(cli_demo_copy), read_only=True) as dao:
        failed = [j["key"] for j in dao.query_jobs({"filters": [
            {"field": "status", "op": "=", "arg": "FAILED"},
            {"field": "job_spec.cfg.code", "op": "=", "arg": "orca"}]})]
    assert failed
    skipped = cli("requeue", cli_demo_copy, *where, "--yes")
    assert skipped.exit_code == 0
    assert f"0 to requeue, {len(failed)} skipped: status FAILED" in skipped.stdout
    assert "nothing to requeue" in skipped.stderr
    done = cli("requeue", cli_demo_copy, *where, "--from-status", "FAILED", "--yes")
    assert done.exit_code == 0, done.stderr
    assert f"requeued {len(failed)}, skipped 0" in done.stdout
    assert set(statuses(cli_demo_copy, failed).values()) == {"PENDING"}


@pytest.mark.parametrize("args, message", [
    ([], "say which jobs"),
    (["-w", "status=RUNNING", "--older-than", "2h"], "--older-than goes with --stale"),
    (["--stale", "--from-status", ","], "--from-status"),
    (["-w", "nope=1"], "unknown field 'nope'"),
])
def test_requeue_usage_errors(cli, cli_demo_copy, args, message):
    before = digest(cli_demo_copy)
    result = cli("requeue", cli_demo_copy, *args, "--yes")
    assert result.exit_code == 2 and message in result.stderr
    assert digest(cli_demo_copy) == before


# -- history and events ---------------------------------------------------------------------
def test_history_on_status_off_and_events(cli, cli_demo_copy):
    path = cli_demo_copy
    assert "history of jobman_job: off" in cli("history", path).stdout
    on = cli("history", path, "on")
    assert on.exit_code == 0, on.stderr
    assert "history of jobman_job: on, 1,500 events in jobman_job_event" in on.stdout  # one snapshot a job
    with JobmanSqliteDAO(db_uri=str(path)) as dao:
        claimed = [j["key"] for j in dao.claim_jobs({"filters": [dao.generate_status_filter("PENDING")],
                                                     "limit": 3})]
    events = cli("events", path, "-w", "new_status=CLAIMED", "-w", "old_status=PENDING", "--nl")
    got = [json.loads(line) for line in events.stdout.splitlines()]
    assert [e["job_key"] for e in got] == claimed
    assert all(e["time"].endswith("+00:00") for e in got)
    since = cli("events", path, "-w", f"time>={got[0]['time'][:19]}", "-w", "new_status=CLAIMED", "--nl")
    assert [json.loads(line)["job_key"] for line in since.stdout.splitlines()] == claimed  # ISO dates for time
    assert cli("events", path, "-w", "time>soon").exit_code == 2
    screen = cli("events", path)
    assert screen.stdout.splitlines()[0].split() == ["key", "job_key", "old_status", "new_status", "time"]
    assert "… 1,483 more" in screen.stderr
    info = cli("info", path)
    assert "history of jobman_job: on, 1,503 events" in info.stdout
    off = cli("history", path, "off")
    assert "history of jobman_job: off, 1,503 events" in off.stdout
    assert off.stderr.startswith("warning: jobman_job_event exists but the history triggers")


def test_info_warns_when_a_transform_dropped_the_triggers(cli, cli_demo_copy):
    path = cli_demo_copy
    assert cli("history", path, "on").exit_code == 0
    db = sqlite_utils.Database(path)
    try:
        db["jobman_job"].transform(types={"source_tag": str})  # recreates the table: triggers are gone
    finally:
        db.close()
    info = cli("info", path)
    assert info.exit_code == 0
    assert "history of jobman_job: off, 1,500 events in jobman_job_event" in info.stdout
    assert "triggers of jobman_job are gone (as after 'sqlite-utils transform')" in info.stderr
    assert "jobman-nb history demo.sqlite on" in info.stderr
    assert cli("history", path, "on").exit_code == 0
    assert cli("info", path).stderr == ""


def test_events_without_history(cli, cli_demo):
    result = cli("events", cli_demo)
    assert result.exit_code == 1
    assert "no history" in result.stderr and "jobman-nb history" in result.stderr


# -- lineage --------------------------------------------------------------------------------
def test_lineage_matches_the_library(cli, cli_demo):
    with open_db(cli_demo) as db:
        expected = db.lineage({"filters": [{"field": "status", "op": "=", "arg": "RUNNING"}]})
    result = cli("lineage", cli_demo, "-w", "status=RUNNING", "--nl")
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["key"] for r in got] == list(expected["key"])
    assert [r["engine.link"] for r in got] == list(expected["engine.link"].astype(str))
    assert "worker.batch_key" in got[0]
    screen = cli("lineage", cli_demo)
    lines = screen.stdout.splitlines()
    assert lines[0].split() == ["key", "status", "worker_key", "worker", "engine", "modified"]
    assert len(lines) == 22 and max(map(len, lines)) <= 100
    assert screen.stderr.startswith("… 1,480 more")
    bad = cli("lineage", cli_demo, "-f", "key,nope")
    assert bad.exit_code == 2 and "no column 'nope'" in bad.stderr


# -- watch ----------------------------------------------------------------------------------
def test_watch_queries_only_when_the_file_changed(cli_demo_copy):
    """Between changes a tick runs one PRAGMA data_version and nothing else."""
    statements: list[str] = []
    conn = sqlite3.connect(f"file:{cli_demo_copy}?mode=ro", uri=True)
    conn.set_trace_callback(statements.append)
    writer = JobmanSqliteDAO(db_uri=str(cli_demo_copy))
    ticks: list[int] = []

    def sleep(_seconds: float) -> None:
        ticks.append(len(statements))
        if len(ticks) == 2:  # after the second tick, another connection claims jobs
            writer.claim_jobs({"filters": [writer.generate_status_filter("PENDING")], "limit": 2})

    try:
        snaps = list(watch_counts(conn, "jobman_job", 0, sleep=sleep, ticks=5))
    finally:
        writer.close()
        conn.close()
    assert [s is not None for s in snaps] == [True, False, True, False, False]
    assert snaps[2].counts["CLAIMED"] == snaps[0].counts.get("CLAIMED", 0) + 2
    assert snaps[2].counts["PENDING"] == snaps[0].counts["PENDING"] - 2
    quiet = statements[ticks[0]:ticks[1]] + statements[ticks[2]:]
    assert quiet == ["PRAGMA data_version"] * 3


def test_watch_prints_a_line_per_change(cli, cli_demo_copy):
    result = cli("watch", cli_demo_copy, "--every", 0.01, "--count", 3)
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split()[0] == "UTC" and header.split()[-2:] == ["total", "done/h"]
    assert row.split()[-2] == "1,500"
    assert len(header) == len(row) <= 100
