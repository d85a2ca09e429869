"""Block and notification pages through the Flask test client, on both backends: the blocks
list and catalog, a block's page, the forms generated from block schemas (secrets, nested
blocks, refusals next to their field), deleting, and the notification policy pages.

Data is made through the API, as clients make it, and read back through the API.
"""

import re
import uuid

import pytest

from tests.notification_helpers import install_system_blocks, make_block_document, make_policy
from tests.services.receiver import Receiver
from tests.ui.test_deployment_pages import make_deployment, post
from tests.ui.test_pages import EVIL, make_flow, page

SECRET_VALUE = "hunter2-very-secret"


@pytest.fixture
def system_blocks(client):
    install_system_blocks(client)


def stored(client, slug, name):
    """A block document's data as the API returns it with its secrets."""
    response = client.get(f"/api/block_types/slug/{slug}/block_documents/name/{name}")
    assert response.status_code == 200, response.get_json()
    document_id = response.get_json()["id"]
    return client.get(f"/api/block_documents/{document_id}?include_secrets=true").get_json()


def document_id_of(location):
    return re.fullmatch(r"/blocks/([0-9a-f-]{36})", location).group(1)


def field_names(html):
    return re.findall(r'name="param\.([a-z_]+)"', html)


# ----------------------------------------------------------------------------- blocks


def test_the_catalog_offers_every_block_type_and_the_list_starts_empty(client, system_blocks):
    html = page(client, "/blocks/catalog")
    for slug in ("secret", "slack-webhook", "s3", "docker-container", "local-file-system"):
        assert f'href="/blocks/new/{slug}"' in html
    assert "notify" in html  # capabilities are listed
    assert "No saved blocks yet" in page(client, "/blocks")


