"""/docs (Swagger UI) and /redoc (ReDoc) render in real headless Chromium, offline, under
the Content-Security-Policy (app/security.py); so do the dashboard's pages.

The real app is served by werkzeug in a background thread on a free port (SQLite in a temp
folder; tests.support.serving_in_thread). Every request that is not for 127.0.0.1 is blocked
and recorded, so a page that needed a CDN would fail to render here. Every CSP violation
(the page's ``securitypolicyviolation`` events and Chromium's console reports) is recorded
and must stay empty.
"""

import os
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from app import create_app, migrations
from app.db import database
from tests.support import JsonApi, free_port, serving_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: The mark of every browser test module (as its ``pytestmark``).
needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is not installed (scripts/test installs it: apt-get install chromium)",
)
pytestmark = needs_chromium


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """URL of a live Orion server on its own SQLite database."""
    home = tmp_path_factory.mktemp("orion-browser")
    # The database proxy is process-wide: hand it back to the test session's app afterwards.
    previous = database.obj
    app = create_app(
        {
            "TESTING": True,
            "HOME": str(home),
            "DATABASE_URL": f"sqlite:///{home / 'orion.db'}",
            "REDIS_URL": None,
            "API_KEY": None,
        }
    )
    with database.connection_context():
        migrations.upgrade(database)
    with serving_in_thread(make_server("127.0.0.1", free_port(), app, threaded=True)) as server:
        yield f"http://127.0.0.1:{server.server_port}"
    database.obj.close_all()
    if previous is not None:
        database.initialize(previous)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Records the page's CSP violations before any of its scripts run.
_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


class Visit:
    """One page load: the page, the off-host requests that were blocked, the page errors,
    the CSP violations (:meth:`csp_violations`)."""

    def __init__(self, context, url):
        self.blocked = []
        self.errors = []
        self.console_csp = []
        context.route("**/*", self._route)
        self.page = context.new_page()
        # ReDoc can take long to render its document on a loaded machine.
        self.page.set_default_timeout(60_000)
        self.page.add_init_script(_RECORD_VIOLATIONS)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.goto(url)

    def _console(self, message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console_csp.append(message.text)

    def csp_violations(self):
        """Every CSP violation so far: the page's events, then the console's reports."""
        return self.page.evaluate("window.__cspViolations") + self.console_csp

    def _route(self, route):
        request = route.request
        if urlsplit(request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.blocked.append((request.resource_type, request.url))
            route.abort()


@pytest.fixture
def visit(browser, base_url):
    """Open a path of the live server in a fresh browser context."""
    context = browser.new_context()

    def open_path(path):
        return Visit(context, base_url + path)

    yield open_path
    context.close()


def test_swagger_ui_renders_operations(visit):
    docs = visit("/docs")

    docs.page.locator(".opblock").first.wait_for()
    assert docs.page.locator(".opblock").count() >= 1
    assert "Orion" in docs.page.locator(".info .title").inner_text()
    assert docs.errors == []
    assert docs.blocked == []
    assert docs.csp_violations() == []


def test_redoc_renders_operations(visit):
    redoc = visit("/redoc")

    # Operation sections are "tag/<tag>/operation/<operationId>", or ".../paths/<path>/<method>"
    # when the operation has no operationId.
    operations = redoc.page.locator(
        "[data-section-id*='/operation/'], [data-section-id*='/paths/']"
    )
    operations.first.wait_for()
    assert operations.count() >= 1
    assert "Orion" in redoc.page.locator("h1").first.inner_text()
    assert redoc.errors == []
    # ReDoc's only off-host request is the "API docs by Redocly" footer logo; it fails
    # harmlessly. No script, style sheet or data may come from elsewhere.
    assert [kind for kind, _ in redoc.blocked if kind != "image"] == [], redoc.blocked
    assert redoc.csp_violations() == []
    # Its search (a worker made from a blob) works under the policy.
    redoc.page.get_by_placeholder("Search...").fill("flow")
    redoc.page.locator("[data-role='search:results'] li").first.wait_for()
    assert redoc.csp_violations() == []


def _post(base_url, path, body):
    return JsonApi(base_url + "/api", timeout=30)("POST", path, body)


def test_dashboard_pages_run_under_the_policy(visit, base_url):
    flow = _post(base_url, "/flows/", {"name": "csp-flow"})
    run = _post(base_url, "/flow_runs/", {"flow_id": flow["id"], "state": {"type": "RUNNING"}})
    paths = [
        "/",
        "/flow-runs",
        f"/flow-runs/{run['id']}",
        "/flows",
        f"/flows/{flow['id']}",
        "/deployments",
        "/work-queues",
        "/work-queues/new",
        "/concurrency-limits",
    ]
    for path in paths:
        page = visit(path)
        page.page.wait_for_load_state("networkidle")
        assert page.errors == [], path
        assert page.csp_violations() == [], path
        page.page.close()
    # htmx still works: a filter change swaps the runs list in place.
    runs = visit("/flow-runs")
    runs.page.check("#run-filter input[name=state][value=RUNNING]")
    runs.page.wait_for_url("**state=RUNNING**")
    runs.page.locator("#runs-results input[name=run]").first.wait_for()
    assert runs.csp_violations() == []
