"""Nothing a client sends gets a 500: every documented operation, fed malformed input."""

import pytest

BAD_BODIES = [
    None,
    "",
    "null",
    "[]",
    "{}",
    "42",
    '"text"',
    "{not json",
    '{"a": {"b": {"c": [1, {}]}}}',
    '{"limit": 1e309}',
    '{"limit": 99999999999999999999999}',
    '{"name": "\\u0000"}',
    (
        '{"flow_id": "00000000-0000-0000-0000-000000000000", "state": {"type": "RUNNING", '
        '"state_details": {"scheduled_time": "0000-00-00"}}}'
    ),
    '{"sort": null, "offset": -0.5}',
    '[{"level": "x"}]',
]
BAD_IDS = ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "%00", "' OR 1=1 --"]


def operations(client):
    spec = client.get("/api/openapi.json").get_json()
    for path, methods in spec["paths"].items():
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method


def fill(path, value):
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + value + path[end + 1 :]
    return path


def test_malformed_bodies_and_ids_never_give_500(client, flow_run):
    seen = 0
    for path, method in operations(client):
        for bad_id in BAD_IDS:
            url = fill(path, bad_id)
            for body in BAD_BODIES:
                kwargs = {} if body is None else {"data": body, "content_type": "application/json"}
                response = client.open(url, method=method.upper(), **kwargs)
                seen += 1
                assert response.status_code < 500, (method, url, body, response.get_json())
                # 403: the admin database operations, off unless a setting allows them.
                assert response.status_code in (200, 201, 204, 400, 403, 404, 405, 409, 413, 422), (
                    method,
                    url,
                    body,
                    response.status_code,
                )
    assert seen > 100


@pytest.mark.parametrize("query", ["flow_run_id=", "flow_run_id=x&flow_run_id=y", "bogus=1"])
def test_malformed_query_strings_are_422(client, query):
    assert client.get(f"/api/flow_run_states/?{query}").status_code == 422


def test_nul_characters_are_refused_with_422(client, flow):
    response = client.post("/api/flows/", json={"name": "bad\x00name"})
    assert response.status_code == 422
    assert "NUL" in response.get_json()["exception_detail"][0]["msg"]
    response = client.post(
        "/api/flow_runs/",
        json={"flow_id": flow["id"], "parameters": {"x": ["ok", {"deep": "\x00"}]}},
    )
    assert response.status_code == 422
    assert client.get("/api/flows/name/a%00b").status_code == 422
    # A literal backslash-u sequence is ordinary text, not a NUL.
    assert client.post("/api/flows/", json={"name": "back\\u0000slash"}).status_code == 201
