"""The dashboard in real headless Chromium against a real ``orion start`` process.

The server runs on its own SQLite database in a temp folder, on a port of ``ORION_TEST_PORTS``
(tests/support.py). Data is made through its REST API, as clients make it. Every request off
127.0.0.1 is blocked, and every page's console errors and uncaught exceptions are collected
and must stay empty.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_docs_browser import browser, needs_chromium  # noqa: F401  (fixture)
from tests.support import JsonApi, OrionServer, offline_page

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a live ``orion start`` (gunicorn) on a fresh SQLite database."""
    home = tmp_path_factory.mktemp("orion-dashboard")
    with OrionServer(home, home=home, SERVER_WORKERS=1) as orion:
        yield orion.url


class Api(JsonApi):
    """A tiny JSON client for the live server's REST API."""

    def __init__(self, base):
        super().__init__(base + "/api")

    def flow(self, name):
        return self("POST", "/flows/", {"name": name})

    def run(self, flow, state=None, **fields):
        body = {"flow_id": flow["id"], **fields}
        if state:
            body["state"] = {"type": state}
        return self("POST", "/flow_runs/", body)

    def set_state(self, run, state_type, kind="flow_runs"):
        return self(
            "POST", f"/{kind}/{run['id']}/set_state", {"state": {"type": state_type}, "force": True}
        )


@pytest.fixture(scope="module")
def api(server):
    return Api(server)


@pytest.fixture
def page(browser, server, request):
    """A fresh page on the live server; fails the test on any console error or page error.
    The browser's time zone is Europe/Paris, or another given by indirect parametrization
    (``@pytest.mark.parametrize("page", ["Asia/Kolkata"], indirect=True)``)."""
    zone = getattr(request, "param", "Europe/Paris")
    with offline_page(browser, base_url=server, timezone_id=zone) as new_page:
        # A test that expects an error response (a 422 form) takes its console line out of
        # ``page.problems`` itself.
        problems, blocked = new_page.problems, new_page.blocked
        # A test that provokes an error response on purpose names it here (a substring).
        new_page.expected_errors = []
        yield new_page
    assert [
        p for p in problems if not any(expected in p for expected in new_page.expected_errors)
    ] == []
    assert blocked == []


def listed_runs(page):
    return set(
        page.locator("#runs-results input[name=run]").evaluate_all(
            "boxes => boxes.map(b => b.value)"
        )
    )


def test_dashboard_renders_chart_and_local_times(page, api):
    flow = api.flow("dash-flow")
    api.set_state(api.run(flow), "COMPLETED")
    page.goto("/")
    expect(page.locator("#counts-h")).to_be_visible()
    page.locator("[data-history-chart] canvas").first.wait_for()
    stamp = page.locator("main time[datetime]").first
    expect(stamp).to_have_attribute("data-local", "")
    # Shown in the browser's zone (Paris: CET/GMT+1), with UTC kept on hover.
    assert not stamp.inner_text().endswith("UTC")
    assert re.search(r"GMT\+1|CET", stamp.inner_text())
    assert stamp.get_attribute("title").endswith(" UTC")
    page.select_option("select[name=window]", "week")
    expect(page).to_have_url(re.compile(r"window=week"))
    page.locator("[data-history-chart] canvas").first.wait_for()


def test_filter_updates_the_url_without_reload_and_back_restores(page, api):
    flow = api.flow("filter-flow")
    running = api.run(flow, name="filter-running")
    api.set_state(running, "RUNNING")
    pending = api.run(flow, name="filter-pending")
    page.goto("/flow-runs")
    assert {running["id"], pending["id"]} <= listed_runs(page)
    page.evaluate("window.__same_document = true")

    page.check("#run-filter input[name=state][value=RUNNING]")
    expect(page).to_have_url(re.compile(r"/flow-runs\?.*state=RUNNING"))
    expect(page.locator(f"#runs-results input[value='{pending['id']}']")).to_have_count(0)
    assert running["id"] in listed_runs(page)
    assert page.evaluate("window.__same_document") is True  # no full reload

    page.fill("#run-filter input[name=name]", "no-such-run")
    page.press("#run-filter input[name=name]", "Enter")
    expect(page).to_have_url(re.compile(r"name=no-such-run"))
    expect(page.locator("#runs-results")).to_contain_text("No flow runs match this filter")

    page.go_back()
    expect(page).to_have_url(re.compile(r"state=RUNNING"))
    expect(page.locator(f"#runs-results input[value='{running['id']}']")).to_have_count(1)
    expect(page.locator(f"#runs-results input[value='{pending['id']}']")).to_have_count(0)
    expect(page.locator("#run-filter input[name=state][value=RUNNING]")).to_be_checked()
    page.go_back()
    expect(page).to_have_url(re.compile(r"/flow-runs$"))
    expect(page.locator(f"#runs-results input[value='{pending['id']}']")).to_have_count(1)


