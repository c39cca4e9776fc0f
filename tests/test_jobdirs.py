"""read_job_dirs: job directories read into a frame, on the real jobman run and on odd files made here."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest

import jobman_nb
from jobman_nb import JobDirsError, JobmanError, read_job_dirs, read_tail
from jobman_nb.jobdirs import COLUMNS, MAX_TAIL_BYTES

# planted failure -> a phrase its cause must contain
PLANTED = {"oom": "oom-kill", "scf": "SCF", "missing_input": "No such file", "quota": "quota",
           "segfault": "Segmentation fault"}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def solvation(campaign):
    """The campaign's jobs and their dirs, read once (with the batches' scratch dir)."""
    before = _snapshot(campaign["root"])
    with jobman_nb.open_db(campaign["db"], path_map=campaign["path_map"]) as db:
        jobs = db.jobman.query_jobs_df()
        dirs = read_job_dirs(jobs, db=db, batch_dirs=[campaign["root"] / "scratch"])
    assert _snapshot(campaign["root"]) == before, "reading job dirs wrote something"
    dirs["label"] = jobs["job_spec.label"].to_numpy()
    dirs["status"] = jobs["status"].astype(str).to_numpy()
    dirs["mode"] = dirs["label"].map(lambda label: campaign["truth"][label]["mode"])
    return jobs, dirs


def test_one_row_per_job_in_order_with_the_contract_columns(solvation):
    jobs, dirs = solvation
    assert list(dirs.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert dirs["key"].tolist() == jobs["key"].tolist()


def test_every_failed_job_with_a_stderr_names_its_planted_failure(solvation, campaign):
    _, dirs = solvation
    failed = dirs[dirs["status"] == "FAILED"]
    assert len(failed) == 19
    for row in failed.itertuples():
        phrase = PLANTED[row.mode]
        assert isinstance(row.cause, str) and phrase.lower() in row.cause.lower(), (row.label, row.cause)


def test_causes_group_one_kind_each(solvation):
    _, dirs = solvation
    failed = dirs[dirs["status"] == "FAILED"]
    modes = failed.groupby("cause")["mode"].agg(set)
    assert all(len(m) == 1 for m in modes), modes
    assert sorted(m for s in modes for m in s) == sorted(PLANTED)  # and each kind is one group


def test_completed_jobs_have_no_cause(solvation):
    _, dirs = solvation
    assert dirs.loc[dirs["status"] == "COMPLETED", "cause"].isna().all()


def test_purged_dirs_read_as_missing(solvation, campaign):
    _, dirs = solvation
    purged = {label for label, t in campaign["truth"].items() if t.get("purged")}
    gone = dirs[dirs["label"].isin(purged)]
    assert len(gone) == 2 and not gone["exists"].any() and gone["checkpoint"].isna().all()
    assert gone["stdout_tail"].isna().all() and gone["files"].isna().all()
    assert dirs.loc[~dirs["label"].isin(purged), "exists"].all()


def test_the_chatty_stdout_comes_back_as_a_bounded_tail_ending_with_its_last_line(solvation):
    _, dirs = solvation
    big = dirs[dirs["stdout_size"] > 1_000_000]
    assert len(big) >= 1
    for row in big.itertuples():
        last = (Path(row.log_dir) / row.files[[f.startswith(("stdout", "job.out")) for f in row.files].index(True)])
        text = last.read_bytes().decode("utf-8", "replace").rstrip("\n").rsplit("\n", 1)[-1]
        assert len(row.stdout_tail.encode()) <= 16384
        assert row.stdout_tail.rstrip("\n").endswith(text)


def test_custom_log_names_are_followed(solvation, campaign):
    _, dirs = solvation
    custom = {label for label, t in campaign["truth"].items() if t.get("std_log_file_names") and not t["batchable"]}
    rows = dirs[dirs["label"].isin(custom)]
    assert len(rows) >= 2
    assert rows["stdout_tail"].notna().all() and rows["stdout_size"].gt(0).all()
    assert all("job.out" in files and "stdout" not in files for files in rows["files"])


def test_non_utf8_logs_decode_without_raising(solvation, campaign):
    _, dirs = solvation
    raw = {label: (campaign["root"] / "jobs" / label / "stderr") for label in ("job_007", "job_026")}
    for label, path in raw.items():
        data = path.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        tail = dirs.loc[dirs["label"] == label, "stderr_tail"].iloc[0]
        assert "\ufffd" in tail


def test_batched_jobs_read_their_batchs_logs(solvation, campaign):
    _, dirs = solvation
    batched = dirs[dirs["label"].map(lambda label: campaign["truth"][label]["batchable"])]
    assert (batched["logs_from"] == "batch").all() and batched["batch_key"].notna().all()
    assert batched["log_dir"].str.contains("/scratch/batch.").all()
    quota = batched[batched["mode"] == "quota"]
    assert len(quota) == 1 and "Disk quota exceeded" in quota["cause"].iloc[0]


def _batched(db):
    return db.jobman.query_jobs_df({"filters": [{"field": "job_spec.batchable", "op": "=", "arg": True}]})


def test_without_batch_dirs_the_batches_are_found_from_the_database_and_its_project(solvation, campaign):
    """No batch_dirs: the lineage names each subjob's batch, and the batch dirs are looked for where a
    jobman project keeps its scratch dir (beside the database, above the job dirs)."""
    _, given = solvation
    with jobman_nb.open_db(campaign["db"], path_map=campaign["path_map"]) as db:
        jobs = db.jobman.query_jobs_df()
        dirs = read_job_dirs(jobs, db=db)
    batched = dirs["logs_from"] == "batch"
    assert batched.sum() == 10 and dirs.loc[batched, "note"].str.contains("found by looking in or below").all()
    same = [c for c in dirs.columns if c != "note"]
    pd.testing.assert_frame_equal(dirs[same], given[same])  # the same logs and causes as with batch_dirs
    assert dirs.loc[~batched, "note"].equals(given.loc[~batched, "note"])


def test_with_no_batch_dirs_to_look_in_the_frame_says_the_logs_are_the_batchs(campaign):
    with jobman_nb.open_db(campaign["db"], path_map=campaign["path_map"]) as db:
        dirs = read_job_dirs(_batched(db), db=db, batch_dirs=[])
    assert len(dirs) == 10
    assert (dirs["logs_from"] == "batch").all() and dirs["log_dir"].isna().all()
    assert dirs["note"].str.contains("its logs are its batch's").all() and dirs["note"].str.contains("batch_dirs").all()
    assert dirs["checkpoint"].notna().all()  # the subjob's own checkpoint is still read


@pytest.fixture
def moved_campaign(campaign, tmp_path):
    """A copy of the run whose batches' scratch dir moved away, and whose job_032 (batched) moved too."""
    import shutil
    import sqlite3

    root = tmp_path / "solvation"
    shutil.copytree(campaign["root"], root, symlinks=True)
    (root / "scratch").rename(tmp_path / "elsewhere")
    (root / "jobs" / "job_032").rename(root / "jobs" / "job_032_moved")
    recorded = next(iter(campaign["path_map"]))
    with sqlite3.connect(root / "jobman.sqlite") as con:  # the copy's database: the job's new dir
        con.execute("UPDATE jobman_job SET job_spec = replace(job_spec, ?, ?)",
                    (f"{recorded}/jobs/job_032\"", f"{recorded}/jobs/job_032_moved\""))
    con.close()
    return {"root": root, "db": root / "jobman.sqlite", "path_map": {recorded: str(root)},
            "elsewhere": tmp_path / "elsewhere"}


