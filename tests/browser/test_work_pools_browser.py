"""Work pool pages in real headless Chromium against a live ``orion start`` (the page and API
fixtures of test_dashboard_browser: console errors fail the test, requests off 127.0.0.1 are
blocked). The server here counts a worker offline 2 s after its heartbeat
(``ORION_AGENT_HEARTBEAT_TIMEOUT``), so the test sees one worker go offline without a long
wait."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import (  # noqa: F401  (fixtures)
    api,
    browser,
    page,
    pytestmark,
)
from tests.support import OrionServer

HEARTBEAT_TIMEOUT = 2
TEMPLATE = {
    "job_configuration": {"command": "{{ command }}"},
    "variables": {
        "type": "object",
        "properties": {"command": {"type": "string", "default": "<b>not bold</b>"}},
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a live ``orion start`` on a fresh SQLite database, with a 2 s heartbeat
    timeout."""
    home = tmp_path_factory.mktemp("orion-work-pools")
    with OrionServer(
        home, home=home, SERVER_WORKERS=1, AGENT_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT
    ) as orion:
        yield orion.url


def test_pools_list_pool_page_workers_and_pause(page, api):
    api("POST", "/work_pools/", {"name": "browser-pool", "type": "process"})
    api("PATCH", "/work_pools/browser-pool", {"base_job_template": TEMPLATE})
    api("POST", "/work_pools/browser-pool/workers/heartbeat", {"name": "gone-worker"})
    time.sleep(HEARTBEAT_TIMEOUT + 1)
    # Three intervals of 60 s: online for the rest of the test.
    api(
        "POST",
        "/work_pools/browser-pool/workers/heartbeat",
        {"name": "live-worker", "heartbeat_interval_seconds": 60},
    )

    page.goto("/")
    page.locator("nav a", has_text="Work pools").click()
    expect(page).to_have_url(re.compile(r"/work-pools$"))
    row = page.locator("tr", has_text="browser-pool")
    expect(row).to_contain_text("Ready")
    expect(row.locator(".workers-online")).to_have_text("1 online")
    expect(row.locator(".workers-offline")).to_have_text("1 offline")

    row.locator("a", has_text="browser-pool").click()
    expect(page.locator("h1")).to_contain_text("browser-pool")
    live = page.locator(".pool-workers tr", has_text="live-worker")
    gone = page.locator(".pool-workers tr", has_text="gone-worker")
    expect(live).to_contain_text("Online")
    expect(gone).to_contain_text("Offline")
    stamp = gone.locator("time")
    expect(stamp).to_contain_text("s ago")
    assert stamp.get_attribute("title").endswith(" UTC")
    template = page.locator("pre.json")
    expect(template).to_contain_text('"default": "<b>not bold</b>"')
    expect(template.locator("b")).to_have_count(0)

    # Dismissed: nothing happens; accepted: the pool is paused.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator(".actions button", has_text="Pause").click()
    expect(page.locator("h1")).to_contain_text("Ready")
    assert api("GET", "/work_pools/browser-pool")["is_paused"] is False
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".actions button", has_text="Pause").click()
    expect(page.locator(".flash")).to_contain_text("Paused the work pool 'browser-pool'")
    expect(page.locator("h1")).to_contain_text("Paused")
    assert api("GET", "/work_pools/browser-pool")["status"] == "PAUSED"
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".actions button", has_text="Resume").click()
    expect(page.locator(".flash")).to_contain_text("Resumed the work pool 'browser-pool'")
    assert api("GET", "/work_pools/browser-pool")["is_paused"] is False
