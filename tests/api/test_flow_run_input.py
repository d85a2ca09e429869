"""Flow run input (Prefect 2.20): ``/api/flow_runs/{id}/input`` and the resume of a run paused
for input. The real Prefect 2.20 client: tests/compat/test_pause_input.py."""

import json
import uuid

from app.models import FlowRunInput
from app.schemas.flow_run_input import FlowRunInputSchema
from app.schemas.limits import TEXT_MAX_LENGTH
from tests.conftest import assert_422

KEYSET = {
    "description": "paused-1-description",
    "response": "paused-1-response",
    "schema": "paused-1-schema",
}
SCHEMA = {
    "title": "Approval",
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
    "additionalProperties": False,
}


def put(client, run_id, key, value, **extra):
    return client.post(f"/api/flow_runs/{run_id}/input", json={"key": key, "value": value, **extra})


def inputs(client, run_id, prefix, **body):
    response = client.post(f"/api/flow_runs/{run_id}/input/filter", json={"prefix": prefix, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_create_read_delete(client, flow_run):
    run_id = flow_run["id"]
    created = put(client, run_id, "greeting", '"hello"', sender="prefect.flow-run.x")
    assert created.status_code == 201
    read = client.get(f"/api/flow_runs/{run_id}/input/greeting")
    assert read.status_code == 200 and read.get_data() == b'"hello"'
    assert read.mimetype == "text/plain"
    (stored,) = inputs(client, run_id, "greet")
    FlowRunInputSchema().load(stored)
    assert (stored["flow_run_id"], stored["key"], stored["value"], stored["sender"]) == (
        run_id,
        "greeting",
        '"hello"',
        "prefect.flow-run.x",
    )
    assert client.delete(f"/api/flow_runs/{run_id}/input/greeting").status_code == 204
    assert client.get(f"/api/flow_runs/{run_id}/input/greeting").status_code == 404
    assert client.delete(f"/api/flow_runs/{run_id}/input/greeting").status_code == 404


def test_a_key_is_stored_once_per_run(client, flow, flow_run):
    assert put(client, flow_run["id"], "k", "1").status_code == 201
    again = put(client, flow_run["id"], "k", "2")
    assert again.status_code == 409 and "'k'" in again.get_json()["detail"]
    assert client.get(f"/api/flow_runs/{flow_run['id']}/input/k").get_data() == b"1"
    other = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
    assert put(client, other["id"], "k", "3").status_code == 201


def test_filter_by_prefix_oldest_first_limited_and_excluding(client, flow_run):
    run_id = flow_run["id"]
    for key in ("msg-1", "msg-2", "msg-3", "other", "msgx"):
        assert put(client, run_id, key, "{}").status_code == 201

    def keys(prefix, **body):
        return [row["key"] for row in inputs(client, run_id, prefix, **body)]

    assert keys("msg-") == ["msg-1"], "the default limit is 1"
    assert keys("msg-", limit=10) == ["msg-1", "msg-2", "msg-3"]
    assert keys("msg-", limit=10, exclude_keys=["msg-1", "msg-3"]) == ["msg-2"]
    assert keys("msg", limit=10) == ["msg-1", "msg-2", "msg-3", "msgx"]
    assert keys("", limit=10) == ["msg-1", "msg-2", "msg-3", "other", "msgx"]
    # The prefix is text, never a pattern, and case counts (on both databases).
    assert keys("msg%", limit=10) == [] and keys("MSG", limit=10) == []
    assert keys("msg-_", limit=10) == []
    assert keys("msg-", limit=0) == []


def test_unknown_runs_and_keys_are_404(client, flow_run):
    missing = uuid.uuid4()
    assert put(client, missing, "k", "v").status_code == 404
    assert (
        client.post(f"/api/flow_runs/{missing}/input/filter", json={"prefix": ""}).status_code
        == 404
    )
    assert client.get(f"/api/flow_runs/{flow_run['id']}/input/nope").status_code == 404


def test_bad_bodies_are_422(client, flow_run):
    run_id = flow_run["id"]
    assert_422(put(client, run_id, "Upper", "v"), "body", "key")
    assert_422(put(client, run_id, "under_score", "v"), "body", "key")
    assert_422(put(client, run_id, "", "v"), "body", "key")
    assert_422(put(client, run_id, "k" * 256, "v"), "body", "key")
    assert_422(put(client, run_id, "k", "v" * (TEXT_MAX_LENGTH + 1)), "body", "value")
    assert_422(put(client, run_id, "k", {"not": "text"}), "body", "value")
    assert_422(put(client, run_id, "k", "v", sender="s" * 256), "body", "sender")
    assert_422(client.post(f"/api/flow_runs/{run_id}/input", json={"key": "k"}), "body", "value")
    filter_path = f"/api/flow_runs/{run_id}/input/filter"
    assert_422(client.post(filter_path, json={}), "body", "prefix")
    assert_422(client.post(filter_path, json={"prefix": "", "limit": -1}), "body", "limit")
    assert_422(client.post(filter_path, json={"prefix": "", "limit": 10**9}), "body", "limit")
    assert_422(
        client.post(filter_path, json={"prefix": "", "exclude_keys": ["k"] * 1001}),
        "body",
        "exclude_keys",
    )
    assert_422(client.post("/api/flow_runs/zzz/input", json={"key": "k", "value": "v"}), "path")
    assert FlowRunInput.select().count() == 0


def test_a_runs_inputs_go_with_it(client, flow_run):
    put(client, flow_run["id"], "k", "v")
    assert client.delete(f"/api/flow_runs/{flow_run['id']}").status_code == 204
    assert FlowRunInput.select().count() == 0


def pause_for_input(client, run_id, schema=SCHEMA):
    """The run RUNNING, then PAUSED waiting for input, as Prefect 2.20's pause_flow_run does:
    the keyset in the Paused state, then the input's schema stored under its key."""
    client.post(f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}})
    paused = client.post(
        f"/api/flow_runs/{run_id}/set_state",
        json={
            "state": {
                "type": "PAUSED",
                "name": "Paused",
                "state_details": {"pause_key": "1", "run_input_keyset": KEYSET},
            }
        },
    ).get_json()
    assert paused["status"] == "ACCEPT", paused
    if schema is not None:
        assert put(client, run_id, KEYSET["schema"], json.dumps(schema)).status_code == 201


