"""The hourly flow run rollup: refreshes equal a direct count after every kind of change, and
the dashboard's run history read through it equals the exact count."""

import datetime
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.db import database, is_sqlite
from app.models import FlowRun, FlowRunHourly, FlowRunHourlyStale, RollupRefresh, utcnow
from app.services import bulk, rollups

HOUR = datetime.timedelta(hours=1)
NOW = utcnow().replace(minute=30, second=0, microsecond=0)


def direct_counts():
    """``{(hour, state type): (runs, summed total_run_time, summed RUNNING state epochs)}``
    counted from the runs themselves, in Python."""
    counts = {}
    for run in FlowRun.select():
        if run.expected_start_time is None or run.state_type is None:
            continue
        key = (rollups.floor_hour(run.expected_start_time), run.state_type)
        runs, run_time, since = counts.get(key, (0, 0.0, 0.0))
        running = run.state_timestamp.timestamp() if run.state_type == "RUNNING" else 0.0
        counts[key] = (runs + 1, run_time + run.total_run_time, since + running)
    return counts


def rollup_counts():
    return {
        (row.hour, row.state_type): (row.count_runs, row.sum_run_time, row.sum_running_since)
        for row in FlowRunHourly.select()
    }


def assert_rollup_is_exact():
    direct, rolled = direct_counts(), rollup_counts()
    assert set(direct) == set(rolled)
    for key, (runs, run_time, since) in direct.items():
        assert rolled[key][0] == runs, key
        assert rolled[key][1] == pytest.approx(run_time), key
        assert rolled[key][2] == pytest.approx(since, abs=1e-3), key


def scheduled_run(client, flow, when, **extra):
    body = {
        "flow_id": flow["id"],
        "state": {
            "type": "SCHEDULED",
            "name": "Scheduled",
            "state_details": {"scheduled_time": when.isoformat()},
        },
        **extra,
    }
    response = client.post("/api/flow_runs/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def set_state(client, run_id, state_type):
    response = client.post(
        f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": state_type}, "force": True}
    )
    assert response.status_code == 201, response.get_json()


@pytest.fixture
def runs(client, flow):
    """Twelve scheduled runs half an hour apart from 40 hours ago (seven hours); also one
    run an hour in the 24 hours from 200 hours ago, so that a few changed hours are a small
    share of the rollup (a large share makes a refresh rebuild every hour)."""
    for i in range(24):
        scheduled_run(client, flow, NOW - (200 + i) * HOUR)
    start = NOW - 40 * HOUR
    return [
        scheduled_run(client, flow, start + i * datetime.timedelta(minutes=30)) for i in range(12)
    ]


def test_first_refresh_builds_every_hour(runs):
    assert rollups.last_refresh() is None
    result = rollups.refresh_flow_run_hourly(now=NOW)
    assert result == {"hours": 31, "full": True}
    assert rollups.last_refresh() == NOW
    assert_rollup_is_exact()


def test_refresh_after_transitions_deletes_and_new_runs_equals_a_direct_count(client, flow, runs):
    rollups.refresh_flow_run_hourly()
    FlowRun.update(updated=utcnow() - HOUR).execute()  # made long before this refresh
    set_state(client, runs[0], "RUNNING")
    set_state(client, runs[1], "RUNNING")
    set_state(client, runs[1], "COMPLETED")
    set_state(client, runs[2], "FAILED")
    assert client.delete(f"/api/flow_runs/{runs[11]}").status_code == 204
    bulk.delete([runs[10], runs[9]])
    # A new hour, and a run expected in an hour that had none.
    scheduled_run(client, flow, NOW - 100 * HOUR)
    scheduled_run(client, flow, NOW + 30 * HOUR)
    assert FlowRunHourlyStale.select().count() == 2  # the hours of the three deleted runs

    result = rollups.refresh_flow_run_hourly()
    assert result["full"] is False
    assert_rollup_is_exact()
    assert FlowRunHourlyStale.select().count() == 0
    # Nothing changed since: the next refresh still only looks back its margin.
    assert rollups.refresh_flow_run_hourly()["full"] is False
    assert_rollup_is_exact()


def test_deleting_a_flow_marks_its_runs_hours_stale(client, flow, runs):
    rollups.refresh_flow_run_hourly()
    assert client.delete(f"/api/flows/{flow['id']}").status_code == 204
    rollups.refresh_flow_run_hourly()
    assert rollup_counts() == {}


def test_only_changed_hours_are_recomputed(client, runs):
    rollups.refresh_flow_run_hourly()
    # Runs last written an hour ago lie outside the next refresh's look-back.
    FlowRun.update(updated=utcnow() - HOUR).execute()
    assert rollups.refresh_flow_run_hourly() == {"hours": 0, "full": False}
    set_state(client, runs[4], "CRASHED")
    assert rollups.refresh_flow_run_hourly()["hours"] == 1
    assert_rollup_is_exact()


def window_counts(history):
    counts = {}
    for bucket in history["buckets"]:
        for state_type, runs in bucket["counts"].items():
            counts[state_type] = counts.get(state_type, 0) + runs
    return counts


def exact_counts(start, end):
    counts = {}
    for run in FlowRun.select().where(
        (FlowRun.expected_start_time >= start) & (FlowRun.expected_start_time < end)
    ):
        counts[run.state_type] = counts.get(run.state_type, 0) + 1
    return counts


def test_history_of_a_long_window_reads_the_rollup_and_the_live_hours_exactly(client, flow, runs):
    # Also runs in the live hours (around now) and at the window's partial edges.
    live = [scheduled_run(client, flow, NOW - datetime.timedelta(minutes=m)) for m in (5, 50, 100)]
    start, end = NOW - 3 * 24 * HOUR + datetime.timedelta(minutes=17), NOW + 24 * HOUR
    scheduled_run(client, flow, start + datetime.timedelta(minutes=5))
    scheduled_run(client, flow, end - datetime.timedelta(minutes=5))

    before = rollups.run_history(start, end, 48, now=NOW)
    assert before["as_of"] is None  # never refreshed: counted exactly
    assert window_counts(before) == exact_counts(start, end)

    rollups.refresh_flow_run_hourly()
    history = rollups.run_history(start, end, 48, now=NOW)
    assert history["as_of"] == rollups.last_refresh()
    assert history["interval"] % 3600 == 0
    assert history["buckets"][0]["start"] == start
    assert window_counts(history) == exact_counts(start, end)

    # Changes in the live hours show at once; older hours wait for the next refresh.
    set_state(client, live[0], "RUNNING")
    set_state(client, runs[3], "COMPLETED")
    stale = window_counts(rollups.run_history(start, end, 48, now=NOW))
    assert stale["RUNNING"] == 1
    assert stale["SCHEDULED"] == exact_counts(start, end)["SCHEDULED"] + 1
    assert "COMPLETED" not in stale
    rollups.refresh_flow_run_hourly()
    assert window_counts(rollups.run_history(start, end, 48, now=NOW)) == exact_counts(start, end)


def test_running_runs_count_their_time_up_to_now_through_the_rollup(client, flow):
    old = scheduled_run(client, flow, NOW - 30 * HOUR)
    set_state(client, old, "RUNNING")
    rollups.refresh_flow_run_hourly()
    started = FlowRun.get_by_id(old).state_timestamp
    later = utcnow() + 2 * HOUR
    history = rollups.run_history(NOW - 48 * HOUR, NOW, 48, now=later)
    assert history["as_of"] is not None
    assert sum(b["run_time"] for b in history["buckets"]) == pytest.approx(
        (later - started).total_seconds(), abs=1e-3
    )
    RollupRefresh.delete().execute()  # the exact path agrees
    exact = rollups.run_history(NOW - 48 * HOUR, NOW, 48, now=later)
    assert exact["as_of"] is None
    assert sum(b["run_time"] for b in exact["buckets"]) == pytest.approx(
        (later - started).total_seconds(), abs=1e-3
    )


def test_short_windows_are_always_exact(client, flow, runs):
    rollups.refresh_flow_run_hourly()
    history = rollups.run_history(NOW - 40 * HOUR, NOW - 20 * HOUR, 48, now=NOW)
    assert history["as_of"] is None and history["interval"] < 3600
    assert window_counts(history) == exact_counts(NOW - 40 * HOUR, NOW - 20 * HOUR)


def test_concurrent_refreshes_take_turns_and_agree(runs):
    rollups.refresh_flow_run_hourly()
    FlowRun.update(updated=utcnow()).execute()  # every hour has changed

    def refresh(_):
        with database.connection_context():
            return rollups.refresh_flow_run_hourly()

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(refresh, range(3)))
    assert [r["full"] for r in results] == [True] * 3  # every hour changed: rebuilt
    assert_rollup_is_exact()


