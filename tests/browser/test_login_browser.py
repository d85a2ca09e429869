"""Dashboard sign-in in real headless Chromium, against a live ``orion start`` with
ORION_API_KEY set (the page fixture of test_dashboard_browser: console errors fail the test,
requests off 127.0.0.1 are blocked)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import (  # noqa: F401  (fixtures)
    browser,
    page,
    pytestmark,
)
from tests.support import OrionServer

KEY = "browser-key-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server whose dashboard (and API) need the key ``KEY``."""
    home = tmp_path_factory.mktemp("orion-login")
    with OrionServer(
        home, home=home, api_key=KEY, SECRET_KEY="browser-secret", SERVER_WORKERS=1
    ) as orion:
        yield orion.url


def test_sign_in_use_htmx_after_the_session_ends_and_sign_out(page):
    page.expected_errors = ["401 (UNAUTHORIZED)"]
    page.goto("/flow-runs?state=FAILED")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("nav[aria-label=Main]")).to_have_count(0)

    page.get_by_label("API key").fill("wrong")
    page.get_by_label("API key").press("Enter")
    expect(page.locator("[role=alert]")).to_contain_text("not this server's API key")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("API key").fill(KEY)
    page.click("button:has-text('Sign in')")
    expect(page).to_have_url(re.compile(r"/flow-runs\?state=FAILED$"))
    expect(page.locator("#run-filter input[name=state][value=FAILED]")).to_be_checked()

    # The session ends (cookie gone); the next htmx request loads the sign-in page whole,
    # instead of swapping a piece of it into the list. Waiting for the page's own requests
    # first: one answered after the cookies are cleared would set the session cookie again.
    page.wait_for_load_state("networkidle")
    page.context.clear_cookies()
    page.check("#run-filter input[name=state][value=COMPLETED]")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("h1")).to_have_text("Sign in")
    expect(page.locator("#runs-results")).to_have_count(0)

    page.get_by_label("API key").fill(KEY)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(re.compile(r"/flow-runs\?state=FAILED$"))
    page.click("button:has-text('Sign out')")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
