"""/api/flow_runs: create with states, idempotency, read, patch, delete, filter, history."""

import datetime
import uuid

import pytest

from tests.conftest import assert_422

UTC = datetime.UTC


def iso(dt):
    return dt.isoformat()


def test_create_defaults_to_pending(client, flow):
    response = client.post("/api/flow_runs/", json={"flow_id": flow["id"]})
    assert response.status_code == 201
    run = response.get_json()
    assert run["flow_id"] == flow["id"]
    assert run["name"] and "-" in run["name"]
    assert run["state_type"] == "PENDING" and run["state_name"] == "Pending"
    assert run["state"]["type"] == "PENDING"
    assert run["state"]["id"] == run["state_id"]
    assert run["state"]["state_details"]["flow_run_id"] == run["id"]
    assert run["expected_start_time"] == run["state"]["timestamp"]
    assert run["run_count"] == 0 and run["total_run_time"] == 0.0
    assert run["empirical_policy"]["retries"] is None
    assert run["auto_scheduled"] is False
    assert run["parameters"] == {} and run["tags"] == []


def test_create_with_a_scheduled_state(client, flow):
    when = datetime.datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    payload = {
        "flow_id": flow["id"],
        "name": "nightly",
        "parameters": {"x": 1},
        "tags": ["prod"],
        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": iso(when)}},
    }
    run = client.post("/api/flow_runs/", json=payload).get_json()
    assert run["name"] == "nightly"
    assert run["state"]["name"] == "Scheduled"
    assert run["expected_start_time"] == iso(when)
    assert run["next_scheduled_start_time"] == iso(when)
    assert run["estimated_start_time_delta"] == 0.0


def test_create_scheduled_without_time_is_scheduled_now(client, flow):
    run = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "SCHEDULED"}}
    ).get_json()
    assert run["state"]["state_details"]["scheduled_time"] is not None
    assert run["next_scheduled_start_time"] == run["state"]["state_details"]["scheduled_time"]


def test_create_running_sets_start_and_count(client, flow):
    run = client.post(
        "/api/flow_runs/",
        json={"flow_id": flow["id"], "state": {"type": "RUNNING", "message": "go"}},
    ).get_json()
    assert run["start_time"] == run["state"]["timestamp"]
    assert run["run_count"] == 1
    assert run["state"]["message"] == "go"
    assert run["estimated_run_time"] >= 0.0


def test_create_ignores_client_state_id_and_timestamp(client, flow):
    sent_id = str(uuid.uuid4())
    run = client.post(
        "/api/flow_runs/",
        json={
            "flow_id": flow["id"],
            "state": {"type": "PENDING", "id": sent_id, "timestamp": "2000-01-01T00:00:00Z"},
        },
    ).get_json()
    assert run["state"]["id"] != sent_id
    assert not run["state"]["timestamp"].startswith("2000")


def test_create_is_idempotent_on_flow_and_key(client, flow):
    first = client.post("/api/flow_runs/", json={"flow_id": flow["id"], "idempotency_key": "k"})
    again = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "idempotency_key": "k", "name": "different"}
    )
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["name"] == first.get_json()["name"]
    other_flow = client.post("/api/flows/", json={"name": "other"}).get_json()
    third = client.post(
        "/api/flow_runs/", json={"flow_id": other_flow["id"], "idempotency_key": "k"}
    )
    assert third.status_code == 201


def test_create_without_key_always_creates(client, flow):
    ids = {
        client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()["id"]
        for _ in range(3)
    }
    assert len(ids) == 3


@pytest.mark.parametrize(
    "payload, loc",
    [
        ({}, ("body", "flow_id")),
        ({"flow_id": "zzz"}, ("body", "flow_id")),
        ({"flow_id": "FLOW", "state": {"type": "EXPLODED"}}, ("body", "state", "type")),
        ({"flow_id": "FLOW", "state": {}}, ("body", "state", "type")),
        ({"flow_id": "FLOW", "parameters": []}, ("body", "parameters")),
        ({"flow_id": "FLOW", "empirical_policy": {"retries": -1}}, ("body", "empirical_policy")),
        (
            {
                "flow_id": "FLOW",
                "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "soon"}},
            },
            ("body", "state", "state_details"),
        ),
    ],
)
def test_create_rejects_bad_bodies(client, flow, payload, loc):
    payload = {k: (flow["id"] if v == "FLOW" else v) for k, v in payload.items()}
    assert_422(client.post("/api/flow_runs/", json=payload), *loc)


