"""Dashboard sessions that end: server-side rows (``dashboard_session``), sign-out for every
copy of a cookie, idle expiry, key changes, and the cookie's flags (both backends)."""

import datetime
import hashlib
import re

import pytest

from app.models import DashboardSession, utcnow
from app.services.dashboard_sessions import REFRESH_SECONDS

KEY = "s3cret-key"


@pytest.fixture
def guarded(make_app):
    return make_app(API_KEY=KEY, SECRET_KEY="test-secret", PERMANENT_SESSION_LIFETIME=3600)


def csrf_of(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client):
    form = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login", data={"api_key": KEY, "next": "/", "csrf_token": csrf_of(form)}
    )
    assert response.status_code == 303
    return response


def copy_of(app, client):
    """A second browser holding a copy of ``client``'s session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def is_signed_in(client):
    return client.get("/flow-runs").status_code == 200


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(guarded, db):
    browser = guarded.test_client()
    sign_in(browser)
    stolen = copy_of(guarded, browser)
    assert is_signed_in(browser) and is_signed_in(stolen)
    assert DashboardSession.select().count() == 1

    html = browser.get("/flow-runs").get_data(as_text=True)
    assert browser.post("/logout", data={"csrf_token": csrf_of(html)}).status_code == 303
    assert DashboardSession.select().count() == 0
    refused = stolen.get("/flow-runs")
    assert refused.status_code == 303
    assert refused.headers["Location"].startswith("/login")
    assert not is_signed_in(browser)


def test_the_table_holds_a_digest_of_the_token_not_the_token(guarded, db):
    browser = guarded.test_client()
    sign_in(browser)
    from flask.sessions import SecureCookieSessionInterface

    row = DashboardSession.get()
    cookie = browser.get_cookie("session").value
    token = SecureCookieSessionInterface().get_signing_serializer(guarded).loads(cookie)
    assert row.id == hashlib.sha256(token["signed_in"].encode()).hexdigest()
    assert row.id not in cookie
    assert len(row.id) == 64 and row.key_fingerprint != KEY
    assert KEY not in cookie


def test_an_idle_session_expires_and_a_used_one_is_refreshed(guarded, db):
    browser = guarded.test_client()
    sign_in(browser)
    long_ago = utcnow() - datetime.timedelta(seconds=REFRESH_SECONDS + 5)
    DashboardSession.update(last_seen=long_ago).execute()
    assert is_signed_in(browser)
    assert DashboardSession.get().last_seen > long_ago + datetime.timedelta(seconds=5)

    DashboardSession.update(last_seen=utcnow() - datetime.timedelta(seconds=3601)).execute()
    assert not is_signed_in(browser)


def test_signing_in_deletes_expired_sessions(guarded, db):
    old = guarded.test_client()
    sign_in(old)
    DashboardSession.update(last_seen=utcnow() - datetime.timedelta(days=2)).execute()
    sign_in(guarded.test_client())
    assert DashboardSession.select().count() == 1
    assert not is_signed_in(old)


def test_a_new_api_key_signs_everyone_out(guarded, make_app, db):
    browser = guarded.test_client()
    sign_in(browser)
    rekeyed = make_app(API_KEY="another-key", SECRET_KEY="test-secret")
    assert not is_signed_in(copy_of(rekeyed, browser))


def test_a_forged_token_signs_no_one_in(make_app, db):
    from flask.sessions import SecureCookieSessionInterface

    app = make_app(API_KEY=KEY, SECRET_KEY="test-secret")
    browser = app.test_client()
    # A validly signed cookie (as if SECRET_KEY leaked) whose token has no row.
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    browser.set_cookie("session", serializer.dumps({"signed_in": "made-up", "csrf_token": "x"}))
    assert not is_signed_in(browser)


@pytest.mark.parametrize(
    ("base_url", "forced", "secure"),
    [
        ("http://localhost", False, False),
        ("https://localhost", False, True),
        ("http://localhost", True, True),
    ],
)
def test_the_cookie_is_secure_over_https(make_app, db, base_url, forced, secure):
    app = make_app(API_KEY=KEY, SECRET_KEY="test-secret", SESSION_COOKIE_SECURE=forced)
    cookie = app.test_client().get("/login", base_url=base_url).headers["Set-Cookie"]
    assert ("; Secure" in cookie) is secure
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
