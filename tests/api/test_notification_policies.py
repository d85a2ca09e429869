"""``/api/flow_run_notification_policies``: CRUD, filter and bad input (Prefect 2.7 shapes)."""

import uuid

import pytest

from tests.conftest import assert_422
from tests.notification_helpers import install_system_blocks, make_block_document, make_policy

BASE = "/api/flow_run_notification_policies"


@pytest.fixture
def slack(client):
    install_system_blocks(client)
    return make_block_document(client, "slack-webhook", {"url": "https://hooks.example/T/B/C"})


def test_create_read_update_delete(client, slack):
    created = make_policy(
        client,
        slack["id"],
        tags=["prod"],
        message_template="{flow_run_name} is {flow_run_state_name}",
    )
    assert set(created) == {
        "id",
        "created",
        "updated",
        "is_active",
        "state_names",
        "tags",
        "block_document_id",
        "message_template",
    }
    assert created["is_active"] is True
    assert created["state_names"] == ["Failed"] and created["tags"] == ["prod"]
    assert created["block_document_id"] == slack["id"]
    policy_url = f"{BASE}/{created['id']}"
    assert client.get(policy_url).get_json() == created

    response = client.patch(
        policy_url,
        json={
            "is_active": False,
            "state_names": ["Crashed"],
            "tags": None,
            "message_template": None,
        },
    )
    assert response.status_code == 204
    changed = client.get(policy_url).get_json()
    assert changed["is_active"] is False and changed["state_names"] == ["Crashed"]
    assert changed["tags"] == ["prod"], "a null leaves the field as it is"
    assert changed["message_template"] is None, "a null template means the default message"

    assert client.delete(policy_url).status_code == 204
    assert client.get(policy_url).status_code == 404
    assert client.delete(policy_url).status_code == 404
    assert client.patch(policy_url, json={"is_active": True}).status_code == 404


def test_filter_is_paged_by_id_and_defaults_to_inactive_when_a_filter_is_sent(client, slack):
    active = [make_policy(client, slack["id"]) for _ in range(3)]
    inactive = make_policy(client, slack["id"], is_active=False)
    everything = client.post(f"{BASE}/filter", json={}).get_json()
    assert [p["id"] for p in everything] == sorted(p["id"] for p in [*active, inactive])
    page = client.post(f"{BASE}/filter", json={"limit": 2, "offset": 1}).get_json()
    assert [p["id"] for p in page] == [p["id"] for p in everything[1:3]]
    only_active = client.post(
        f"{BASE}/filter", json={"flow_run_notification_policy_filter": {"is_active": {"eq_": True}}}
    ).get_json()
    assert sorted(p["id"] for p in only_active) == sorted(p["id"] for p in active)
    # Prefect's FlowRunNotificationPolicyFilter defaults is_active to eq_ false.
    default = client.post(
        f"{BASE}/filter", json={"flow_run_notification_policy_filter": {}}
    ).get_json()
    assert [p["id"] for p in default] == [inactive["id"]]


def test_block_document_must_exist_and_be_sendable(client, slack):
    assert_422(
        client.post(
            f"{BASE}/",
            json={"state_names": ["Failed"], "tags": [], "block_document_id": str(uuid.uuid4())},
        ),
        "body",
        "block_document_id",
    )
    secret = make_block_document(client, "secret", {"value": "x"}, name="not-a-notifier")
    response = client.post(
        f"{BASE}/", json={"state_names": ["Failed"], "tags": [], "block_document_id": secret["id"]}
    )
    assert_422(response, "body", "block_document_id")
    assert "slack-webhook or webhook" in response.get_json()["exception_detail"][0]["msg"]
    policy = make_policy(client, slack["id"])
    assert_422(
        client.patch(f"{BASE}/{policy['id']}", json={"block_document_id": secret["id"]}),
        "body",
        "block_document_id",
    )


@pytest.mark.parametrize("template", ["{nope}", "{flow_run_id", "{0}", "{}", "{flow_name.x}{y}"])
def test_template_with_unknown_variables_or_bad_braces_is_422(client, slack, template):
    response = client.post(
        f"{BASE}/",
        json={
            "state_names": ["Failed"],
            "tags": [],
            "block_document_id": slack["id"],
            "message_template": template,
        },
    )
    assert_422(response, "body", "message_template")
    policy = make_policy(client, slack["id"])
    assert_422(
        client.patch(f"{BASE}/{policy['id']}", json={"message_template": template}),
        "body",
        "message_template",
    )


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"tags": []}, ("body", "state_names")),
        ({"state_names": ["Failed"]}, ("body", "tags")),
        ({"state_names": "Failed", "tags": []}, ("body", "state_names")),
        ({"state_names": [], "tags": [], "is_active": "sometimes"}, ("body", "is_active")),
        (
            {"state_names": [], "tags": [], "block_document_id": "nope"},
            ("body", "block_document_id"),
        ),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, slack, body, loc):
    body = {"block_document_id": slack["id"], **body}
    assert_422(client.post(f"{BASE}/", json=body), *loc)


def test_bad_ids_and_filters(client, slack):
    assert_422(client.get(f"{BASE}/not-a-uuid"), "path")
    assert client.get(f"{BASE}/{uuid.uuid4()}").status_code == 404
    assert_422(client.post(f"{BASE}/filter", json={"limit": -1}), "body", "limit")
    assert_422(
        client.post(
            f"{BASE}/filter",
            json={"flow_run_notification_policy_filter": {"is_active": {"eq_": "maybe"}}},
        ),
        "body",
        "flow_run_notification_policy_filter",
    )


def test_deleting_the_block_document_deletes_its_policies(client, slack):
    policy = make_policy(client, slack["id"])
    assert client.delete(f"/api/block_documents/{slack['id']}").status_code == 204
    assert client.get(f"{BASE}/{policy['id']}").status_code == 404