def test_create_for_missing_flow_or_deployment_is_404(client, flow):
    response = client.post("/api/flow_runs/", json={"flow_id": str(uuid.uuid4())})
    assert response.status_code == 404 and "Flow" in response.get_json()["detail"]
    response = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "deployment_id": str(uuid.uuid4())}
    )
    assert response.status_code == 404 and "Deployment" in response.get_json()["detail"]


def test_read_and_404(client, flow_run):
    assert client.get(f"/api/flow_runs/{flow_run['id']}").get_json()["id"] == flow_run["id"]
    assert client.get(f"/api/flow_runs/{uuid.uuid4()}").status_code == 404
    assert_422(client.get("/api/flow_runs/123"), "path")


def test_estimated_lateness_of_an_overdue_scheduled_run(client, flow):
    past = datetime.datetime.now(UTC) - datetime.timedelta(minutes=5)
    run = client.post(
        "/api/flow_runs/",
        json={
            "flow_id": flow["id"],
            "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": iso(past)}},
        },
    ).get_json()
    assert 290 < run["estimated_start_time_delta"] < 400


def test_patch(client, flow_run):
    changes = {
        "name": "renamed",
        "tags": ["t"],
        "parameters": {"a": 1},
        "flow_version": "2",
        "infrastructure_pid": "1234",
        "infrastructure_exit_code": 137,
        "empirical_policy": {"retries": 2, "retry_delay": 5},
    }
    assert client.patch(f"/api/flow_runs/{flow_run['id']}", json=changes).status_code == 204
    run = client.get(f"/api/flow_runs/{flow_run['id']}").get_json()
    assert run["name"] == "renamed" and run["tags"] == ["t"] and run["parameters"] == {"a": 1}
    assert run["flow_version"] == "2" and run["infrastructure_pid"] == "1234"
    assert run["infrastructure_exit_code"] == 137
    assert run["empirical_policy"]["retries"] == 2 and run["empirical_policy"]["retry_delay"] == 5


def test_patch_errors(client, flow_run):
    assert client.patch(f"/api/flow_runs/{uuid.uuid4()}", json={"name": "x"}).status_code == 404
    assert_422(
        client.patch(f"/api/flow_runs/{flow_run['id']}", json={"state_type": "RUNNING"}),
        "body",
        "state_type",
    )
    assert_422(client.patch(f"/api/flow_runs/{flow_run['id']}", json={"tags": [1]}), "body", "tags")


def test_the_exit_code_is_a_32_bit_integer_or_null(client, flow_run):
    """``infrastructure_exit_code`` (Orion extension): null until an agent records it; any
    32-bit integer (negative: a signal, or infrastructure lost); anything else a 422 naming
    it, the stored code unchanged."""
    path = f"/api/flow_runs/{flow_run['id']}"
    assert client.get(path).get_json()["infrastructure_exit_code"] is None
    for code in (0, -9, 2**31 - 1, -(2**31)):
        assert client.patch(path, json={"infrastructure_exit_code": code}).status_code == 204
        assert client.get(path).get_json()["infrastructure_exit_code"] == code
    for bad in (2**31, -(2**31) - 1, 1.5, "1", True, [1]):
        response = client.patch(path, json={"infrastructure_exit_code": bad})
        assert_422(response, "body", "infrastructure_exit_code")
    assert client.get(path).get_json()["infrastructure_exit_code"] == -(2**31)
    assert client.patch(path, json={"infrastructure_exit_code": None}).status_code == 204
    assert client.get(path).get_json()["infrastructure_exit_code"] is None


