"""Timelines from hand-made event sequences with known answers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from jobman_nb import timeline as tl

T0 = 1_767_571_200.0  # 2026-01-05 00:00 UTC
S = pd.Timedelta(seconds=1)

# Job a: waits 100 s, claimed 60 s, runs 300 s, fails, is requeued after 40 s, waits 200 s more,
# claimed 100 s, runs 200 s, completes. Job b: waits 340 s, then is claimed (still, at the end).
# Job c: was RUNNING when history was enabled (a snapshot), then finished.
EVENTS = [
    ("a", None, "PENDING", 0), ("b", None, "PENDING", 60), ("a", "PENDING", "CLAIMED", 100),
    ("a", "CLAIMED", "RUNNING", 160), ("c", "RUNNING", "RUNNING", 200), ("b", "PENDING", "CLAIMED", 400),
    ("a", "RUNNING", "FAILED", 460), ("a", "FAILED", "PENDING", 500), ("c", "RUNNING", "COMPLETED", 600),
    ("a", "PENDING", "CLAIMED", 700), ("a", "CLAIMED", "RUNNING", 800), ("a", "RUNNING", "COMPLETED", 1000),
]


def _events(rows=EVENTS):
    return tl.events_frame({"key": i + 1, "job_key": k, "old_status": o, "new_status": n, "time": T0 + t}
                           for i, (k, o, n, t) in enumerate(rows))


def _at(seconds):
    return pd.Timestamp(T0 + seconds, unit="s", tz="UTC")


def test_events_frame_dtypes():
    df = _events()
    assert list(df.columns) == ["key", "job_key", "old_status", "new_status", "time"]
    assert str(df["key"].dtype) == "Int64"
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert df["new_status"].dtype == "category" and "UNKNOWN" in df["new_status"].cat.categories
    assert df.loc[0, "time"] == _at(0) and pd.isna(df.loc[0, "old_status"])
    empty = tl.events_frame([])
    assert list(empty.columns) == list(tl.EVENT_COLUMNS) and len(empty) == 0


def test_state_intervals():
    iv = tl.state_intervals(_events())
    a = iv[iv["job_key"] == "a"]
    assert list(a["status"].astype(str)) == ["PENDING", "CLAIMED", "RUNNING", "FAILED", "PENDING", "CLAIMED",
                                             "RUNNING", "COMPLETED"]
    assert list(a["duration"].iloc[:-1] / S) == [100, 60, 300, 40, 200, 100, 200]
    assert pd.isna(a["duration"].iloc[-1])  # open: no until
    assert list(a["visit"]) == [1, 1, 1, 1, 2, 2, 2, 1]
    c = iv[iv["job_key"] == "c"]
    assert list(c["known_start"]) == [False, True]
    until = tl.state_intervals(_events(), until=_at(1100))
    assert until.loc[until["job_key"] == "b", "duration"].tolist() == [340 * S, 700 * S]


def test_time_in_states():
    t = tl.time_in_states(_events(), until=_at(1000))
    assert list(t.columns) == ["CLAIMED", "COMPLETED", "FAILED", "PENDING", "RUNNING"]
    assert t.loc["a", "PENDING"] == 300 * S and t.loc["a", "RUNNING"] == 500 * S
    assert t.loc["a", "CLAIMED"] == 160 * S and t.loc["a", "FAILED"] == 40 * S
    assert t.loc["b", "CLAIMED"] == 600 * S
    assert pd.isna(t.loc["b", "RUNNING"])  # never ran
    assert pd.isna(tl.time_in_states(_events()).loc["b", "CLAIMED"])  # still there, no until


def test_job_timelines():
    jt = tl.job_timelines(_events()).set_index("job_key")
    assert list(jt.index) == ["a", "b", "c"]  # by first event
    assert list(jt["status"].astype(str)) == ["COMPLETED", "CLAIMED", "COMPLETED"]
    assert jt.loc["a", "wait"] == 300 * S and jt.loc["a", "run"] == 500 * S and jt.loc["a", "claimed"] == 160 * S
    assert jt.loc["a", "retries"] == 1 and jt.loc["a", "attempts"] == 2 and jt.loc["a", "events"] == 8
    assert jt.loc["b", "wait"] == 340 * S and pd.isna(jt.loc["b", "run"])
    assert jt.loc["c", "run"] == 400 * S and jt.loc["c", "attempts"] == 0  # the snapshot is no start
    assert list(jt["known_start"]) == [True, True, False]
    assert jt.loc["a", "first"] == _at(0) and jt.loc["a", "last"] == _at(1000)


def test_deleted_job_has_no_status_and_stops_counting():
    jt = tl.job_timelines(_events([("x", None, "PENDING", 0), ("x", "PENDING", None, 50)]))
    assert pd.isna(jt.loc[0, "status"]) and jt.loc[0, "wait"] == 50 * S
    assert tl.states_over_time(_events([("x", None, "PENDING", 0), ("x", "PENDING", None, 50)]))[
        "PENDING"].tolist() == [1, 0]


def test_events_without_key_are_ordered_by_time():
    df = _events().drop(columns="key").iloc[::-1]
    assert tl.job_timelines(df).set_index("job_key").loc["a", "run"] == 500 * S


def test_states_over_time():
    st = tl.states_over_time(_events())
    assert list(st.columns) == ["CLAIMED", "COMPLETED", "FAILED", "PENDING", "RUNNING"]
    assert st.loc[_at(60)].to_dict() == {"CLAIMED": 0, "COMPLETED": 0, "FAILED": 0, "PENDING": 2, "RUNNING": 0}
    assert st.loc[_at(200), "RUNNING"] == 2  # a, and c from its snapshot
    assert st.iloc[-1].to_dict() == {"CLAIMED": 1, "COMPLETED": 2, "FAILED": 0, "PENDING": 0, "RUNNING": 0}
    assert (st.sum(axis=1).diff().dropna() >= 0).all()  # jobs only arrive here
    active = tl.states_over_time(_events(), statuses=["PENDING", "RUNNING", "EXECUTED"])
    assert list(active.columns) == ["PENDING", "RUNNING", "EXECUTED"] and active["EXECUTED"].eq(0).all()
    grid = tl.states_over_time(_events(), freq="5min")
    assert list(grid.index) == [_at(0), _at(300), _at(600), _at(900), _at(1200)]
    # At 300 s: a and c run, b still waits.
    assert grid.loc[_at(300)].to_dict() == {"CLAIMED": 0, "COMPLETED": 0, "FAILED": 0, "PENDING": 1,
                                            "RUNNING": 2}


def test_with_jobs_and_wait_run_stats_by_group(make_dao):
    dao = make_dao()
    dao.save_jobs([{"key": "a", "status": "COMPLETED", "job_spec": {"cfg": {"code": "orca"}}},
                   {"key": "b", "status": "CLAIMED", "job_spec": {"cfg": {"code": "xtb"}}},
                   {"key": "c", "status": "COMPLETED", "job_spec": {"cfg": {"code": "orca"}}}])
    joined = tl.with_jobs(tl.job_timelines(_events()), dao.query_jobs_df())
    assert list(joined["job_spec.cfg.code"]) == ["orca", "xtb", "orca"]
    stats = tl.wait_run_stats(joined, "job_spec.cfg.code", q=(0.5,))
    assert stats.loc[("orca", "run"), "count"] == 2
    assert stats.loc[("orca", "run"), "p50"] == 450 * S  # median of 500 s and 400 s
    assert stats.loc[("xtb", "wait"), "mean"] == 340 * S
    assert ("xtb", "run") not in stats.index  # b never ran
    overall = tl.wait_run_stats(joined)
    assert overall.loc["wait", "count"] == 2 and list(overall.columns) == ["count", "mean", "p50", "p90", "p99"]
    with pytest.raises(KeyError, match="nope"):
        tl.wait_run_stats(joined, "nope")
    with pytest.raises(ValueError, match="quantiles"):
        tl.wait_run_stats(joined, q=(2,))


def test_missing_columns_are_named():
    with pytest.raises(KeyError, match="job_key"):
        tl.job_timelines(pd.DataFrame({"time": []}))


def test_timelines_from_a_dao_with_history(make_dao):
    dao = make_dao(history=True)
    dao.save_jobs([{"key": "j", "status": "PENDING", "modified": T0}], auto_update=False)
    for status, t in (("CLAIMED", 30), ("RUNNING", 90), ("COMPLETED", 390)):
        dao.update_jobs({"status": status, "modified": T0 + t}, {"filters": [{"field": "key", "op": "=",
                                                                               "arg": "j"}]})
    jt = tl.job_timelines(dao.query_events_df())
    assert (jt.loc[0, "wait"], jt.loc[0, "claimed"], jt.loc[0, "run"]) == (30 * S, 60 * S, 300 * S)


def test_plots_draw():
    ev = _events()
    ax = tl.plot_timeline(ev, until=_at(1100))
    # 12 stays, of which the final COMPLETED of a and c are marks, not bars.
    assert len(ax.patches) == 10 and [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert len(ax.collections[0].get_offsets()) == 2
    ax = tl.plot_timeline(ev, ["b"])
    assert len(ax.patches) == 2
    with pytest.raises(KeyError, match="zz"):
        tl.plot_timeline(ev, ["zz"])
    ax = tl.plot_states_over_time(ev)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["RUNNING", "PENDING", "FAILED", "COMPLETED",
                                                                  "CLAIMED"]
    ax = tl.plot_wait_run(tl.job_timelines(ev), "status", measure="run")
    assert "run time" in ax.get_ylabel()
    with pytest.raises(ValueError, match="measure"):
        tl.plot_wait_run(tl.job_timelines(ev), measure="x")
    plt.close("all")