def test_when_no_batch_dir_is_found_the_note_says_where_it_would_be(moved_campaign):
    m = moved_campaign
    with jobman_nb.open_db(m["db"], path_map=m["path_map"]) as db:
        dirs = read_job_dirs(_batched(db), db=db)
        keys = dict(zip(db.lineage()["key"], db.lineage()["worker.batch_key"], strict=True))
    assert (dirs["logs_from"] == "batch").all() and dirs["log_dir"].isna().all() and dirs["cause"].isna().all()
    for row in dirs.itertuples():
        assert f"(batch {keys[row.key]})" in row.note and "'batch.*' dir under its engine's scratch_dir" in row.note
        assert str(m["root"]) in row.note and "pass batch_dirs=" in row.note


def test_a_moved_subjob_is_found_through_its_batchs_other_subjobs(moved_campaign):
    m = moved_campaign
    with jobman_nb.open_db(m["db"], path_map=m["path_map"]) as db:
        dirs = read_job_dirs(_batched(db), db=db, batch_dirs=[m["elsewhere"]])
        labels = db.jobman.query_jobs_df({"filters": [{"field": "job_spec.batchable", "op": "=", "arg": True}]})
    moved = dirs[labels["job_spec.label"].to_numpy() == "job_032"].iloc[0]
    assert moved["log_dir"].startswith(str(m["elsewhere"])) and "Disk quota exceeded" in moved["cause"]
    assert "found by its other subjobs" in moved["note"]
    assert dirs["log_dir"].notna().all()