def test_delete_removes_states_and_task_runs_but_detaches_subflows(client, flow, flow_run):
    task = client.post(
        "/api/task_runs/",
        json={"flow_run_id": flow_run["id"], "task_key": "sub", "dynamic_key": "0"},
    ).get_json()
    child = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "parent_task_run_id": task["id"]}
    ).get_json()
    assert child["parent_task_run_id"] == task["id"]
    assert client.delete(f"/api/flow_runs/{flow_run['id']}").status_code == 204
    assert client.get(f"/api/task_runs/{task['id']}").status_code == 404
    assert client.get(f"/api/flow_run_states/{flow_run['state_id']}").status_code == 404
    assert client.get(f"/api/flow_runs/{child['id']}").get_json()["parent_task_run_id"] is None
    assert client.delete(f"/api/flow_runs/{flow_run['id']}").status_code == 404


def test_filter_count_and_paging(client, flow):
    base = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    for i in range(5):
        client.post(
            "/api/flow_runs/",
            json={
                "flow_id": flow["id"],
                "name": f"run-{i}",
                "state": {
                    "type": "SCHEDULED",
                    "state_details": {"scheduled_time": iso(base + datetime.timedelta(hours=i))},
                },
            },
        )
    body = {"sort": "EXPECTED_START_TIME_ASC", "limit": 2, "offset": 1}
    names = [r["name"] for r in client.post("/api/flow_runs/filter", json=body).get_json()]
    assert names == ["run-1", "run-2"]
    assert client.post("/api/flow_runs/filter", json={"limit": 0}).get_json() == []
    assert client.post("/api/flow_runs/filter", json={"offset": 10}).get_json() == []
    assert client.post("/api/flow_runs/count", json={}).get_json() == 5
    body = {
        "flows": {"name": {"any_": ["etl"]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
    }
    assert client.post("/api/flow_runs/count", json=body).get_json() == 5
    assert (
        client.post(
            "/api/flow_runs/count", json={"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}
        ).get_json()
        == 0
    )


def test_filter_returns_states_embedded(client, flow_run):
    [run] = client.post("/api/flow_runs/filter", json={}).get_json()
    assert run == client.get(f"/api/flow_runs/{flow_run['id']}").get_json() | {
        "estimated_run_time": run["estimated_run_time"],
        "estimated_start_time_delta": run["estimated_start_time_delta"],
    }
    assert run["state"]["id"] == flow_run["state_id"]


def test_history_buckets_runs_by_expected_start(client, flow):
    base = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    for hours in (0.5, 1.5, 1.7):
        when = base + datetime.timedelta(hours=hours)
        client.post(
            "/api/flow_runs/",
            json={
                "flow_id": flow["id"],
                "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": iso(when)}},
            },
        )
    body = {
        "history_start": iso(base),
        "history_end": iso(base + datetime.timedelta(hours=3)),
        "history_interval_seconds": 3600,
    }
    history = client.post("/api/flow_runs/history", json=body).get_json()
    assert [h["interval_start"] for h in history] == [
        iso(base + datetime.timedelta(hours=h)) for h in range(3)
    ]
    assert [sum(s["count_runs"] for s in h["states"]) for h in history] == [1, 2, 0]
    [state] = history[1]["states"]
    assert state["state_type"] == "SCHEDULED" and state["state_name"] == "Scheduled"
    assert state["count_runs"] == 2 and state["sum_estimated_run_time"] == 0.0
    filtered = dict(body, flow_runs={"name": {"any_": ["none"]}})
    assert all(
        h["states"] == [] for h in client.post("/api/flow_runs/history", json=filtered).get_json()
    )


@pytest.mark.parametrize(
    "body, loc",
    [
        (
            {
                "history_start": "2030-01-01T00:00:00Z",
                "history_end": "2030-01-02T00:00:00Z",
                "history_interval_seconds": 1,
            },
            ("body", "history_interval_seconds"),
        ),
        (
            {
                "history_start": "2030-01-02T00:00:00Z",
                "history_end": "2030-01-01T00:00:00Z",
                "history_interval_seconds": 60,
            },
            ("body", "history_end"),
        ),
        (
            {
                "history_start": "2030-01-01T00:00:00Z",
                "history_end": "2030-01-02T00:00:00Z",
                "history_interval_seconds": 0,
            },
            ("body", "history_interval_seconds"),
        ),
        (
            {"history_end": "2030-01-02T00:00:00Z", "history_interval_seconds": 60},
            ("body", "history_start"),
        ),
    ],
)
def test_history_rejects_bad_ranges(client, body, loc):
    assert_422(client.post("/api/flow_runs/history", json=body), *loc)