def test_a_secret_block_made_in_the_form_is_saved_and_never_shown(client, system_blocks):
    form = page(client, "/blocks/new/secret")
    assert field_names(form) == ["value"]
    assert 'type="password"' in form
    response = post(
        client, "/blocks/new/secret", {"name": "db-password", "param.value": SECRET_VALUE}
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert stored(client, "secret", "db-password")["data"] == {"value": SECRET_VALUE}

    html = page(client, location)
    assert "db-password" in html and "secret/db-password" in html
    assert "**********" in html and SECRET_VALUE not in html
    listing = page(client, "/blocks")
    assert "db-password" in listing and SECRET_VALUE not in listing
    assert "db-password" in page(client, "/blocks?type=secret")
    assert "db-password" not in page(client, "/blocks?type=s3")
    assert SECRET_VALUE not in page(client, f"{location}/edit")


def test_refusals_are_shown_next_to_their_field(client, system_blocks):
    bad_name = post(client, "/blocks/new/secret", {"name": "Not Valid", "param.value": "x"})
    assert bad_name.status_code == 422
    assert "lowercase letters, numbers and dashes" in bad_name.get_data(as_text=True)

    missing = post(client, "/blocks/new/secret", {"name": "empty"})
    assert missing.status_code == 422
    assert re.search(r'class="field-error"[^>]*>Required', missing.get_data(as_text=True))

    wrong_type = post(client, "/blocks/new/slack-webhook", {"name": "hook", "param.url": ""})
    assert wrong_type.status_code == 422

    assert post(client, "/blocks/new/secret", {"name": "taken", "param.value": "1"}).status_code
    again = post(client, "/blocks/new/secret", {"name": "taken", "param.value": "2"})
    assert again.status_code == 409
    assert "already exists" in again.get_data(as_text=True)
    assert stored(client, "secret", "taken")["data"] == {"value": "1"}

    assert page(client, "/blocks/new/no-such-type", 404)
    assert page(client, f"/blocks/{uuid.uuid4()}", 404)
    assert page(client, "/blocks?type=no-such-type", 422)


def test_editing_keeps_an_untouched_secret_and_changes_a_new_one(client, system_blocks):
    make_block_document(
        client, "s3", {"bucket_path": "old", "aws_secret_access_key": SECRET_VALUE}, "store"
    )
    document = stored(client, "s3", "store")
    edit = page(client, f"/blocks/{document['id']}/edit")
    assert SECRET_VALUE not in edit and 'value="**********"' in edit

    response = post(
        client,
        f"/blocks/{document['id']}/edit",
        {"param.bucket_path": "new", "param.aws_secret_access_key": "**********"},
    )
    assert response.status_code == 303
    assert stored(client, "s3", "store")["data"] == {
        "bucket_path": "new",
        "aws_secret_access_key": SECRET_VALUE,
    }
    post(
        client,
        f"/blocks/{document['id']}/edit",
        {"param.bucket_path": "new", "param.aws_secret_access_key": "rotated"},
    )
    assert stored(client, "s3", "store")["data"]["aws_secret_access_key"] == "rotated"

    cleared = post(client, f"/blocks/{document['id']}/edit", {"param.bucket_path": ""})
    assert cleared.status_code == 422
    assert stored(client, "s3", "store")["data"]["bucket_path"] == "new"


def test_a_nested_block_is_chosen_among_the_saved_blocks_of_its_type(client, system_blocks):
    registry = make_block_document(
        client,
        "docker-registry",
        {"username": "me", "password": SECRET_VALUE, "registry_url": "registry.local"},
        "local-registry",
    )
    form = page(client, "/blocks/new/docker-container")
    assert f'<option value="{registry["id"]}"' in form

    refused = post(
        client,
        "/blocks/new/docker-container",
        {"name": "app", "param.image_registry": str(uuid.uuid4())},
    )
    assert refused.status_code == 422
    assert "Choose one of the listed blocks." in refused.get_data(as_text=True)

    response = post(
        client,
        "/blocks/new/docker-container",
        {"name": "app", "param.image": "app:1", "param.image_registry": registry["id"]},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[-800:]
    saved = stored(client, "docker-container", "app")
    assert saved["data"]["image"] == "app:1"
    assert (
        saved["block_document_references"]["image_registry"]["block_document"]["id"]
        == (registry["id"])
    )
    html = page(client, response.headers["Location"])
    assert f'href="/blocks/{registry["id"]}"' in html and SECRET_VALUE not in html
    edit = page(client, f"{response.headers['Location']}/edit")
    assert f'<option value="{registry["id"]}" selected' in edit


def test_a_block_a_deployment_uses_is_not_deleted_and_the_page_says_why(client, system_blocks):
    storage = make_block_document(client, "local-file-system", {"basepath": "/srv/flows"}, "code")
    deployment = make_deployment(
        client, make_flow(client), "nightly", storage_document_id=storage["id"]
    )
    html = page(client, f"/blocks/{storage['id']}")
    assert f'href="/deployments/{deployment["id"]}"' in html

    refused = post(client, f"/blocks/{storage['id']}/delete")
    assert refused.status_code == 409
    assert "etl/nightly" in refused.get_data(as_text=True)
    assert client.get(f"/api/block_documents/{storage['id']}").status_code == 200

    spare = make_block_document(client, "secret", {"value": "x"}, "spare")
    deleted = post(client, f"/blocks/{spare['id']}/delete")
    assert deleted.status_code == 303
    assert client.get(f"/api/block_documents/{spare['id']}").status_code == 404


def test_block_data_is_escaped(client, system_blocks):
    made = make_block_document(client, "string", {"value": EVIL}, "evil")
    html = page(client, f"/blocks/{made['id']}")
    assert EVIL not in html and "&lt;script&gt;" in html
    assert EVIL not in page(client, f"/blocks/{made['id']}/edit")


def test_forms_need_the_csrf_token(client, system_blocks):
    response = client.post("/blocks/new/secret", data={"name": "x", "param.value": "y"})
    assert response.status_code == 400
    assert client.post("/api/block_documents/filter", json={}).get_json() == []


# ----------------------------------------------------------------------------- notifications


@pytest.fixture
def slack(client, system_blocks):
    return make_block_document(client, "slack-webhook", {"url": "https://hooks.example/T/B"})


def policies(client):
    return client.post("/api/flow_run_notification_policies/filter", json={}).get_json()


def test_a_notification_made_in_the_form_is_listed_paused_edited_and_deleted(client, slack):
    assert "No notifications yet" in page(client, "/notifications")
    form = page(client, "/notifications/new")
    assert f'<option value="{slack["id"]}"' in form and "alerts (Slack Webhook)" in form

    response = post(
        client,
        "/notifications/new",
        {
            "state_names": ["Failed", "Crashed"],
            "tags": "prod, nightly",
            "block_document_id": slack["id"],
            "is_active": "on",
        },
    )
    assert response.status_code == 303
    (policy,) = policies(client)
    assert policy["state_names"] == ["Failed", "Crashed"]
    assert policy["tags"] == ["prod", "nightly"] and policy["is_active"]
    assert policy["message_template"] is None

    listing = page(client, "/notifications")
    assert "Crashed" in listing and "nightly" in listing and f"/blocks/{slack['id']}" in listing

    post(client, f"/notifications/{policy['id']}/active", {"active": "false"})
    assert policies(client)[0]["is_active"] is False
    assert "Resume" in page(client, "/notifications")
    post(client, f"/notifications/{policy['id']}/active", {"active": "true"})
    assert policies(client)[0]["is_active"] is True

    edit = page(client, f"/notifications/{policy['id']}/edit")
    assert 'value="Crashed" checked' in edit and 'value="prod, nightly"' in edit
    post(
        client,
        f"/notifications/{policy['id']}/edit",
        {
            "state_names": ["Completed"],
            "tags": "",
            "block_document_id": slack["id"],
            "message_template": "{flow_run_name} is {flow_run_state_name}",
            "is_active": "on",
        },
    )
    (changed,) = policies(client)
    assert changed["state_names"] == ["Completed"] and changed["tags"] == []
    assert changed["message_template"] == "{flow_run_name} is {flow_run_state_name}"

    assert post(client, f"/notifications/{policy['id']}/delete").status_code == 303
    assert policies(client) == []


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"message_template": "{nope}"}, "Invalid template variable"),
        ({"message_template": "{flow_run_name"}, "Invalid message template"),
        ({"block_document_id": ""}, "Choose the block to send through."),
        ({"block_document_id": "not-a-uuid"}, "Choose the block to send through."),
        ({"block_document_id": str(uuid.uuid4())}, "does not exist"),
        ({"state_names": ["Exploded"]}, "Unknown state name"),
    ],
)
def test_a_bad_notification_form_is_422_saying_what_is_wrong(client, slack, fields, named):
    body = {"state_names": ["Failed"], "block_document_id": slack["id"], **fields}
    response = post(client, "/notifications/new", body)
    assert response.status_code == 422
    assert named in response.get_data(as_text=True)
    assert policies(client) == []