def test_state_badge_and_logs_update_live(page, api):
    flow = api.flow("live-flow")
    run = api.run(flow, name="live-run")
    api.set_state(run, "RUNNING")
    page.goto(f"/flow-runs/{run['id']}")
    badge = page.locator("#run-state .badge")
    expect(badge).to_contain_text("Running")
    api(
        "POST",
        "/logs/",
        [
            {
                "name": "live",
                "level": 20,
                "message": "a line that arrived later",
                "timestamp": "2026-01-01T00:00:00+00:00",
                "flow_run_id": run["id"],
            }
        ],
    )
    expect(page.locator("#logs")).to_contain_text("a line that arrived later", timeout=10_000)
    api.set_state(run, "COMPLETED")
    expect(badge).to_contain_text("Completed", timeout=10_000)
    # Once finished, the page stops polling.
    expect(page.locator("#run-poll")).not_to_have_attribute("hx-trigger", re.compile("."))


def test_bulk_cancel_with_confirmation(page, api):
    flow = api.flow("bulk-flow")
    first = api.run(flow, name="bulk-first")
    second = api.run(flow, state="SCHEDULED", name="bulk-second")
    bystander = api.run(flow, name="bulk-bystander")
    page.goto(f"/flow-runs?flow={flow['id']}")
    page.check(f"input[name=run][value='{first['id']}']")
    page.check(f"input[name=run][value='{second['id']}']")
    page.click("#bulk button[value=cancel]")
    confirm = page.locator("#bulk-panel .confirm")
    expect(confirm).to_contain_text("Cancel 2 flow runs?")
    assert api("GET", f"/flow_runs/{first['id']}")["state"]["type"] == "PENDING"
    confirm.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("Cancelled 2 of 2 flow runs.")
    expect(page).to_have_url(re.compile(f"/flow-runs\\?flow={flow['id']}$"))
    for run in (first, second):
        assert api("GET", f"/flow_runs/{run['id']}")["state"]["type"] == "CANCELLED"
    assert api("GET", f"/flow_runs/{bystander['id']}")["state"]["type"] == "PENDING"
    expect(page.locator("#runs-results .badge.state-cancelled")).to_have_count(2)

    # "Select all" ticks every run of the page; a deletion then confirms all three.
    page.check("#runs-results input[data-select-all]")
    page.click("#bulk button[value=delete]")
    expect(confirm).to_contain_text("Delete 3 flow runs?")
    page.locator("#bulk-panel a", has_text="Keep them").click()
    expect(page.locator("#runs-results input[name=run]")).to_have_count(3)


def test_every_page_loads_without_errors(page, api):
    flow = api.flow("tour-flow")
    run = api.run(flow, name="tour-run")
    task = api(
        "POST",
        "/task_runs/",
        {"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0", "name": "tour-task"},
    )
    api("POST", "/concurrency_limits/", {"tag": "tour", "concurrency_limit": 2})
    for path, heading in [
        ("/flows", "Flows"),
        (f"/flows/{flow['id']}", "tour-flow"),
        (f"/task-runs/{task['id']}", "tour-task"),
        ("/concurrency-limits", "Concurrency limits"),
        ("/artifacts", "Artifacts"),
        ("/work-queues", "Work queues"),
        ("/work-queues/new", "New work queue"),
        (f"/flow-runs/{run['id']}/logs", "Logs of tour-run"),
    ]:
        page.goto(path)
        expect(page.locator("h1")).to_contain_text(heading)
    page.goto("/flows")
    page.fill("input[name=name]", "tour")
    page.press("input[name=name]", "Enter")
    expect(page).to_have_url(re.compile(r"/flows\?name=tour$"))
    expect(page.locator("#flows-results a", has_text="tour-flow")).to_have_count(1)


