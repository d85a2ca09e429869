"""The scheduler and late-runs services: exact results, idempotency, concurrent runs."""

import datetime
import itertools
import os
import subprocess
import sys
import threading
import uuid

import pytest
from peewee import fn

from app.db import database
from app.models import (
    Deployment,
    DeploymentSchedule,
    Flow,
    FlowRun,
    FlowRunState,
    TaskRun,
    TaskRunState,
)
from app.services import flow_runs
from app.services.scheduler import (
    SchedulerSettings,
    _orchestrate_late,
    idempotency_key,
    mark_late_runs,
    schedule_dates,
    schedule_deployments,
)

UTC = datetime.UTC
# Saturday 28 March 2026, 22:00 UTC: Europe/Berlin springs forward four hours later.
NOW = datetime.datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
SETTINGS = SchedulerSettings(deployment_batch_size=7, insert_batch_size=50)

SCHEDULES = [
    {"interval": 3600, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": "UTC"},
    {"interval": 900, "anchor_date": "2026-01-01T00:05:00+00:00", "timezone": "Europe/Berlin"},
    {"interval": 86400, "anchor_date": "2026-01-01T02:30:00+01:00", "timezone": "Europe/Berlin"},
    {"cron": "0 * * * *", "timezone": "Europe/Berlin", "day_or": True},
    {"cron": "30 2 * * *", "timezone": "Europe/Berlin", "day_or": True},
    {"cron": "*/20 * * * *", "timezone": "UTC", "day_or": True},
    {"rrule": "DTSTART:20260101T023000\nRRULE:FREQ=DAILY", "timezone": "Europe/Berlin"},
    {"rrule": "FREQ=HOURLY;INTERVAL=2", "timezone": "Europe/Berlin"},
    {"rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=3", "timezone": "UTC"},
]


def make_deployments(count, active=True):
    """``count`` deployments of one flow cycling through SCHEDULES, inserted directly (so no
    runs exist yet). Returns them."""
    flow = Flow.create(name=f"flow-{uuid.uuid4().hex[:8]}")
    rows = [
        scheduled_deployment(
            [schedule],
            name=f"d{i}",
            flow=flow.id,
            paused=not active,
            tags=["t"],
            parameters={"i": i},
            work_queue_name="q",
        )
        for i, schedule in zip(range(count), itertools.cycle(SCHEDULES))
    ]
    return rows


def scheduled_deployment(schedules, **fields):
    """A deployment with these schedules (active unless given as ``(schedule, False)``),
    inserted directly; its ``schedules`` attribute lists the active ones."""
    deployment = Deployment.create(**fields)
    deployment.schedules_for_test = []
    for entry in schedules:
        schedule, active = entry if isinstance(entry, tuple) else (entry, True)
        DeploymentSchedule.create(deployment=deployment.id, schedule=schedule, active=active)
        if active:
            deployment.schedules_for_test.append(schedule)
    return deployment


def expected_runs(deployments, now, settings=SETTINGS):
    """{(deployment id, UTC time)} the schedules ask for at ``now``."""
    expected = set()
    for d in deployments:
        for schedule in d.schedules_for_test:
            for date in schedule_dates(
                schedule,
                now,
                now + settings.max_scheduled_time,
                settings.max_runs,
                settings.min_runs,
                settings.min_scheduled_time,
            ):
                expected.add((str(d.id), date.astimezone(UTC)))
    return expected


def actual_runs():
    """[(deployment id, UTC time)] of every auto-scheduled run, duplicates kept."""
    return [
        (str(uuid.UUID(str(d))), t)
        for d, t in FlowRun.select(FlowRun.deployment, FlowRun.expected_start_time)
        .where(FlowRun.auto_scheduled == True)  # noqa: E712
        .tuples()
    ]


def assert_consistent():
    """Every run has exactly one state, which is its current one."""
    counts = (
        FlowRunState.select(FlowRunState.flow_run, fn.COUNT(FlowRunState.id))
        .group_by(FlowRunState.flow_run)
        .tuples()
    )
    assert {n for _, n in counts} <= {1, 2}
    missing = (
        FlowRun.select()
        .where(FlowRun.state_id.not_in(FlowRunState.select(FlowRunState.id)))
        .count()
    )
    assert missing == 0


def test_scheduler_generates_exactly_what_schedules_ask_for(db):
    deployments = make_deployments(100)
    inactive = make_deployments(2, active=False)
    inserted = schedule_deployments(NOW, SETTINGS)
    expected = expected_runs(deployments, NOW)
    runs = actual_runs()
    assert inserted == len(runs) == len(expected)
    assert set(runs) == expected
    assert not {d for d, _ in runs} & {str(d.id) for d in inactive}
    for d in deployments:
        times = sorted(t for dep, t in runs if dep == str(d.id))
        assert len(times) >= 3 and times[-1] >= NOW + datetime.timedelta(hours=1)
    run = FlowRun.get(FlowRun.deployment == deployments[0].id)
    assert run.tags == ["auto-scheduled", "t"] and run.parameters == {"i": 0}
    assert run.work_queue_name == "q" and run.state_name == "Scheduled"
    assert run.idempotency_key == idempotency_key(deployments[0].id, run.expected_start_time)
    assert_consistent()
    # Five more passes at the same time add nothing.
    for _ in range(5):
        assert schedule_deployments(NOW, SETTINGS) == 0
    assert sorted(actual_runs()) == sorted(runs)


def test_the_daily_berlin_deployment_keeps_one_run_per_day_across_the_switch(db):
    flow = Flow.create(name="daily")
    daily = scheduled_deployment(
        [{"cron": "30 2 * * *", "timezone": "Europe/Berlin"}], name="daily", flow=flow.id
    )
    for day in range(6):
        schedule_deployments(NOW + datetime.timedelta(days=day), SETTINGS)
    times = sorted(t for d, t in actual_runs() if d == str(daily.id))
    local_days = [
        t.astimezone(datetime.timezone(datetime.timedelta(hours=2))).date() for t in times
    ]
    assert len(local_days) == len(set(local_days))
    assert datetime.datetime(2026, 3, 29, 1, 30, tzinfo=UTC) in times
    assert all(t.minute == 30 for t in times)


def test_later_passes_top_up_and_a_cancelled_run_is_not_recreated(db):
    deployments = make_deployments(9)
    schedule_deployments(NOW, SETTINGS)
    first = (
        FlowRun.select()
        .where(FlowRun.deployment == deployments[0].id)
        .order_by(FlowRun.expected_start_time)
        .first()
    )
    flow_runs_cancel = {"type": "CANCELLED", "name": "Cancelled", "state_details": {}}
    from app.services.orchestration import set_flow_run_state

    set_flow_run_state(first.id, flow_runs_cancel, force=True)
    schedule_deployments(NOW, SETTINGS)
    keys = [
        r.idempotency_key for r in FlowRun.select().where(FlowRun.deployment == deployments[0].id)
    ]
    assert len(keys) == len(set(keys))
    still_scheduled = (
        FlowRun.select()
        .where(
            (FlowRun.deployment == deployments[0].id)
            & (FlowRun.state_type == "SCHEDULED")
            & (FlowRun.next_scheduled_start_time > NOW)
        )
        .count()
    )
    assert still_scheduled >= 3
    later = NOW + datetime.timedelta(hours=5)
    schedule_deployments(later, SETTINGS)
    wanted = expected_runs(deployments, later)
    assert wanted <= set(actual_runs()) | {(str(deployments[0].id), first.expected_start_time)}
    assert len(actual_runs()) == len(set(actual_runs()))


def _run_in_threads(target, count):
    barrier = threading.Barrier(count)
    errors, results = [], []

    def work():
        try:
            with database.connection_context():
                barrier.wait()
                results.append(target())
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_concurrent_schedulers_never_duplicate(db):
    deployments = make_deployments(60)
    results = _run_in_threads(lambda: schedule_deployments(NOW, SETTINGS), 3)
    expected = expected_runs(deployments, NOW)
    runs = actual_runs()
    assert len(runs) == len(set(runs)) == len(expected) == sum(results)
    assert set(runs) == expected
    assert_consistent()


SCRIPT = """
import datetime, sys
from app.config import load_config
from app.db import database, init_database
from app.services.scheduler import SchedulerSettings, mark_late_runs, schedule_deployments
init_database(load_config({"DATABASE_URL": sys.argv[1]}))
now = datetime.datetime.fromisoformat(sys.argv[2])
with database.connection_context():
    if sys.argv[3] == "schedule":
        print(schedule_deployments(now, SchedulerSettings(deployment_batch_size=7)))
    else:
        print(mark_late_runs(now, batch_size=40))
"""


def _run_processes(app, job, now, count=3):
    env = {**os.environ, "ORION_HOME": app.config["HOME"]}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, app.config["DATABASE_URL"], now.isoformat(), job],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(count)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    return [int(out.strip()) for out, _ in outputs]


