"""Retention (app/services/retention.py, ``orion db prune``): finished flow runs older than the
cutoff go with everything they own; runs that are not finished stay whatever their age; the
dashboard's rollup equals a direct count after a prune; batches are sized by time; bad
settings and bad durations are refused."""

import datetime
import threading

import psycopg2
import pytest
from click.testing import CliRunner

from app import create_app
from app.config import load_config
from app.db import database
from app.exceptions import BadSetting
from app.models import (
    Artifact,
    FlowRun,
    FlowRunInput,
    FlowRunState,
    Log,
    TaskRun,
    TaskRunState,
    utcnow,
)
from app.services import periodic, retention, rollups
from orion_cli import orion_cli
from tests.services.test_rollups import assert_rollup_is_exact
from tests.test_migrations import restored_binding

DAY = datetime.timedelta(days=1)
NOW = utcnow()
CUTOFF = NOW - 30 * DAY


def make_run(client, flow, states, *, tasks=2, parent_task_run_id=None):
    """A flow run moved through ``states`` (forced), with ``tasks`` completed task runs, a
    log and an artifact of the flow run and of each task run, and a flow run input;
    returns its id."""
    body = {"flow_id": flow["id"], "state": {"type": "PENDING"}}
    if parent_task_run_id:
        body["parent_task_run_id"] = parent_task_run_id
    run_id = client.post("/api/flow_runs/", json=body).get_json()["id"]
    for state_type in states:
        response = client.post(
            f"/api/flow_runs/{run_id}/set_state",
            json={"state": {"type": state_type}, "force": True},
        )
        assert response.status_code == 201, response.get_json()
    for i in range(tasks):
        task = client.post(
            "/api/task_runs/",
            json={
                "flow_run_id": run_id,
                "task_key": "t",
                "dynamic_key": str(i),
                "state": {"type": "COMPLETED"},
            },
        ).get_json()
        add_log_and_artifact(client, run_id, task["id"])
    add_log_and_artifact(client, run_id, None)
    response = client.post(f"/api/flow_runs/{run_id}/input", json={"key": "k", "value": "1"})
    assert response.status_code == 201, response.get_json()
    return run_id


def add_log_and_artifact(client, run_id, task_run_id):
    log = {
        "name": "x",
        "level": 20,
        "message": "m",
        "timestamp": NOW.isoformat(),
        "flow_run_id": run_id,
        "task_run_id": task_run_id,
    }
    assert client.post("/api/logs/", json=[log]).status_code == 201
    artifact = {"type": "markdown", "data": "d", "flow_run_id": run_id, "task_run_id": task_run_id}
    assert client.post("/api/artifacts/", json=artifact).status_code == 201


def age(run_id, days):
    """Move the run's times ``days`` back, as if it had run then."""
    shift = days * DAY
    run = FlowRun.get_by_id(run_id)
    for column in ("state_timestamp", "expected_start_time", "start_time", "end_time"):
        value = getattr(run, column)
        if value is not None:
            setattr(run, column, value - shift)
    run.save()
    for state in FlowRunState.select().where(FlowRunState.flow_run == run_id):
        state.timestamp -= shift
        state.save()


def children(run_id):
    """Rows the run owns, per table (as retention counts them)."""
    tasks = TaskRun.select(TaskRun.id).where(TaskRun.flow_run == run_id)
    return {
        "flow_runs": FlowRun.select().where(FlowRun.id == run_id).count(),
        "flow_run_states": FlowRunState.select().where(FlowRunState.flow_run == run_id).count(),
        "task_runs": tasks.count(),
        "task_run_states": TaskRunState.select().where(TaskRunState.task_run.in_(tasks)).count(),
        "logs": Log.select().where(Log.flow_run_id == run_id).count(),
        "artifacts": Artifact.select().where(Artifact.flow_run_id == run_id).count(),
        "flow_run_inputs": FlowRunInput.select().where(FlowRunInput.flow_run == run_id).count(),
    }


def total(run_ids):
    sums = dict.fromkeys(retention.COUNTED, 0)
    for run_id in run_ids:
        for table, count in children(run_id).items():
            sums[table] += count
    return sums


@pytest.fixture
def runs(client, flow):
    """Old finished runs (to go), old unfinished and recent finished runs (to stay), a
    recent subflow of an old run's task, and an artifact of no run."""
    old = {
        "completed": make_run(client, flow, ["RUNNING", "COMPLETED"]),
        "failed": make_run(client, flow, ["RUNNING", "FAILED"]),
        "crashed": make_run(client, flow, ["RUNNING", "CRASHED"], tasks=0),
        # Cancelled before it started: no end_time, its age is its state's.
        "cancelled": make_run(client, flow, ["SCHEDULED", "CANCELLED"], tasks=1),
    }
    kept = {
        "running": make_run(client, flow, ["RUNNING"]),
        "scheduled": make_run(client, flow, ["SCHEDULED"], tasks=0),
        "pending": make_run(client, flow, [], tasks=0),
        "paused": make_run(client, flow, ["RUNNING", "PAUSED"], tasks=1),
        "cancelling": make_run(client, flow, ["RUNNING", "CANCELLING"], tasks=1),
        "recent": make_run(client, flow, ["RUNNING", "COMPLETED"]),
        "just_younger": make_run(client, flow, ["RUNNING", "FAILED"], tasks=0),
    }
    for run_id in old.values():
        age(run_id, 40)
    for name in ("running", "scheduled", "pending", "paused", "cancelling"):
        age(kept[name], 400)
    age(kept["recent"], 5)
    age(kept["just_younger"], 29.9)
    parent_task = TaskRun.get(TaskRun.flow_run == old["completed"]).id
    kept["subflow"] = make_run(client, flow, ["RUNNING"], tasks=1, parent_task_run_id=parent_task)
    loose = client.post("/api/artifacts/", json={"type": "result", "data": 1}).get_json()
    return old, kept, loose["id"]


