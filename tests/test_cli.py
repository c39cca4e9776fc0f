"""The jobman-nb command: demo, info, query and export, read-only, with plain errors and exit codes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from jobman_nb import JobmanSqliteDAO
from jobman_nb.cli import main

N = 1_500


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "demo.sqlite"
    result = CliRunner().invoke(main, ["demo", str(path), "--jobs", str(N), "--seed", "3"])
    assert result.exit_code == 0, result.output
    return path


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def as_text(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_command_has_help():
    for name in ("demo", "info", "query", "export"):
        result = run(name, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.output
        assert len(main.commands[name].help or "") > 40
    assert set(main.commands) == {"demo", "info", "query", "export"}


def test_demo_summary_and_refusal(tmp_path, demo_path):
    result = run("demo", tmp_path / "d.sqlite", "--jobs", 200, "--seed", 1)
    assert result.exit_code == 0
    assert "200 jobman jobs (seed 1)" in result.output
    assert "_worker_gpu_w_job" in result.output and "COMPLETED" in result.output
    again = run("demo", tmp_path / "d.sqlite", "--jobs", 200)
    assert again.exit_code == 1
    assert "--force" in again.output and "Traceback" not in again.output
    assert run("demo", tmp_path / "d.sqlite", "--jobs", 100, "--force").exit_code == 0
    with JobmanSqliteDAO(db_uri=str(tmp_path / "d.sqlite"), read_only=True) as dao:
        assert dao.count_ents("job") == 100


def test_demo_default_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("demo", "--jobs", 50)
    assert result.exit_code == 0
    assert (tmp_path / "demo.sqlite").is_file()


def test_demo_rejects_bad_counts(tmp_path):
    result = run("demo", tmp_path / "d.sqlite", "--jobs", 0)
    assert result.exit_code == 2
    assert not (tmp_path / "d.sqlite").exists()


def test_info_on_fixture(fixture_path, fixture_expected):
    before = digest(fixture_path)
    result = run("info", fixture_path)
    assert result.exit_code == 0, result.output
    for table in ("jobman_job", "jobman_kvp", "_worker_cpu_w_job", "engine_cpu_w_engine_job"):
        assert table in result.output
    n_failed = sum(j["status"] == "FAILED" for j in fixture_expected["jobman_job"])
    header, row = (line.split() for line in result.output.splitlines()
                   if line.startswith("jobman_job ") or line.lstrip().startswith("COMPLETED"))
    counts = dict(zip(header, row[1:], strict=True))
    assert counts["FAILED"] == str(n_failed) and counts["total"] == "25"
    assert digest(fixture_path) == before
    assert sorted(p.name for p in fixture_path.parent.iterdir()) == [fixture_path.name]


def test_query_table_format(demo_path):
    result = run("query", demo_path, "-w", "status=FAILED", "-f", "key,status,job_spec.cfg.code", "-n", 5)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["key", "status", "job_spec.cfg.code"]
    assert len(lines) == 6 and all(line.split()[1] == "FAILED" for line in lines[1:])


def test_query_json_equals_dao(demo_path):
    args = ["-w", "job_spec.resources.cpus>=8", "-w", "status in FAILED,COMPLETED", "-o", "-created", "-n", 20,
            "--offset", 3]
    result = run("query", demo_path, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    with JobmanSqliteDAO(db_uri=str(demo_path), read_only=True) as dao:
        expected = dao.query_jobs({
            "filters": [{"field": "job_spec.resources.cpus", "op": ">=", "arg": 8},
                        {"field": "status", "op": "IN", "arg": ["FAILED", "COMPLETED"]}],
            "order_by": [{"field": "created", "direction": "DESC"}], "limit": 20, "offset": 3})
    assert json.loads(result.output) == expected
    assert len(expected) == 20


def test_query_csv_expands_json(demo_path):
    result = run("query", demo_path, "-w", "errors is not null", "-w", "job_spec.cfg.code != xtb", "--format", "csv")
    assert result.exit_code == 0
    df = pd.read_csv(StringIO(result.output))
    assert "job_spec.resources.mem_gb" in df.columns
    assert set(df["status"]) == {"FAILED"}
    assert "xtb" not in set(df["job_spec.cfg.code"])


def test_query_other_tables(demo_path):
    result = run("query", demo_path, "-t", "_worker_gpu_w_job", "-w", "is_batch=1", "-n", 1, "--format", "json")
    assert result.exit_code == 0, result.output
    (batch,) = json.loads(result.output)
    assert batch["batch_meta"]["subjobs"]
    kvps = run("query", demo_path, "-t", "kvp", "--format", "json")
    assert "source_cursors" in {k["key"] for k in json.loads(kvps.output)}


def test_query_no_match(demo_path):
    result = run("query", demo_path, "-w", "status=NOSUCH")
    assert result.exit_code == 0
    assert "no matching records" in result.output


@pytest.mark.parametrize("args, code, message", [
    (["-w", "statuz=FAILED"], 2, "unknown field 'statuz'"),
    (["-w", "status"], 2, "expected FIELD OP VALUE"),
    (["-w", "status is FAILED"], 2, "null only"),
    (["-o", "-"], 2, "name a field"),
    (["-t", "nope_job"], 2, "no DAO owns table 'nope_job'"),
    (["-f", "key,bogus"], 2, "bogus"),
    (["--limit", "-1"], 2, "limit"),
    (["--format", "xml"], 2, "xml"),
])
def test_query_errors_are_plain(demo_path, args, code, message):
    result = run("query", demo_path, *args)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_and_non_sqlite_files(tmp_path):
    missing = run("info", tmp_path / "nope.sqlite")
    assert missing.exit_code == 1 and "no database file" in missing.output
    (tmp_path / "text.sqlite").write_text("not a database\n")
    bad = run("query", tmp_path / "text.sqlite")
    assert bad.exit_code == 1 and "not an SQLite database" in bad.output
    assert "Traceback" not in missing.output + bad.output


def test_read_commands_never_change_the_file(demo_path, tmp_path):
    before = digest(demo_path)
    assert run("info", demo_path).exit_code == 0
    assert run("query", demo_path, "-w", "status=RUNNING", "--format", "csv").exit_code == 0
    assert run("export", demo_path, tmp_path / "all.parquet").exit_code == 0
    assert run("query", demo_path, "-w", "bogus=1").exit_code == 2
    assert digest(demo_path) == before
    assert sorted(p.name for p in demo_path.parent.iterdir()) == [demo_path.name]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_matches_frame(demo_path, tmp_path, suffix):
    out = tmp_path / f"jobs{suffix}"
    result = run("export", demo_path, out, "--chunksize", 400)
    assert result.exit_code == 0, result.output
    with JobmanSqliteDAO(db_uri=str(demo_path), read_only=True) as dao:
        frame = dao.query_jobs_df()
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(got) == N
    assert list(got["key"]) == list(frame["key"])
    for col in ("job_spec.resources.cpus", "job_spec.cfg.method", "job_spec.cfg.basis", "status"):
        assert as_text(got[col]) == as_text(frame[col]), col
    if suffix == ".parquet":
        assert (got["created"] == frame["created"]).all()
    assert f"{N:,} records" in result.output


def test_export_parquet_one_schema_when_keys_appear_late(file_dao, tmp_path):
    jobs = [{"key": f"k{i:02d}", "status": "PENDING", "job_spec": {"a": i, **({"late": "x"} if i >= 5 else {})},
             "errors": ["e"] if i % 3 == 0 else None} for i in range(8)]
    file_dao.save_jobs(jobs)
    file_dao.close()
    out = tmp_path / "late.parquet"
    result = run("export", file_dao.path, out, "--chunksize", 2, "-w", "status=PENDING")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 8
    assert table.column("job_spec.late").to_pylist() == [None] * 5 + ["x"] * 3
    assert table.column("job_spec.a").to_pylist() == list(range(8))
    assert pq.ParquetFile(out).metadata.num_row_groups == 4


def test_export_empty_result_writes_columns(demo_path, tmp_path):
    out = tmp_path / "none.parquet"
    result = run("export", demo_path, out, "-w", "status=NOSUCH")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 0 and "status" in table.column_names


def test_export_usage_errors(demo_path, tmp_path):
    bad = run("export", demo_path, tmp_path / "out.xlsx")
    assert bad.exit_code == 2 and ".parquet or .csv" in bad.output
    existing = tmp_path / "old.csv"
    existing.write_text("keep")
    refused = run("export", demo_path, existing)
    assert refused.exit_code == 1 and "--force" in refused.output
    assert existing.read_text() == "keep"
    assert run("export", demo_path, existing, "--force", "-w", "status=PENDING").exit_code == 0
    assert existing.read_text().startswith("key,")


def test_installed_console_script(fixture_path, tmp_path):
    exe = shutil.which("jobman-nb") or str(Path(sys.executable).with_name("jobman-nb"))
    done = subprocess.run([exe, "info", str(fixture_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "jobman_job" in done.stdout
    bad = subprocess.run([exe, "query", str(fixture_path), "-w", "nope>1"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: ") and "Traceback" not in bad.stderr


def test_a_closed_pipe_ends_quietly(fixture_path):
    """`jobman-nb info ... | head -1`: the reader goes away; no 'Broken pipe' error, exit 0."""
    child = (
        "import sys\n"
        "from jobman_nb.cli import main\n"
        "class ClosedPipe:\n"
        "    def write(self, text): raise BrokenPipeError(32, 'Broken pipe')\n"
        "    def flush(self): pass\n"
        "    def fileno(self): return sys.__stdout__.fileno()\n"
        "sys.stdout = ClosedPipe()\n"
        f"main(['info', {str(fixture_path)!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Broken pipe" not in proc.stderr and "Error" not in proc.stderr