def test_without_the_path_map_nothing_resolves(campaign):
    with jobman_nb.open_db(campaign["db"]) as db:
        dirs = read_job_dirs(db.jobman.query_jobs_df())
    assert not dirs["exists"].any()
    assert dirs["dir"].str.startswith("/scratch/alice/solvation/").all()


def test_records_and_frames_give_the_same_rows(campaign):
    with jobman_nb.open_db(campaign["db"], path_map=campaign["path_map"]) as db:
        records = db.jobman.query_jobs()
        a = read_job_dirs(records, path_map=campaign["path_map"])
        b = read_job_dirs(db.jobman.query_jobs_df(), path_map=campaign["path_map"])
    pd.testing.assert_frame_equal(a, b)


def test_the_database_file_is_not_written(campaign):
    before = campaign["db"].read_bytes()
    siblings = sorted(p.name for p in campaign["db"].parent.iterdir())
    with jobman_nb.open_db(campaign["db"], path_map=campaign["path_map"]) as db:
        read_job_dirs(db.jobman.query_jobs_df(), db=db, batch_dirs=[campaign["root"] / "scratch"])
    assert campaign["db"].read_bytes() == before
    assert sorted(p.name for p in campaign["db"].parent.iterdir()) == siblings


# -- odd files, made here ---------------------------------------------------------------------------
def _job(key: str, d: Path | str, **spec) -> dict:
    return {"key": key, "status": "FAILED", "job_spec": {"dir": str(d), **spec}}


def _one(tmp_path: Path, **kw) -> pd.Series:
    return read_job_dirs([_job("k", tmp_path / "job")], **kw).iloc[0]


@pytest.fixture
def jobdir(tmp_path) -> Path:
    d = tmp_path / "job"
    d.mkdir()
    (d / "JOBMAN-FAILED").touch()
    return d


def test_a_missing_dir_is_a_value(tmp_path):
    row = _one(tmp_path)
    assert not row["exists"] and row["note"] == "no such directory" and pd.isna(row["cause"])