def test_a_refresh_that_finds_many_hours_changed_rebuilds_them_all(client, runs):
    rollups.refresh_flow_run_hourly()
    FlowRun.update(updated=utcnow() - HOUR).execute()
    for run_id in runs[:4]:  # 3 of 31 hours: recomputed one by one
        set_state(client, run_id, "RUNNING")
    assert rollups.refresh_flow_run_hourly() == {"hours": 3, "full": False}
    for run_id in runs:  # 7 hours, but changed within the look-back with the 3 before
        set_state(client, run_id, "COMPLETED")
    FlowRun.update(updated=utcnow()).where(
        FlowRun.expected_start_time < NOW - 200 * HOUR
    ).execute()  # and 1 more
    assert rollups.refresh_flow_run_hourly() == {"hours": 31, "full": True}
    assert_rollup_is_exact()


def test_exact_rows_read_only_the_chart_index_on_sqlite(db):
    """The chart's buckets counted from ``flow_run`` read the index of migration 0027 alone on
    SQLite (no row of the table: 8 ms instead of 41 for a day of 1,000,000 runs, bench/README.md);
    PostgreSQL has no such index."""
    now = utcnow()
    day_ago = now - datetime.timedelta(days=1)
    sql, params = rollups._exact_rows([(day_ago, now)], day_ago, 1800.0, now.timestamp()).sql()
    if is_sqlite():
        plan = " ".join(
            row[-1] for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params)
        )
        assert "USING COVERING INDEX flow_run_expected_start_time_state" in plan, plan
    else:
        names = {index.name for index in database.get_indexes("flow_run")}
        assert "flow_run_expected_start_time_state" not in names
