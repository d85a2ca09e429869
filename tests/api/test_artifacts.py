"""``/api/artifacts`` (Prefect 2.20 shapes): create, read, update, delete, filter and count,
each key's latest, and bad input, on both backends."""

import uuid

import pytest

from tests.conftest import assert_422

BASE = "/api/artifacts"


def make(client, **fields):
    response = client.post(f"{BASE}/", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [a["id"] for a in response.get_json()]


def test_create_read_update_delete(client, flow_run):
    created = make(
        client,
        key="sales-report",
        type="markdown",
        description="Daily *sales*",
        data="# Sales\n\n| a | b |",
        metadata_={"rows": "2", "long": "x" * 600},
        flow_run_id=flow_run["id"],
    )
    assert set(created) == {
        "id", "created", "updated", "key", "type", "description", "data", "metadata_",
        "flow_run_id", "task_run_id",
    }  # fmt: skip
    assert created["metadata_"]["long"] == "x" * 500 + "..."
    assert created["flow_run_id"] == flow_run["id"] and created["task_run_id"] is None
    assert client.get(f"{BASE}/{created['id']}").get_json() == created

    response = client.patch(f"{BASE}/{created['id']}", json={"data": {"rows": [1, 2]}})
    assert response.status_code == 204
    changed = client.get(f"{BASE}/{created['id']}").get_json()
    assert changed["data"] == {"rows": [1, 2]} and changed["description"] == "Daily *sales*"

    assert client.delete(f"{BASE}/{created['id']}").status_code == 204
    assert client.get(f"{BASE}/{created['id']}").status_code == 404
    assert client.delete(f"{BASE}/{created['id']}").status_code == 404
    assert client.patch(f"{BASE}/{uuid.uuid4()}", json={"data": 1}).status_code == 404
    keyless = make(client, type="result", data={"value": 3})
    assert keyless["key"] is None


def test_the_latest_of_each_key(client):
    first = make(client, key="report", data="v1")
    second = make(client, key="report", data="v2")
    other = make(client, key="other", data="o1")
    make(client, data="no key")
    latest = client.get(f"{BASE}/report/latest").get_json()
    assert latest["id"] == second["id"] and latest["data"] == "v2"
    assert client.get(f"{BASE}/missing/latest").status_code == 404

    collections = client.post(f"{BASE}/latest/filter", json={"sort": "KEY_ASC"}).get_json()
    assert [(c["key"], c["latest_id"], c["data"]) for c in collections] == [
        ("other", other["id"], "o1"),
        ("report", second["id"], "v2"),
    ]
    assert client.post(f"{BASE}/latest/count", json={}).get_json() == 2
    body = {"artifacts": {"key": {"like_": "rep"}}}
    assert client.post(f"{BASE}/latest/count", json=body).get_json() == 1
    # Deleting the newest makes the previous version the latest.
    client.delete(f"{BASE}/{second['id']}")
    assert client.get(f"{BASE}/report/latest").get_json()["id"] == first["id"]


def test_filters_sorts_and_counts(client, flow, flow_run):
    task_run = client.post(
        "/api/task_runs/", json={"flow_run_id": flow_run["id"], "task_key": "t", "dynamic_key": "0"}
    ).get_json()
    in_task = make(
        client, key="a", type="table", flow_run_id=flow_run["id"], task_run_id=task_run["id"]
    )
    in_flow = make(client, key="b", type="markdown", flow_run_id=flow_run["id"])
    loose = make(client, type="result")
    everything = ids(client.post(f"{BASE}/filter", json={}))
    assert everything == sorted(everything, reverse=True)  # ID_DESC by default
    assert set(everything) == {in_task["id"], in_flow["id"], loose["id"]}
    assert ids(client.post(f"{BASE}/filter", json={"sort": "KEY_ASC"})) == [
        in_task["id"],
        in_flow["id"],
        loose["id"],
    ]
    by_type = {"artifacts": {"type": {"not_any_": ["result"]}}, "sort": "KEY_DESC"}
    assert ids(client.post(f"{BASE}/filter", json=by_type)) == [in_flow["id"], in_task["id"]]
    keyless = {"artifacts": {"key": {"exists_": False}}}
    assert ids(client.post(f"{BASE}/filter", json=keyless)) == [loose["id"]]
    by_flow = {"flows": {"id": {"any_": [flow["id"]]}}, "sort": "KEY_ASC"}
    assert ids(client.post(f"{BASE}/filter", json=by_flow)) == [in_task["id"], in_flow["id"]]
    by_task_run = {"task_runs": {"id": {"any_": [task_run["id"]]}}}
    assert ids(client.post(f"{BASE}/filter", json=by_task_run)) == [in_task["id"]]
    assert client.post(f"{BASE}/count", json={}).get_json() == 3
    assert client.post(f"{BASE}/count", json=by_flow).get_json() == 2
    assert ids(
        client.post(f"{BASE}/filter", json={"limit": 1, "offset": 1, "sort": "KEY_ASC"})
    ) == [in_flow["id"]]


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"key": "Has Spaces"}, ("body", "key")),
        ({"key": "k" * 256}, ("body", "key")),
        ({"metadata_": {"a": 1}}, ("body", "metadata_")),
        ({"metadata_": "text"}, ("body", "metadata_")),
        ({"flow_run_id": "nope"}, ("body", "flow_run_id")),
        ({"type": 5}, ("body", "type")),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, body, loc):
    assert_422(client.post(f"{BASE}/", json=body), *loc)
    assert client.post(f"{BASE}/count", json={}).get_json() == 0


def test_bad_filters_and_ids(client):
    assert_422(client.get(f"{BASE}/not-a-uuid"), "path")
    assert_422(client.post(f"{BASE}/filter", json={"sort": "NAME_ASC"}), "body", "sort")
    assert_422(
        client.post(
            f"{BASE}/latest/filter", json={"artifacts": {"id": {"any_": [str(uuid.uuid4())]}}}
        ),
        "body",
        "artifacts",
    )
    assert_422(
        client.post(f"{BASE}/filter", json={"artifacts": {"key": {"exists_": "maybe"}}}),
        "body",
        "artifacts",
    )
