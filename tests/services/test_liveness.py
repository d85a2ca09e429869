"""The liveness service: silent RUNNING and CANCELLING runs, stuck PENDING runs, their tasks."""

import datetime
import threading

from app.db import database
from app.models import ConcurrencySlot, FlowRun, FlowRunState, TaskRun, utcnow
from app.services.flow_runs import record_heartbeat
from app.services.liveness import (
    LivenessSettings,
    cancel_abandoned_runs,
    check_liveness,
    crash_silent_runs,
    crash_unstarted_runs,
)

TIMEOUT = datetime.timedelta(seconds=90)
PENDING = datetime.timedelta(seconds=600)


def later(seconds):
    return utcnow() + datetime.timedelta(seconds=seconds)


def run_in(client, flow, *states):
    run = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
    for state in states:
        response = client.post(
            f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": state}}
        )
        assert response.status_code == 201, response.get_json()
    return run["id"]


def heartbeating(run_id):
    """``run_id``, after a heartbeat now: a run the service watches for silence."""
    record_heartbeat(run_id, 300)
    return run_id


def state_of(run_id):
    run = FlowRun.get_by_id(run_id)
    return run.state_type, run.state_name


def task_in(client, flow_run_id, key, state, tags=()):
    body = client.post(
        "/api/task_runs/create_and_set_state",
        json={
            "flow_run_id": flow_run_id,
            "task_key": key,
            "dynamic_key": "0",
            "tags": list(tags),
            "proposed_state": {"type": state},
        },
    ).get_json()
    assert body["orchestration_result"]["status"] == "ACCEPT", body
    return body["task_run"]["id"]


class TestSilentRunningRuns:
    def test_a_run_silent_past_the_timeout_crashes_with_a_message(self, client, flow):
        run_id = heartbeating(run_in(client, flow, "RUNNING"))
        assert crash_silent_runs(later(60), TIMEOUT) == 0
        assert crash_silent_runs(later(91), TIMEOUT) == 1
        assert state_of(run_id) == ("CRASHED", "Crashed")
        state = client.get(f"/api/flow_runs/{run_id}").get_json()["state"]
        assert "no heartbeat for 90 s" in state["message"]
        assert FlowRun.get_by_id(run_id).end_time is not None

    def test_a_recent_heartbeat_keeps_a_run_alive(self, client, flow):
        run_id = run_in(client, flow, "RUNNING")
        record_heartbeat(run_id, 300, now=later(100))
        assert crash_silent_runs(later(150), TIMEOUT) == 0
        assert state_of(run_id) == ("RUNNING", "Running")
        assert crash_silent_runs(later(191), TIMEOUT) == 1

    def test_a_run_that_never_heartbeated_is_left_alone(self, client, flow):
        """A Prefect 2 client never heartbeats: its runs run for hours in silence."""
        run_id = run_in(client, flow, "RUNNING")
        assert crash_silent_runs(later(86400), TIMEOUT) == 0
        assert state_of(run_id) == ("RUNNING", "Running")

    def test_an_old_heartbeat_does_not_hide_a_fresh_start(self, client, flow):
        run_id = run_in(client, flow, "RUNNING")
        record_heartbeat(run_id, 300, now=utcnow() - datetime.timedelta(hours=1))
        assert crash_silent_runs(later(30), TIMEOUT) == 0
        assert state_of(run_id)[0] == "RUNNING"

    def test_other_states_are_left_alone(self, client, flow):
        ids = [
            run_in(client, flow),
            run_in(client, flow, "RUNNING", "COMPLETED"),
            run_in(client, flow, "RUNNING", "PAUSED"),
        ]
        assert crash_silent_runs(later(1000), TIMEOUT) == 0
        assert [state_of(i)[0] for i in ids] == ["PENDING", "COMPLETED", "PAUSED"]

    def test_unfinished_task_runs_crash_and_free_their_slots(self, client, flow):
        client.post("/api/concurrency_limits/", json={"tag": "db", "concurrency_limit": 1})
        run_id = heartbeating(run_in(client, flow, "RUNNING"))
        running = task_in(client, run_id, "a", "RUNNING", tags=["db"])
        pending = task_in(client, run_id, "b", "PENDING")
        done = task_in(client, run_id, "c", "RUNNING")
        client.post(f"/api/task_runs/{done}/set_state", json={"state": {"type": "COMPLETED"}})
        assert ConcurrencySlot.select().count() == 1

        assert crash_silent_runs(later(91), TIMEOUT) == 1

        types = {str(t.id): (t.state_type, t.state_name) for t in TaskRun.select()}
        assert types == {
            running: ("CRASHED", "Crashed"),
            pending: ("CRASHED", "Crashed"),
            done: ("COMPLETED", "Completed"),
        }
        assert ConcurrencySlot.select().count() == 0
        assert client.get("/api/concurrency_limits/tag/db").get_json()["active_slots"] == []

    def test_a_crashed_subflow_crashes_its_parent_task_run(self, client, flow):
        parent = run_in(client, flow, "RUNNING")
        parent_task = task_in(client, parent, "sub", "RUNNING")
        child = client.post(
            "/api/flow_runs/", json={"flow_id": flow["id"], "parent_task_run_id": parent_task}
        ).get_json()["id"]
        client.post(f"/api/flow_runs/{child}/set_state", json={"state": {"type": "RUNNING"}})
        heartbeating(child)
        record_heartbeat(parent, 300, now=later(60))

        assert crash_silent_runs(later(91), TIMEOUT) == 1
        assert state_of(child)[0] == "CRASHED"
        assert TaskRun.get_by_id(parent_task).state_type == "CRASHED"
        assert state_of(parent)[0] == "RUNNING"


