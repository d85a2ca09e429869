"""Variable pages through the Flask test client, on both backends: list, create, edit and
delete, refusals next to their field, escaping."""

import uuid

from tests.ui.test_deployment_pages import post
from tests.ui.test_pages import EVIL, page


def variables(client):
    return client.post("/api/variables/filter", json={}).get_json()


def test_create_edit_and_delete_a_variable(client):
    assert "No variables yet" in page(client, "/variables")
    response = post(
        client, "/variables", {"name": "warehouse_host", "value": "10.0.0.5", "tags": "prod, eu"}
    )
    assert response.status_code == 303
    (variable,) = variables(client)
    assert (variable["name"], variable["value"], variable["tags"]) == (
        "warehouse_host",
        "10.0.0.5",
        ["prod", "eu"],
    )
    listing = page(client, "/variables")
    assert "warehouse_host" in listing and "10.0.0.5" in listing and "eu" in listing

    edit = page(client, f"/variables/{variable['id']}/edit")
    assert 'value="warehouse_host"' in edit and "10.0.0.5</textarea>" in edit
    saved = post(
        client,
        f"/variables/{variable['id']}/edit",
        {"name": "warehouse_host", "value": "10.0.0.6", "tags": ""},
    )
    assert saved.status_code == 303
    (changed,) = variables(client)
    assert (changed["value"], changed["tags"]) == ("10.0.0.6", [])

    assert post(client, f"/variables/{variable['id']}/delete").status_code == 303
    assert variables(client) == []


def test_refusals_are_shown_next_to_their_field(client):
    bad = post(client, "/variables", {"name": "Not Valid", "value": "x"})
    assert bad.status_code == 422
    assert "lowercase letters, numbers, and underscores" in bad.get_data(as_text=True)
    long = post(client, "/variables", {"name": "long", "value": "x" * 5001})
    assert long.status_code == 422 and 'id="var-value-error"' in long.get_data(as_text=True)
    post(client, "/variables", {"name": "taken", "value": "1"})
    again = post(client, "/variables", {"name": "taken", "value": "2"})
    assert again.status_code == 409 and "already exists" in again.get_data(as_text=True)
    other = post(client, "/variables", {"name": "other", "value": "o"})
    assert other.status_code == 303
    other_id = next(v["id"] for v in variables(client) if v["name"] == "other")
    renamed = post(client, f"/variables/{other_id}/edit", {"name": "taken", "value": "o"})
    assert renamed.status_code == 409
    assert sorted((v["name"], v["value"]) for v in variables(client)) == [
        ("other", "o"),
        ("taken", "1"),
    ]
    assert page(client, f"/variables/{uuid.uuid4()}/edit", 404)
    assert post(client, f"/variables/{uuid.uuid4()}/delete").status_code == 404
    assert client.post("/variables", data={"name": "x", "value": "y"}).status_code == 400


def test_values_are_escaped(client):
    post(client, "/variables", {"name": "evil", "value": EVIL, "tags": EVIL})
    html = page(client, "/variables")
    assert EVIL not in html and "&lt;script&gt;" in html
