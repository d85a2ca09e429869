"""Deployment pages in real headless Chromium against a live ``orion start`` (the server,
page and API fixtures of test_dashboard_browser: console errors fail the test, requests off
127.0.0.1 are blocked), and runs started there completed by a real agent process."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import (  # noqa: F401  (fixtures)
    api,
    browser,
    page,
    pytestmark,
    server,
)
from tests.support import ORION, orion_env, start_logged, stop_all, wait_for

# The agent's poll, scaled down from 10 s so a run is claimed within a second.
AGENT_POLL = 0.3
# Seconds a run started from the dashboard may take to reach Completed.
RUN_DEADLINE = 60

FLOWS = """
from client import flow
from client import task


@task
def shout(text, loud):
    return text.upper() if loud else text


@flow
def greet(who="world", times=1, loud=False):
    return [shout(f"hello {who}", loud) for _ in range(times)]
"""

SCHEMA = {
    "title": "Parameters",
    "type": "object",
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


def started_here(api, made):
    """The runs of deployment ``made`` started from the dashboard (not by its schedule)."""
    runs = api("POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [made["id"]]}}})
    return [run for run in runs if (run["idempotency_key"] or "").startswith("dashboard ")]


@pytest.fixture
def agent(server, tmp_path):
    """A real ``orion agent start -q browser`` process polling the live server; the flows of
    FLOWS are in ``agent.flows``."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "flows.py").write_text(FLOWS)
    env = orion_env(
        tmp_path / "home",
        ORION_API_URL=server + "/api",
        ORION_AGENT_QUERY_INTERVAL=AGENT_POLL,
        ORION_AGENT_PREFETCH_SECONDS=0,
        ORION_HEARTBEAT_SECONDS=0.5,
    )
    process = start_logged(
        [ORION, "agent", "start", "-q", "browser"],
        env=env,
        cwd=tmp_path,
        log_path=tmp_path / "agent.log",
    )
    process.flows = str(tmp_path / "flows")
    process.log = process.log_path
    yield process
    stop_all([process])


def wait_for_final_state(api, run_id, agent):
    """The run once its state is final (an agent log in the failure if it never is)."""

    def final():
        run = api("GET", f"/flow_runs/{run_id}")
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        if agent.poll() is not None:
            pytest.fail(f"the agent exited; agent log:\n{agent.log.read_text()}")
        return None

    return wait_for(
        final,
        RUN_DEADLINE,
        lambda: f"flow run {run_id} to end; agent log:\n{agent.log.read_text()}",
        interval=0.2,
    )


def test_custom_run_with_a_parameter_appears(page, api):
    made = deployment(
        api,
        "greeter",
        parameter_openapi_schema=SCHEMA,
        schedule={"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"},
    )
    page.goto("/deployments")
    row = page.locator("tr", has=page.locator(f"a[href='/deployments/{made['id']}']"))
    expect(row).to_contain_text("At 09:00, Monday through Friday")
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
    assert page.problems == [
        (
            "console: Failed to load resource: the server responded with a "
            "status of 422 (UNPROCESSABLE ENTITY)"
        )
    ]
    page.problems.clear()
    assert started_here(api, made) == []

    page.get_by_label(re.compile("^Who")).fill("Ada <b>")
    page.get_by_label(re.compile("^Loud")).select_option("true")
    page.get_by_label(re.compile("^Flow run name")).fill("greet-ada")
    page.click("button:has-text('Start the run')")
    expect(page).to_have_url(re.compile(r"/flow-runs/[0-9a-f-]{36}$"))
    expect(page.locator(".flash")).to_contain_text("Scheduled the flow run 'greet-ada' for now")
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
    # One run: the time axis spans a minute around it, not the run's own instant.
    low, high = page.evaluate(
        "() => { const x = document.querySelector('[data-durations-chart]').chart.scales.x;"
        " return [x.min, x.max]; }"
    )
    started = datetime.datetime.fromisoformat(
        api("GET", f"/flow_runs/{flow_run['id']}")["start_time"]
    ).timestamp()
    assert high - low >= 60 and low < started < high

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
    expect(
        page.locator(f"section:has(#upcoming-h) a[href='/deployments/{made['id']}']").first
    ).to_be_visible()


