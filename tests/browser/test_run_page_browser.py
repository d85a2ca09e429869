"""A flow run's page in real headless Chromium against a real ``orion start``: one poll
keeps every section live, and the Cancel / Retry / Resume / Delete buttons, each confirmed,
end in the state the API promises."""

import re
import time

from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import api, browser, page, pytestmark, server  # noqa: F401 (fixtures)


def _state(api, run):
    return api("GET", f"/flow_runs/{run['id']}")["state"]


def test_one_poll_keeps_the_whole_page_live(page, api):
    flow = api.flow("radar-live")
    run = api.run(flow, name="radar-live-run")
    api.set_state(run, "RUNNING")
    polled = []
    page.on(
        "request",
        lambda request: polled.append(request.url) if request.headers.get("hx-request") else None,
    )
    page.goto(f"/flow-runs/{run['id']}")
    expect(page.locator("#run-state .badge")).to_contain_text("Running")
    expect(page.locator("#run-tasks")).to_contain_text("no task runs yet")

    task = api(
        "POST",
        "/task_runs/",
        {"flow_run_id": run["id"], "task_key": "fetch", "dynamic_key": "0", "name": "fetch-0"},
    )
    api.set_state(task, "RUNNING", kind="task_runs")
    api(
        "POST",
        "/logs/",
        [
            {
                "name": "task",
                "level": 20,
                "message": "fetching rows",
                "timestamp": "2026-01-01T00:00:00+00:00",
                "flow_run_id": run["id"],
                "task_run_id": task["id"],
            }
        ],
    )
    expect(page.locator(".timeline")).to_contain_text("fetch-0", timeout=10_000)
    expect(page.locator(".radar .radar-node.state-running")).to_have_count(1)
    log_row = page.locator("#logs tr", has_text="fetching rows")
    expect(log_row.locator("a")).to_have_text("fetch-0")  # the task run's name

    api.set_state(task, "COMPLETED", kind="task_runs")
    api.set_state(run, "COMPLETED")
    expect(page.locator("#run-state .badge")).to_contain_text("Completed", timeout=10_000)
    expect(page.locator(".task-counts")).to_contain_text("Completed 1")
    expect(page.locator(".tl-bar.state-completed")).to_have_count(1)
    expect(page.locator(".radar .radar-node.state-completed")).to_have_count(1)
    ended = page.locator("dl.details dt:text-is('Ended') + dd time")
    expect(ended).to_have_count(1)
    expect(page.locator("#history-h + table")).to_contain_text("Completed")
    expect(page.locator("#run-poll")).not_to_have_attribute("hx-trigger", re.compile("."))
    # One poll for the whole page: every htmx request went to the live fragment.
    assert polled and all("/live" in url for url in polled), polled
    count = len(polled)
    time.sleep(2.5)
    assert len(polled) == count  # and it stopped once the run finished


def test_task_runs_that_change_arrive_alone_and_take_their_place(page, api):
    flow = api.flow("radar-rows")
    run = api.run(flow, name="radar-rows-run")
    api.set_state(run, "RUNNING")
    tasks = []
    for i in range(3):
        task = api(
            "POST",
            "/task_runs/",
            {
                "flow_run_id": run["id"],
                "task_key": "load",
                "dynamic_key": str(i),
                "name": f"load-{i}",
            },
        )
        api.set_state(task, "RUNNING", kind="task_runs")
        tasks.append(task)
    page.goto(f"/flow-runs/{run['id']}")
    expect(page.locator(".tl-bar.state-running")).to_have_count(3)
    # Marks on what the poll must leave in place: the section and the drawn radar.
    page.evaluate("document.getElementById('run-tasks').dataset.kept = 'yes'")
    page.evaluate("document.querySelector('[data-radar]').dataset.kept = 'yes'")

    api.set_state(tasks[1], "COMPLETED", kind="task_runs")
    row = page.locator(f"#tl-{tasks[1]['id']}")
    expect(row.locator(".tl-bar")).to_have_class(re.compile("state-completed"), timeout=10_000)
    expect(page.locator("#run-task-counts")).to_contain_text("Completed 1")
    expect(page.locator("#run-task-counts")).to_contain_text("Running 2")
    # The radar's group bar took the new state without a new radar.
    page.locator(".radar [data-action=expand]").first.click()
    expect(page.locator(".radar .radar-cell.state-completed")).to_have_count(1)
    assert page.evaluate("document.getElementById('run-tasks').dataset.kept") == "yes"
    assert page.evaluate("document.querySelector('[data-radar]').dataset.kept") == "yes"
    # The row that came alone is on the same axis as the others: its bar ends where it
    # ended, the running bars reach the axis' end.
    bars = page.evaluate(
        """[...document.querySelectorAll('ol[data-timeline] .tl-bar')].map(
             b => [parseFloat(b.style.left), parseFloat(b.style.width)])"""
    )
    assert len(bars) == 3 and all(left >= 0 and left + width <= 100.5 for left, width in bars)
    assert bars[0][0] + bars[0][1] > 99 and bars[2][0] + bars[2][1] > 99
    expect(page.locator("[data-timeline-axis] time")).to_have_count(2)

    # Newer log records are appended to the table, in order, without drawing it again.
    def log(*seconds):
        records = [
            {
                "name": "flow",
                "level": 20,
                "message": f"record {s}",
                "timestamp": f"2099-01-01T00:00:0{s}+00:00",
                "flow_run_id": run["id"],
            }
            for s in seconds
        ]
        api("POST", "/logs/", records)

    log(0)
    expect(page.locator("#log-rows tr")).to_have_count(1, timeout=10_000)
    page.evaluate("document.getElementById('log-rows').dataset.kept = 'yes'")
    log(1, 2)
    expect(page.locator("#log-rows tr")).to_have_count(3, timeout=10_000)
    expect(page.locator("#log-rows tr").last).to_contain_text("record 2")
    assert page.evaluate("document.getElementById('log-rows').dataset.kept") == "yes"

    # The run's end brings its state and its task runs' last changes, and leaves the
    # timeline and the drawn radar (with the group opened above) in place.
    for task in (tasks[0], tasks[2]):
        api.set_state(task, "COMPLETED", kind="task_runs")
    api.set_state(run, "COMPLETED")
    expect(page.locator("#run-state .badge")).to_contain_text("Completed", timeout=10_000)
    expect(page.locator(".tl-bar.state-completed")).to_have_count(3)
    expect(page.locator(".radar .radar-cell.state-completed")).to_have_count(3)
    assert page.evaluate("document.getElementById('run-tasks').dataset.kept") == "yes"
    assert page.evaluate("document.querySelector('[data-radar]').dataset.kept") == "yes"


