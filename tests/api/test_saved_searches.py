"""``/api/saved_searches``: upsert by name, read, delete, filter; on both backends."""

import uuid

CONDITION = {
    "object": "flow_run",
    "property": "state_type",
    "type": "state",
    "operation": "any",
    "value": ["FAILED", "CRASHED"],
}


def test_put_creates_then_replaces_by_name(client):
    created = client.put("/api/saved_searches/", json={"name": "failures", "filters": [CONDITION]})
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "created", "updated", "name", "filters"}
    assert body["name"] == "failures" and body["filters"] == [CONDITION]

    other = {**CONDITION, "value": ["FAILED"]}
    replaced = client.put("/api/saved_searches/", json={"name": "failures", "filters": [other]})
    assert replaced.status_code == 200
    assert replaced.get_json()["id"] == body["id"]
    assert replaced.get_json()["filters"] == [other]
    assert client.get(f"/api/saved_searches/{body['id']}").get_json()["filters"] == [other]

    empty = client.put("/api/saved_searches/", json={"name": "everything"})
    assert empty.status_code == 201 and empty.get_json()["filters"] == []


def test_get_and_delete(client):
    search = client.put("/api/saved_searches/", json={"name": "s"}).get_json()
    assert client.get(f"/api/saved_searches/{search['id']}").get_json() == search
    assert client.delete(f"/api/saved_searches/{search['id']}").status_code == 204
    assert client.get(f"/api/saved_searches/{search['id']}").status_code == 404
    assert client.delete(f"/api/saved_searches/{search['id']}").status_code == 404
    assert client.get(f"/api/saved_searches/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/saved_searches/not-a-uuid").status_code == 422


def test_filter_pages_by_name(client):
    for name in ("c", "a", "b"):
        client.put("/api/saved_searches/", json={"name": name})
    names = [s["name"] for s in client.post("/api/saved_searches/filter", json={}).get_json()]
    assert names == ["a", "b", "c"]
    page = client.post("/api/saved_searches/filter", json={"limit": 1, "offset": 1})
    assert [s["name"] for s in page.get_json()] == ["b"]
    assert client.post("/api/saved_searches/filter", json={"limit": 201}).status_code == 422
    assert client.post("/api/saved_searches/filter", json={"sort": "X"}).status_code == 422


def test_bad_bodies_are_422(client):
    for body in (
        {},
        {"name": ""},
        {"name": "a/b"},
        {"name": "x", "filters": [{}]},
        {"name": "x", "filters": [{**CONDITION, "extra": 1}]},
        {"name": "x", "filters": "nope"},
        {"name": "x", "unknown": 1},
    ):
        response = client.put("/api/saved_searches/", json=body)
        assert response.status_code == 422, body
        assert response.get_json()["exception_detail"], body


def test_searches_saved_by_the_api_show_in_the_dashboard(client):
    client.put("/api/saved_searches/", json={"name": "api-saved", "filters": [CONDITION]})
    html = client.get("/flow-runs").get_data(as_text=True)
    assert "api-saved" in html and "state=FAILED&amp;state=CRASHED" in html