def resume(client, run_id, run_input):
    response = client.post(f"/api/flow_runs/{run_id}/resume", json={"run_input": run_input})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def state_type(client, run_id):
    return client.get(f"/api/flow_runs/{run_id}").get_json()["state"]["type"]


def test_resume_with_valid_input_stores_it_as_the_pause_response(client, flow_run):
    run_id = flow_run["id"]
    pause_for_input(client, run_id)
    result = resume(client, run_id, {"approved": True, "note": "ok"})
    assert (result["status"], result["state"]["type"]) == ("ACCEPT", "RUNNING")
    stored = client.get(f"/api/flow_runs/{run_id}/input/{KEYSET['response']}")
    assert json.loads(stored.get_data()) == {"approved": True, "note": "ok"}


def test_resume_with_invalid_input_is_rejected_and_the_run_stays_paused(client, flow_run):
    run_id = flow_run["id"]
    pause_for_input(client, run_id)
    for run_input, reason in [
        ({"approved": "yes"}, "'approved'"),
        ({}, "'approved' is a required property"),
        (None, "'approved' is a required property"),
        ({"approved": True, "extra": 1}, "Additional properties"),
        ({"approved": {"__prefect_kind": "json", "value": "{oops"}}, "Error hydrating"),
        ({"approved": {"__prefect_kind": "workspace_variable", "variable_name": "x"}}, "'x'"),
    ]:
        result = resume(client, run_id, run_input)
        assert result["status"] == "REJECT", (run_input, result)
        assert result["state"]["type"] == "PAUSED"
        assert reason in result["details"]["reason"], (run_input, result)
    assert state_type(client, run_id) == "PAUSED"
    assert client.get(f"/api/flow_runs/{run_id}/input/{KEYSET['response']}").status_code == 404


def test_resume_input_is_hydrated(client, flow_run):
    run_id = flow_run["id"]
    pause_for_input(client, run_id)
    client.post("/api/variables/", json={"name": "reviewer", "value": "ada"})
    result = resume(
        client,
        run_id,
        {
            "approved": {"__prefect_kind": "json", "value": "true"},
            "note": {"__prefect_kind": "workspace_variable", "variable_name": "reviewer"},
        },
    )
    assert result["status"] == "ACCEPT", result
    stored = client.get(f"/api/flow_runs/{run_id}/input/{KEYSET['response']}").get_data()
    assert json.loads(stored) == {"approved": True, "note": "ada"}


def test_resume_needs_the_stored_schema(client, flow_run):
    run_id = flow_run["id"]
    pause_for_input(client, run_id, schema=None)
    result = resume(client, run_id, {"approved": True})
    assert (result["status"], result["details"]["reason"]) == (
        "REJECT",
        "Run input schema not found.",
    )
    put(client, run_id, KEYSET["schema"], "{not json")
    assert "not valid JSON" in resume(client, run_id, {"approved": True})["details"]["reason"]
    assert state_type(client, run_id) == "PAUSED"


def test_a_pause_without_input_resumes_whatever_is_sent(client, flow_run):
    run_id = flow_run["id"]
    client.post(f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}})
    client.post(f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": "PAUSED"}})
    assert resume(client, run_id, {"anything": 1})["status"] == "ACCEPT"
    assert FlowRunInput.select().count() == 0


def test_resume_body_is_checked(client, flow_run):
    response = client.post(f"/api/flow_runs/{flow_run['id']}/resume", json={"run_input": [1]})
    assert_422(response, "body", "run_input")
