"""POST /api/flow_runs/{id}/resume and GET /api/flow_runs/{id}/graph."""

import uuid

from app.models import Deployment
from app.schemas.core import GraphNodeSchema
from tests.conftest import assert_422


def set_state(client, run, state_type, **state):
    return client.post(
        f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": state_type, **state}}
    ).get_json()


def test_resume_a_paused_run(client, flow_run):
    set_state(client, flow_run, "RUNNING")
    paused = set_state(client, flow_run, "PAUSED", state_details={"pause_key": "approval"})
    assert paused["status"] == "ACCEPT"
    response = client.post(f"/api/flow_runs/{flow_run['id']}/resume")
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "ACCEPT" and body["state"]["type"] == "RUNNING"
    run = client.get(f"/api/flow_runs/{flow_run['id']}").get_json()
    assert run["run_count"] == 1, "resuming is not a new attempt"
    assert run["empirical_policy"]["pause_keys"] == ["approval"]
    again = client.post(f"/api/flow_runs/{flow_run['id']}/resume")
    assert again.status_code == 200 and again.get_json()["status"] == "ABORT"


def test_resume_a_rescheduling_pause(client, db, flow):
    deployment = Deployment.create(flow=flow["id"], name="nightly")
    run = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "deployment_id": str(deployment.id)}
    ).get_json()
    set_state(client, run, "RUNNING")
    set_state(client, run, "PAUSED", state_details={"pause_reschedule": True})
    body = client.post(f"/api/flow_runs/{run['id']}/resume").get_json()
    assert body["status"] == "ACCEPT"
    assert (body["state"]["type"], body["state"]["name"]) == ("SCHEDULED", "Resuming")


def test_resume_errors(client):
    assert client.post(f"/api/flow_runs/{uuid.uuid4()}/resume").status_code == 404
    assert_422(client.post("/api/flow_runs/zzz/resume"), "path")


def test_graph_lists_task_runs_with_upstream_dependencies(client, flow_run):
    def task(key, inputs):
        return client.post(
            "/api/task_runs/",
            json={
                "flow_run_id": flow_run["id"],
                "task_key": key,
                "dynamic_key": "0",
                "task_inputs": inputs,
            },
        ).get_json()

    extract = task("extract", {"source": [{"input_type": "parameter", "name": "source"}]})
    clean = task(
        "clean",
        {
            "data": [{"input_type": "task_run", "id": extract["id"]}],
            "limit": [{"input_type": "constant", "type": "int"}],
        },
    )
    load = task(
        "load",
        {
            "rows": [{"input_type": "task_run", "id": clean["id"]}],
            "wait_for": [
                {"input_type": "task_run", "id": extract["id"]},
                {"input_type": "task_run", "id": clean["id"]},
            ],
        },
    )
    nodes = client.get(f"/api/flow_runs/{flow_run['id']}/graph").get_json()
    GraphNodeSchema(many=True).load(nodes)
    by_id = {node["id"]: node for node in nodes}
    assert set(by_id) == {extract["id"], clean["id"], load["id"]}
    assert by_id[extract["id"]]["upstream_dependencies"] == []
    assert by_id[clean["id"]]["upstream_dependencies"] == [
        {"input_type": "task_run", "id": extract["id"]}
    ]
    assert {d["id"] for d in by_id[load["id"]]["upstream_dependencies"]} == {
        extract["id"],
        clean["id"],
    }
    assert by_id[load["id"]]["state"]["type"] == "PENDING"
    assert by_id[load["id"]]["untrackable_result"] is False


def test_graph_errors(client):
    assert client.get(f"/api/flow_runs/{uuid.uuid4()}/graph").status_code == 404
    assert_422(client.get("/api/flow_runs/bad/graph"), "path")