def _confirm(page, button, prompt):
    page.locator(".run-actions button", has_text=button).click()
    confirm = page.locator(".confirm")
    expect(confirm).to_contain_text(prompt)
    confirm.locator("button[type=submit]").click()


def test_cancel_from_the_run_page(page, api):
    flow = api.flow("radar-cancel")
    run = api.run(flow, state="SCHEDULED", name="radar-cancel-run")
    page.goto(f"/flow-runs/{run['id']}")
    _confirm(page, "Cancel", "Cancel 1 flow run?")
    expect(page).to_have_url(re.compile(f"/flow-runs/{run['id']}$"))
    expect(page.locator(".flash")).to_contain_text("Cancelled 1 of 1 flow run.")
    expect(page.locator("#run-state .badge")).to_contain_text("Cancelled")
    assert _state(api, run)["type"] == "CANCELLED"
    expect(page.locator(".run-actions button", has_text="Cancel")).to_have_count(0)


def test_retry_from_the_run_page(page, api):
    flow = api.flow("radar-retry")
    deployment = api("POST", "/deployments/", {"name": "radar-retry-d", "flow_id": flow["id"]})
    run = api.run(flow, name="radar-retry-run", deployment_id=deployment["id"])
    api.set_state(run, "FAILED")
    page.goto(f"/flow-runs/{run['id']}")
    _confirm(page, "Retry", "Retry 1 flow run?")
    expect(page.locator(".flash")).to_contain_text("Retried 1 of 1 flow run.")
    state = _state(api, run)
    assert (state["type"], state["name"]) == ("SCHEDULED", "AwaitingRetry")
    expect(page.locator("#run-state .badge")).to_contain_text("AwaitingRetry")


def test_resume_from_the_run_page(page, api):
    flow = api.flow("radar-resume")
    run = api.run(flow, name="radar-resume-run")
    api.set_state(run, "PAUSED")
    page.goto(f"/flow-runs/{run['id']}")
    _confirm(page, "Resume", "Resume flow run radar-resume-run?")
    expect(page.locator(".flash")).to_contain_text("it is Running now")
    assert _state(api, run)["type"] == "RUNNING"


def test_delete_from_the_run_page(page, api):
    flow = api.flow("radar-delete")
    run = api.run(flow, name="radar-delete-run")
    page.goto(f"/flow-runs/{run['id']}")
    page.locator(".run-actions button", has_text="Delete").click()
    expect(page.locator(".confirm")).to_contain_text("Delete 1 flow run?")
    assert page.request.get(f"/api/flow_runs/{run['id']}").status == 200  # not yet
    page.go_back()
    _confirm(page, "Delete", "Delete 1 flow run?")
    expect(page).to_have_url(re.compile(r"/flow-runs$"))
    expect(page.locator(".flash")).to_contain_text("Deleted 1 of 1 flow run.")
    response = page.request.get(f"/api/flow_runs/{run['id']}")
    assert response.status == 404
