"""The jobman-nb command: demo, info, query and export; output that fits a screen, sqlite-utils' formats."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from jobman_nb import JobmanSqliteDAO
from jobman_nb.cli import main

N = 1_500  # jobs in the cli_demo fixture (tests/conftest.py)


def as_text(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of a screen table, split on runs of 2+ spaces, without the header and its rule."""
    lines = stdout.splitlines()
    assert set(lines[1].replace(" ", "")) == {"-"}, lines[:2]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[2:]]


def test_every_command_has_help_and_a_readme_line(cli):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    expected = {"demo", "info", "query", "export", "stale", "requeue", "history", "events", "lineage", "watch"}
    assert expected <= set(main.commands)
    for name in main.commands:
        result = cli(name, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.stdout
        assert len(main.commands[name].help or "") > 40
        assert re.search(rf"^jobman-nb {name}\b", readme, re.M), f"README has no line for 'jobman-nb {name}'"


def test_demo_summary_and_refusal(cli, tmp_path):
    result = cli("demo", tmp_path / "d.sqlite", "--jobs", 200, "--seed", 1)
    assert result.exit_code == 0
    assert "200 jobman jobs (seed 1)" in result.stdout
    assert "_worker_gpu_w_job" in result.stdout and "COMPLETED" in result.stdout
    again = cli("demo", tmp_path / "d.sqlite", "--jobs", 200)
    assert again.exit_code == 1
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    assert cli("demo", tmp_path / "d.sqlite", "--jobs", 100, "--force").exit_code == 0
    with JobmanSqliteDAO(db_uri=str(tmp_path / "d.sqlite"), read_only=True) as dao:
        assert dao.count_ents("job") == 100


def test_demo_default_path(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("demo", "--jobs", 50)
    assert result.exit_code == 0
    assert (tmp_path / "demo.sqlite").is_file()


def test_demo_rejects_bad_counts(cli, tmp_path):
    result = cli("demo", tmp_path / "d.sqlite", "--jobs", 0)
    assert result.exit_code == 2
    assert not (tmp_path / "d.sqlite").exists()


def test_demo_with_events_turns_history_on(cli, tmp_path):
    path = tmp_path / "ev.sqlite"
    assert cli("demo", path, "--jobs", 100, "--events").exit_code == 0
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
        assert dao.history_enabled
        n_events = len(dao.query_events())
    assert n_events > 100  # several changes a job
    info = cli("info", path)
    assert f"history of jobman_job: on, {n_events:,} events in jobman_job_event" in info.stdout


# -- info -----------------------------------------------------------------------------------
def test_info_on_fixture(cli, fixture_path, fixture_expected):
    before = digest(fixture_path)
    result = cli("info", fixture_path)
    assert result.exit_code == 0, result.stderr
    for table in ("jobman_job", "jobman_kvp", "_worker_cpu_w_job", "engine_cpu_w_engine_job"):
        assert table in result.stdout
    n_failed = sum(j["status"] == "FAILED" for j in fixture_expected["jobman_job"])
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("job table"))
    header, row = lines[at].split()[1:], lines[at + 2].split()
    assert row[0] == "jobman_job"
    counts = dict(zip(header[1:], row[1:], strict=True))
    assert counts["FAILED"] == str(n_failed) and counts["total"] == "25"
    assert "history of jobman_job: off" in result.stdout
    assert digest(fixture_path) == before
    assert sorted(p.name for p in fixture_path.parent.iterdir()) == [fixture_path.name]


def test_info_fits_100_columns(cli, cli_demo):
    result = cli("info", cli_demo)
    assert result.exit_code == 0
    assert max(map(len, result.stdout.splitlines())) <= 100
    assert "COMPLETED" in result.stdout and "first created" in result.stdout


# -- query on the screen --------------------------------------------------------------------
def test_bare_query_fits_a_screen(cli, cli_demo):
    result = cli("query", cli_demo)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["key", "status", "created", "modified", "worker_key"]
    assert len(lines) == 2 + 20
    assert max(map(len, lines)) <= 100
    assert result.stderr.strip() == f"… {N - 20:,} more; -n to see more"
    with JobmanSqliteDAO(db_uri=str(cli_demo), read_only=True) as dao:
        first = dao.query_jobs({"limit": 20, "fields": ["key", "status", "created", "modified", "worker_key"]})
    assert [row[0] for row in table_rows(result.stdout)] == [j["key"] for j in first]  # keys whole


def test_query_adds_the_fields_of_where_and_order(cli, cli_demo):
    result = cli("query", cli_demo, "-w", "status=FAILED", "-w", "job_spec.resources.cpus>=8", "-o", "-created",
                 "-o", "job_spec.cfg.code", "-n", 5)
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:5] == ["key", "status", "created", "modified", "worker_key"]
    assert len(header) == 7 and header[5].endswith("cpus") and header[6].endswith("cfg.code")
    rows = table_rows(result.stdout)
    assert len(rows) == 5 and all(r[1] == "FAILED" and int(r[5]) >= 8 for r in rows)
    with JobmanSqliteDAO(db_uri=str(cli_demo), read_only=True) as dao:
        n = dao.count_ents("job", {"filters": [{"field": "status", "op": "=", "arg": "FAILED"},
                                               {"field": "job_spec.resources.cpus", "op": ">=", "arg": 8}]})
    assert result.stderr.strip() == f"… {n - 5:,} more; -n to see more"