def test_a_dangling_symlink_dir_and_a_file_instead_of_a_dir(tmp_path):
    (tmp_path / "job").symlink_to(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    dirs = read_job_dirs([_job("a", tmp_path / "job"), _job("b", tmp_path / "file"), {"key": "c", "job_spec": {}}])
    assert not dirs["exists"].any()
    assert dirs["note"].tolist() == ["the job dir is a dangling symlink", "the job dir path is not a directory",
                                     "the job records no job_spec.dir"]


def test_a_dangling_symlink_log(jobdir, tmp_path):
    (jobdir / "stderr").symlink_to(jobdir / "gone")
    row = _one(tmp_path)
    assert row["exists"] and pd.isna(row["stderr_tail"]) and "stderr is a dangling symlink" in row["note"]
    assert "stderr" in row["files"]


def test_a_directory_where_a_log_should_be(jobdir, tmp_path):
    (jobdir / "stdout").mkdir()
    (jobdir / "stderr").write_text("Segmentation fault\n")
    row = _one(tmp_path)
    assert pd.isna(row["stdout_tail"]) and "stdout is a directory" in row["note"]
    assert row["cause"] == "Segmentation fault"


def test_unreadable_logs_are_notes(jobdir, tmp_path):
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(jobdir / "stdout"))  # a socket cannot be opened as a file, even by root
        (jobdir / "stderr").write_text("Killed\n")
        (jobdir / "stderr").chmod(0)
        row = _one(tmp_path)
    finally:
        sock.close()
        (jobdir / "stderr").chmod(0o644)
    assert pd.isna(row["stdout_tail"]) and "stdout cannot be opened" in row["note"]
    if os.geteuid() == 0:  # root reads mode-0 files
        assert row["stderr_tail"] == "Killed\n"
    else:
        assert pd.isna(row["stderr_tail"]) and "stderr cannot be opened" in row["note"]


def test_a_fifo_is_not_read_and_does_not_block(jobdir, tmp_path):
    os.mkfifo(jobdir / "stdout")
    row = _one(tmp_path)
    assert pd.isna(row["stdout_tail"]) and "stdout is not a regular file" in row["note"]


def test_a_10_gb_sparse_log_costs_one_tail(jobdir, tmp_path):
    size = 10 * 2**30
    with open(jobdir / "stdout", "wb") as fh:
        fh.seek(size - 100)
        fh.write(b"x" * 60 + b"\n" + b"last line: TERMINATED NORMALLY".ljust(38) + b"\n")
    row = _one(tmp_path, tail_bytes=4096)
    assert row["stdout_size"] == size
    assert row["stdout_tail"].endswith("last line: TERMINATED NORMALLY".ljust(38) + "\n")
    assert len(row["stdout_tail"].encode()) <= 4096


def test_an_all_nul_tail_says_so(jobdir, tmp_path):
    with open(jobdir / "stdout", "wb") as fh:
        fh.truncate(2**20)
    row = _one(tmp_path)
    assert "stdout is NUL bytes at its end" in row["note"]


def test_tails_are_bounded_and_start_at_a_line(jobdir, tmp_path):
    lines = [f"line {i} é\xff".encode("latin-1") for i in range(20_000)]
    (jobdir / "stdout").write_bytes(b"\n".join(lines) + b"\n")
    row = _one(tmp_path, tail_bytes=MAX_TAIL_BYTES)
    tail = row["stdout_tail"]
    assert len(tail.encode("utf-8")) <= MAX_TAIL_BYTES * 3  # replacement chars are 3 bytes in UTF-8
    assert tail.startswith("line ") and tail.endswith("line 19999 \ufffd\ufffd\n")
    assert read_tail(jobdir / "stdout", 100).endswith("line 19999 \ufffd\ufffd\n")


def test_a_log_symlinked_out_of_the_job_dir_is_not_followed(jobdir, tmp_path):
    (tmp_path / "secret").write_text("Segmentation fault\n")
    (jobdir / "stderr").symlink_to(tmp_path / "secret")
    (jobdir / "stdout").symlink_to(jobdir / "real.out")
    (jobdir / "real.out").write_text("inside is fine\n")
    row = _one(tmp_path)
    assert pd.isna(row["stderr_tail"]) and "stderr is a symlink out of the job dir" in row["note"]
    assert row["stdout_tail"] == "inside is fine\n"