def test_work_queue_create_errors_pause_copy_and_delete(page, api):
    flow = api.flow("queue-flow")
    page.goto("/")
    page.locator("header nav a", has_text="Work queues").click()
    expect(page.locator("h1")).to_contain_text("Work queues")
    page.locator("main a", has_text="New work queue").click()
    page.fill("#wq-name", "browser-queue")
    page.fill("#wq-limit", "many")
    page.expected_errors.append("status of 422")
    page.click("#work-queue-form button[type=submit]")
    expect(page.locator("#concurrency_limit-error")).to_contain_text("whole number")
    expect(page.locator("#wq-name")).to_have_value("browser-queue")
    page.fill("#wq-limit", "3")
    page.click("#work-queue-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("browser-queue")
    expect(page.locator(".flash")).to_contain_text("Created the work queue")

    run = api.run(flow, name="queued-run", state="SCHEDULED", work_queue_name="browser-queue")
    page.reload()
    expect(page.locator("main")).to_contain_text("queued-run")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button[data-copy]")
    expect(page.locator("[data-copy-status]")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == "orion agent start -q browser-queue"

    page.goto("/work-queues")
    row = page.locator("tr", has_text="browser-queue")
    row.locator("button", has_text="Pause").click()
    expect(page.locator(".flash")).to_contain_text("Paused the work queue 'browser-queue'")
    expect(page.locator("tr", has_text="browser-queue")).to_contain_text("Paused")
    queue = api("GET", "/work_queues/name/browser-queue")
    assert queue["is_paused"] is True
    assert api("POST", f"/work_queues/{queue['id']}/get_runs", {}) == []
    page.locator("tr", has_text="browser-queue").locator("button", has_text="Resume").click()
    expect(page.locator("tr", has_text="browser-queue")).to_contain_text("Pause")
    assert api("GET", f"/work_queues/{queue['id']}")["is_paused"] is False

    page.locator("a", has_text="browser-queue").click()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button.danger")
    expect(page.locator("h1")).to_contain_text("browser-queue")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.danger")
    expect(page.locator(".flash")).to_contain_text("Deleted the work queue")
    assert api("GET", f"/flow_runs/{run['id']}")["work_queue_name"] == "browser-queue"


def test_a_delete_clicked_while_the_page_script_loads_still_asks(page, api):
    """A destructive form asks before submitting from the moment its button can be clicked:
    the script that asks runs before the page's body is parsed, however slowly it loads."""
    queue = api("POST", "/work_queues/", {"name": "slow-script-queue"})
    dialogs = []

    def slow(route):
        page.wait_for_timeout(1500)
        route.continue_()

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.route("**/static/ui/orion.js*", slow)
    page.once("dialog", dismiss)
    page.goto(f"/work-queues/{queue['id']}", wait_until="commit")
    page.click("button.danger")
    expect(page.locator("h1")).to_contain_text("slow-script-queue")
    assert dialogs == ["Delete the work queue slow-script-queue? Its flow runs are kept."]
    assert api("GET", f"/work_queues/{queue['id']}")["name"] == "slow-script-queue"


def test_global_limit_create_errors_edit_reset_and_delete(page, api):
    page.goto("/concurrency-limits")
    page.locator("summary", has_text="New global limit").click()
    page.fill("#gcl-name", "browser/limit")
    page.fill("#gcl-limit", "2")
    page.expected_errors.append("status of 422")
    page.locator("details.new-global-limit button[type=submit]").click()
    expect(page.locator("#gcl-name-error")).to_contain_text("invalid characters")
    page.fill("#gcl-name", "browser-limit")
    page.locator("details.new-global-limit button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("Created the global limit 'browser-limit'")
    row = page.locator("#global-h ~ table tr", has_text="browser-limit")
    expect(row).to_contain_text("0 of 2")

    api("POST", "/v2/concurrency_limits/increment", {"names": ["browser-limit"], "slots": 2})
    page.reload()
    expect(row).to_contain_text("2 of 2")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button", has_text="Reset").click()
    expect(page.locator(".flash")).to_contain_text("Freed every slot")
    expect(row).to_contain_text("0 of 2")

    row.locator("a", has_text="Edit").click()
    page.fill("#gcl-decay", "0.5")
    page.uncheck("input[name=active]")
    page.click("form.run-form button[type=submit]")
    expect(row).to_contain_text("rate limit, 0.5 slots freed a second")
    expect(row).to_contain_text("(inactive)")
    assert api("GET", "/v2/concurrency_limits/browser-limit")["active"] is False

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.danger").click()
    expect(page.locator(".flash")).to_contain_text("Deleted the global limit")
    expect(page.locator("#global-h ~ p.empty")).to_be_visible()


def test_bulk_cancel_of_the_whole_filter(page, api):
    flow = api.flow("whole-filter-flow")
    # More than one batch (200): the progress panel posts the second batch by itself.
    runs = [api.run(flow, name=f"whole-{index}") for index in range(203)]
    other = api.run(api.flow("whole-filter-other"), name="whole-other")
    page.goto(f"/flow-runs?flow={flow['id']}")
    page.click("#bulk-filter button[value=cancel]")
    confirm = page.locator("#bulk-panel .confirm")
    expect(confirm).to_contain_text("Cancel 203 flow runs matching this filter?")
    expect(confirm).to_contain_text("flow whole-filter-flow")
    confirm.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text(
        "Cancelled 203 of 203 flow runs.", timeout=30_000
    )
    expect(page).to_have_url(re.compile(f"/flow-runs\\?flow={flow['id']}$"))
    for run in runs:
        assert api("GET", f"/flow_runs/{run['id']}")["state"]["type"] == "CANCELLED"
    assert api("GET", f"/flow_runs/{other['id']}")["state"]["type"] == "PENDING"


def test_long_run_names_wrap_rather_than_widen_the_page(page, api):
    """Run names may be 2,000 bytes of unbroken text (made from parameters: paths, keys)."""
    flow = api.flow("long-names-flow")
    run = api.run(flow, name="run-" + "r" * 1996)
    task = api(
        "POST",
        "/task_runs/",
        {"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0", "name": "t" * 2000},
    )
    for path in [
        "/",
        "/flow-runs",
        f"/flow-runs/{run['id']}",
        f"/flow-runs/{run['id']}/logs",
        f"/task-runs/{task['id']}",
        f"/flows/{flow['id']}",
    ]:
        page.goto(path)
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > window.innerWidth).map(e => e.tagName + '.' + e.className + ' ' + (e.parentElement"
            " ? e.parentElement.tagName : '')).slice(-8)"
        )
        assert widths[0] <= widths[1], (path, widths, wide)
