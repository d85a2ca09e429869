"""Dashboard sign-in with ORION_API_KEY set: the form, the session, htmx, sign-out; and the
open dashboard when no key is set."""

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from app.blueprints.ui.auth import key_matches

KEY = "s3cret-key"
HX = {"HX-Request": "true"}


@pytest.fixture
def guarded(make_app):
    """An app with an API key, and a test client for it."""
    app = make_app(API_KEY=KEY, SECRET_KEY="test-secret", PERMANENT_SESSION_LIFETIME=3600)
    return app.test_client()


def csrf_of(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, key=KEY, next_page="/"):
    form = client.get(f"/login?next={next_page}").get_data(as_text=True)
    return client.post(
        "/login", data={"api_key": key, "next": next_page, "csrf_token": csrf_of(form)}
    )


def test_without_a_key_the_dashboard_is_open(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Sign out" not in response.get_data(as_text=True)
    assert client.get("/login?next=/flows").headers["Location"] == "/flows"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/flow-runs?state=FAILED",
        "/flows",
        "/deployments",
        "/work-queues",
        "/concurrency-limits",
    ],
)
def test_pages_redirect_to_the_sign_in_form(guarded, path):
    response = guarded.get(path)
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path]


def test_the_form_has_a_labelled_key_field_and_no_navigation(guarded):
    html = guarded.get("/login?next=/flows").get_data(as_text=True)
    assert '<label for="api-key">API key</label>' in html
    assert 'id="api-key" type="password" name="api_key"' in html
    assert 'value="/flows"' in html
    assert 'aria-label="Main"' not in html and "Sign out" not in html


def test_a_wrong_key_shows_the_form_again_with_the_error(guarded):
    response = sign_in(guarded, key="nope")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "not this server&#39;s API key" in html and 'aria-invalid="true"' in html
    assert guarded.get("/").status_code == 303


def test_signing_in_opens_the_dashboard_and_goes_where_it_was_going(guarded):
    response = sign_in(guarded, next_page="/flows")
    assert response.status_code == 303 and response.headers["Location"] == "/flows"
    html = guarded.get("/flows").get_data(as_text=True)
    assert "Sign out" in html and 'aria-label="Main"' in html
    assert guarded.get("/", headers=HX).status_code == 200
    # Signed in, the form sends you on.
    assert guarded.get("/login?next=/deployments").headers["Location"] == "/deployments"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "flows", "/\\evil.example"]
)
def test_next_never_leaves_the_site(guarded, target):
    response = sign_in(guarded, next_page=target)
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_signing_in_needs_the_csrf_token(guarded):
    guarded.get("/login")
    response = guarded.post("/login", data={"api_key": KEY, "next": "/"})
    assert response.status_code == 400
    assert guarded.get("/").status_code == 303


def test_htmx_without_a_session_is_told_to_load_the_sign_in_page(guarded):
    response = guarded.get(
        "/flow-runs?state=FAILED",
        headers={**HX, "HX-Current-URL": "http://localhost/flow-runs?state=COMPLETED"},
    )
    assert response.status_code == 401
    redirect = urlsplit(response.headers["HX-Redirect"])
    assert redirect.path == "/login"
    assert parse_qs(redirect.query)["next"] == ["/flow-runs?state=COMPLETED"]
    assert 'name="api_key"' not in response.get_data(as_text=True)
    # An htmx POST (e.g. a bulk action) of an expired session gets the same, not a CSRF 400.
    post = guarded.post("/flow-runs/bulk", headers=HX)
    assert post.status_code == 401 and "HX-Redirect" in post.headers


def test_a_session_idle_past_its_lifetime_is_signed_out(make_app):
    app = make_app(API_KEY=KEY, SECRET_KEY="test-secret", PERMANENT_SESSION_LIFETIME=1)
    client = app.test_client()
    sign_in(client)
    assert client.get("/flows").status_code == 200
    time.sleep(2.2)  # the cookie's signature is now older than the lifetime
    assert client.get("/flows").status_code == 303


def test_changing_the_key_signs_everyone_out(make_app):
    first = make_app(API_KEY=KEY, SECRET_KEY="test-secret").test_client()
    sign_in(first)
    cookie = first.get_cookie("session")
    second = make_app(API_KEY="another-key", SECRET_KEY="test-secret").test_client()
    second.set_cookie("session", cookie.value)
    assert second.get("/").status_code == 303


def test_signing_out_ends_the_session(guarded):
    sign_in(guarded)
    html = guarded.get("/").get_data(as_text=True)
    response = guarded.post("/logout", data={"csrf_token": csrf_of(html)})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert guarded.get("/").status_code == 303


def test_static_files_never_set_the_session_cookie(guarded):
    sign_in(guarded)
    page = guarded.get("/")
    assert "session=" in page.headers.get("Set-Cookie", "")
    with guarded.get("/static/ui/favicon.svg") as asset:
        assert asset.status_code == 200 and "Set-Cookie" not in asset.headers


def test_the_api_still_wants_its_bearer_header(guarded):
    sign_in(guarded)
    assert guarded.post("/api/flows/filter", json={}).status_code == 401
    assert (
        guarded.post(
            "/api/flows/filter", json={}, headers={"Authorization": f"Bearer {KEY}"}
        ).status_code
        == 200
    )


def test_keys_are_compared_exactly():
    assert key_matches(KEY, KEY)
    assert not key_matches(KEY + "x", KEY) and not key_matches("", KEY)
    assert not key_matches(KEY.upper(), KEY)