def test_old_finished_runs_go_with_what_they_own_and_the_others_stay(runs):
    old, kept, loose = runs
    going, staying = total(old.values()), {name: children(i) for name, i in kept.items()}
    assert going["task_runs"] == 5 and going["logs"] == 9 and going["artifacts"] == 9
    assert going["flow_run_inputs"] == 4

    assert retention.count_prunable(CUTOFF) == going
    result = retention.prune(CUTOFF)

    assert result.deleted == going
    assert total(old.values()) == dict.fromkeys(retention.COUNTED, 0)
    assert {name: children(i) for name, i in kept.items()} == staying
    assert FlowRun.get_by_id(kept["subflow"]).parent_task_run_id is None
    assert Artifact.get_or_none(Artifact.id == loose) is not None
    assert retention.count_prunable(CUTOFF) == dict.fromkeys(retention.COUNTED, 0)
    assert retention.prune(CUTOFF).deleted == dict.fromkeys(retention.COUNTED, 0)


def test_a_keys_latest_after_a_prune_is_its_newest_left(client, runs):
    """A key whose newer versions belonged to pruned runs falls back to a kept run's
    version; a key with every version pruned is no longer listed."""
    old, kept, _ = runs

    def keyed(run_id, key):
        body = {"key": key, "type": "markdown", "data": key, "flow_run_id": run_id}
        return client.post("/api/artifacts/", json=body).get_json()["id"]

    kept_version = keyed(kept["recent"], "daily")
    keyed(old["completed"], "daily")
    keyed(old["failed"], "weekly")
    retention.prune(CUTOFF)
    latest = client.post("/api/artifacts/latest/filter", json={}).get_json()
    assert [(a["key"], a["latest_id"]) for a in latest] == [("daily", kept_version)]
    assert client.get("/api/artifacts/weekly/latest").status_code == 404


def test_the_rollup_equals_a_direct_count_after_a_prune(runs):
    rollups.refresh_flow_run_hourly()
    window = (NOW - 500 * DAY, NOW + DAY)
    before = rollups.run_history(*window, buckets=20)["buckets"]
    assert sum(sum(b["counts"].values()) for b in before) == FlowRun.select().count()

    retention.prune(CUTOFF)

    assert_rollup_is_exact()
    history = rollups.run_history(*window, buckets=20)
    assert history["as_of"] is not None  # figures outside the live hours came from the rollup
    counts = {}
    for bucket in history["buckets"]:
        for state_type, runs_in_state in bucket["counts"].items():
            counts[state_type] = counts.get(state_type, 0) + runs_in_state
    direct = {}
    for (state_type,) in FlowRun.select(FlowRun.state_type).tuples():
        direct[state_type] = direct.get(state_type, 0) + 1
    assert counts == direct


def old_bare_runs(flow, count):
    """``count`` Completed runs, 40 days old, without children, inserted directly."""
    when = NOW - 40 * DAY
    FlowRun.insert_many(
        [
            {
                "flow": flow["id"],
                "name": f"old-{i}",
                "state_type": "COMPLETED",
                "state_name": "Completed",
                "state_timestamp": when + i * datetime.timedelta(seconds=1),
                "expected_start_time": when,
            }
            for i in range(count)
        ]
    ).execute()


def test_batches_grow_toward_the_target_time_and_shrink_away_from_it(client, flow):
    old_bare_runs(flow, 40)
    generous = retention.prune(CUTOFF, target_seconds=60)
    # From the first batch, each at most MAX_GROWTH times the last; the last takes the rest.
    assert [size for size, _ in generous.batches] == [10, 15, 15]
    assert all(seconds > 0 for _, seconds in generous.batches)

    old_bare_runs(flow, 15)
    strict = retention.prune(CUTOFF, target_seconds=1e-9)
    assert [size for size, _ in strict.batches] == [10, 1, 1, 1, 1, 1]
    assert strict.summary()["batches"] == 6 and FlowRun.select().count() == 0


@pytest.mark.parametrize(
    "size, held, expected",
    [
        (1, 0.010, 2),  # a batch of one grows
        (10, 0.010, 15),  # by at most half
        (10, 0.050, 10),  # on target
        (10, 0.200, 2),  # four times too long: a quarter
        (3, 2.0, 1),
        (4000, 0.001, retention.MAX_BATCH),
    ],
)
def test_the_next_batch_is_sized_to_the_target_time(size, held, expected):
    assert retention.next_batch_size(size, held, 0.05) == expected