def test_a_block_that_cannot_send_is_refused(client, slack):
    secret = make_block_document(client, "secret", {"value": "x"}, "not-a-hook")
    response = post(
        client, "/notifications/new", {"state_names": ["Failed"], "block_document_id": secret["id"]}
    )
    assert response.status_code == 422
    assert "slack-webhook or webhook" in response.get_data(as_text=True)


def test_unknown_notifications_are_404_and_bad_toggles_422(client, slack):
    assert page(client, f"/notifications/{uuid.uuid4()}/edit", 404)
    assert post(client, f"/notifications/{uuid.uuid4()}/delete").status_code == 404
    policy = make_policy(client, slack["id"])
    assert (
        post(client, f"/notifications/{policy['id']}/active", {"active": "maybe"}).status_code
        == 422
    )
    assert (
        post(client, f"/notifications/{uuid.uuid4()}/active", {"active": "true"}).status_code == 404
    )


def test_send_a_test_notification_to_a_real_receiver(client, system_blocks):
    with Receiver() as receiver:
        hook = make_block_document(client, "webhook", {"url": receiver.url + "/hook"}, "hook")
        policy = make_policy(
            client, hook["id"], message_template="{flow_run_name} went {flow_run_state_name}"
        )
        response = post(client, f"/notifications/{policy['id']}/test")
        assert response.status_code == 303
        assert "Sent a test notification through the webhook block" in page(
            client, "/notifications"
        )
        (sent,) = receiver.received()
        assert sent["path"] == "/hook"
        assert sent["json"]["body"] == "test-notification went Completed"

        receiver.status = 500
        post(client, f"/notifications/{policy['id']}/test")
        assert "was not sent: HTTP 500 from the receiver" in page(client, "/notifications")
    assert len(receiver.received()) == 2
    assert policies(client)[0]["is_active"]
