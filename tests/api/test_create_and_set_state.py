"""POST /api/task_runs/create_and_set_state: create + propose in one call, rules applied."""
import uuid

import pytest

from app.models import TaskRun, TaskRunState
from tests.conftest import assert_422

URL = "/api/task_runs/create_and_set_state"


@pytest.fixture
def running_flow_run(client, flow_run):
    client.post(f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    return flow_run


def start(client, flow_run, proposed=None, **extra):
    body = {"flow_run_id": flow_run["id"], "task_key": "etl.load", "dynamic_key": "0",
            "proposed_state": proposed or {"type": "RUNNING"}}
    body.update(extra)
    return client.post(URL, json=body)


def test_creates_and_accepts_running(client, running_flow_run):
    response = start(client, running_flow_run, tags=["io"], name="load-0")
    assert response.status_code == 201
    body = response.get_json()
    run, result = body["task_run"], body["orchestration_result"]
    assert result["status"] == "ACCEPT" and result["state"]["type"] == "RUNNING"
    assert run["state_type"] == "RUNNING" and run["state"]["id"] == result["state"]["id"]
    assert (run["name"], run["tags"], run["run_count"]) == ("load-0", ["io"], 1)
    assert run["start_time"] is not None
    # Pending first (as POST /task_runs/ writes it), then Running.
    states = client.get(f"/api/task_run_states/?task_run_id={run['id']}").get_json()
    assert [s["type"] for s in states] == ["PENDING", "RUNNING"]


def test_a_retried_call_returns_the_same_run_and_writes_nothing(client, running_flow_run):
    proposed = {"type": "RUNNING", "state_details": {"transition_id": str(uuid.uuid4())}}
    first = start(client, running_flow_run, proposed)
    again = start(client, running_flow_run, proposed)
    assert (first.status_code, again.status_code) == (201, 200)
    one, two = first.get_json(), again.get_json()
    assert one["task_run"]["id"] == two["task_run"]["id"]
    assert two["orchestration_result"]["status"] == "ACCEPT"
    assert two["orchestration_result"]["state"]["id"] == one["orchestration_result"]["state"]["id"]
    assert TaskRun.select().count() == 1 and TaskRunState.select().count() == 2


def test_aborts_when_the_flow_run_is_not_running(client, flow_run):
    body = start(client, flow_run).get_json()
    assert body["orchestration_result"]["status"] == "ABORT"
    assert body["orchestration_result"]["state"] is None
    assert body["task_run"]["state_type"] == "PENDING"


def test_initial_state_and_pending_proposal_follow_the_rules(client, running_flow_run):
    # Pending -> Pending is a redundant transition, as with two separate calls.
    body = start(client, running_flow_run, {"type": "PENDING"}).get_json()
    assert body["orchestration_result"]["status"] == "ABORT"
    body = start(client, running_flow_run, {"type": "RUNNING"}, dynamic_key="1",
                 state={"type": "SCHEDULED"}).get_json()
    assert body["orchestration_result"]["status"] == "ACCEPT"
    assert body["task_run"]["run_count"] == 1


def test_waits_while_a_tag_limit_is_full_and_aborts_at_zero(client, running_flow_run):
    client.post("/api/concurrency_limits/", json={"tag": "db", "concurrency_limit": 1})
    client.post("/api/concurrency_limits/", json={"tag": "off", "concurrency_limit": 0})
    first = start(client, running_flow_run, tags=["db"]).get_json()
    assert first["orchestration_result"]["status"] == "ACCEPT"
    second = start(client, running_flow_run, tags=["db"], dynamic_key="1").get_json()
    result = second["orchestration_result"]
    assert result["status"] == "WAIT" and result["details"]["delay_seconds"] > 0
    assert second["task_run"]["state_type"] == "PENDING"
    limit = client.get("/api/concurrency_limits/tag/db").get_json()
    assert limit["active_slots"] == [first["task_run"]["id"]]
    third = start(client, running_flow_run, tags=["off"], dynamic_key="2").get_json()
    assert third["orchestration_result"]["status"] == "ABORT"


def test_a_cache_hit_is_rejected_into_cached(client, running_flow_run):
    details = {"cache_key": "k1", "cache_expiration": "2999-01-01T00:00:00Z"}
    first = start(client, running_flow_run, {"type": "RUNNING", "state_details": details})
    run_id = first.get_json()["task_run"]["id"]
    client.post(f"/api/task_runs/{run_id}/set_state", json={"state": {
        "type": "COMPLETED", "data": {"answer": 42}, "state_details": details}})
    second = start(client, running_flow_run, {"type": "RUNNING", "state_details": details},
                   dynamic_key="1").get_json()
    result = second["orchestration_result"]
    assert result["status"] == "REJECT"
    assert (result["state"]["type"], result["state"]["name"]) == ("COMPLETED", "Cached")
    assert result["state"]["data"] == {"answer": 42}
    assert second["task_run"]["state_name"] == "Cached"


@pytest.mark.parametrize("extra, loc", [
    ({"proposed_state": None}, ("body", "proposed_state")),
    ({"proposed_state": {"type": "nope"}}, ("body", "proposed_state")),
    ({"task_key": None}, ("body", "task_key")),
    ({"surprise": 1}, ("body", "surprise")),
])
def test_bad_bodies_are_422(client, running_flow_run, extra, loc):
    body = {"flow_run_id": running_flow_run["id"], "task_key": "k", "dynamic_key": "0",
            "proposed_state": {"type": "RUNNING"}}
    body.update(extra)
    if body["proposed_state"] is None:
        del body["proposed_state"]
    assert_422(client.post(URL, json=body), *loc)


def test_missing_flow_run_is_404(client):
    response = client.post(URL, json={"flow_run_id": str(uuid.uuid4()), "task_key": "k",
                                      "dynamic_key": "0", "proposed_state": {"type": "RUNNING"}})
    assert response.status_code == 404 and "Flow run" in response.get_json()["detail"]


def test_documented_in_openapi(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/task_runs/create_and_set_state"]["post"]
    assert "Orion extension" in operation["summary"]
    assert "transition_id" in operation["description"]
    assert {"200", "201", "422"} <= set(operation["responses"])
