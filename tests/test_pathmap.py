"""Path maps: recorded job directories to local ones, longest prefix first, whole components only."""

from __future__ import annotations

import pytest

import jobman_nb
from jobman_nb import JobmanError, PathMap, PathMapError
from jobman_nb.pathmap import as_path_map, parse_path_map


def test_longest_prefix_wins_whatever_the_order_given():
    pm = PathMap({"/scratch": "/mnt/scratch", "/scratch/alice": "/home/me/alice"})
    assert pm("/scratch/alice/jobs/1") == "/home/me/alice/jobs/1"
    assert pm("/scratch/bob/jobs/1") == "/mnt/scratch/bob/jobs/1"
    assert [p for p, _ in pm.rules] == ["/scratch/alice", "/scratch"]


@pytest.mark.parametrize("path, expected", [
    ("/scratch/alice", "/mnt/a"),
    ("/scratch/alice/", "/mnt/a"),
    ("/scratch/alice/x/y", "/mnt/a/x/y"),
    ("/scratch/alicia/x", "/scratch/alicia/x"),   # not a component boundary: unchanged
    ("/scratch/al", "/scratch/al"),
    ("relative/scratch/alice/x", "relative/scratch/alice/x"),
])
def test_prefixes_match_whole_components_only(path, expected):
    assert PathMap({"/scratch/alice/": "/mnt/a/"})(path) == expected


def test_dotdot_that_climbs_out_of_the_target_is_refused_with_a_note():
    pm = PathMap({"/scratch/alice": "/mnt/a"})
    m = pm.map("/scratch/alice/jobs/../../bob/secret")
    assert m.local is None and m.root == "/mnt/a" and "climbs out" in m.note
    # '..' that stays inside is fine
    assert pm("/scratch/alice/jobs/../other") == "/mnt/a/other"


def test_root_prefix_maps_everything():
    assert PathMap({"/": "/mnt/remote"})("/scratch/x") == "/mnt/remote/scratch/x"


@pytest.mark.parametrize("bad", [{"": "/x"}, {"/x": ""}, {"/x": None}, [("/x",)], "/a=/b"])
def test_malformed_maps_raise_a_pathmaperror(bad):
    with pytest.raises(PathMapError) as info:
        as_path_map(bad)
    assert isinstance(info.value, JobmanError) and isinstance(info.value, ValueError)


def test_one_prefix_with_two_targets_is_an_error():
    with pytest.raises(PathMapError, match="two targets"):
        PathMap([("/a", "/x"), ("/a/", "/y")])


def test_parse_cli_items():
    assert parse_path_map(["/scratch/alice=/mnt/a", "/p=/q=r"]).rules == [("/scratch/alice", "/mnt/a"), ("/p", "/q=r")]
    with pytest.raises(PathMapError, match="OLD=NEW"):
        parse_path_map(["/scratch/alice"])


def test_open_db_keeps_the_path_map_for_its_helpers(fixture_path):
    with jobman_nb.open_db(fixture_path, path_map={"/scratch/alice": "/mnt/a"}) as db:
        assert db.path_map("/scratch/alice/jobs/1") == "/mnt/a/jobs/1"
    with jobman_nb.open_db(fixture_path) as db:
        assert not db.path_map and db.path_map("/scratch/alice/x") == "/scratch/alice/x"
    with pytest.raises(PathMapError):
        jobman_nb.open_db(fixture_path, path_map={"": "/x"})


@pytest.mark.parametrize("rest", ["x", "a/b/c", ".hidden/x", "a/./b", "a//b", "a/b/", "a/.../b", "a/..b/c", "a/b..",
                                  "a/../b", "./a", "a/.", "a/b/.."])
@pytest.mark.parametrize("target", ["/mnt/a", "/"])
def test_the_quick_join_gives_what_normpath_gives(rest, target):
    import posixpath

    pm = PathMap({"/scratch/alice": target})
    assert pm(f"/scratch/alice/{rest}") == posixpath.normpath(posixpath.join(target, rest))
    assert pm.resolve(f"/scratch/alice/{rest}") == (pm(f"/scratch/alice/{rest}"), target, None)
