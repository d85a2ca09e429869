"""/api/flows: idempotent create, read, read by name, patch, delete, filter, count."""

import uuid

import pytest

from tests.conftest import assert_422


def test_create_is_idempotent_by_name(client):
    first = client.post("/api/flows/", json={"name": "etl", "tags": ["a"]})
    assert first.status_code == 201
    body = first.get_json()
    assert body["name"] == "etl" and body["tags"] == ["a"]
    uuid.UUID(body["id"])
    second = client.post("/api/flows/", json={"name": "etl", "tags": ["other"]})
    assert second.status_code == 200
    assert second.get_json() == body


@pytest.mark.parametrize(
    "payload, loc",
    [
        ({}, ("body", "name")),
        ({"name": "a/b"}, ("body", "name")),
        ({"name": "a%b"}, ("body", "name")),
        ({"name": "  "}, ("body", "name")),
        ({"name": 5}, ("body", "name")),
        ({"name": "ok", "tags": "notalist"}, ("body", "tags")),
    ],
)
def test_create_rejects_bad_bodies(client, payload, loc):
    body = assert_422(client.post("/api/flows/", json=payload), *loc)
    assert body["request_body"] == payload


def test_create_rejects_non_json(client):
    response = client.post(
        "/api/flows/", data="name=etl", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 422


def test_read_by_id_and_name(client, flow):
    assert client.get(f"/api/flows/{flow['id']}").get_json() == flow
    assert client.get("/api/flows/name/etl").get_json() == flow


def test_read_missing_is_404(client):
    missing = uuid.uuid4()
    response = client.get(f"/api/flows/{missing}")
    assert response.status_code == 404
    assert str(missing) in response.get_json()["detail"]
    assert client.get("/api/flows/name/nope").status_code == 404


def test_malformed_id_is_422(client):
    assert_422(client.get("/api/flows/not-a-uuid"), "path")


def test_patch_updates_tags(client, flow):
    response = client.patch(f"/api/flows/{flow['id']}", json={"tags": ["x", "y"]})
    assert response.status_code == 204
    updated = client.get(f"/api/flows/{flow['id']}").get_json()
    assert updated["tags"] == ["x", "y"]
    assert updated["updated"] >= flow["updated"]


def test_patch_errors(client, flow):
    assert client.patch(f"/api/flows/{uuid.uuid4()}", json={"tags": []}).status_code == 404
    assert_422(client.patch(f"/api/flows/{flow['id']}", json={"name": "new"}), "body", "name")


def test_delete_cascades_to_runs(client, flow, flow_run):
    assert client.delete(f"/api/flows/{flow['id']}").status_code == 204
    assert client.get(f"/api/flows/{flow['id']}").status_code == 404
    assert client.get(f"/api/flow_runs/{flow_run['id']}").status_code == 404
    assert client.delete(f"/api/flows/{flow['id']}").status_code == 404


def test_filter_and_count(client):
    for name in ("alpha", "beta", "gamma"):
        client.post("/api/flows/", json={"name": name, "tags": [name[0]]})
    names = [f["name"] for f in client.post("/api/flows/filter", json={}).get_json()]
    assert names == ["alpha", "beta", "gamma"]
    body = {"flows": {"name": {"like_": "a"}}, "sort": "NAME_DESC", "limit": 2}
    names = [f["name"] for f in client.post("/api/flows/filter", json=body).get_json()]
    assert names == ["gamma", "beta"]
    assert client.post("/api/flows/count", json={}).get_json() == 3
    body = {"flows": {"name": {"any_": ["beta"]}}}
    assert client.post("/api/flows/count", json=body).get_json() == 1


def test_filter_flows_by_their_runs(client, flow, flow_run):
    client.post("/api/flows/", json={"name": "idle"})
    body = {"flow_runs": {"id": {"any_": [flow_run["id"]]}}}
    assert [f["name"] for f in client.post("/api/flows/filter", json=body).get_json()] == ["etl"]


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"limit": -1}, ("body", "limit")),
        ({"limit": 201}, ("body", "limit")),
        ({"offset": -1}, ("body", "offset")),
        ({"sort": "SIDEWAYS"}, ("body", "sort")),
        ({"flows": {"name": {"regex_": "x"}}}, ("body", "flows")),
        ({"flows": {"id": {"any_": ["nope"]}}}, ("body", "flows")),
    ],
)
def test_filter_rejects_bad_bodies(client, body, loc):
    assert_422(client.post("/api/flows/filter", json=body), *loc)