def test_scheduler_processes_at_once_never_duplicate(app, db):
    deployments = make_deployments(100)
    for _ in range(5):
        schedule_deployments(NOW, SETTINGS)
    before = actual_runs()
    later = NOW + datetime.timedelta(hours=6)
    results = _run_processes(app, "schedule", later)
    runs = actual_runs()
    assert len(runs) == len(set(runs))
    assert set(runs) == set(before) | expected_runs(deployments, later, SchedulerSettings())
    assert sum(results) == len(runs) - len(before)
    assert_consistent()


def _scheduled_run(flow_id, when, name="Scheduled"):
    run, _ = flow_runs.create_flow_run(
        {
            "flow_id": flow_id,
            "state": {
                "type": "SCHEDULED",
                "name": name,
                "message": None,
                "data": None,
                "state_details": {"scheduled_time": when.isoformat()},
            },
        }
    )
    return run.id


@pytest.fixture
def late_candidates(db):
    """300 overdue Scheduled runs, 300 future ones, 100 overdue AwaitingRetry ones."""
    now = datetime.datetime.now(UTC)
    flow = Flow.create(name="late")
    overdue = [_scheduled_run(flow.id, now - datetime.timedelta(minutes=i + 1)) for i in range(300)]
    future = [_scheduled_run(flow.id, now + datetime.timedelta(minutes=i + 1)) for i in range(300)]
    retrying = [
        _scheduled_run(flow.id, now - datetime.timedelta(minutes=i + 1), "AwaitingRetry")
        for i in range(100)
    ]
    return now, overdue, future, retrying


