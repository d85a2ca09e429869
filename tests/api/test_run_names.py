"""Flow and task run names up to 2,000 bytes of UTF-8, on both backends.

Run names are often made from parameters (Prefect's ``flow_run_name`` and ``task_run_name``
templates), so they get more room than other names (migration 0039); the bound is in bytes,
PostgreSQL's unit for an index entry. The longest names are random 4-byte characters, which
no index compression shrinks.
"""

import random

import pytest

from tests.conftest import assert_422


def name_of(size_in_bytes, seed=0):
    """A name of random 4-byte characters (and ASCII for the rest) of exactly this size."""
    chosen = random.Random(seed)
    wide = "".join(chr(chosen.randrange(0x1F300, 0x1F5FF)) for _ in range(size_in_bytes // 4))
    name = wide + "x" * (size_in_bytes % 4)
    assert len(name.encode()) == size_in_bytes
    return name


@pytest.fixture
def task_run_body(flow_run):
    return {"flow_run_id": flow_run["id"], "task_key": "k", "dynamic_key": "0"}


def test_a_flow_run_name_of_2000_bytes_is_stored_and_found(client, flow):
    name = name_of(2000)
    created = client.post("/api/flow_runs/", json={"flow_id": flow["id"], "name": name})
    assert created.status_code == 201, created.get_json()
    assert client.get(f"/api/flow_runs/{created.get_json()['id']}").get_json()["name"] == name
    body = {"flow_runs": {"name": {"any_": [name]}}}
    assert [r["id"] for r in client.post("/api/flow_runs/filter", json=body).get_json()] == [
        created.get_json()["id"]
    ]
    renamed = name_of(2000, seed=1)
    path = f"/api/flow_runs/{created.get_json()['id']}"
    assert client.patch(path, json={"name": renamed}).status_code == 204
    assert client.get(path).get_json()["name"] == renamed


def test_a_task_run_name_of_2000_bytes_is_stored(client, task_run_body):
    name = name_of(2000)
    created = client.post("/api/task_runs/", json={**task_run_body, "name": name})
    assert created.status_code == 201, created.get_json()
    path = f"/api/task_runs/{created.get_json()['id']}"
    assert client.get(path).get_json()["name"] == name
    assert client.patch(path, json={"name": name_of(2000, seed=2)}).status_code == 204


def test_a_run_name_over_2000_bytes_is_refused(client, flow, flow_run, task_run_body):
    too_long = name_of(2001)
    assert len(too_long) < 2000  # the bound is in bytes, not characters
    response = client.post("/api/flow_runs/", json={"flow_id": flow["id"], "name": too_long})
    body = assert_422(response, "body", "name")
    assert body["exception_detail"][0]["msg"] == "Longer than 2000 bytes in UTF-8."
    assert_422(client.post("/api/task_runs/", json={**task_run_body, "name": too_long}), "body")
    assert_422(client.patch(f"/api/flow_runs/{flow_run['id']}", json={"name": "n" * 2001}))
    deployment = client.post(
        "/api/deployments/", json={"name": "d", "flow_id": flow["id"]}
    ).get_json()
    path = f"/api/deployments/{deployment['id']}/create_flow_run"
    assert_422(client.post(path, json={"name": too_long}), "body", "name")
    assert client.post(path, json={"name": name_of(2000)}).status_code == 201