def test_run_and_custom_run_are_completed_by_an_agent(page, api, agent):
    made = deployment(
        api,
        "greeting",
        path=agent.flows,
        entrypoint="flows.py:greet",
        work_queue_name="browser",
        parameters={"who": "team"},
        parameter_openapi_schema=SCHEMA,
    )
    page.goto(f"/deployments/{made['id']}")
    # The form sent twice (Chromium itself drops the second submit of a double click, so
    # the first goes by fetch, as an earlier click whose page had not loaded yet): one run.
    first = page.evaluate("""() => {
        const form = document.querySelector("form[action$='/run']");
        return fetch(form.action, {method: "POST", body: new FormData(form)}).then(r => r.url);
    }""")
    page.click("button:has-text('Run')")
    expect(page).to_have_url(re.compile(r"/flow-runs/[0-9a-f-]{36}$"))
    assert page.url == first
    expect(page.locator(".flash")).to_contain_text("This form was already submitted")
    quick = page.url.rsplit("/", 1)[1]
    run = wait_for_final_state(api, quick, agent)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert [r["id"] for r in started_here(api, made)] == [quick]
    assert run["parameters"] == {"who": "team"}
    expect(page.locator("#run-state")).to_contain_text("Completed")  # live, no reload

    page.goto(f"/deployments/{made['id']}")
    page.click("text=Custom run…")
    page.get_by_label(re.compile("^Times")).fill("2")
    page.get_by_label(re.compile("^Loud")).select_option("true")
    page.get_by_label(re.compile("^Flow run name")).fill("loud-greeting")
    page.click("button:has-text('Start the run')")
    expect(page).to_have_url(re.compile(r"/flow-runs/[0-9a-f-]{36}$"))
    expect(page.locator(".flash")).to_contain_text(
        "Scheduled the flow run 'loud-greeting' for now: an agent polling the work queue "
        "'browser' will start it."
    )
    custom = page.url.rsplit("/", 1)[1]
    run = wait_for_final_state(api, custom, agent)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["parameters"] == {"who": "team", "times": 2, "loud": True}
    task_runs = api("POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [custom]}}})
    assert sorted(t["state"]["type"] for t in task_runs) == ["COMPLETED", "COMPLETED"]
    assert f"Claimed flow run {custom}" in agent.log.read_text()
    expect(page.locator("#run-state")).to_contain_text("Completed")  # live, no reload


def test_edit_a_deployment_with_a_wrong_field_explained(page, api):
    made = deployment(
        api,
        "editable",
        parameter_openapi_schema=SCHEMA,
        parameters={"who": "ann"},
        schedule={"interval": 3600},
        work_queue_name="old",
    )
    page.goto(f"/deployments/{made['id']}")
    page.click("text=Edit…")
    expect(page.locator("h1")).to_contain_text("Edit editable")
    expect(page.get_by_label(re.compile("^Who"))).to_have_value("ann")
    expect(page.get_by_label("Kind")).to_have_value("interval")
    page.get_by_label(re.compile("^Times")).fill("3")
    page.get_by_label(re.compile("^Tags")).fill("etl, nightly")
    page.get_by_label(re.compile("^Work queue")).fill("new")
    page.get_by_label("Kind").select_option("cron")
    page.get_by_label(re.compile("^Schedule")).fill("0 25 * * *")  # no hour 25
    page.get_by_label(re.compile("^Time zone")).fill("Europe/Berlin")
    page.click("button:has-text('Save')")
    # Not saved: the reason is next to the schedule, and everything typed is kept.
    expect(page.locator("[role=alert]")).to_contain_text("Not saved")
    schedule = page.locator(".field", has=page.get_by_label(re.compile("^Schedule")))
    expect(schedule.locator(".field-error")).to_contain_text("Invalid cron expression")
    expect(page.locator(".field-error")).to_have_count(1)
    expect(page.get_by_label(re.compile("^Schedule"))).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label(re.compile("^Times"))).to_have_value("3")
    expect(page.get_by_label(re.compile("^Work queue"))).to_have_value("new")
    assert page.problems == [
        (
            "console: Failed to load resource: the server responded with a "
            "status of 422 (UNPROCESSABLE ENTITY)"
        )
    ]
    page.problems.clear()
    assert api("GET", f"/deployments/{made['id']}")["work_queue_name"] == "old"

    page.get_by_label(re.compile("^Schedule")).fill("0 9 * * 1-5")
    page.click("button:has-text('Save')")
    expect(page).to_have_url(re.compile(rf"/deployments/{made['id']}$"))
    expect(page.locator(".flash")).to_contain_text("Saved the deployment 'editable'")
    expect(page.locator(".details")).to_contain_text("At 09:00, Monday through Friday")
    saved = api("GET", f"/deployments/{made['id']}")
    assert saved["parameters"] == {"who": "ann", "times": 3, "loud": False}
    assert saved["tags"] == ["etl", "nightly"] and saved["work_queue_name"] == "new"
    assert saved["schedule"]["cron"] == "0 9 * * 1-5"
    assert saved["schedule"]["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize("page", ["Asia/Kolkata"], indirect=True)
def test_custom_run_time_in_the_browsers_zone_lands_at_that_instant(page, api):
    """Kolkata is UTC+05:30 all year: 09:15 there is 03:45 UTC. (Chromium's ICU names the
    zone by its older key, Asia/Calcutta: both are IANA names the server reads.)"""
    made = deployment(api, "later")
    page.goto(f"/deployments/{made['id']}/custom-run")
    kolkata = re.compile(r"Asia/(Kolkata|Calcutta)")
    expect(page.locator("label[for=run-start] [data-zone-name]")).to_have_text(kolkata)
    zone = page.locator("label[for=run-start] [data-zone-name]").text_content()
    day = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)).date()
    page.get_by_label(re.compile("^Start at")).fill(f"{day}T09:15:00")
    page.click("button:has-text('Start the run')")
    expect(page).to_have_url(re.compile(r"/flow-runs/[0-9a-f-]{36}$"))
    expect(page.locator(".flash")).to_contain_text(
        f"for {day} 09:15:00 {zone} ({day} 03:45:00 UTC)"
    )
    run = api("GET", "/flow_runs/" + page.url.rsplit("/", 1)[1])
    due = datetime.datetime.fromisoformat(run["next_scheduled_start_time"])
    assert due == datetime.datetime.combine(day, datetime.time(3, 45), datetime.UTC)

    # The runs filter reads its times in the same zone and shows them back in it.
    page.goto("/flow-runs")
    expect(page.locator("#run-filter [data-zone-name]")).to_have_text(zone)
    page.locator("#run-filter input[name=start]").fill(f"{day}T09:15:00")
    page.locator("#run-filter input[name=start]").dispatch_event("change")
    expect(page).to_have_url(re.compile("tz=" + zone.replace("/", "%2F")))
    expect(page.locator("#runs-results")).to_contain_text("later")
    page.reload()
    expect(page.locator("#run-filter input[name=start]")).to_have_value(
        re.compile(rf"{day}T09:15(:00)?$")
    )
    page.locator("#run-filter input[name=start]").fill(f"{day}T09:16:00")
    page.locator("#run-filter input[name=start]").dispatch_event("change")
    expect(page.locator("#runs-results")).not_to_contain_text("later")
