"""Older clients keep older orchestration (ORION-REFERENCE §3, X-PREFECT-API-VERSION in §4).

Through the API: the header's version reaches the rules. A flow retry proposed by a client
before API 0.8.3 also puts the flow run's failed task runs back into AwaitingRetry; the pause
and resume rules (and the reset of pause bookkeeping) apply only to clients of 0.8.4 or later.
No header means the latest version.
"""

import datetime
import uuid

import pytest

from app.models import Deployment, FlowRun, TaskRun, TaskRunState

OLD_RETRIES = "0.8.2"  # Prefect 2.5-2.6
NO_PAUSES = "0.8.3"  # Prefect 2.7.0-2.7.1
LATEST = [None, "0.8.4"]


def headers(version):
    return {} if version is None else {"X-PREFECT-API-VERSION": version}


def propose(client, kind, run_id, state_type, version=None, name=None, force=False, **details):
    state = {"type": state_type, "state_details": details}
    if name:
        state["name"] = name
    response = client.post(
        f"/api/{kind}/{run_id}/set_state",
        headers=headers(version),
        json={"state": state, "force": force},
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def create(client, path, **body):
    response = client.post(path, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture(autouse=True)
def app_ctx(app, db):
    with app.app_context():
        yield


@pytest.fixture
def new_flow_run(client, flow):
    def make(state_type, **fields):
        return create(
            client, "/api/flow_runs/", flow_id=flow["id"], state={"type": state_type}, **fields
        )

    return make


@pytest.fixture
def retrying_flow(client, new_flow_run):
    """A RUNNING flow run with a retry left, with a FAILED task run that ran twice, a
    COMPLETED one and a CRASHED one. Returns ``(flow run id, {state type: task run id})``."""
    run_id = new_flow_run("RUNNING", empirical_policy={"retries": 1, "retry_delay": 60})
    tasks = {}
    for final in ("FAILED", "COMPLETED", "CRASHED"):
        task_id = create(
            client,
            "/api/task_runs/",
            flow_run_id=run_id,
            task_key=final,
            dynamic_key="0",
            state={"type": "RUNNING"},
        )
        if final == "FAILED":
            propose(client, "task_runs", task_id, "PENDING", force=True)
            propose(client, "task_runs", task_id, "RUNNING")
        assert propose(client, "task_runs", task_id, final)["status"] == "ACCEPT"
        tasks[final] = task_id
    assert TaskRun.get_by_id(tasks["FAILED"]).run_count == 2
    return run_id, tasks


def task_states(task_id):
    return list(
        TaskRunState.select()
        .where(TaskRunState.task_run == task_id)
        .order_by(TaskRunState.timestamp)
    )


class TestFlowRetryResetsFailedTasksForOldClients:
    def test_failed_task_runs_await_the_flow_retry(self, client, retrying_flow):
        run_id, tasks = retrying_flow
        body = propose(client, "flow_runs", run_id, "FAILED", OLD_RETRIES)
        assert (body["status"], body["state"]["name"]) == ("REJECT", "AwaitingRetry")
        retry_at = body["state"]["state_details"]["scheduled_time"]

        task = TaskRun.get_by_id(tasks["FAILED"])
        assert (task.state_type, task.state_name, task.run_count) == (
            "SCHEDULED",
            "AwaitingRetry",
            0,
        )
        newest = task_states(task.id)[-1]
        assert newest.id == task.state_id
        assert newest.state_details["scheduled_time"] == retry_at
        assert newest.state_details["task_run_id"] == str(task.id)
        assert task.next_scheduled_start_time == datetime.datetime.fromisoformat(retry_at)
        assert task.end_time is None
        for other in ("COMPLETED", "CRASHED"):
            assert TaskRun.get_by_id(tasks[other]).state_type == other

    def test_the_reset_task_runs_again_in_the_retried_flow(self, client, retrying_flow):
        run_id, tasks = retrying_flow
        FlowRun.update(empirical_policy={"retries": 1, "retry_delay": 0}).where(
            FlowRun.id == run_id
        ).execute()
        propose(client, "flow_runs", run_id, "FAILED", OLD_RETRIES)
        assert propose(client, "flow_runs", run_id, "RUNNING", OLD_RETRIES)["status"] == "ACCEPT"
        body = propose(client, "task_runs", tasks["FAILED"], "RUNNING", OLD_RETRIES)
        assert (body["status"], body["state"]["name"]) == ("ACCEPT", "Running")
        assert TaskRun.get_by_id(tasks["FAILED"]).run_count == 1

    @pytest.mark.parametrize("version", [NO_PAUSES, *LATEST])
    def test_newer_clients_leave_task_runs_alone(self, client, retrying_flow, version):
        run_id, tasks = retrying_flow
        before = len(task_states(tasks["FAILED"]))
        body = propose(client, "flow_runs", run_id, "FAILED", version)
        assert (body["status"], body["state"]["name"]) == ("REJECT", "AwaitingRetry")
        task = TaskRun.get_by_id(tasks["FAILED"])
        assert (task.state_type, task.run_count) == ("FAILED", 2)
        assert len(task_states(task.id)) == before

    def test_without_retries_left_nothing_is_reset(self, client, retrying_flow):
        run_id, tasks = retrying_flow
        FlowRun.update(empirical_policy={"retries": 0}).where(FlowRun.id == run_id).execute()
        body = propose(client, "flow_runs", run_id, "FAILED", OLD_RETRIES)
        assert (body["status"], body["state"]["type"]) == ("ACCEPT", "FAILED")
        assert TaskRun.get_by_id(tasks["FAILED"]).state_type == "FAILED"


class TestPauseRulesOnlyForClientsThatPause:
    @pytest.mark.parametrize("version", [OLD_RETRIES, NO_PAUSES])
    def test_old_clients_pause_and_resume_without_the_rules(self, client, new_flow_run, version):
        run_id = new_flow_run("PENDING")
        body = propose(client, "flow_runs", run_id, "PAUSED", version, pause_key="k")
        assert (body["status"], body["state"]["type"]) == ("ACCEPT", "PAUSED")
        assert not FlowRun.get_by_id(run_id).empirical_policy.get("pause_keys")
        body = propose(client, "flow_runs", run_id, "PENDING", version)
        assert (body["status"], body["state"]["type"]) == ("ACCEPT", "PENDING")

    @pytest.mark.parametrize("version", LATEST)
    def test_latest_clients_get_the_pause_rules(self, client, new_flow_run, version):
        run_id = new_flow_run("PENDING")
        body = propose(client, "flow_runs", run_id, "PAUSED", version)
        assert (body["status"], body["state"]["type"]) == ("REJECT", "PENDING")
        assert "not currently running" in body["details"]["reason"]
        assert propose(client, "flow_runs", run_id, "RUNNING", version)["status"] == "ACCEPT"
        assert (
            propose(client, "flow_runs", run_id, "PAUSED", version, pause_key="k")["status"]
            == "ACCEPT"
        )
        assert FlowRun.get_by_id(run_id).empirical_policy["pause_keys"] == ["k"]
        body = propose(client, "flow_runs", run_id, "PENDING", version)
        assert (body["status"], body["state"]["type"]) == ("REJECT", "PAUSED")

    def test_old_client_resume_is_a_new_attempt(self, client, new_flow_run):
        # Without the resume rule nothing marks the run as resuming (Prefect 2.7.0 counted it).
        run_id = new_flow_run("RUNNING")
        propose(client, "flow_runs", run_id, "PAUSED", NO_PAUSES)
        propose(client, "flow_runs", run_id, "RUNNING", NO_PAUSES)
        assert FlowRun.get_by_id(run_id).run_count == 2

    @pytest.mark.parametrize("version, keys", [(NO_PAUSES, ["k"]), ("0.8.4", [])])
    def test_manual_retry_resets_pause_keys_only_for_clients_that_pause(
        self, client, flow, new_flow_run, version, keys
    ):
        deployment = str(Deployment.create(flow=flow["id"], name=uuid.uuid4().hex).id)
        run_id = new_flow_run(
            "FAILED", deployment_id=deployment, empirical_policy={"pause_keys": ["k"]}
        )
        body = propose(client, "flow_runs", run_id, "SCHEDULED", version, name="AwaitingRetry")
        assert body["status"] == "ACCEPT"
        assert FlowRun.get_by_id(run_id).empirical_policy["pause_keys"] == keys

    @pytest.mark.parametrize("version, keys", [(NO_PAUSES, ["k"]), ("0.8.4", [])])
    def test_flow_retry_resets_pause_keys_only_for_clients_that_pause(
        self, client, new_flow_run, version, keys
    ):
        run_id = new_flow_run("RUNNING", empirical_policy={"retries": 1, "pause_keys": ["k"]})
        assert propose(client, "flow_runs", run_id, "FAILED", version)["status"] == "REJECT"
        assert FlowRun.get_by_id(run_id).empirical_policy["pause_keys"] == keys


def test_the_version_of_one_request_does_not_leak_into_the_next(app, client, new_flow_run):
    """Requests inside one held app context (as here, see app_ctx) share ``g``; each request
    sets its own version."""
    run_id = new_flow_run("PENDING")
    assert propose(client, "flow_runs", run_id, "RUNNING", NO_PAUSES)["status"] == "ACCEPT"
    assert propose(client, "flow_runs", run_id, "PAUSED", NO_PAUSES)["status"] == "ACCEPT"
    body = propose(client, "flow_runs", run_id, "PENDING")
    assert (body["status"], body["state"]["type"]) == ("REJECT", "PAUSED")
