"""open_many: one query dict over several databases, read-only, with a db column."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from jobman_nb import JobmanSqliteDAO, QueryError
from jobman_nb.demo import make_history
from jobman_nb.multi import open_many


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clusters(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("clusters")
    paths = [d / "cluster_a.sqlite", d / "cluster_b.sqlite"]
    make_history(paths[0], n_jobs=600, seed=1, job_dirs=False)
    make_history(paths[1], n_jobs=400, seed=2, job_dirs=False)
    return paths


def frame_of(path: Path, query=None) -> pd.DataFrame:
    with JobmanSqliteDAO(db_uri=str(path), read_only=True) as dao:
        return dao.query_jobs_df(query)


QUERY = {"filters": [{"field": "status", "op": "IN", "arg": ["FAILED", "COMPLETED"]},
                     {"field": "job_spec.resources.cpus", "op": ">=", "arg": 4}]}


def test_one_frame_with_db_column_equals_each_file(clusters):
    with open_many(clusters) as many:
        assert many.names == ["cluster_a", "cluster_b"]
        df = many.query_jobs_df(QUERY)
    assert list(df.columns[:2]) == ["db", "key"]
    assert list(df["db"].cat.categories) == ["cluster_a", "cluster_b"]
    assert df.index.equals(pd.RangeIndex(len(df)))
    for name, path in zip(["cluster_a", "cluster_b"], clusters, strict=True):
        own = frame_of(path, QUERY)
        part = df[df["db"] == name].drop(columns="db").reset_index(drop=True)
        assert len(part) == len(own) > 0
        assert list(part["key"]) == list(own["key"])
        for col in ("status", "created", "job_spec.cfg.code", "job_spec.resources.cpus"):
            pd.testing.assert_series_equal(part[col], own[col], check_categorical=False)


def test_chunks_are_bounded_and_add_up(clusters):
    with open_many({"east": clusters[0], "west": clusters[1]}) as many:
        counts = many.count_jobs()
        chunks = list(many.iter_jobs_df(chunksize=250, progress=False))
        whole = many.query_jobs_df()
    assert counts.to_dict() == {"east": 600, "west": 400}
    assert [len(c) for c in chunks] == [250, 250, 100, 250, 150]
    assert all(c["db"].nunique() == 1 for c in chunks)
    stacked = pd.concat(chunks, ignore_index=True)
    assert list(stacked["key"]) == list(whole["key"])
    assert list(stacked["db"].astype(str)) == ["east"] * 600 + ["west"] * 400


def test_columns_unified_across_files(tmp_path):
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    with JobmanSqliteDAO(db_uri=str(a)) as dao:
        dao.save_jobs([{"key": "1", "status": "PENDING", "job_spec": {"n": 1, "only_a": "x"}}])
    with JobmanSqliteDAO(db_uri=str(b)) as dao:
        dao.save_jobs([{"key": "1", "status": "ODD", "job_spec": {"n": 2.5}}])
    with open_many([a, b]) as many:
        df = many.query_jobs_df()
    assert df["job_spec.n"].dtype == "float64" and df["job_spec.n"].tolist() == [1.0, 2.5]
    assert df["job_spec.only_a"].tolist()[0] == "x" and pd.isna(df["job_spec.only_a"].iloc[1])
    assert df["status"].dtype == "category" and df["status"].cat.categories[-1] == "ODD"
    assert df["key"].tolist() == ["1", "1"]  # the same key in two files: db tells them apart
    assert df["db"].astype(str).tolist() == ["a", "b"]


def test_files_are_not_changed(clusters):
    before = [digest(p) for p in clusters]
    with open_many(clusters) as many:
        many.query_jobs_df()
        list(many.iter_jobs_df(chunksize=100, progress=False))
        assert all(db.read_only for _, db in many.items())
    assert [digest(p) for p in clusters] == before
    assert sorted(p.name for p in clusters[0].parent.iterdir()) == sorted(p.name for p in clusters)


def test_bad_query_names_the_file(clusters, tmp_path):
    other = tmp_path / "other.sqlite"
    with JobmanSqliteDAO(db_uri=str(other)) as dao:
        dao.save_jobs([{"key": "k", "status": "PENDING"}])
    with sqlite3.connect(other) as conn:  # a column only this cluster's jobman has
        conn.execute("ALTER TABLE jobman_job ADD COLUMN site TEXT")
    conn.close()
    with open_many([other]) as one:
        assert len(one.query_jobs_df({"filters": [{"field": "site", "op": "IS", "arg": None}]})) == 1
    with open_many([other, clusters[0]]) as many:
        with pytest.raises(QueryError, match="cluster_a"):
            many.query_jobs_df({"filters": [{"field": "site", "op": "=", "arg": "x"}]})
        with pytest.raises(QueryError, match="nope"):
            list(many.iter_jobs_df({"filters": [{"field": "nope", "op": "=", "arg": 1}]}))


@pytest.mark.parametrize("args, error, message", [
    (([],), ValueError, "at least one"),
    (("a.sqlite",), TypeError, "open_db"),
    ((["x/a.sqlite", "y/a.sqlite"],), ValueError, "names="),
    ((["a.sqlite", "b.sqlite"], ["one"]), ValueError, "one name per path"),
    ((["a.sqlite", "b.sqlite"], ["n", "n"]), ValueError, "twice"),
])
def test_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        open_many(*args)


def test_missing_file_closes_the_others(clusters, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.sqlite"):
        open_many([clusters[0], tmp_path / "missing.sqlite"])
