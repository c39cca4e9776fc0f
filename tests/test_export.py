"""export_parquet: jobs of one or many databases to a partitioned Parquet dataset, one schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest

from jobman_nb import JobmanSqliteDAO, QueryError
from jobman_nb.demo import make_history
from jobman_nb.export import export_parquet
from jobman_nb.frames import STRING_DTYPE
from jobman_nb.multi import open_many


@pytest.fixture(scope="module")
def clusters(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("clusters")
    paths = [d / "cluster_a.sqlite", d / "cluster_b.sqlite"]
    make_history(paths[0], n_jobs=700, seed=1, days=45)
    make_history(paths[1], n_jobs=500, seed=2, days=45)
    return paths


def parquet_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def test_dataset_equals_the_frames(clusters, tmp_path):
    out = tmp_path / "jobs"
    summary = export_parquet(clusters, out, chunksize=300, progress=False)
    assert summary["jobs"] == 1200 and summary["databases"] == {"cluster_a": 700, "cluster_b": 500}
    assert {p.parent.parent.name for p in parquet_files(out)} == {"db=cluster_a", "db=cluster_b"}
    assert {p.parent.name for p in parquet_files(out)} == {"month=2026-01", "month=2026-02"}
    got = pd.read_parquet(out).sort_values(["db", "created", "key"], ignore_index=True)
    # pandas 2 reads Parquet strings with python storage, pandas 3 (like the frames) with pyarrow
    got = got.astype({c: STRING_DTYPE for c, t in got.dtypes.items() if isinstance(t, pd.StringDtype)})
    with open_many(clusters) as many:
        want = many.query_jobs_df().sort_values(["db", "created", "key"], ignore_index=True)
    assert got["month"].astype(str).tolist() == want["created"].dt.strftime("%Y-%m").tolist()
    assert got["db"].astype(str).tolist() == want["db"].astype(str).tolist()
    for col in ("key", "created", "modified", "job_spec.cfg.code", "job_spec.resources.cpus",
                "job_spec.batchable", "source_meta.i"):
        pd.testing.assert_series_equal(got[col], want[col], check_names=False)
    # Categorical status keeps its values; lists stay lists.
    assert got["status"].astype(str).tolist() == want["status"].astype(str).tolist()
    failed = want["errors"].notna()
    assert [list(v) for v in got.loc[failed, "errors"]] == want.loc[failed, "errors"].tolist()


def test_every_file_has_one_schema_even_when_keys_appear_late(tmp_path):
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    with JobmanSqliteDAO(db_uri=str(a)) as dao:
        dao.save_jobs([{"key": f"a{i}", "status": "PENDING",
                        "job_spec": {"n": i, **({"late": "x"} if i >= 5 else {}), "mixed": i}} for i in range(8)])
    with JobmanSqliteDAO(db_uri=str(b)) as dao:
        dao.save_jobs([{"key": "b0", "status": "PENDING", "job_spec": {"n": 0.5, "mixed": "text", "b_only": True}}])
    out = tmp_path / "ds"
    summary = export_parquet([a, b], out, chunksize=2, partition_by=["db"], progress=False)
    files = parquet_files(out)
    assert len(files) == summary["files"] == 5 and summary["rewritten"] > 0
    schemas = [pq.read_schema(f).remove_metadata() for f in files]
    assert all(s.equals(schemas[0]) for s in schemas)
    assert pq.read_schema(out / "_common_metadata").remove_metadata().equals(schemas[0])
    names = schemas[0].names
    assert {"job_spec.late", "job_spec.b_only", "job_spec.n"} <= set(names)
    assert str(schemas[0].field("job_spec.n").type) == "double"  # integers in a, a float in b
    df = pd.read_parquet(out).sort_values("key", ignore_index=True)
    assert df["job_spec.late"].isna().tolist() == [True] * 5 + [False] * 3 + [True]
    assert df["job_spec.late"].dropna().tolist() == ["x"] * 3
    assert df["job_spec.b_only"].dtype == "boolean"
    # Values with no one Parquet type (integers here, text there) are JSON text, everywhere.
    assert [json.loads(v) for v in df["job_spec.mixed"]] == [*range(8), "text"]


def test_schema_stable_means_nothing_rewritten(clusters, tmp_path):
    summary = export_parquet(clusters[0], tmp_path / "one", chunksize=700, partition_by=[], progress=False)
    assert summary["rewritten"] == 0 and summary["files"] == 1
    table = pq.read_table(tmp_path / "one")
    assert table.num_rows == 700 and "db" in table.column_names


def test_duckdb_reads_the_dataset(clusters, tmp_path):
    out = tmp_path / "jobs"
    export_parquet(clusters, out, chunksize=400, progress=False)
    rows = duckdb.sql(f"""
        SELECT db, count(*) AS jobs, count(*) FILTER (WHERE status = 'FAILED') AS failed
        FROM read_parquet('{out}/**/*.parquet', hive_partitioning = true)
        GROUP BY db ORDER BY db""").fetchall()
    with open_many(clusters) as many:
        df = many.query_jobs_df()
    want = [(db, len(g), int((g["status"] == "FAILED").sum())) for db, g in df.groupby("db", observed=True)]
    assert rows == want


def test_lineage_columns(clusters, tmp_path):
    out = tmp_path / "lin"
    export_parquet(clusters[0], out, chunksize=250, lineage=True, progress=False)
    got = pd.read_parquet(out).set_index("key")
    with open_many(clusters[:1]) as many:
        want = many["cluster_a"].lineage().set_index("key")
    got = got.loc[want.index]
    assert got["worker.link"].astype(str).tolist() == want["worker.link"].astype(str).tolist()
    assert got["engine.status"].astype(str).tolist() == want["engine.status"].astype(str).tolist()
    pd.testing.assert_series_equal(got["worker.created"], want["worker.created"])


def test_query_and_empty_result(clusters, tmp_path):
    q = {"filters": [{"field": "status", "op": "=", "arg": "FAILED"}]}
    export_parquet(clusters, tmp_path / "failed", query=q, progress=False)
    assert set(pd.read_parquet(tmp_path / "failed")["status"].astype(str)) == {"FAILED"}
    none = export_parquet(clusters, tmp_path / "none", query={"filters": [
        {"field": "status", "op": "=", "arg": "NOSUCH"}]}, progress=False)
    assert none["jobs"] == 0
    table = pq.read_table(tmp_path / "none")
    assert table.num_rows == 0 and "status" in table.column_names


def test_sources_unchanged_and_out_dir_rules(clusters, tmp_path):
    before = [hashlib.sha256(p.read_bytes()).digest() for p in clusters]
    out = tmp_path / "jobs"
    export_parquet({"x": clusters[0]}, out, progress=False)
    assert [hashlib.sha256(p.read_bytes()).digest() for p in clusters] == before
    assert (out / "db=x").is_dir()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_parquet(clusters[0], out, progress=False)
    export_parquet({"y": clusters[1]}, out, overwrite=True, progress=False)
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["db=y"]
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "README.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="other than Parquet"):
        export_parquet(clusters[0], keep, overwrite=True, progress=False)
    assert (keep / "README.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"query": {"filters": [{"field": "nope", "op": "=", "arg": 1}]}}, QueryError, "nope"),
    ({"partition_by": ["hostname"]}, ValueError, "cannot partition by 'hostname'"),
    ({"partition_by": ["db", "db"]}, ValueError, "distinct"),
    ({"chunksize": 0}, ValueError, "chunksize"),
    ({"query": {"fields": ["key", "status"]}}, ValueError, "created"),
])
def test_bad_arguments_write_nothing(clusters, tmp_path, kwargs, error, message):
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        export_parquet(clusters, out, progress=False, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_reads_as_one_arrow_dataset(clusters, tmp_path):
    out = tmp_path / "jobs"
    export_parquet(clusters, out, chunksize=333, progress=False)
    dataset = pds.dataset(out, format="parquet", partitioning="hive")
    assert dataset.count_rows() == 1200
    assert dataset.count_rows(filter=pds.field("db") == "cluster_b") == 500


def test_cli_writes_a_dataset(clusters, tmp_path):
    from click.testing import CliRunner

    from jobman_nb.cli import main

    out = tmp_path / "ds"
    result = CliRunner().invoke(main, ["export", *map(str, clusters), str(out), "-w", "status=FAILED",
                                       "--partition-by", "db", "--chunksize", "100"])
    assert result.exit_code == 0, result.output
    assert "from 2 database(s)" in result.output
    df = pd.read_parquet(out)
    assert set(df["db"].astype(str)) == {"cluster_a", "cluster_b"} and set(df["status"].astype(str)) == {"FAILED"}
    again = CliRunner().invoke(main, ["export", *map(str, clusters), str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    assert CliRunner().invoke(main, ["export", *map(str, clusters), str(out), "--force"]).exit_code == 0
    two_files = CliRunner().invoke(main, ["export", *map(str, clusters), str(tmp_path / "x.parquet")])
    assert two_files.exit_code == 2 and "dataset directory" in two_files.output


def test_a_column_missing_in_one_file_and_a_list_in_another(tmp_path):
    """A piece where a list column is all missing is written untyped; the export still unifies it."""
    a, b = tmp_path / "lists.sqlite", tmp_path / "none.sqlite"
    with JobmanSqliteDAO(db_uri=str(a)) as dao:
        dao.save_jobs([{"key": "a0", "status": "PENDING", "source_meta": {"tags": ["x", "y"]}}])
    with JobmanSqliteDAO(db_uri=str(b)) as dao:
        dao.save_jobs([{"key": "b0", "status": "PENDING", "source_meta": {"tags": None}}])
    export_parquet([a, b], tmp_path / "out", progress=False)
    got = pd.read_parquet(tmp_path / "out").sort_values("key", ignore_index=True)
    assert list(got["source_meta.tags"][0]) == ["x", "y"]
    assert got["source_meta.tags"][1] is None


@pytest.mark.parametrize("chunksize", [1, 2, 50])
def test_one_file_export_follows_the_dataset_schema_rule(tmp_path, chunksize):
    """A JSON path holding 1, "a" and [1, "b"] in different rows: one file, as the dataset (issue 14 item 11)."""
    from click.testing import CliRunner

    from jobman_nb.cli import main
    from jobman_nb.export import export_file

    path = str(tmp_path / "mixed.sqlite")
    values = [1, "a", [1, "b"], None, 2.5]
    with JobmanSqliteDAO(db_uri=path) as dao:
        dao.save_jobs([{"key": f"k{i}", "status": "PENDING", "job_spec": {"v": v, "n": i}}
                       for i, v in enumerate(values)])
        one = tmp_path / "one.parquet"
        assert export_file(dao, "job", one, chunksize=chunksize, progress=False) == len(values)
    export_parquet(path, tmp_path / "dataset", chunksize=chunksize, partition_by=[], progress=False)
    single = pq.read_table(one)
    dataset = pds.dataset(tmp_path / "dataset", format="parquet").to_table()
    assert single.schema.field("job_spec.v").type == dataset.schema.field("job_spec.v").type
    assert single.column("job_spec.v").to_pylist() == dataset.column("job_spec.v").to_pylist()
    assert [None if t is None else json.loads(t) for t in single.column("job_spec.v").to_pylist()] == values
    assert single.column("job_spec.n").to_pylist() == list(range(len(values)))
    result = CliRunner().invoke(main, ["export", path, str(tmp_path / "cli.parquet"), "--chunksize", str(chunksize)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "cli.parquet").column("job_spec.v").to_pylist() == \
        single.column("job_spec.v").to_pylist()
