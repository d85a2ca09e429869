"""``/api/variables`` (Prefect 2.20 shapes): create, read, update and delete by id and by
name, filter, sort, count, and bad input, on both backends."""

import uuid

import pytest

from tests.conftest import assert_422

BASE = "/api/variables"


def make(client, name, value="v", tags=()):
    response = client.post(f"{BASE}/", json={"name": name, "value": value, "tags": list(tags)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def names(response):
    assert response.status_code == 200, response.get_json()
    return [v["name"] for v in response.get_json()]


def test_create_read_update_delete_by_id_and_by_name(client):
    created = make(client, "db_host", "10.0.0.5", ["prod"])
    assert set(created) == {"id", "created", "updated", "name", "value", "tags"}
    assert (created["name"], created["value"], created["tags"]) == ("db_host", "10.0.0.5", ["prod"])
    assert client.get(f"{BASE}/{created['id']}").get_json() == created
    assert client.get(f"{BASE}/name/db_host").get_json() == created

    assert client.patch(f"{BASE}/{created['id']}", json={"value": "10.0.0.6"}).status_code == 204
    changed = client.get(f"{BASE}/name/db_host").get_json()
    assert changed["value"] == "10.0.0.6" and changed["tags"] == ["prod"]
    assert changed["updated"] > created["updated"]
    response = client.patch(f"{BASE}/name/db_host", json={"name": "db_host_2", "tags": []})
    assert response.status_code == 204
    renamed = client.get(f"{BASE}/{created['id']}").get_json()
    assert (renamed["name"], renamed["value"], renamed["tags"]) == ("db_host_2", "10.0.0.6", [])
    assert client.get(f"{BASE}/name/db_host").status_code == 404

    assert client.delete(f"{BASE}/name/db_host_2").status_code == 204
    assert client.get(f"{BASE}/{created['id']}").status_code == 404
    other = make(client, "other")
    assert client.delete(f"{BASE}/{other['id']}").status_code == 204
    assert client.delete(f"{BASE}/{other['id']}").status_code == 404
    assert client.delete(f"{BASE}/name/other").status_code == 404


def test_names_are_unique(client):
    first = make(client, "taken", "1")
    response = client.post(f"{BASE}/", json={"name": "taken", "value": "2"})
    assert response.status_code == 409
    assert "taken" in response.get_json()["detail"]
    second = make(client, "free")
    assert client.patch(f"{BASE}/{second['id']}", json={"name": "taken"}).status_code == 409
    assert client.get(f"{BASE}/{first['id']}").get_json()["value"] == "1"
    assert client.get(f"{BASE}/name/free").status_code == 200


def test_filter_sort_page_and_count(client):
    make(client, "alpha", "one", ["a", "shared"])
    make(client, "beta", "two", ["b", "shared"])
    make(client, "gamma", "three", [])
    assert names(client.post(f"{BASE}/filter", json={})) == ["alpha", "beta", "gamma"]
    assert names(client.post(f"{BASE}/filter", json={"sort": "NAME_DESC"})) == [
        "gamma",
        "beta",
        "alpha",
    ]
    assert names(client.post(f"{BASE}/filter", json={"sort": "CREATED_DESC", "limit": 1})) == [
        "gamma"
    ]
    assert names(client.post(f"{BASE}/filter", json={"offset": 2})) == ["gamma"]
    body = {"variables": {"tags": {"all_": ["shared"]}, "name": {"like_": "ET"}}}
    assert names(client.post(f"{BASE}/filter", json=body)) == ["beta"]
    body = {"variables": {"value": {"any_": ["one", "three"]}}}
    assert names(client.post(f"{BASE}/filter", json=body)) == ["alpha", "gamma"]
    body = {"variables": {"tags": {"is_null_": True}}}
    assert names(client.post(f"{BASE}/filter", json=body)) == ["gamma"]
    assert client.post(f"{BASE}/count", json={}).get_json() == 3
    count = client.post(f"{BASE}/count", json={"variables": {"value": {"like_": "t"}}})
    assert count.get_json() == 2


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"value": "v"}, ("body", "name")),
        ({"name": "Has-Dashes", "value": "v"}, ("body", "name")),
        ({"name": "", "value": "v"}, ("body", "name")),
        ({"name": "n" * 256, "value": "v"}, ("body", "name")),
        ({"name": "ok"}, ("body", "value")),
        ({"name": "ok", "value": "v" * 5001}, ("body", "value")),
        ({"name": "ok", "value": 5}, ("body", "value")),
        ({"name": "ok", "value": "v", "tags": "prod"}, ("body", "tags")),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, body, loc):
    body = assert_422(client.post(f"{BASE}/", json=body), *loc)
    assert client.post(f"{BASE}/count", json={}).get_json() == 0
    if loc == ("body", "name") and "Has-Dashes" in str(body):
        assert "lowercase letters, numbers, and underscores" in str(body)


def test_bad_updates_ids_and_filters(client):
    variable = make(client, "kept", "1")
    assert_422(client.patch(f"{BASE}/{variable['id']}", json={"name": "Bad Name"}), "body", "name")
    assert_422(client.patch(f"{BASE}/name/kept", json={"value": "x" * 5001}), "body", "value")
    assert client.get(f"{BASE}/name/kept").get_json()["value"] == "1"
    assert client.patch(f"{BASE}/{uuid.uuid4()}", json={"value": "2"}).status_code == 404
    assert client.patch(f"{BASE}/name/missing", json={"value": "2"}).status_code == 404
    assert_422(client.get(f"{BASE}/not-a-uuid"), "path")
    assert_422(client.post(f"{BASE}/filter", json={"sort": "VALUE_ASC"}), "body", "sort")
    assert_422(client.post(f"{BASE}/filter", json={"limit": -1}), "body", "limit")
    assert_422(
        client.post(f"{BASE}/filter", json={"variables": {"tags": {"all_": "x"}}}),
        "body",
        "variables",
    )