def _assert_marked_once(overdue, future, retrying):
    late = FlowRun.select().where(FlowRun.state_name == "Late")
    assert {r.id for r in late} == set(overdue)
    late_states = (
        FlowRunState.select(FlowRunState.flow_run, fn.COUNT(FlowRunState.id))
        .where(FlowRunState.name == "Late")
        .group_by(FlowRunState.flow_run)
        .tuples()
    )
    assert sorted(n for _, n in late_states) == [1] * len(overdue)
    for run in late:
        assert run.state_type == "SCHEDULED"
        state = FlowRunState.get(FlowRunState.id == run.state_id)
        assert state.state_details["scheduled_time"] == run.next_scheduled_start_time.isoformat()
        assert run.expected_start_time == run.next_scheduled_start_time
    assert FlowRun.select().where(
        FlowRun.id.in_(future) & (FlowRun.state_name == "Scheduled")
    ).count() == len(future)
    awaiting_retry = FlowRun.state_name == "AwaitingRetry"
    retried = FlowRun.select().where(FlowRun.id.in_(retrying) & awaiting_retry)
    assert retried.count() == len(retrying)


def test_mark_late_runs_marks_only_overdue_scheduled_runs_once(late_candidates):
    now, overdue, future, retrying = late_candidates
    assert mark_late_runs(now, batch_size=70) == 300
    assert mark_late_runs(now, batch_size=70) == 0
    _assert_marked_once(overdue, future, retrying)


def test_mark_late_runs_respects_the_grace_period(late_candidates):
    now, _, _, _ = late_candidates
    # Runs 1..300 minutes overdue; with 30.5 minutes of grace, the 270 oldest are late.
    assert mark_late_runs(now, datetime.timedelta(minutes=30, seconds=30)) == 270


def test_two_late_passes_at_once_mark_each_run_once(late_candidates):
    now, overdue, future, retrying = late_candidates
    results = _run_in_threads(lambda: mark_late_runs(now, batch_size=70), 2)
    assert sum(results) == 300
    _assert_marked_once(overdue, future, retrying)


def test_late_passes_in_processes_mark_each_run_once(app, late_candidates):
    now, overdue, future, retrying = late_candidates
    assert sum(_run_processes(app, "late", now, count=2)) == 300
    _assert_marked_once(overdue, future, retrying)


def _late_twins(flow_id, now):
    """Overdue runs of every kind the late-runs service meets: plain ones, one whose current
    state is stamped in the future (a clock ahead), and a subflow run with its parent task
    run. Returns their ids."""
    runs = [_scheduled_run(flow_id, now - datetime.timedelta(minutes=m)) for m in (1, 2, 3)]
    ahead = now + datetime.timedelta(hours=1)
    FlowRun.update(state_timestamp=ahead).where(FlowRun.id == runs[2]).execute()
    FlowRunState.update(timestamp=ahead).where(FlowRunState.flow_run == runs[2]).execute()
    parent, _ = flow_runs.create_flow_run({"flow_id": flow_id})
    task = TaskRun.create(
        flow_run=parent.id, task_key="sub", dynamic_key=str(uuid.uuid4()), name="sub"
    )
    subflow, _ = flow_runs.create_flow_run(
        {
            "flow_id": flow_id,
            "parent_task_run_id": task.id,
            "state": {
                "type": "SCHEDULED",
                "name": "Scheduled",
                "message": None,
                "data": None,
                "state_details": {
                    "scheduled_time": (now - datetime.timedelta(minutes=4)).isoformat()
                },
            },
        }
    )
    return runs + [subflow.id]


