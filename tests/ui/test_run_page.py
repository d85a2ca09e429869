"""A flow run's page through the Flask test client, on both backends: one live fragment that
one poll refreshes (state, times, task counts, timeline, graph, history, logs with task
names), and its Cancel / Retry / Resume / Delete buttons, each confirmed and CSRF-checked."""

import collections
import datetime
import json
import re
import uuid

from app.blueprints.ui import flow_runs as flow_runs_ui
from app.blueprints.ui.logs import log_rows
from tests.ui.test_bulk import deployment_of, state_of
from tests.ui.test_pages import (
    HX,
    csrf,
    make_flow,
    make_run,
    page,
    radar_members,
    radar_of,
    set_state,
)

LogRow = collections.namedtuple("LogRow", "timestamp level task_run_id name message")


def forms(html):
    """The actions the run page offers, by the label of their submit button."""
    head = html.split('class="run-actions"')[1].split("</div>")[0]
    return re.findall(r'<button type="submit"[^>]*>(\w+)</button>', head)


def _running_run_with_a_task(client):
    flow = make_flow(client, "live")
    run = make_run(client, flow, name="live-run")
    set_state(client, run, "RUNNING")
    task = client.post(
        "/api/task_runs/",
        json={"flow_run_id": run["id"], "task_key": "step", "dynamic_key": "0", "name": "step-0"},
    ).get_json()
    set_state(client, task, "RUNNING", kind="task_runs")
    client.post(
        "/api/logs/",
        json=[
            {
                "name": "task",
                "level": 20,
                "message": "working",
                "flow_run_id": run["id"],
                "task_run_id": task["id"],
                "timestamp": "2026-01-01T00:00:00+00:00",
            }
        ],
    )
    return run, task


def test_one_poll_refreshes_the_whole_live_part_until_the_run_ends(client):
    run, task = _running_run_with_a_task(client)
    html = page(client, f"/flow-runs/{run['id']}")
    # One polling element for the whole page, carrying the chosen log level.
    assert html.count('hx-trigger="every 2s"') == 1
    assert f'hx-get="/flow-runs/{run["id"]}/live?since=' in html
    assert 'hx-include="#log-level"' in html
    live = page(client, f"/flow-runs/{run['id']}/live", headers=HX)
    assert live.lstrip().startswith('<div id="run-poll"') and live.count("every 2s") == 1
    for section in ("run-head", "run-tasks", "run-history", "run-logs"):
        assert f'<div id="{section}" hx-swap-oob="true">' in live
    assert "Running</span>" in live and "working" in live
    assert f'<a href="/task-runs/{task["id"]}">step-0</a>' in live.split('id="logs-h"')[1]

    set_state(client, task, "COMPLETED", kind="task_runs")
    set_state(client, run, "COMPLETED", message="all done")
    live = page(client, f"/flow-runs/{run['id']}/live?level=0", headers=HX)
    assert 'hx-trigger="every' not in live  # the last fragment stops the polling
    assert "Completed</span>" in live and "all done" in live
    ended = live.split("<dt>Ended</dt><dd>")[1].split("</dd>")[0]
    assert "time" in ended  # a timestamp, no longer empty
    counts = live.split('class="task-counts"')[1].split("</p>")[0]
    assert "Completed</span> 1" in counts
    history = live.split('id="history-h"')[1].split("</section>")[0]
    assert history.count("Completed</span>") == 1 and "Running</span>" in history
    assert 'class="tl-bar state-completed"' in live
    assert [m[2] for m in radar_members(radar_of(live))] == ["COMPLETED"]


def test_the_log_level_travels_with_the_poll(client):
    run, _ = _running_run_with_a_task(client)
    live = page(client, f"/flow-runs/{run['id']}/live?level=40", headers=HX)
    assert "working" not in live and '<option value="40" selected>' in live
    page(client, f"/flow-runs/{run['id']}/live?level=7", 422)


def test_subflows_name_their_flow(client):
    run, task = _running_run_with_a_task(client)
    make_run(client, make_flow(client, "child-flow"), parent_task_run_id=task["id"])
    subflows = page(client, f"/flow-runs/{run['id']}").split('id="subflows-h"')[1]
    assert "child-flow" in subflows.split("</section>")[0]


