"""Helpers of the notification tests: system blocks, block documents and policies via the API."""


def install_system_blocks(client):
    assert client.post("/api/block_types/install_system_block_types").status_code == 200


def make_block_document(client, slug, data, name="alerts"):
    """A block document of the system type ``slug`` holding ``data``; returns its JSON."""
    block_type = client.get(f"/api/block_types/slug/{slug}").get_json()
    schemas = client.post(
        "/api/block_schemas/filter",
        json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
    ).get_json()
    response = client.post(
        "/api/block_documents/",
        json={
            "name": name,
            "block_type_id": block_type["id"],
            "block_schema_id": schemas[0]["id"],
            "data": data,
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_policy(client, block_document_id, **fields):
    body = {"state_names": ["Failed"], "tags": [], "block_document_id": block_document_id, **fields}
    response = client.post("/api/flow_run_notification_policies/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()