class TestStuckPendingRuns:
    def test_a_run_pending_past_the_timeout_crashes(self, client, flow):
        run_id = run_in(client, flow)
        assert crash_unstarted_runs(later(500), PENDING, TIMEOUT) == 0
        assert crash_unstarted_runs(later(601), PENDING, TIMEOUT) == 1
        assert state_of(run_id) == ("CRASHED", "Crashed")
        state = client.get(f"/api/flow_runs/{run_id}").get_json()["state"]
        assert "did not start running within 600 s" in state["message"]

    def test_a_heartbeating_pending_run_waits(self, client, flow):
        run_id = run_in(client, flow)
        record_heartbeat(run_id, 300, now=later(580))
        assert crash_unstarted_runs(later(601), PENDING, TIMEOUT) == 0
        assert crash_unstarted_runs(later(671), PENDING, TIMEOUT) == 1

    def test_scheduled_runs_are_not_pending(self, client, flow):
        run = client.post(
            "/api/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "SCHEDULED"}}
        ).get_json()
        assert crash_unstarted_runs(later(10000), PENDING, TIMEOUT) == 0
        assert state_of(run["id"])[0] == "SCHEDULED"


class TestAbandonedCancellingRuns:
    def test_a_silent_cancelling_run_is_cancelled(self, client, flow):
        run_id = heartbeating(run_in(client, flow, "RUNNING", "CANCELLING"))
        task = task_in(client, run_id, "a", "PENDING")
        assert cancel_abandoned_runs(later(60), TIMEOUT, PENDING) == 0
        assert cancel_abandoned_runs(later(91), TIMEOUT, PENDING) == 1
        assert state_of(run_id) == ("CANCELLED", "Cancelled")
        assert TaskRun.get_by_id(task).state_type == "CANCELLED"
        state = client.get(f"/api/flow_runs/{run_id}").get_json()["state"]
        assert "infrastructure is gone" in state["message"]

    def test_a_heartbeating_cancelling_run_is_left_to_its_agent(self, client, flow):
        run_id = run_in(client, flow, "RUNNING", "CANCELLING")
        record_heartbeat(run_id, 300, now=later(50))
        assert cancel_abandoned_runs(later(100), TIMEOUT, PENDING) == 0
        assert state_of(run_id)[0] == "CANCELLING"

    def test_a_run_that_never_heartbeated_is_given_the_pending_timeout(self, client, flow):
        """A Prefect 2.20 worker looks for cancelling runs every 20 s, then stops the
        process: a run Cancelled before that would go on running."""
        run_id = run_in(client, flow, "RUNNING", "CANCELLING")
        assert cancel_abandoned_runs(later(500), TIMEOUT, PENDING) == 0
        assert state_of(run_id)[0] == "CANCELLING"
        assert cancel_abandoned_runs(later(601), TIMEOUT, PENDING) == 1
        state = client.get(f"/api/flow_runs/{run_id}").get_json()["state"]
        assert state["type"] == "CANCELLED"
        assert "No worker or agent stopped the flow run within 600 s" in state["message"]


class TestSweeps:
    def test_check_liveness_runs_every_sweep_and_is_idempotent(self, client, flow):
        running = heartbeating(run_in(client, flow, "RUNNING"))
        pending = run_in(client, flow)
        cancelling = run_in(client, flow, "RUNNING", "CANCELLING")
        settings = LivenessSettings(heartbeat_timeout=TIMEOUT, pending_timeout=PENDING)
        counts = check_liveness(later(700), settings)
        assert counts == {"crashed_running": 1, "crashed_pending": 1, "cancelled": 1}
        assert [state_of(i)[0] for i in (running, pending, cancelling)] == [
            "CRASHED",
            "CRASHED",
            "CANCELLED",
        ]
        states = FlowRunState.select().count()
        assert check_liveness(later(700), settings) == {
            "crashed_running": 0,
            "crashed_pending": 0,
            "cancelled": 0,
        }
        assert FlowRunState.select().count() == states

    def test_runs_are_swept_in_batches(self, client, flow):
        ids = [heartbeating(run_in(client, flow, "RUNNING")) for _ in range(5)]
        assert crash_silent_runs(later(91), TIMEOUT, batch_size=2) == 5
        assert {state_of(i)[0] for i in ids} == {"CRASHED"}

    def test_concurrent_sweeps_crash_each_run_once(self, app, client, flow):
        ids = [heartbeating(run_in(client, flow, "RUNNING")) for _ in range(12)]
        now = later(91)
        barrier = threading.Barrier(4)
        counts = []

        def sweep():
            with app.app_context(), database.connection_context():
                barrier.wait()
                counts.append(crash_silent_runs(now, TIMEOUT, batch_size=3))

        threads = [threading.Thread(target=sweep) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(counts) == 12
        for run_id in ids:
            crashed = (
                FlowRunState.select()
                .where((FlowRunState.flow_run == run_id) & (FlowRunState.type == "CRASHED"))
                .count()
            )
            assert crashed == 1