def test_actions_follow_the_state(client):
    flow = make_flow(client)
    running = make_run(client, flow)
    set_state(client, running, "RUNNING")
    assert forms(page(client, f"/flow-runs/{running['id']}")) == ["Cancel", "Delete"]
    failed = make_run(client, flow, deployment_id=deployment_of(flow))
    set_state(client, failed, "FAILED")
    assert forms(page(client, f"/flow-runs/{failed['id']}")) == ["Retry", "Delete"]
    adhoc_failed = make_run(client, flow)
    set_state(client, adhoc_failed, "FAILED")
    assert forms(page(client, f"/flow-runs/{adhoc_failed['id']}")) == ["Delete"]
    paused = make_run(client, flow)
    set_state(client, paused, "PAUSED")
    assert forms(page(client, f"/flow-runs/{paused['id']}")) == ["Cancel", "Resume", "Delete"]


def test_cancel_confirms_then_cancels_and_comes_back(client):
    flow = make_flow(client)
    run = make_run(client, flow)
    set_state(client, run, "RUNNING")
    token = csrf(client)
    html = page(client, f"/flow-runs/{run['id']}")
    assert 'name="action" value="cancel"' in html
    data = {
        "csrf_token": token,
        "action": "cancel",
        "run": run["id"],
        "next": f"/flow-runs/{run['id']}",
    }
    confirm = client.post("/flow-runs/bulk", data=data)
    assert "Cancel 1 flow run?" in confirm.get_data(as_text=True)
    assert state_of(client, run) == ("RUNNING", "Running")
    done = client.post("/flow-runs/bulk", data={**data, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/flow-runs/{run['id']}")
    assert state_of(client, run) == ("CANCELLING", "Cancelling")
    scheduled = make_run(client, flow)
    set_state(client, scheduled, "SCHEDULED")
    client.post("/flow-runs/bulk", data={**data, "run": scheduled["id"], "confirm": "yes"})
    assert state_of(client, scheduled) == ("CANCELLED", "Cancelled")


def test_retry_schedules_a_failed_deployment_run_again(client):
    flow = make_flow(client)
    run = make_run(client, flow, deployment_id=deployment_of(flow))
    set_state(client, run, "CRASHED")
    client.post(
        "/flow-runs/bulk",
        data={
            "csrf_token": csrf(client),
            "action": "retry",
            "run": run["id"],
            "confirm": "yes",
            "next": f"/flow-runs/{run['id']}",
        },
    )
    assert state_of(client, run) == ("SCHEDULED", "AwaitingRetry")
    assert "Retried 1 of 1 flow run." in page(client, f"/flow-runs/{run['id']}")


def test_resume_confirms_then_resumes_through_the_resume_rule(client):
    flow = make_flow(client)
    run = make_run(client, flow)
    set_state(client, run, "PAUSED")
    url = f"/flow-runs/{run['id']}/resume"
    assert client.post(url).status_code == 400  # no CSRF token
    token = csrf(client)
    confirm = client.post(url, data={"csrf_token": token})
    assert "Resume flow run" in confirm.get_data(as_text=True)
    assert state_of(client, run) == ("PAUSED", "Paused")
    done = client.post(url, data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    assert state_of(client, run) == ("RUNNING", "Running")
    assert "it is Running now" in page(client, f"/flow-runs/{run['id']}")
    # Not paused any more: the resume API's refusal is shown, nothing changes.
    client.post(url, data={"csrf_token": token, "confirm": "yes"})
    assert "was not resumed: Cannot resume a flow run that is not paused." in page(
        client, f"/flow-runs/{run['id']}"
    )
    rescheduling = make_run(client, flow, deployment_id=deployment_of(flow))
    set_state(client, rescheduling, "RUNNING")
    set_state(client, rescheduling, "PAUSED", state_details={"pause_reschedule": True})
    client.post(
        f"/flow-runs/{rescheduling['id']}/resume", data={"csrf_token": token, "confirm": "yes"}
    )
    assert state_of(client, rescheduling) == ("SCHEDULED", "Resuming")


def test_delete_removes_the_run_and_lands_on_the_list(client):
    run, _ = _running_run_with_a_task(client)
    html = page(client, f"/flow-runs/{run['id']}")
    delete = html.split('value="delete"')[1].split("</form>")[0]
    assert 'name="next" value="/flow-runs"' in delete
    done = client.post(
        "/flow-runs/bulk",
        data={
            "csrf_token": csrf(client),
            "action": "delete",
            "run": run["id"],
            "confirm": "yes",
            "next": "/flow-runs",
        },
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/flow-runs")
    assert client.get(f"/api/flow_runs/{run['id']}").status_code == 404
    page(client, f"/flow-runs/{run['id']}", 404)


def _since(html):
    return re.search(r'/live\?since=([0-9a-f.-]+)"', html).group(1)


def _swapped(html):
    """The ids of the elements a poll's answer swaps in out of band, in order."""
    return re.findall(r'<\w+ id="([\w-]+)"[^>]* hx-swap-oob', html)


def _poll(client, run, since, level=0):
    return page(client, f"/flow-runs/{run['id']}/live?since={since}&level={level}", headers=HX)


def test_a_poll_redraws_only_the_sections_that_changed(client):
    run, task = _running_run_with_a_task(client)
    since = _since(page(client, f"/flow-runs/{run['id']}"))
    quiet = _poll(client, run, since)
    assert "hx-swap-oob" not in quiet and "every 2s" in quiet
    assert _since(quiet) == since

    client.post(
        "/api/logs/",
        json=[
            {
                "name": "task",
                "level": 20,
                "message": "late record",
                "flow_run_id": run["id"],
                "task_run_id": task["id"],
                "timestamp": "2025-01-01T00:00:00+00:00",
            }
        ],
    )
    # A record stamped before the newest shown: the table is drawn again, in time order.
    logs_only = _poll(client, run, since)
    assert _swapped(logs_only) == ["run-logs"]
    assert "late record" in logs_only
    since = _since(logs_only)
    # Records newer than those shown are appended.
    client.post(
        "/api/logs/",
        json=[
            {
                "name": "task",
                "level": 20,
                "message": f"record {i}",
                "flow_run_id": run["id"],
                "timestamp": f"2026-01-01T00:00:0{i + 1}+00:00",
            }
            for i in range(2)
        ],
    )
    appended = _poll(client, run, since)
    assert _swapped(appended) == ["log-rows"]
    assert 'hx-swap-oob="beforeend"' in appended
    assert appended.count("<tr ") == 2 and "working" not in appended
    since = _since(appended)

    # A task run that changed comes alone: its row, the counts, the radar's patch, and the
    # artifacts and subflows (cheap, and not marked by the task runs).
    set_state(client, task, "COMPLETED", kind="task_runs")
    tasks_only = _poll(client, run, since)
    assert _swapped(tasks_only) == [
        "run-task-counts",
        f"tl-{task['id']}",
        "radar-patch",
        "run-artifacts",
        "run-subflows",
    ]
    assert 'class="tl-bar state-completed"' in tasks_only
    assert re.search(r'data-start="\d+" data-end="\d+"', tasks_only)
    patch = re.search(r'id="radar-patch"[^>]*>(.*?)</script>', tasks_only).group(1)
    assert json.loads(patch) == [[task["id"], "step-0", "COMPLETED", "Completed", None]]
    # Another log level is another view of the logs: they are redrawn.
    other_level = _poll(client, run, _since(tasks_only), level=40)
    assert _swapped(other_level) == ["run-logs"]

    # The run's end redraws its head, history and logs; its task runs that changed still come
    # alone, so the timeline and the radar (its zoom, its opened groups) stay as they are.
    set_state(client, run, "COMPLETED")
    final = _poll(client, run, since)
    assert _swapped(final) == [
        "run-head",
        "run-task-counts",
        f"tl-{task['id']}",
        "radar-patch",
        "run-artifacts",
        "run-subflows",
        "run-history",
        "run-logs",
    ]
    assert "every 2s" not in final


def test_a_task_run_added_or_many_changed_redraw_the_whole_task_section(client, monkeypatch):
    run, task = _running_run_with_a_task(client)
    since = _since(page(client, f"/flow-runs/{run['id']}"))
    other = client.post(
        "/api/task_runs/",
        json={"flow_run_id": run["id"], "task_key": "step", "dynamic_key": "1", "name": "step-1"},
    ).get_json()
    added = _poll(client, run, since)
    assert _swapped(added) == ["run-tasks"]
    assert "step-1" in added and "data-timeline" in added

    monkeypatch.setattr(flow_runs_ui, "TASK_CHANGES_SENT_ALONE", 1)
    since = _since(added)
    set_state(client, task, "COMPLETED", kind="task_runs")
    set_state(client, other, "RUNNING", kind="task_runs")
    assert _swapped(_poll(client, run, since)) == ["run-tasks"]


def test_rows_updated_just_before_the_newest_seen_are_sent_again(client):
    # A transaction that stamped its row before another's but committed after it: the page's
    # mark already names the newer time, and the older row must still arrive.
    run, task = _running_run_with_a_task(client)
    since = _since(page(client, f"/flow-runs/{run['id']}"))
    set_state(client, task, "COMPLETED", kind="task_runs")
    marks = since.split("-")
    count, micros = marks[1].split(".")
    later = int(micros, 16) + 60_000_000  # the page "saw" an update a minute newer
    marks[1] = f"{count}.{later:x}"
    assert f"tl-{task['id']}" not in _swapped(_poll(client, run, "-".join(marks)))
    marks[1] = f"{count}.{int(micros, 16) + 2_000_000:x}"  # within the margin
    assert f"tl-{task['id']}" in _swapped(_poll(client, run, "-".join(marks)))


def test_marks_that_the_page_did_not_give_are_a_422(client):
    run, _ = _running_run_with_a_task(client)
    for since in (
        "abc",
        "x" * 12 + "-1.0-" + "0" * 12,
        "0" * 12 + "-" + "0" * 12 + "-" + "0" * 12,
        "-".join(["0" * 12, "1.0", "0" * 12, "0" * 12]),
        "0" * 12 + "-1.0-" + "1.0",
    ):
        html = page(client, f"/flow-runs/{run['id']}/live?since={since}", 422, headers=HX)
        assert "since" in html


def test_the_pages_say_where_a_run_and_a_task_run_ran(client):
    from tests.notification_helpers import install_system_blocks, make_block_document

    install_system_blocks(client)
    block = make_block_document(client, "docker-container", {"image": "flows:1"}, "in-docker")
    flow = make_flow(client)
    run = make_run(client, flow, infrastructure_document_id=block["id"])
    response = client.patch(
        f"/api/flow_runs/{run['id']}", json={"infrastructure_pid": "unix:///d.sock:4f2a9c"}
    )
    assert response.status_code == 204, response.get_json()
    html = page(client, f"/flow-runs/{run['id']}")
    ran_on = html.split("<dt>Ran on</dt><dd>")[1].split("</dd>")[0]
    assert "Docker Container" in ran_on and f'href="/blocks/{block["id"]}"' in ran_on
    assert "unix:///d.sock:4f2a9c" in ran_on and "exit code" not in ran_on
    client.patch(f"/api/flow_runs/{run['id']}", json={"infrastructure_exit_code": 0})
    ran_on = page(client, f"/flow-runs/{run['id']}").split("<dt>Ran on</dt><dd>")[1]
    assert ran_on.split("</dd>")[0].endswith("</code> · exit code 0")
    plain = make_run(client, flow)
    assert "<dt>Ran on</dt>" not in page(client, f"/flow-runs/{plain['id']}")

    task = client.post(
        "/api/task_runs/", json={"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0"}
    ).get_json()
    details = {"task_runner": "DaskTaskRunner", "worker": "tcp://127.0.0.1:40123"}
    set_state(client, task, "RUNNING", kind="task_runs", state_details=details)
    set_state(client, task, "COMPLETED", kind="task_runs")
    task_html = page(client, f"/task-runs/{task['id']}")
    ran_on = task_html.split("<dt>Ran on</dt><dd>")[1].split("</dd>")[0]
    assert "DaskTaskRunner" in ran_on and "tcp://127.0.0.1:40123" in ran_on


def test_log_rows_escape_what_runs_sent_and_link_their_task_runs(app):
    """The logs table's rows (built without a template): logger names, messages and task run
    names are escaped, records of a task run link to it under its name (its id when the
    name is unknown), and each row carries its level and time."""
    task, unnamed = uuid.uuid4(), uuid.uuid4()
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    records = [
        LogRow(when, 20, None, "a&b", "<script>x</script>"),
        LogRow(when, 40, task, "n", 'say "hi"'),
        LogRow(when, 15, unnamed, "n", "custom level"),
    ]
    with app.test_request_context():
        html = str(log_rows(records, {str(task): "load <1>"}, "/task-runs/"))
    rows = html.strip().split("\n\n")
    assert len(rows) == 3
    assert rows[0].startswith('<tr class="level-info"><td><time datetime="2026-01-02T03:04:05.678')
    assert "<td>a&amp;b</td><td><pre>&lt;script&gt;x&lt;/script&gt;</pre></td>" in rows[0]
    assert f'<td><a href="/task-runs/{task}">load &lt;1&gt;</a></td>' in rows[1]
    assert "<td>ERROR</td>" in rows[1] and "say &#34;hi&#34;" in rows[1]
    assert f'<a href="/task-runs/{unnamed}">{unnamed}</a>' in rows[2]
    assert rows[2].startswith('<tr class="level-15">')