_OWN = {
    "id",
    "name",
    "state_id",
    "created",
    "updated",
    "state_timestamp",
    "flow_run",
    "parent_task_run_id",
}


def _late_snapshot(run_id):
    """What marking a run Late left: its columns and its states' (ids and clock readings
    replaced by how they relate to each other)."""
    run = FlowRun.get_by_id(run_id)
    states = list(
        FlowRunState.select()
        .where(FlowRunState.flow_run == run_id)
        .order_by(FlowRunState.timestamp)
    )
    initial, late = states[-2], states[-1]
    details = dict(late.state_details)
    assert details.pop("flow_run_id") == str(run_id)
    if run.parent_task_run_id is not None:
        assert details.pop("task_run_id") == str(run.parent_task_run_id)
    return {
        "run": {k: v for k, v in run.__data__.items() if k not in _OWN},
        "state": {
            k: v for k, v in late.__data__.items() if k not in _OWN | {"timestamp", "state_details"}
        },
        "details": details,
        "current": run.state_id == late.id and run.state_timestamp == late.timestamp,
        "follows": (
            late.timestamp - initial.timestamp
            if late.timestamp <= initial.timestamp + datetime.timedelta(microseconds=1)
            else "later"
        ),
        "created": late.created == late.updated,
        "states": len(states),
        "parent task": (
            TaskRunState.select()
            .where(
                (TaskRunState.task_run == run.parent_task_run_id) & (TaskRunState.name == "Late")
            )
            .count()
            if run.parent_task_run_id
            else None
        ),
    }


def test_the_batch_late_marking_writes_what_orchestration_writes(db):
    """mark_late_runs (set-based) against forcing each run Late through orchestration: the
    same rows, but for ids and clock readings."""
    now = datetime.datetime.now(UTC)
    flow = Flow.create(name="twins")
    batched = _late_twins(flow.id, now)
    assert mark_late_runs(now, batch_size=2) == len(batched)
    expected = [_late_snapshot(run_id) for run_id in batched]
    FlowRun.delete().execute()
    one_by_one = _late_twins(flow.id, now)
    for run_id in one_by_one:
        run = FlowRun.get_by_id(run_id)
        assert _orchestrate_late(run).written
    assert [_late_snapshot(run_id) for run_id in one_by_one] == expected
    assert expected[2]["follows"] == datetime.timedelta(microseconds=1)
    assert expected[3]["parent task"] == 1


def test_every_active_schedule_is_materialised_and_a_shared_time_is_one_run(db):
    """Two schedules giving the same hours make one run per hour (the idempotency key names
    the deployment and time, not the schedule, as in Prefect 2.20); the 20-minute schedule
    adds its own times; an inactive schedule and a paused deployment add none."""
    flow = Flow.create(name="multi")
    hourly = {"interval": 3600, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": "UTC"}
    also_hourly = {"cron": "0 * * * *", "timezone": "UTC", "day_or": True}
    every_20 = {"cron": "*/20 * * * *", "timezone": "UTC", "day_or": True}
    monthly = {"cron": "0 0 1 * *", "timezone": "UTC", "day_or": True}
    both = scheduled_deployment(
        [hourly, also_hourly, every_20, (monthly, False)], name="both", flow=flow.id
    )
    paused = scheduled_deployment([hourly], name="paused", flow=flow.id, paused=True)

    inserted = schedule_deployments(NOW, SETTINGS)

    runs = actual_runs()
    assert len(runs) == len(set(runs)) == inserted
    assert not [d for d, _ in runs if d == str(paused.id)]
    times = sorted(t for _, t in runs)
    assert set(times) == {t for _, t in expected_runs([both], NOW)}
    assert datetime.datetime(2026, 4, 1, tzinfo=UTC) not in times
    assert {t.minute for t in times} == {0, 20, 40}
    assert_consistent()
    assert schedule_deployments(NOW, SETTINGS) == 0


def test_a_deployment_needs_runs_while_any_active_schedule_is_short_of_them(db):
    """The scheduler picks up a deployment whose only active schedule is the second one, and
    none whose schedules are all inactive."""
    flow = Flow.create(name="second")
    every_20 = {"cron": "*/20 * * * *", "timezone": "UTC", "day_or": True}
    second = scheduled_deployment([(SCHEDULES[0], False), every_20], name="s", flow=flow.id)
    scheduled_deployment([(SCHEDULES[0], False)], name="none", flow=flow.id)
    schedule_deployments(NOW, SETTINGS)
    assert {d for d, _ in actual_runs()} == {str(second.id)}
    assert {t.minute for _, t in actual_runs()} <= {0, 20, 40}
