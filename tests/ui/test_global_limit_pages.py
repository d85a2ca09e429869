"""Global concurrency limits on the concurrency limits page, through the Flask test client, on
both backends: listed with their slots in use after decay, created, edited, reset (leases
too) and deleted from forms checked by the API's schemas, refusals next to their field."""

import uuid

from tests.ui.test_deployment_pages import post
from tests.ui.test_pages import page

LIMITS = "/api/v2/concurrency_limits/"


def limits(client):
    return client.post(LIMITS + "filter", json={}).get_json()


def increment(client, name, slots, **extra):
    body = {"names": [name], "slots": slots, **extra}
    response = client.post(LIMITS + "increment", json=body)
    assert response.status_code == 200, response.get_json()


def test_create_edit_and_delete_a_global_limit(client):
    assert "No global concurrency limits" in page(client, "/concurrency-limits")
    created = post(
        client, "/concurrency-limits/global", {"name": "warehouse", "limit": "3", "active": "on"}
    )
    assert created.status_code == 303
    assert created.headers["Location"].endswith("/concurrency-limits#global-h")
    (limit,) = limits(client)
    assert (limit["name"], limit["limit"], limit["active"], limit["slot_decay_per_second"]) == (
        "warehouse",
        3,
        True,
        0.0,
    )
    increment(client, "warehouse", 2)
    listing = page(client, "/concurrency-limits")
    assert (
        "<code>warehouse</code>" in listing and "2 of 3" in listing and ">concurrency<" in listing
    )

    edit = page(client, f"/concurrency-limits/global/{limit['id']}/edit")
    assert 'value="warehouse"' in edit and 'value="3"' in edit and "checked" in edit
    saved = post(
        client,
        f"/concurrency-limits/global/{limit['id']}/edit",
        {"name": "github-api", "limit": "10", "slot_decay_per_second": "0.5"},
    )
    assert saved.status_code == 303
    (changed,) = limits(client)
    assert (changed["name"], changed["limit"], changed["active"]) == ("github-api", 10, False)
    assert changed["slot_decay_per_second"] == 0.5
    listing = page(client, "/concurrency-limits")
    assert "(inactive)" in listing and "rate limit, 0.5 slots freed a second" in listing

    assert post(client, f"/concurrency-limits/global/{limit['id']}/delete").status_code == 303
    assert limits(client) == []


def test_reset_frees_every_slot_and_drops_the_leases(client):
    client.post(LIMITS, json={"name": "db", "limit": 5})
    holder = str(uuid.uuid4())
    increment(client, "db", 2, holder=holder, lease_seconds=60)
    increment(client, "db", 1)
    (limit,) = limits(client)
    assert limit["active_slots"] == 3

    assert post(client, f"/concurrency-limits/global/{limit['id']}/reset").status_code == 303
    assert limits(client)[0]["active_slots"] == 0
    # A slot taken after the reset is not freed by the old holder's late give-back.
    increment(client, "db", 1)
    client.post(LIMITS + "decrement", json={"names": ["db"], "slots": 2, "holder": holder})
    assert limits(client)[0]["active_slots"] == 1


def test_refusals_are_shown_next_to_their_field(client):
    bad = post(client, "/concurrency-limits/global", {"name": "a/b", "limit": "-1"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="gcl-name-error"' in html and "invalid characters" in html
    assert 'id="gcl-limit-error"' in html
    assert 'value="a/b"' in html and '<details class="new-global-limit" open>' in html
    decay = post(
        client,
        "/concurrency-limits/global",
        {"name": "r", "limit": "1", "slot_decay_per_second": "x"},
    )
    assert decay.status_code == 422 and 'id="gcl-decay-error"' in decay.get_data(as_text=True)
    assert limits(client) == []

    post(client, "/concurrency-limits/global", {"name": "taken", "limit": "1"})
    again = post(client, "/concurrency-limits/global", {"name": "taken", "limit": "2"})
    assert again.status_code == 409 and "already exists" in again.get_data(as_text=True)
    post(client, "/concurrency-limits/global", {"name": "other", "limit": "1"})
    other = next(g for g in limits(client) if g["name"] == "other")
    renamed = post(
        client, f"/concurrency-limits/global/{other['id']}/edit", {"name": "taken", "limit": "1"}
    )
    assert renamed.status_code == 409
    emptied = post(
        client, f"/concurrency-limits/global/{other['id']}/edit", {"name": "", "limit": ""}
    )
    assert emptied.status_code == 422 and 'id="gcl-limit-error"' in emptied.get_data(as_text=True)
    assert sorted((g["name"], g["limit"]) for g in limits(client)) == [("other", 1), ("taken", 1)]


def test_unknown_limits_are_404_and_forms_need_the_csrf_token(client):
    missing = uuid.UUID(int=7)
    page(client, f"/concurrency-limits/global/{missing}/edit", status=404)
    assert post(client, f"/concurrency-limits/global/{missing}/reset").status_code == 404
    assert post(client, f"/concurrency-limits/global/{missing}/delete").status_code == 404
    refused = client.post("/concurrency-limits/global", data={"name": "x", "limit": "1"})
    assert refused.status_code == 400
    assert limits(client) == []
