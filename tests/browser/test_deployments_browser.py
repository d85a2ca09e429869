"""Deployment pages in real headless Chromium against a live ``orion start`` (the server,
page and API fixtures of test_dashboard_browser: console errors fail the test, requests off
127.0.0.1 are blocked)."""
import re

from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import (  # noqa: F401  (fixtures)
    api,
    browser,
    page,
    pytestmark,
    server,
)

SCHEMA = {
    "title": "Parameters", "type": "object",
    "properties": {
        "who": {"title": "Who", "type": "string", "position": 0},
        "times": {"title": "Times", "type": "integer", "default": 1, "position": 1},
        "loud": {"title": "Loud", "type": "boolean", "default": False, "position": 2},
    },
    "required": ["who"],
}


def deployment(api, name, **fields):
    flow = api.flow(f"{name}-flow")
    return api("POST", "/deployments/", {"name": name, "flow_id": flow["id"], **fields})


def test_custom_run_with_a_parameter_appears(page, api):
    made = deployment(api, "greeter", parameter_openapi_schema=SCHEMA,
                      schedule={"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"})
    page.goto("/deployments")
    row = page.locator("tr", has=page.locator(f"a[href='/deployments/{made['id']}']"))
    expect(row).to_contain_text("On weekdays at 09:00")
    expect(row).to_contain_text("(Europe/Berlin)")
    row.locator(f"a[href='/deployments/{made['id']}']").click()

    expect(page.locator("h1")).to_contain_text("greeter")
    next_times = page.locator("section:has(#next-h) tbody time")
    expect(next_times).to_have_count(10)
    expect(next_times.first).to_have_attribute("data-local", "")  # browser's zone, UTC on hover
    expect(page.locator("section:has(#next-h) tbody tr").first).to_contain_text("09:00:00 CE")

    page.click("text=Custom run…")
    expect(page.locator("h1")).to_contain_text("Custom run of greeter")
    expect(page.get_by_label(re.compile("^Times"))).to_have_value("1")
    page.get_by_label(re.compile("^Times")).fill("4")
    page.click("button:has-text('Start the run')")
    # Nothing started: the error is next to the field left empty, the values typed are kept.
    who = page.locator(".field", has=page.get_by_label(re.compile("^Who")))
    expect(who.locator(".field-error")).to_contain_text("Required")
    expect(page.get_by_label(re.compile("^Times"))).to_have_value("4")
    assert page.problems == ["console: Failed to load resource: the server responded with a "
                             "status of 422 (UNPROCESSABLE ENTITY)"]
    page.problems.clear()
    assert api("POST", "/flow_runs/filter", {
        "deployments": {"id": {"any_": [made["id"]]}},
        "flow_runs": {"state": {"type": {"any_": ["PENDING"]}}}}) == []

    page.get_by_label(re.compile("^Who")).fill("Ada <b>")
    page.get_by_label(re.compile("^Loud")).select_option("true")
    page.get_by_label(re.compile("^Flow run name")).fill("greet-ada")
    page.click("button:has-text('Start the run')")
    expect(page).to_have_url(re.compile(r"/flow-runs/[0-9a-f-]{36}$"))
    expect(page.locator(".flash")).to_contain_text("Created the flow run 'greet-ada'")
    expect(page.locator("h1")).to_contain_text("greet-ada")
    expect(page.locator("section:has(#params-h) pre")).to_contain_text('"who": "Ada <b>"')
    run = api("GET", "/flow_runs/" + page.url.rsplit("/", 1)[1])
    assert run["parameters"] == {"who": "Ada <b>", "times": 4, "loud": True}
    assert run["deployment_id"] == made["id"]

    page.goto(f"/deployments/{made['id']}")
    expect(page.locator("section:has(#recent-h)")).to_contain_text("greet-ada")


def test_quick_run_pause_resume_and_durations(page, api):
    made = deployment(api, "hourly", schedule={"interval": 3600}, parameters={"n": 1})
    flow_run = api("POST", f"/deployments/{made['id']}/create_flow_run", {"name": "done-run"})
    api.set_state(flow_run, "RUNNING")
    api.set_state(flow_run, "COMPLETED")
    page.goto(f"/deployments/{made['id']}")
    page.locator("[data-durations-chart] canvas").first.wait_for()

    page.click("button:has-text('Run')")
    expect(page).to_have_url(re.compile(r"/flow-runs/[0-9a-f-]{36}$"))
    run = api("GET", "/flow_runs/" + page.url.rsplit("/", 1)[1])
    assert run["parameters"] == {"n": 1} and run["deployment_id"] == made["id"]

    page.goto(f"/deployments/{made['id']}")
    page.click("button:has-text('Pause')")
    expect(page.locator(".flash")).to_contain_text("Paused the schedule")
    expect(page.locator("section:has(#next-h)")).to_contain_text("The schedule is paused")
    assert api("GET", f"/deployments/{made['id']}")["is_schedule_active"] is False

    # The list's toggle resumes it and stays on the list.
    page.goto("/deployments?name=hourly")
    page.click(f"form[action='/deployments/{made['id']}/resume'] button")
    expect(page.locator(".flash")).to_contain_text("Resumed the schedule")
    expect(page).to_have_url(re.compile(r"/deployments\?name=hourly$"))
    assert api("GET", f"/deployments/{made['id']}")["is_schedule_active"] is True

    # The flow's page lists the deployment, and the dashboard's upcoming runs link to it.
    page.goto(f"/flows/{made['flow_id']}")
    page.click(f"section:has(#deployments-h) a[href='/deployments/{made['id']}']")
    expect(page.locator("h1")).to_contain_text("hourly")
    page.goto("/")
    expect(page.locator(f"section:has(#upcoming-h) a[href='/deployments/{made['id']}']").first
           ).to_be_visible()
