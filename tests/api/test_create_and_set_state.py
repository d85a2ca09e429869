"""POST /api/task_runs/create_and_set_state: create + propose in one call, rules applied."""

import uuid

import pytest

from app.db import database
from app.models import TaskRun, TaskRunState, statements, utcnow
from app.schemas.core import TaskRunOrchestrationSchema
from tests.conftest import assert_422

URL = "/api/task_runs/create_and_set_state"


@pytest.fixture
def running_flow_run(client, flow_run):
    client.post(f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    return flow_run


def start(client, flow_run, proposed=None, **extra):
    body = {
        "flow_run_id": flow_run["id"],
        "task_key": "etl.load",
        "dynamic_key": "0",
        "proposed_state": proposed or {"type": "RUNNING"},
    }
    body.update(extra)
    return client.post(URL, json=body)


def test_creates_and_accepts_running(client, running_flow_run):
    response = start(client, running_flow_run, tags=["io"], name="load-0")
    assert response.status_code == 201
    body = response.get_json()
    TaskRunOrchestrationSchema().load(body)
    read = client.get(f"/api/task_runs/{body['task_run']['id']}").get_json()
    moving = {"estimated_run_time", "estimated_start_time_delta"}  # computed at read time
    assert {k: v for k, v in body["task_run"].items() if k not in moving} == {
        k: v for k, v in read.items() if k not in moving
    }
    run, result = body["task_run"], body["orchestration_result"]
    assert result["status"] == "ACCEPT" and result["state"]["type"] == "RUNNING"
    assert run["state_type"] == "RUNNING" and run["state"]["id"] == result["state"]["id"]
    assert (run["name"], run["tags"], run["run_count"]) == ("load-0", ["io"], 1)
    assert run["start_time"] is not None and run["expected_start_time"] is not None
    # The proposal is the run's first state.
    states = client.get(f"/api/task_run_states/?task_run_id={run['id']}").get_json()
    assert [s["type"] for s in states] == ["RUNNING"]


def test_a_retried_call_returns_the_same_run_and_writes_nothing(client, running_flow_run):
    proposed = {"type": "RUNNING", "state_details": {"transition_id": str(uuid.uuid4())}}
    first = start(client, running_flow_run, proposed)
    again = start(client, running_flow_run, proposed)
    assert (first.status_code, again.status_code) == (201, 200)
    one, two = first.get_json(), again.get_json()
    assert one["task_run"]["id"] == two["task_run"]["id"]
    assert two["orchestration_result"]["status"] == "ACCEPT"
    assert two["orchestration_result"]["state"]["id"] == one["orchestration_result"]["state"]["id"]
    assert TaskRun.select().count() == 1 and TaskRunState.select().count() == 1


def test_aborts_when_the_flow_run_is_not_running(client, flow_run):
    body = start(client, flow_run).get_json()
    assert body["orchestration_result"]["status"] == "ABORT"
    assert body["orchestration_result"]["state"] is None
    assert body["task_run"]["state_type"] == "PENDING"


def test_a_pending_first_state_then_running(client, running_flow_run):
    body = start(client, running_flow_run, {"type": "PENDING", "name": "NotReady"}).get_json()
    assert body["orchestration_result"]["status"] == "ACCEPT"
    assert body["task_run"]["state_name"] == "NotReady"
    # The same run again: the proposal follows its current state (Pending -> Pending aborts).
    again = start(client, running_flow_run, {"type": "PENDING"})
    assert again.status_code == 200
    assert again.get_json()["orchestration_result"]["status"] == "ABORT"
    body = start(client, running_flow_run, {"type": "RUNNING"}).get_json()
    assert body["orchestration_result"]["status"] == "ACCEPT"
    assert body["task_run"]["run_count"] == 1


def test_a_given_initial_state_comes_first(client, running_flow_run):
    body = start(
        client, running_flow_run, {"type": "RUNNING"}, state={"type": "SCHEDULED"}
    ).get_json()
    assert body["orchestration_result"]["status"] == "ACCEPT"
    states = client.get(f"/api/task_run_states/?task_run_id={body['task_run']['id']}")
    assert [s["type"] for s in states.get_json()] == ["SCHEDULED", "RUNNING"]


def test_a_new_run_is_left_pending_when_nothing_is_written(client, running_flow_run):
    client.post("/api/concurrency_limits/", json={"tag": "off", "concurrency_limit": 0})
    body = start(client, running_flow_run, tags=["off"]).get_json()
    assert body["orchestration_result"]["status"] == "ABORT"
    assert body["orchestration_result"]["state"] is None
    assert (body["task_run"]["state_type"], body["task_run"]["state_name"]) == (
        "PENDING",
        "Pending",
    )
    TaskRunOrchestrationSchema().load(body)
    assert body["task_run"]["state"]["state_details"]["task_run_id"] == body["task_run"]["id"]


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
    client.post(
        f"/api/task_runs/{run_id}/set_state",
        json={"state": {"type": "COMPLETED", "data": {"answer": 42}, "state_details": details}},
    )
    second = start(
        client, running_flow_run, {"type": "RUNNING", "state_details": details}, dynamic_key="1"
    ).get_json()
    result = second["orchestration_result"]
    assert result["status"] == "REJECT"
    assert (result["state"]["type"], result["state"]["name"]) == ("COMPLETED", "Cached")
    assert result["state"]["data"] == {"answer": 42}
    assert second["task_run"]["state_name"] == "Cached"


@pytest.mark.parametrize(
    "extra, loc",
    [
        ({"proposed_state": None}, ("body", "proposed_state")),
        ({"proposed_state": {"type": "nope"}}, ("body", "proposed_state")),
        ({"task_key": None}, ("body", "task_key")),
    ],
)
def test_bad_bodies_are_422(client, running_flow_run, extra, loc):
    body = {
        "flow_run_id": running_flow_run["id"],
        "task_key": "k",
        "dynamic_key": "0",
        "proposed_state": {"type": "RUNNING"},
    }
    body.update(extra)
    if body["proposed_state"] is None:
        del body["proposed_state"]
    assert_422(client.post(URL, json=body), *loc)


def test_missing_flow_run_is_404(client):
    response = client.post(
        URL,
        json={
            "flow_run_id": str(uuid.uuid4()),
            "task_key": "k",
            "dynamic_key": "0",
            "proposed_state": {"type": "RUNNING"},
        },
    )
    assert response.status_code == 404 and "Flow run" in response.get_json()["detail"]


def test_documented_in_openapi(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/task_runs/create_and_set_state"]["post"]
    assert "Orion extension" in operation["summary"]
    assert "transition_id" in operation["description"]
    assert {"200", "201", "422"} <= set(operation["responses"])


def test_a_run_found_without_state_is_left_pending(client, running_flow_run):
    """A run without a state (written before creation and first proposal shared one
    transaction) that a call finds again and cannot orchestrate is given Pending."""
    client.post("/api/concurrency_limits/", json={"tag": "off", "concurrency_limit": 0})
    now = utcnow()
    run = TaskRun(
        id=uuid.uuid4(),
        flow_run=running_flow_run["id"],
        task_key="etl.load",
        dynamic_key="0",
        tags=["off"],
        name="etl.load-0",
        created=now,
        updated=now,
    )
    with database.atomic():
        statements.insert_row(TaskRun, run.__data__)
    response = start(client, running_flow_run, tags=["off"])
    assert response.status_code == 200
    body = response.get_json()
    assert body["orchestration_result"]["status"] == "ABORT"
    assert body["task_run"]["id"] == str(run.id) and body["task_run"]["state_type"] == "PENDING"


def test_a_failing_rule_answers_abort_and_leaves_the_run_pending(
    client, running_flow_run, monkeypatch
):
    """The transaction that created the run is rolled back with the failed proposal; the run
    is then created in Pending on its own, so a retried call finds it."""
    from app.orchestration import core_policy

    def broken(self, initial_state, proposed_state, context):
        raise RuntimeError("rule exploded")

    monkeypatch.setattr(
        core_policy.PreventRunningTasksFromStoppedFlows, "before_transition", broken
    )
    response = start(client, running_flow_run)
    assert response.status_code == 201
    body = response.get_json()
    assert body["orchestration_result"]["status"] == "ABORT"
    assert "rule exploded" in body["orchestration_result"]["details"]["reason"]
    assert body["task_run"]["state_type"] == "PENDING"
    with database.connection_context():
        states = TaskRunState.select().where(TaskRunState.task_run == body["task_run"]["id"])
        assert [s.type for s in states] == ["PENDING"]
    monkeypatch.undo()
    retried = start(client, running_flow_run)
    assert retried.status_code == 200
    assert retried.get_json()["orchestration_result"]["status"] == "ACCEPT"


def test_a_lost_database_is_503_not_abort(client, running_flow_run, monkeypatch):
    """A database that cannot be reached during a proposal is the server's trouble, not the
    run's: 503 (clients retry it) rather than ABORT (which ends the client's run). Found by
    tests/chaos: during a PostgreSQL restart, proposals were answered ABORT."""
    from peewee import InterfaceError, OperationalError

    from app.services import orchestration

    flow_run = client.post("/api/flow_runs/", json={"flow_id": running_flow_run["flow_id"]})
    flow_run = flow_run.get_json()
    for error in (OperationalError("server closed the connection"), InterfaceError("gone")):

        def lost(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(orchestration, "_orchestrate", lost)
        assert start(client, running_flow_run).status_code == 503
        response = client.post(
            f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "PENDING"}}
        )
        assert response.status_code == 503, response.get_json()
        monkeypatch.undo()
    # Nothing was written: the run is still where it was, and proposals work again.
    after = client.get(f"/api/flow_runs/{flow_run['id']}").get_json()
    assert after["state_id"] == flow_run["state_id"]
    response = client.post(
        f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert response.get_json()["status"] == "ACCEPT"
