"""POST /api/{flow_runs,task_runs}/{id}/set_state: results, errors, races, query counts."""

import threading
import uuid

import pytest
from playhouse.test_utils import count_queries

from app.db import database
from app.models import FlowRun, FlowRunState
from app.services import orchestration
from tests.conftest import assert_422


def propose(client, run, state_type, kind="flow_runs", force=False, **state):
    response = client.post(
        f"/api/{kind}/{run['id']}/set_state",
        json={"state": {"type": state_type, **state}, "force": force},
    )
    return response.status_code, response.get_json()


def test_lifecycle_results_and_status_codes(client, flow):
    run = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "SCHEDULED"}}
    ).get_json()
    code, body = propose(client, run, "PENDING")
    assert (code, body["status"], body["details"]) == (201, "ACCEPT", {"type": "accept_details"})
    assert body["state"]["type"] == "PENDING"
    assert (
        body["state"]["state_details"]["scheduled_time"]
        == run["state"]["state_details"]["scheduled_time"]
    )
    code, body = propose(client, run, "PENDING")
    assert (code, body["status"], body["state"]) == (200, "ABORT", None)
    assert "PENDING" in body["details"]["reason"]
    assert propose(client, run, "RUNNING")[0] == 201
    code, body = propose(client, run, "COMPLETED", message="done", data={"value": 1})
    assert (code, body["status"]) == (201, "ACCEPT")
    assert body["state"]["message"] == "done" and body["state"]["data"] == {"value": 1}
    current = client.get(f"/api/flow_runs/{run['id']}").get_json()
    assert current["state"] == body["state"]
    assert current["run_count"] == 1 and current["end_time"] == body["state"]["timestamp"]
    states = client.get(f"/api/flow_run_states/?flow_run_id={run['id']}").get_json()
    assert [s["type"] for s in states] == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]


def test_wait_until_scheduled_time(client, flow):
    run = client.post(
        "/api/flow_runs/",
        json={
            "flow_id": flow["id"],
            "state": {
                "type": "SCHEDULED",
                "state_details": {"scheduled_time": "2099-01-01T00:00:00Z"},
            },
        },
    ).get_json()
    code, body = propose(client, run, "RUNNING")
    assert (code, body["status"], body["state"]) == (200, "WAIT", None)
    assert body["details"]["type"] == "wait_details" and body["details"]["delay_seconds"] > 0


def test_force_skips_rules(client, flow_run):
    assert propose(client, flow_run, "PENDING")[1]["status"] == "ABORT"
    code, body = propose(client, flow_run, "PENDING", force=True)
    assert (code, body["status"]) == (201, "ACCEPT")


def test_retried_transition_is_answered_without_a_second_write(client, flow_run):
    transition = str(uuid.uuid4())
    details = {"transition_id": transition}
    first = propose(client, flow_run, "RUNNING", state_details=details)
    again = propose(client, flow_run, "RUNNING", state_details=details)
    assert first[0] == 201 and again[0] == 200
    assert again[1]["status"] == "ACCEPT" and again[1]["state"]["id"] == first[1]["state"]["id"]
    assert len(client.get(f"/api/flow_run_states/?flow_run_id={flow_run['id']}").get_json()) == 2


def test_task_run_set_state(client, flow_run):
    task = client.post(
        "/api/task_runs/", json={"flow_run_id": flow_run["id"], "task_key": "t", "dynamic_key": "0"}
    ).get_json()
    code, body = propose(client, task, "RUNNING", kind="task_runs")
    assert (code, body["status"]) == (200, "ABORT")
    assert "flow must be running" in body["details"]["reason"]
    propose(client, flow_run, "RUNNING")
    code, body = propose(client, task, "RUNNING", kind="task_runs")
    assert (code, body["status"]) == (201, "ACCEPT")
    assert body["state"]["state_details"]["task_run_id"] == task["id"]


@pytest.mark.parametrize("kind", ["flow_runs", "task_runs"])
def test_errors(client, kind):
    missing = {"id": str(uuid.uuid4())}
    code, body = propose(client, missing, "RUNNING", kind=kind)
    assert code == 404 and missing["id"] in body["detail"]
    assert_422(
        client.post(f"/api/{kind}/nope/set_state", json={"state": {"type": "RUNNING"}}), "path"
    )
    assert_422(client.post(f"/api/{kind}/{missing['id']}/set_state", json={}), "body", "state")
    assert_422(
        client.post(f"/api/{kind}/{missing['id']}/set_state", json={"state": {"type": "DONE"}}),
        "body",
        "state",
        "type",
    )
    assert_422(
        client.post(
            f"/api/{kind}/{missing['id']}/set_state",
            json={"state": {"type": "RUNNING"}, "force": "banana"},
        ),
        "body",
        "force",
    )


def test_two_agents_racing_for_pending_get_one_accept_one_abort(app, client, flow):
    """Each round, two threads propose PENDING for one SCHEDULED run at the same moment."""
    for _ in range(200):
        run = client.post(
            "/api/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "SCHEDULED"}}
        ).get_json()
        barrier = threading.Barrier(2)
        statuses = []

        def agent(run=run, barrier=barrier, statuses=statuses):
            barrier.wait()
            body = (
                app.test_client()
                .post(f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": "PENDING"}})
                .get_json()
            )
            statuses.append(body["status"])
            if body["status"] == "ABORT":
                assert "PENDING" in body["details"]["reason"]

        threads = [threading.Thread(target=agent) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == ["ABORT", "ACCEPT"]
        with database.connection_context():
            states = (
                FlowRunState.select(FlowRunState.type)
                .where(FlowRunState.flow_run == run["id"])
                .order_by(FlowRunState.timestamp)
            )
            assert [s.type for s in states] == ["SCHEDULED", "PENDING"]
            assert FlowRun.get_by_id(run["id"]).state_type == "PENDING"


def test_set_state_runs_a_bounded_number_of_queries(app, client, flow):
    run = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "SCHEDULED"}}
    ).get_json()
    with app.app_context():
        for state_type in ("PENDING", "RUNNING", "COMPLETED"):
            with count_queries() as counter:
                result = orchestration.set_flow_run_state(
                    run["id"],
                    {"type": state_type, "name": state_type.capitalize(), "state_details": {}},
                )
            assert result.written
            # lock + read the run, read its state, insert the state, update the run
            assert counter.count <= 4, counter.count