def test_a_mapped_dir_never_resolves_outside_the_target(tmp_path):
    target, outside = tmp_path / "mnt", tmp_path / "elsewhere"
    (outside / "job").mkdir(parents=True)
    (outside / "job" / "stderr").write_text("Killed\n")
    target.mkdir()
    (target / "job").symlink_to(outside / "job")
    (target / "inside").mkdir()
    pm = {"/scratch/alice": str(target)}
    dirs = read_job_dirs([_job("a", "/scratch/alice/job"), _job("b", "/scratch/alice/inside/../../elsewhere/job"),
                          _job("c", "/scratch/alice/inside")], path_map=pm)
    assert dirs["exists"].tolist() == [True, False, True]
    assert pd.isna(dirs["stderr_tail"].iloc[0]) and "outside the mapped target" in dirs["note"].iloc[0]
    assert "climbs out" in dirs["note"].iloc[1] and pd.isna(dirs["dir"].iloc[1])
    assert dirs["dir"].iloc[2] == str(target / "inside") and pd.isna(dirs["note"].iloc[2])


def test_std_log_file_names_are_followed(jobdir, tmp_path):
    (jobdir / "stderr").write_text("not this one\n")
    (jobdir / "err.log").write_text("ValueError: negative charge\n")
    rows = read_job_dirs([_job("k", jobdir, std_log_file_names={"stderr": "err.log"})])
    assert rows["cause"].iloc[0] == "ValueError: negative charge" and pd.isna(rows["stdout_tail"].iloc[0])


def test_the_pool_gives_the_same_frame_as_one_thread(tmp_path):
    jobs = []
    for i in range(700):
        d = tmp_path / f"j{i}"
        d.mkdir()
        (d / ("JOBMAN-FAILED" if i % 3 else "JOBMAN-COMPLETED")).touch()
        (d / "stderr").write_text(f"slurmstepd: error: *** JOB {i} ON cn{i:04d} CANCELLED AT "
                                  f"2026-01-01T00:00:{i % 60:02d} DUE TO TIME LIMIT ***\n" if i % 2 else "")
        jobs.append(_job(f"k{i}", d) if i % 5 else _job(f"k{i}", tmp_path / f"missing{i}"))
    one = read_job_dirs(jobs, max_workers=1)
    pool = read_job_dirs(jobs, max_workers=8)
    pd.testing.assert_frame_equal(one, pool)
    assert one["key"].tolist() == [j["key"] for j in jobs]
    assert one["cause"].nunique() == 1


@pytest.mark.parametrize("kw", [{"tail_bytes": 0}, {"tail_bytes": MAX_TAIL_BYTES + 1}, {"tail_bytes": 1.5},
                                {"max_workers": 0}])
def test_bad_arguments_raise_before_reading(tmp_path, kw):
    with pytest.raises(JobDirsError) as info:
        read_job_dirs([_job("k", tmp_path)], **kw)
    assert isinstance(info.value, JobmanError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("jobs", ["/scratch/x", [{"job_spec": {}}], pd.DataFrame({"status": ["FAILED"]}),
                                  pd.DataFrame({"key": ["a"], "status": ["FAILED"]})])
def test_jobs_without_keys_or_dirs_raise(jobs):
    with pytest.raises(JobDirsError):
        read_job_dirs(jobs)


def test_job_spec_as_json_text_or_dicts(jobdir, tmp_path):
    (jobdir / "stderr").write_text("Segmentation fault\n")
    frame = pd.DataFrame({"key": ["a", "b"], "job_spec": [json.dumps({"dir": str(jobdir)}), {"dir": str(jobdir)}]})
    assert read_job_dirs(frame)["cause"].tolist() == ["Segmentation fault"] * 2


def test_the_database_helper_uses_its_path_map(campaign):
    failed = {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}]}
    with jobman_nb.open_db(campaign["db"], path_map=campaign["path_map"]) as db:
        dirs = db.read_job_dirs(failed, batch_dirs=[campaign["root"] / "scratch"])
    assert len(dirs) == 19 and dirs["exists"].all() and dirs["cause"].notna().all()


