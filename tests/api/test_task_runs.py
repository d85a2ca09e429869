"""/api/task_runs: idempotent create, read, patch, delete, filter, count."""

import uuid

import pytest

from tests.conftest import assert_422

INPUTS = {
    "x": [{"input_type": "task_run", "id": "8c1c3c0e-58f5-4c43-9b9b-3b7f0c5c2d11"}],
    "y": [{"input_type": "parameter", "name": "y"}],
    "z": [{"input_type": "constant", "type": "int"}],
    "wait_for": [{"input_type": "task_run", "id": "0e7b9a53-6f10-4c27-9a2e-2a4a1f1b6c33"}],
}


def make_task_run(client, flow_run, **extra):
    body = {"flow_run_id": flow_run["id"], "task_key": "etl.extract", "dynamic_key": "0"}
    body.update(extra)
    return client.post("/api/task_runs/", json=body)


def test_create_defaults_and_inputs_round_trip(client, flow_run):
    response = make_task_run(
        client,
        flow_run,
        task_inputs=INPUTS,
        tags=["io"],
        cache_key="abc",
        empirical_policy={"retries": 2, "retry_delay": [1, 10, 100]},
    )
    assert response.status_code == 201
    run = response.get_json()
    assert run["task_inputs"] == INPUTS
    assert run["state_type"] == "PENDING"
    assert run["state"]["state_details"]["task_run_id"] == run["id"]
    assert run["state"]["state_details"]["flow_run_id"] == flow_run["id"]
    assert run["empirical_policy"]["retry_delay"] == [1, 10, 100]
    assert run["name"].startswith("etl.extract-")
    assert run["flow_run_run_count"] == 0 and run["cache_key"] == "abc"


def test_create_is_idempotent_on_flow_run_task_key_dynamic_key(client, flow_run):
    first = make_task_run(client, flow_run)
    again = make_task_run(client, flow_run, name="ignored")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert make_task_run(client, flow_run, dynamic_key="1").status_code == 201


@pytest.mark.parametrize(
    "extra, loc",
    [
        ({"task_key": None}, ("body", "task_key")),
        ({"dynamic_key": 3}, ("body", "dynamic_key")),
        ({"flow_run_id": "x"}, ("body", "flow_run_id")),
        ({"empirical_policy": {"retry_delay": list(range(51))}}, ("body", "empirical_policy")),
        ({"empirical_policy": {"retry_jitter_factor": -1}}, ("body", "empirical_policy")),
        ({"cache_key": "k" * 2001}, ("body", "cache_key")),
        ({"task_inputs": {"x": "notalist"}}, ("body", "task_inputs")),
        ({"state": {"type": "nope"}}, ("body", "state")),
    ],
)
def test_create_rejects_bad_bodies(client, flow_run, extra, loc):
    assert_422(make_task_run(client, flow_run, **extra), *loc)


def test_create_for_missing_flow_run_is_404(client):
    response = client.post(
        "/api/task_runs/",
        json={"flow_run_id": str(uuid.uuid4()), "task_key": "k", "dynamic_key": "0"},
    )
    assert response.status_code == 404
    assert "Flow run" in response.get_json()["detail"]


def test_read_patch_delete(client, flow_run):
    run = make_task_run(client, flow_run).get_json()
    assert client.get(f"/api/task_runs/{run['id']}").get_json()["id"] == run["id"]
    assert client.patch(f"/api/task_runs/{run['id']}", json={"name": "n"}).status_code == 204
    assert client.get(f"/api/task_runs/{run['id']}").get_json()["name"] == "n"
    assert_422(client.patch(f"/api/task_runs/{run['id']}", json={"tags": []}), "body", "tags")
    assert client.delete(f"/api/task_runs/{run['id']}").status_code == 204
    assert client.get(f"/api/task_runs/{run['id']}").status_code == 404
    assert client.patch(f"/api/task_runs/{run['id']}", json={"name": "n"}).status_code == 404
    assert client.delete(f"/api/task_runs/{run['id']}").status_code == 404


def test_filter_and_count(client, flow_run):
    for i in range(3):
        make_task_run(
            client, flow_run, dynamic_key=str(i), name=f"t{i}", tags=["even"] if i % 2 == 0 else []
        )
    runs = client.post("/api/task_runs/filter", json={"sort": "NAME_ASC"}).get_json()
    assert [r["name"] for r in runs] == ["t0", "t1", "t2"]
    body = {"task_runs": {"tags": {"all_": ["even"]}}}
    assert client.post("/api/task_runs/count", json=body).get_json() == 2
    body = {"flow_runs": {"id": {"any_": [flow_run["id"]]}}, "limit": 1}
    assert len(client.post("/api/task_runs/filter", json=body).get_json()) == 1
    body = {"sort": "START_TIME_DESC"}
    assert_422(client.post("/api/task_runs/filter", json=body), "body", "sort")