def test_a_pass_stops_at_its_time_budget_and_the_next_goes_on(client, flow):
    old_bare_runs(flow, 3)
    stopped = retention.prune(CUTOFF, budget_seconds=0)
    assert stopped.more and stopped.deleted["flow_runs"] == 0
    assert not retention.prune(CUTOFF, budget_seconds=60).more
    assert FlowRun.select().count() == 0


def test_a_run_locked_by_another_transaction_is_skipped_not_waited_for(app, backend, client, flow):
    if backend != "postgres":
        pytest.skip("row locks are PostgreSQL's; SQLite's transaction locks the database")
    old_bare_runs(flow, 3)
    locked_id = FlowRun.select(FlowRun.id).order_by(FlowRun.state_timestamp).scalar()
    other = psycopg2.connect(app.config["DATABASE_URL"])
    try:
        with other.cursor() as cur:
            cur.execute("SELECT 1 FROM flow_run WHERE id = %s FOR UPDATE", (str(locked_id),))
            finished = threading.Event()
            result = []
            worker = threading.Thread(
                target=lambda: (result.append(prune_in_thread()), finished.set())
            )
            worker.start()
            assert finished.wait(30), "the prune waited for the locked run"
        other.rollback()
    finally:
        other.close()
    worker.join()
    assert result[0].deleted["flow_runs"] == 2
    assert [run.id for run in FlowRun.select()] == [locked_id]


def prune_in_thread():
    with database.connection_context():
        return retention.prune(CUTOFF)


def test_the_service_deletes_nothing_unless_retention_days_is_set(app, client, flow):
    old_bare_runs(flow, 2)
    service = next(s for s in periodic.SERVICES if s.name == "retention")
    assert service.function(dict(app.config))["flow_runs"] == 0
    summary = service.function({**app.config, "RETENTION_DAYS": 30})
    assert summary["flow_runs"] == 2 and summary["batches"] == 1 and not summary["more"]
    assert summary["longest_batch_ms"] > 0
    assert FlowRun.select().count() == 0


@pytest.mark.parametrize("value", [0, -3, 1.5, "30", "", True, [30]])
def test_bad_retention_days_are_refused_with_the_setting_named(value):
    with pytest.raises(BadSetting, match="ORION_RETENTION_DAYS"):
        load_config({"RETENTION_DAYS": value})


@pytest.mark.parametrize("value", [0, -1, "5", None, False])
def test_bad_pass_seconds_are_refused_with_the_setting_named(value):
    with pytest.raises(BadSetting, match="ORION_RETENTION_PASS_SECONDS"):
        load_config({"RETENTION_PASS_SECONDS": value})


def test_good_retention_settings_are_taken():
    assert load_config({"RETENTION_DAYS": 1, "RETENTION_PASS_SECONDS": 0.5})["RETENTION_DAYS"] == 1
    assert load_config()["RETENTION_DAYS"] is None


@pytest.mark.parametrize("value", ["0", "-7", "2.5", "thirty"])
def test_the_server_refuses_to_start_with_a_bad_retention_setting(monkeypatch, tmp_path, value):
    monkeypatch.setenv("ORION_RETENTION_DAYS", value)
    monkeypatch.setenv("ORION_HOME", str(tmp_path))
    with pytest.raises(BadSetting, match="ORION_RETENTION_DAYS"):
        create_app()
    result = CliRunner().invoke(orion_cli, ["start"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ORION_RETENTION_DAYS="), result.output


@pytest.fixture
def orion(app, monkeypatch):
    """Run ``orion <args>`` in-process on the test app's database; returns the click Result."""
    monkeypatch.setenv("ORION_DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("ORION_HOME", app.config["HOME"])
    with restored_binding():
        yield lambda *args: CliRunner().invoke(orion_cli, list(args))


def test_prune_command_dry_run_counts_then_deletes(runs, orion):
    old, kept, _ = runs
    going = total(old.values())

    dry = orion("db", "prune", "--older-than", "30d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("Would delete (finished before ")
    assert "  flow runs: 4\n" in dry.output and "  task runs: 5\n" in dry.output
    assert "  logs: 9\n" in dry.output and "  artifacts: 9\n" in dry.output
    assert "  flow run inputs: 4\n" in dry.output
    assert total(old.values()) == going

    done = orion("db", "prune", "--older-than", "720h")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Deleted (finished before ")
    for table, count in going.items():
        assert f"  {table.replace('_', ' ')}: {count}\n" in done.output
    assert "in 1 batch, holding its locks " in done.output
    assert total(old.values()) == dict.fromkeys(retention.COUNTED, 0)
    assert FlowRun.select().count() == len(kept)


@pytest.mark.parametrize("duration", ["30", "0d", "-5d", "1.5d", "30 days", "2w", ""])
def test_prune_command_refuses_a_bad_duration(orion, duration):
    result = orion("db", "prune", "--older-than", duration)
    assert result.exit_code == 2
    assert "is not a duration" in result.output and "such as 30d or 12h" in result.output