# -- analytics on causes ----------------------------------------------------------------------------
def test_recurring_causes_of_the_real_run(solvation):
    from jobman_nb import analytics as an

    _, dirs = solvation
    t = an.recurring_errors(dirs[dirs["status"] == "FAILED"], column="cause")
    assert t["count"].sum() == 19 and len(t) == 5
    top = t.iloc[0]
    assert "oom-kill" in top["error"] and top["count"] == 12 and len(top["example_keys"]) == 3
    assert t["error"].tolist() == [an.normalize_error(e) for e in t["error"]]  # causes are already normal


def test_introspect_by_cause_finds_small_memory_behind_the_oom_kills(solvation):
    from jobman_nb import analytics as an

    jobs, dirs = solvation
    merged = jobs.merge(dirs[["key", "cause"]], on="key")
    oom = next(c for c in dirs["cause"].dropna().unique() if "oom-kill" in c)
    t = an.introspect(merged, ["job_spec.resources.mem_gb", "job_spec.cfg.code"], cause=oom)
    assert t["failed"].groupby(t["column"]).sum().eq(12).all()  # only the oom-killed jobs count as failed
    mem = t[t["column"] == "job_spec.resources.mem_gb"].set_index("value")
    assert set(mem.index[mem["failed"] > 0]) == {2, 4}  # no oom-kill with 16 or 64 GB
    assert (mem.loc[[2, 4], "lift"] > 2).all()
    # a cause nobody has: no failed jobs at all
    assert an.introspect(merged, ["job_spec.cfg.code"], cause="nothing like this")["failed"].sum() == 0
    with pytest.raises(KeyError, match="cause"):
        an.introspect(jobs, cause=oom)


def test_symlinks_inside_the_target_are_read_and_a_parent_escaping_it_is_not(tmp_path):
    target, outside = tmp_path / "mnt", tmp_path / "elsewhere"
    for d in (target / "real" / "job", outside / "job"):
        d.mkdir(parents=True)
        (d / "JOBMAN-FAILED").touch()
        (d / "stderr").write_text("Segmentation fault\n")
    (target / "alias").symlink_to(target / "real" / "job")  # a job dir that is a symlink within the target
    (target / "up").symlink_to(outside)  # a parent that leaves the target
    pm = {"/scratch/alice": str(target)}
    dirs = read_job_dirs([_job("a", "/scratch/alice/alias"), _job("b", "/scratch/alice/up/job"),
                          _job("c", "/scratch/alice/real/job")], path_map=pm)
    assert dirs["cause"].tolist()[::2] == ["Segmentation fault"] * 2 and dirs["note"].iloc[::2].isna().all()
    assert pd.isna(dirs["stderr_tail"].iloc[1]) and "outside the mapped target" in dirs["note"].iloc[1]


def test_both_checkpoints_and_a_short_log_and_nul_bytes_in_one_read(tmp_path):
    jobs = []
    for i, (files, expect) in enumerate([
        ({"JOBMAN-COMPLETED": b"", "JOBMAN-FAILED": b"", "stderr": b"Killed\n"}, "both JOBMAN-COMPLETED"),
        ({"JOBMAN-FAILED": b"", "stdout": b"ok\n" + b"\0" * 10}, None),
        ({"JOBMAN-FAILED": b"", "stdout": b"\0" * 4096}, "NUL bytes"),
    ]):
        d = tmp_path / f"j{i}"
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data)
        jobs.append((_job(f"k{i}", d), expect))
    dirs = read_job_dirs([j for j, _ in jobs])
    for (_, expect), note in zip(jobs, dirs["note"], strict=True):
        assert (pd.isna(note) if expect is None else expect in note), note
    assert dirs["stdout_tail"].iloc[1] == "ok\n" + "\0" * 10