def test_query_fields_limit_and_all(cli, cli_demo):
    result = cli("query", cli_demo, "-w", "status=FAILED", "-f", "key,status,job_spec.cfg.code", "-n", 5)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["key", "status", "job_spec.cfg.code"]
    assert len(lines) == 7 and all(line.split()[1] == "FAILED" for line in lines[2:])
    everything = cli("query", cli_demo, "-w", "status=PENDING", "--all", "-f", "key")
    with JobmanSqliteDAO(db_uri=str(cli_demo), read_only=True) as dao:
        n_pending = dao.count_ents("job", {"filters": [{"field": "status", "op": "=", "arg": "PENDING"}]})
    assert len(everything.stdout.splitlines()) == 2 + n_pending > 22
    assert everything.stderr == ""


@pytest.mark.parametrize("width", [100, 80, 60])
def test_query_lines_fit_the_terminal(cli, cli_demo, width):
    result = cli("query", cli_demo, "-w", "errors is not null", "-w", "job_spec.resources.cpus>=1",
                 env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.stderr
    assert max(map(len, result.stdout.splitlines())) <= width


def test_kvp_table_shows_its_columns(cli, cli_demo):
    result = cli("query", cli_demo, "kvp")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["key", "value", "created", "modified"]
    assert "source_cursors" in result.stdout


# -- query for programs ---------------------------------------------------------------------
QUERY = ["-w", "job_spec.resources.cpus>=8", "-w", "status in FAILED,COMPLETED", "-o", "-created", "-n", 20,
         "--offset", 3]
QUERY_DICT = {"filters": [{"field": "job_spec.resources.cpus", "op": ">=", "arg": 8},
                          {"field": "status", "op": "IN", "arg": ["FAILED", "COMPLETED"]}],
              "order_by": [{"field": "created", "direction": "DESC"}], "limit": 20, "offset": 3}


def expected_records(path: Path, query: dict) -> list[dict]:
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
        records = dao.query_jobs(query)
    return [{**r, "created": iso(r["created"]), "modified": iso(r["modified"])} for r in records]


def test_query_json_is_one_array_with_iso_times(cli, cli_demo):
    result = cli("query", cli_demo, *QUERY, "--json")
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    assert got == expected_records(cli_demo, QUERY_DICT)
    assert len(got) == 20 and got[0]["created"].endswith("+00:00")
    assert cli("query", cli_demo, "-w", "status=NOSUCH", "--json").stdout == "[]\n"


def test_query_nl_is_one_object_a_line(cli, cli_demo):
    result = cli("query", cli_demo, *QUERY, "--nl")
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == expected_records(cli_demo, QUERY_DICT)
    everything = cli("query", cli_demo, "--nl", "-f", "key")
    assert len(everything.stdout.splitlines()) == N  # no screen limit for programs


def test_nl_streams_in_chunks(monkeypatch, cli, cli_demo):
    """Each chunk of records is written before the next one is read."""
    from jobman_nb.cli import _output

    monkeypatch.setattr(_output, "CHUNK", 100)
    reads: list[int] = []
    real_iter = JobmanSqliteDAO.iter_ents

    def iter_ents(self, *args, **kwargs):
        for chunk in real_iter(self, *args, **kwargs):
            reads.append(len(chunk))
            yield chunk

    monkeypatch.setattr(JobmanSqliteDAO, "iter_ents", iter_ents)
    written: list[int] = []
    real_write = _output._write_json

    class Out:
        def write(self, text):
            written.append(len(reads))

        def flush(self):
            pass

    monkeypatch.setattr(_output, "_write_json", lambda out, *a, **k: real_write(Out(), *a, **k))
    result = cli("query", cli_demo, "--nl")
    assert result.exit_code == 0, result.stderr
    assert reads == [100] * (N // 100)
    assert written == list(range(1, N // 100 + 1))  # one write per chunk, right after reading it


def test_nl_memory_stays_flat(monkeypatch, cli_demo, tmp_path):
    """Peak memory of --nl is set by the chunk size, not by the number of records."""
    import contextlib
    import tracemalloc

    from jobman_nb.cli import _output

    small = tmp_path / "small.sqlite"
    with JobmanSqliteDAO(db_uri=str(cli_demo), read_only=True) as src, JobmanSqliteDAO(db_uri=str(small)) as dst:
        dst.save_jobs(src.query_jobs({"limit": N // 5}))
    monkeypatch.setattr(_output, "CHUNK", 50)

    def peak(path: Path) -> int:
        with open(tmp_path / "out.jsonl", "w") as out, contextlib.redirect_stdout(out):
            tracemalloc.start()
            try:
                main(["query", str(path), "--nl"], standalone_mode=False)
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    peak(small)  # imports and caches first
    small_peak, big_peak = peak(small), peak(cli_demo)
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == N
    assert big_peak < 1.5 * small_peak  # 5x the records; holding them all would take about 5x the memory


def test_query_csv_expands_json_as_json_text(cli, cli_demo):
    # jobman records errors only for batch subjobs (xtb in the demo), as jobman 0.0.1 does
    result = cli("query", cli_demo, "-w", "errors is not null", "-w", "job_spec.cfg.code = xtb", "--csv")
    assert result.exit_code == 0
    df = pd.read_csv(StringIO(result.stdout), keep_default_na=False, dtype=str)
    assert "job_spec.resources.mem_gb" in df.columns
    assert set(df["status"]) == {"FAILED"}
    assert set(df["job_spec.cfg.code"]) == {"xtb"}
    assert all(isinstance(json.loads(cell), list) for cell in df["errors"])  # JSON text, not Python repr
    assert set(df["job_spec.batchable"]) <= {"true", "false"}
    with JobmanSqliteDAO(db_uri=str(cli_demo), read_only=True) as dao:
        first = dao.get_job(df["key"][0])
    assert df["created"][0] == iso(first["created"])


def test_query_csv_with_fields_and_tsv(cli, cli_demo):
    csv_out = cli("query", cli_demo, "-w", "status=FAILED", "-w", "errors is not null", "-f", "key,created,errors",
                  "-n", 4, "--csv")
    rows = list(csv.reader(StringIO(csv_out.stdout)))
    assert rows[0] == ["key", "created", "errors"] and len(rows) == 5
    assert rows[1][1].endswith("+00:00") and json.loads(rows[1][2])
    tsv_out = cli("query", cli_demo, "-w", "status=FAILED", "-w", "errors is not null", "-f", "key,created", "-n", 4,
                  "--tsv", "--no-headers")
    assert [line.split("\t") for line in tsv_out.stdout.splitlines()] == [r[:2] for r in rows[1:]]


def test_query_table_fmt(cli, cli_demo):
    result = cli("query", cli_demo, "-n", 3, "--table", "--fmt", "github")
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("|") for line in lines)
    assert lines[0].split("|")[1].strip() == "key"
    assert "… " in result.stderr
    plain = cli("query", cli_demo, "-n", 3, "-t")
    assert plain.stdout.splitlines()[0].split() == ["key", "status", "created", "modified", "worker_key"]


def test_query_other_tables(cli, cli_demo):
    result = cli("query", cli_demo, "_worker_gpu_w_job", "-w", "is_batch=1", "-n", 1, "--json")
    assert result.exit_code == 0, result.stderr
    (batch,) = json.loads(result.stdout)
    assert batch["batch_meta"]["subjob_keys"]
    kvps = cli("query", cli_demo, "kvp", "--json")
    assert "source_cursors" in {k["key"] for k in json.loads(kvps.stdout)}


def test_query_dates(cli, cli_demo):
    result = cli("query", cli_demo, "-w", "created>=2026-01-10", "-w", "created<2026-01-11T12:00", "--nl",
                 "-f", "key,created")
    assert result.exit_code == 0, result.stderr
    created = [json.loads(line)["created"] for line in result.stdout.splitlines()]
    assert created and all("2026-01-10T00:00:00+00:00" <= c < "2026-01-11T12:00:00+00:00" for c in created)
    with JobmanSqliteDAO(db_uri=str(cli_demo), read_only=True) as dao:
        lo = datetime(2026, 1, 10, tzinfo=timezone.utc).timestamp()
        hi = datetime(2026, 1, 11, 12, tzinfo=timezone.utc).timestamp()
        assert len(created) == sum(lo <= j["created"] < hi for j in dao.query_jobs({"fields": ["created"]}))


def test_where_values_fit_their_fields(cli, cli_demo):
    """Numbers, booleans and dates that fit are accepted; text fields and patterns take anything."""
    for expr in ("job_spec.resources.cpus>=8", "job_spec.batchable=true", "source_tag=2024", "errors like %Memory%",
                 "job_spec.resources.cpus like 1%", "job_spec.not_seen=anything", "modified between 2026-01-10,"
                 "2026-01-11"):
        result = cli("query", cli_demo, "-w", expr, "-n", 1, "-f", "key")
        assert result.exit_code == 0, (expr, result.stderr)


def test_where_parser_checks_kinds():
    from jobman_nb._where import parse_where
    from jobman_nb.errors import QueryError
    from jobman_nb.vocabulary import ValueKind

    kinds = {"n": ValueKind.NUMBER, "t": ValueKind.TIME, "b": ValueKind.BOOL, "s": ValueKind.TEXT}.get
    assert parse_where("t>=2026-01-10", kinds)["arg"] == datetime(2026, 1, 10, tzinfo=timezone.utc).timestamp()
    assert parse_where("t in 2026-01-10,5", kinds)["arg"][1] == 5
    assert parse_where("n in 1,2.5", kinds)["arg"] == [1, 2.5]
    assert parse_where("s=7", kinds)["arg"] == 7 and parse_where("x=y", kinds)["arg"] == "y"
    assert parse_where("n is null", kinds)["arg"] is None
    with pytest.raises(QueryError, match="n holds numbers; True is not a number"):
        parse_where("n=true", kinds)
    with pytest.raises(QueryError, match="b holds true/false; 1 is neither"):
        parse_where("b=1", kinds)


def test_query_no_match(cli, cli_demo):
    result = cli("query", cli_demo, "-w", "status=NOSUCH")
    assert result.exit_code == 0
    assert "no matching records" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["-w", "statuz=FAILED"], "unknown field 'statuz'"),
    (["-w", "status"], "expected FIELD OP VALUE"),
    (["-w", "status is FAILED"], "null only"),
    (["-w", "created>yesterday"], "--where 'created>yesterday' (created holds times): 'yesterday' is not a date"),
    (["-w", "job_spec.resources.cpus>=eight"],
     "--where 'job_spec.resources.cpus>=eight': job_spec.resources.cpus holds numbers; 'eight' is not a number"),
    (["-w", "job_spec.resources.mem_gb between 2,lots"], "'lots' is not a number"),
    (["-w", "job_spec.batchable=yes"], "job_spec.batchable holds true/false; 'yes' is neither"),
    (["-w", "batchable!=no"], "batchable holds numbers"),
    (["-o", "-"], "name a field"),
    (["nope_job"], "no DAO owns table 'nope_job'"),
    (["-f", "key,bogus"], "bogus"),
    (["--limit", "-1"], "limit"),
    (["--fmt", "xml"], "xml"),
    (["--csv", "--json"], "choose one output format"),
])
def test_query_errors_are_plain(cli, cli_demo, args, message):
    result = cli("query", cli_demo, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_and_non_sqlite_files(cli, tmp_path):
    missing = cli("info", tmp_path / "nope.sqlite")
    assert missing.exit_code == 1 and "no database file" in missing.stderr
    (tmp_path / "text.sqlite").write_text("not a database\n")
    bad = cli("query", tmp_path / "text.sqlite")
    assert bad.exit_code == 1 and "not an SQLite database" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr


def test_read_commands_never_change_the_file(cli, cli_demo_copy, tmp_path):
    path = cli_demo_copy
    before = digest(path)
    for args in (["info"], ["query", "-w", "status=RUNNING", "--csv"], ["query", "--nl"], ["lineage", "--json"],
                 ["stale", "--older-than", "1h"], ["history"], ["history", "status"], ["watch", "--count", 2,
                 "--every", 0.01], ["requeue", "--stale", "--dry-run"], ["query", "-w", "bogus=1"]):
        result = cli(args[0], path, *args[1:])
        assert result.exit_code in (0, 2), (args, result.stderr)
    assert cli("export", path, tmp_path / "all.parquet").exit_code == 0
    assert digest(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, "all.parquet"])


# -- export ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_matches_frame(cli, cli_demo, tmp_path, suffix):
    out = tmp_path / f"jobs{suffix}"
    result = cli("export", cli_demo, out, "--chunksize", 400)
    assert result.exit_code == 0, result.stderr
    with JobmanSqliteDAO(db_uri=str(cli_demo), read_only=True) as dao:
        frame = dao.query_jobs_df()
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(got) == N
    assert list(got["key"]) == list(frame["key"])
    for col in ("job_spec.resources.cpus", "job_spec.cfg.method", "job_spec.cfg.basis", "status"):
        assert as_text(got[col]) == as_text(frame[col]), col
    if suffix == ".parquet":
        assert (got["created"] == frame["created"]).all()
    assert f"{N:,} records" in result.stderr


def test_export_csv_and_query_csv_write_the_same_cells(cli, cli_demo, tmp_path):
    out = tmp_path / "failed.csv"
    where = ["-w", "status=FAILED", "-w", "job_spec.cfg.code=orca"]
    assert cli("export", cli_demo, out, *where, "--chunksize", 7).exit_code == 0
    exported = list(csv.reader(StringIO(out.read_text())))
    queried = list(csv.reader(StringIO(cli("query", cli_demo, *where, "--csv").stdout)))
    assert exported[0] == queried[0]
    assert exported == queried
    created = exported[0].index("created")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", exported[1][created])


def test_export_parquet_one_schema_when_keys_appear_late(cli, file_dao, tmp_path):
    jobs = [{"key": f"k{i:02d}", "status": "PENDING", "job_spec": {"a": i, **({"late": "x"} if i >= 5 else {})},
             "errors": ["e"] if i % 3 == 0 else None} for i in range(8)]
    file_dao.save_jobs(jobs)
    file_dao.close()
    out = tmp_path / "late.parquet"
    result = cli("export", file_dao.path, out, "--chunksize", 2, "-w", "status=PENDING")
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 8
    assert table.column("job_spec.late").to_pylist() == [None] * 5 + ["x"] * 3
    assert table.column("job_spec.a").to_pylist() == list(range(8))
    assert pq.ParquetFile(out).metadata.num_row_groups == 4


def test_export_empty_result_writes_columns(cli, cli_demo, tmp_path):
    out = tmp_path / "none.parquet"
    result = cli("export", cli_demo, out, "-w", "status=NOSUCH")
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 0 and "status" in table.column_names


def test_export_other_table_and_usage_errors(cli, cli_demo, tmp_path):
    kvp = cli("export", cli_demo, tmp_path / "kvp.csv", "--from", "kvp")
    assert kvp.exit_code == 0, kvp.stderr
    assert "source_cursors" in (tmp_path / "kvp.csv").read_text()
    bad = cli("export", cli_demo, tmp_path / "out.xlsx")
    assert bad.exit_code == 2 and ".parquet or .csv" in bad.stderr
    existing = tmp_path / "old.csv"
    existing.write_text("keep")
    refused = cli("export", cli_demo, existing)
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert existing.read_text() == "keep"
    assert cli("export", cli_demo, existing, "--force", "-w", "status=PENDING").exit_code == 0
    assert existing.read_text().startswith("key,")
