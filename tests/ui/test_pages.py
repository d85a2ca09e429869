"""Dashboard pages and fragments through the Flask test client, on both backends.

Data is made through the API, as clients make it. Every page is checked as a full page and
as the htmx fragment, with its empty state, its bad parameters (a 422 page naming them) and
its escaping of user-provided text.
"""

import datetime
import json
import re
import uuid

import pytest

from app.models import utcnow
from app.services import rollups

HX = {"HX-Request": "true"}
EVIL = "<script>alert(1)</script>"
# Names refuse / % & < >; quotes must still be escaped.
QUOTED_NAME = 'Tom "Jerry" O\'Hara'


def iso(when):
    return when.isoformat()


def make_flow(client, name="etl"):
    return client.post("/api/flows/", json={"name": name}).get_json()


def make_run(client, flow, **fields):
    response = client.post("/api/flow_runs/", json={"flow_id": flow["id"], **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def set_state(client, run, state_type, kind="flow_runs", **state):
    response = client.post(
        f"/api/{kind}/{run['id']}/set_state",
        json={"state": {"type": state_type, **state}, "force": True},
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def scheduled(client, flow, when, **fields):
    return make_run(
        client,
        flow,
        state={"type": "SCHEDULED", "state_details": {"scheduled_time": iso(when)}},
        **fields,
    )


def page(client, path, status=200, headers=None):
    response = client.get(path, headers=headers or {})
    assert response.status_code == status, response.data[-600:]
    assert response.content_type.startswith("text/html")
    return response.get_data(as_text=True)


def csrf(client):
    """The session's CSRF token, as the layout hands it to htmx."""
    html = page(client, "/flow-runs")
    return re.search(r'"X-CSRF-Token": "([^"]+)"', html).group(1)


def is_full_page(html):
    return html.lstrip().lower().startswith("<!doctype html>")


def radar_of(html):
    """The radar data a page hands the browser (app/blueprints/ui/graph.py's shape)."""
    script = html.split('class="radar-data">')[1].split("</script>")[0]
    return json.loads(script)


def radar_members(radar):
    return [member for node in radar["nodes"] for member in node["members"]]


# ----------------------------------------------------------------------------- layout


def test_every_page_is_full_by_default_and_a_fragment_for_htmx(client):
    flow = make_flow(client)
    run = make_run(client, flow)
    task = client.post(
        "/api/task_runs/", json={"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0"}
    ).get_json()
    fragments = {
        "/": 'id="history-h"',
        "/flow-runs": 'id="bulk"',
        "/flows": flow["name"],
        f"/flow-runs/{run['id']}/state": 'id="run-state"',
        f"/flow-runs/{run['id']}/logs": 'id="logs"',
        f"/task-runs/{task['id']}/logs": 'id="logs"',
    }
    for path, marker in fragments.items():
        full = client.get(path)
        assert full.status_code == 200
        assert is_full_page(full.get_data(as_text=True)), path
        assert "HX-Request" in full.headers["Vary"]
        fragment = page(client, path, headers=HX)
        assert not is_full_page(fragment) and marker in fragment, path
        # htmx restoring history after "back" needs the whole page.
        restore = page(client, path, headers={**HX, "HX-History-Restore-Request": "true"})
        assert is_full_page(restore), path
    for path in (
        f"/flow-runs/{run['id']}",
        f"/task-runs/{task['id']}",
        f"/flows/{flow['id']}",
        "/concurrency-limits",
    ):
        assert is_full_page(page(client, path)), path


def test_navigation_lists_only_built_pages(client):
    html = page(client, "/")
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    labels = re.findall(r">([^<]+)</a>", nav)
    assert labels == [
        "Dashboard",
        "Flow runs",
        "Flows",
        "Deployments",
        "Work pools",
        "Work queues",
        "Concurrency limits",
        "Blocks",
        "Notifications",
        "Variables",
        "Artifacts",
        "API docs",
    ]
    assert 'aria-current="page">Dashboard' in nav


# Ids without the random uuids: every xdist worker must collect the same test ids.
@pytest.mark.parametrize(
    "path",
    [
        "/no-such-page",
        "/flow-runs/" + str(uuid.uuid4()),
        "/task-runs/" + str(uuid.uuid4()),
        "/flows/" + str(uuid.uuid4()),
        "/flow-runs/" + str(uuid.uuid4()) + "/state",
    ],
    ids=["page", "flow-run", "task-run", "flow", "flow-run-state"],
)
def test_missing_things_are_a_404_page(client, path):
    html = page(client, path, 404)
    assert 'role="alert"' in html and "{" not in html.split('role="alert"')[1][:200]
    assert 'role="alert"' in page(client, path, 404, headers=HX)


def test_malformed_ids_and_wrong_methods_are_pages_but_the_api_keeps_json(client):
    assert "malformed id" in page(client, "/flow-runs/not-a-uuid", 422)
    response = client.post("/flows")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]
    assert response.content_type.startswith("text/html")
    assert client.get("/api/no-such-endpoint").get_json() == {
        "detail": "The requested URL was not found on the server. If you entered the URL "
        "manually please check your spelling and try again."
    }
    assert client.get("/api/flow_runs/not-a-uuid").status_code == 422
    assert client.get("/api/flow_runs/not-a-uuid").get_json()["exception_detail"]


def test_timestamps_carry_their_time_zone(client):
    make_run(client, make_flow(client))
    html = page(client, "/flow-runs")
    stamps = re.findall(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', html)
    assert stamps
    for machine, title, text in stamps:
        assert machine.endswith("+00:00") and title.endswith(" UTC") and text.endswith(" UTC")


# ----------------------------------------------------------------------------- dashboard


def test_dashboard_empty_says_what_to_do(client):
    html = page(client, "/")
    assert "No flow runs in this window" in html
    assert "No late runs" in html and "Nothing is scheduled" in html
    assert "No task run or flow holds a concurrency slot" in html


def test_dashboard_widgets(client):
    now = utcnow()
    flow = make_flow(client, QUOTED_NAME)
    late = scheduled(client, flow, now - datetime.timedelta(minutes=30), name="late-one")
    upcoming = scheduled(client, flow, now + datetime.timedelta(hours=2), name="soon-one")
    failed = make_run(client, flow, name="failed-one")
    set_state(client, failed, "RUNNING")
    set_state(client, failed, "FAILED", message="boom")
    done = make_run(client, flow, name="done-one")
    set_state(client, done, "COMPLETED")
    client.post("/api/concurrency_limits/", json={"tag": "db", "concurrency_limit": 3})
    task = client.post(
        "/api/task_runs/",
        json={"flow_run_id": failed["id"], "task_key": "t", "dynamic_key": "0", "tags": ["db"]},
    ).get_json()
    set_state(client, failed, "RUNNING")
    client.post(f"/api/task_runs/{task['id']}/set_state", json={"state": {"type": "RUNNING"}})

    html = page(client, "/?window=day")
    assert f'href="/flow-runs/{late["id"]}"' in html
    assert f'href="/flow-runs/{failed["id"]}"' not in html.split('id="failed-h"')[0]
    failed_section = html.split('id="failed-h"')[1].split("</section>")[0]
    assert "No failed" in failed_section  # it is running again now
    upcoming_section = html.split('id="upcoming-h"')[1].split("</section>")[0]
    assert f'href="/flow-runs/{upcoming["id"]}"' in upcoming_section
    slots = html.split('id="slots-h"')[1].split("</section>")[0]
    assert "<strong>1</strong> of 3 slots" in slots and "Global limit" not in slots
    for name, limit, taken in (("warehouse", 4, 1), ("github", 2, 2), ("idle", 5, 0)):
        client.post("/api/v2/concurrency_limits/", json={"name": name, "limit": limit})
        if taken:
            body = {"names": [name], "slots": taken}
            client.post("/api/v2/concurrency_limits/increment", json=body)
    slots = page(client, "/").split('id="slots-h"')[1].split("</section>")[0]
    assert re.findall(r"Global limit <code>(\w+)</code>: <strong>(\d)</strong> of (\d)", slots) == [
        ("github", "2", "2"),
        ("warehouse", "1", "4"),
    ]
    counts = html.split('id="counts-h"')[1].split("</section>")[0]
    assert "Completed</span> <strong>1</strong>" in counts
    assert QUOTED_NAME not in html and "Tom &#34;Jerry&#34; O&#39;Hara" in html
    chart = re.search(r'<script type="application/json">(.*?)</script>', html, re.S).group(1)
    assert '"state": "COMPLETED"' in chart and '"times": [' in chart
    assert '"durations": [' in chart

    set_state(client, failed, "FAILED", message="boom")
    failed_section = page(client, "/").split('id="failed-h"')[1].split("</section>")[0]
    assert f'href="/flow-runs/{failed["id"]}"' in failed_section


def test_dashboard_windows(client):
    flow = make_flow(client)
    make_run(client, flow)
    old = scheduled(client, flow, utcnow() - datetime.timedelta(days=3))
    day = page(client, "/?window=day").split('id="counts-h"')[1].split("</section>")[0]
    week = page(client, "/?window=week").split('id="counts-h"')[1].split("</section>")[0]
    assert "2 in all" in week and "1 in all" in day
    start = (utcnow() - datetime.timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    end = (utcnow() - datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    custom = page(client, f"/?window=custom&start={start}&end={end}")
    assert "1 in all" in custom and old["id"] in custom  # listed as late too
    assert not is_full_page(page(client, "/?window=hour", headers=HX))


def test_dashboard_week_reads_the_rollup_and_says_how_fresh_it_is(client):
    flow = make_flow(client)
    old = scheduled(client, flow, utcnow() - datetime.timedelta(days=3))
    before = page(client, "/?window=week")
    assert "data-rollup-freshness" not in before  # never refreshed: counted exactly
    rollups.refresh_flow_run_hourly()
    make_run(client, flow)  # now: a live hour
    set_state(client, old, "COMPLETED")  # an older hour: shows after the next refresh
    week = page(client, "/?window=week")
    assert "data-rollup-freshness" in week and "hourly summary" in week
    counts = week.split('id="counts-h"')[1].split("</section>")[0]
    assert "2 in all" in counts and "Scheduled</span> <strong>1</strong>" in counts
    rollups.refresh_flow_run_hourly()
    counts = page(client, "/?window=week").split('id="counts-h"')[1].split("</section>")[0]
    assert "Completed</span> <strong>1</strong>" in counts


@pytest.mark.parametrize(
    "query, name",
    [
        ("window=month", "window"),
        ("window=custom", "window"),
        ("window=custom&start=2026-01-02T00:00&end=2026-01-01T00:00", "end"),
        ("window=custom&start=2020-01-01T00:00&end=2026-01-01T00:00", "end"),
        ("window=custom&start=yesterday&end=2026-01-01T00:00", "start"),
    ],
)
def test_dashboard_bad_windows_are_422_pages(client, query, name):
    html = page(client, "/?" + query, 422)
    assert f"Invalid value for &#39;{name}&#39;" in html
    assert f"Invalid value for &#39;{name}&#39;" in page(client, "/?" + query, 422, headers=HX)


# ----------------------------------------------------------------------------- flow runs


def run_ids(html):
    return re.findall(r'name="run" value="([0-9a-f-]{36})"', html)


def test_flow_runs_empty_states(client):
    assert "No flow runs yet" in page(client, "/flow-runs")
    make_run(client, make_flow(client))
    assert "No flow runs match this filter" in page(client, "/flow-runs?state=FAILED")


def test_flow_runs_filters(client):
    etl, other = make_flow(client, "etl"), make_flow(client, "other")
    base = utcnow()
    a = scheduled(
        client, etl, base - datetime.timedelta(hours=5), name="alpha-run", tags=["nightly", "db"]
    )
    b = make_run(client, etl, name="beta-run", tags=["db"])
    set_state(client, b, "RUNNING")
    c = make_run(client, other, name="gamma-alpha", tags=["nightly"])

    def listed(query):
        return set(run_ids(page(client, "/flow-runs?" + query, headers=HX)))

    assert listed("") == {a["id"], b["id"], c["id"]}
    assert listed(f"flow={etl['id']}") == {a["id"], b["id"]}
    assert listed(f"flow={etl['id']}&flow={other['id']}") == {a["id"], b["id"], c["id"]}
    assert listed("state=RUNNING") == {b["id"]}
    assert listed("state=RUNNING&state=SCHEDULED") == {a["id"], b["id"]}
    assert listed("tags=nightly") == {a["id"], c["id"]}
    assert listed("tags=nightly,+db") == {a["id"]}
    assert listed("name=ALPHA") == {a["id"], c["id"]}
    since = (base - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert listed(f"start={since}") == {b["id"], c["id"]}
    assert listed(f"end={since}") == {a["id"]}
    assert listed(f"start={since}%2B00:00&flow={etl['id']}") == {b["id"]}
    full = page(client, f"/flow-runs?state=RUNNING&name=beta&flow={etl['id']}")
    # The bulk actions come back to the filtered list.
    assert (
        f'name="next" value="/flow-runs?state=RUNNING&amp;name=beta&amp;flow={etl["id"]}"' in full
    )
    assert 'value="RUNNING" checked' in full and 'value="beta"' in full
    assert f'<option value="{etl["id"]}" selected>' in full


def test_a_chosen_flow_beyond_the_flow_list_stays_selected(client, monkeypatch):
    from app.blueprints.ui import flow_runs

    monkeypatch.setattr(flow_runs, "FLOW_CHOICES", 1)
    make_flow(client, "aaa")
    zzz = make_flow(client, "zzz")
    html = page(client, f"/flow-runs?flow={zzz['id']}")
    assert f'<option value="{zzz["id"]}" selected>zzz</option>' in html
    assert "<option value" in html.split("aaa")[0]


def test_flow_runs_sort_and_pages(client):
    flow = make_flow(client)
    names = [f"run-{i:02d}" for i in range(51)]
    for name in names:
        make_run(client, flow, name=name)
    first = page(client, "/flow-runs?sort=NAME_ASC")
    assert re.findall(r">(run-\d\d)</a>", first) == names[:50]
    assert 'href="/flow-runs?sort=NAME_ASC&amp;page=2"' in first and "Previous" not in first
    second = page(client, "/flow-runs?sort=NAME_ASC&page=2", headers=HX)
    assert re.findall(r">(run-\d\d)</a>", second) == names[50:]
    assert "page=1" in second and "Next" not in second
    descending = page(client, "/flow-runs?sort=NAME_DESC", headers=HX)
    assert re.findall(r">(run-\d\d)</a>", descending)[:2] == ["run-50", "run-49"]


@pytest.mark.parametrize(
    "query, name",
    [
        ("state=DONE", "state"),
        ("flow=etl", "flow"),
        ("sort=CREATED", "sort"),
        ("page=0", "page"),
        ("page=101", "page"),
        ("page=two", "page"),
        ("start=soon", "start"),
        ("name=" + "x" * 201, "name"),
        ("name=a%00b", "request"),
    ],
)
def test_flow_runs_bad_parameters_are_422_pages(client, query, name):
    html = page(client, "/flow-runs?" + query, 422)
    assert is_full_page(html) and f"Invalid value for &#39;{name}&#39;" in html
    fragment = page(client, "/flow-runs?" + query, 422, headers=HX)
    assert not is_full_page(fragment) and 'role="alert"' in fragment


# ----------------------------------------------------------------------------- bulk actions


def test_bulk_actions_need_the_csrf_token(client):
    run = make_run(client, make_flow(client))
    form = {"action": "cancel", "run": [run["id"]], "confirm": "yes"}
    html = client.post("/flow-runs/bulk", data=form)
    assert html.status_code == 400 and "reload the page" in html.get_data(as_text=True)
    token = csrf(client)
    assert (
        client.post("/flow-runs/bulk", data={**form, "csrf_token": "x" + token}).status_code == 400
    )
    with client.session_transaction() as session:
        session.clear()
    assert client.post("/flow-runs/bulk", data={**form, "csrf_token": token}).status_code == 400
    assert client.get(f"/api/flow_runs/{run['id']}").get_json()["state"]["type"] == "PENDING"


def test_bulk_cancel_confirms_the_count_then_cancels(client):
    flow = make_flow(client)
    pending = make_run(client, flow)
    running = make_run(client, flow)
    set_state(client, running, "RUNNING")
    done = make_run(client, flow)
    set_state(client, done, "COMPLETED")
    token = csrf(client)
    ids = [pending["id"], running["id"], done["id"]]

    confirm = client.post(
        "/flow-runs/bulk",
        headers=HX,
        data={
            "csrf_token": token,
            "action": "cancel",
            "run": ids,
            "next": "/flow-runs?state=RUNNING",
        },
    )
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and not is_full_page(html)
    assert "Cancel 3 flow runs?" in html and 'name="confirm" value="yes"' in html
    assert client.get(f"/api/flow_runs/{pending['id']}").get_json()["state"]["type"] == "PENDING"

    done_response = client.post(
        "/flow-runs/bulk",
        data={
            "csrf_token": token,
            "action": "cancel",
            "run": ids,
            "confirm": "yes",
            "next": "/flow-runs?state=RUNNING",
        },
    )
    assert done_response.status_code == 303
    assert done_response.headers["Location"] == "/flow-runs?state=RUNNING"
    types = {r: client.get(f"/api/flow_runs/{r}").get_json()["state"]["type"] for r in ids}
    assert types == {
        pending["id"]: "CANCELLED",
        running["id"]: "CANCELLING",
        done["id"]: "COMPLETED",
    }
    assert "Cancelled 2 of 3 flow runs." in page(client, "/flow-runs?state=RUNNING")


def test_bulk_delete_and_its_guards(client):
    flow = make_flow(client)
    runs = [make_run(client, flow) for _ in range(2)]
    keep = make_run(client, flow)
    token = csrf(client)
    # Without htmx the confirmation is a page of its own.
    confirm = client.post(
        "/flow-runs/bulk",
        data={"csrf_token": token, "action": "delete", "run": [r["id"] for r in runs]},
    )
    assert is_full_page(confirm.get_data(as_text=True))
    assert "Delete 2 flow runs?" in confirm.get_data(as_text=True)
    response = client.post(
        "/flow-runs/bulk",
        data={
            "csrf_token": token,
            "action": "delete",
            "run": [r["id"] for r in runs],
            "confirm": "yes",
            "next": "//evil.example/",
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == "/flow-runs"
    after = page(client, "/flow-runs")
    assert "Deleted 2 of 2 flow runs." in after and set(run_ids(after)) == {keep["id"]}
    nothing = client.post(
        "/flow-runs/bulk", headers=HX, data={"csrf_token": token, "action": "delete"}
    )
    assert nothing.status_code == 422 and "select at least one" in nothing.get_data(as_text=True)
    bad = client.post(
        "/flow-runs/bulk", data={"csrf_token": token, "action": "explode", "run": [keep["id"]]}
    )
    assert bad.status_code == 422 and "&#39;action&#39;" in bad.get_data(as_text=True)


# ----------------------------------------------------------------------------- run pages


@pytest.fixture
def run_with_tasks(client):
    """A RUNNING flow run with parameters, three task runs (b and c consume a), a subflow,
    logs, and a state message, all holding hostile text where text is free."""
    flow = make_flow(client, "pipeline")
    run = make_run(client, flow, name="main-run", parameters={"who": EVIL}, tags=[EVIL])
    set_state(client, run, "RUNNING", message=EVIL)

    def task(key, inputs=None, **fields):
        created = client.post(
            "/api/task_runs/",
            json={
                "flow_run_id": run["id"],
                "task_key": key,
                "dynamic_key": "0",
                "name": key,
                "task_inputs": inputs or {},
                **fields,
            },
        ).get_json()
        set_state(client, created, "RUNNING", kind="task_runs")
        return created

    a = task("extract", cache_key="ck-123")
    b = task("transform", {"rows": [{"input_type": "task_run", "id": a["id"]}]})
    c = task(
        "load",
        {
            "rows": [{"input_type": "task_run", "id": b["id"]}],
            "wait_for": [{"input_type": "task_run", "id": a["id"]}],
            "n": [{"input_type": "parameter", "name": "who"}],
        },
    )
    set_state(
        client,
        a,
        "COMPLETED",
        kind="task_runs",
        data={"type": "reference", "key": "s3://bucket/result"},
    )
    sub = make_run(client, make_flow(client, "child"), name="child-run", parent_task_run_id=c["id"])
    now = utcnow()
    client.post(
        "/api/logs/",
        json=[
            {
                "name": "flow",
                "level": 20,
                "message": f"info {EVIL}",
                "timestamp": iso(now),
                "flow_run_id": run["id"],
            },
            {
                "name": "task",
                "level": 40,
                "message": "task error",
                "timestamp": iso(now + datetime.timedelta(seconds=1)),
                "flow_run_id": run["id"],
                "task_run_id": b["id"],
            },
        ],
    )
    return {"flow": flow, "run": run, "a": a, "b": b, "c": c, "sub": sub}


def test_flow_run_page(client, run_with_tasks):
    d = run_with_tasks
    html = page(client, f"/flow-runs/{d['run']['id']}")
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'hx-trigger="every 2s"' in html  # badge and logs poll while running
    assert "Running</span>" in html
    timeline = html.split('class="timeline"')[1].split("</ol>")[0]
    assert timeline.count('class="tl-bar') == 3
    radar = radar_of(html)
    assert {m[0] for m in radar_members(radar)} == {d[key]["id"] for key in ("a", "b", "c")}
    assert len(radar["edges"]) == 3  # a->b, b->c, a->c
    assert '<script type="application/json" class="radar-data">' in html
    subflows = html.split('id="subflows-h"')[1].split("</section>")[0]
    assert f'href="/flow-runs/{d["sub"]["id"]}"' in subflows
    params = html.split('id="params-h"')[1].split("</section>")[0]
    assert "&#34;who&#34;: &#34;&lt;script&gt;" in params
    history = html.split('id="history-h"')[1].split("</section>")[0]
    assert "Pending</span>" in history and "&lt;script&gt;" in history
    logs = html.split('id="logs-h"')[1]
    assert "info &lt;script&gt;" in logs and "task error" in logs
    assert f"/flow-runs/{d['run']['id']}/logs.txt" in logs


def test_state_badge_polls_only_while_active(client, run_with_tasks):
    run = run_with_tasks["run"]
    badge = page(client, f"/flow-runs/{run['id']}/state", headers=HX)
    assert 'hx-trigger="every 2s"' in badge and "Running</span>" in badge
    set_state(client, run, "COMPLETED", message="all done")
    badge = page(client, f"/flow-runs/{run['id']}/state", headers=HX)
    assert "hx-trigger" not in badge and "Completed</span>" in badge and "all done" in badge
    html = page(client, f"/flow-runs/{run['id']}")
    assert "every 2s" not in html


def test_logs_fragment_filters_by_level_and_downloads(client, run_with_tasks):
    run = run_with_tasks["run"]
    logs = page(client, f"/flow-runs/{run['id']}/logs?level=40", headers=HX)
    assert "task error" in logs and "info &lt;" not in logs
    assert 'hx-get="/flow-runs/' in logs and "level=40" in logs
    assert "No log records at this level" in page(
        client, f"/flow-runs/{run['id']}/logs?level=50", headers=HX
    )
    page(client, f"/flow-runs/{run['id']}/logs?level=15", 422)
    download = client.get(f"/flow-runs/{run['id']}/logs.txt")
    assert download.status_code == 200 and download.mimetype == "text/plain"
    assert "attachment" in download.headers["Content-Disposition"]
    lines = download.get_data(as_text=True).splitlines()
    assert len(lines) == 2 and " INFO " in lines[0] and EVIL in lines[0]
    assert f"task_run={run_with_tasks['b']['id']}" in lines[1]
    only_errors = client.get(f"/flow-runs/{run['id']}/logs.txt?level=40")
    assert len(only_errors.get_data(as_text=True).splitlines()) == 1


def test_task_run_page(client, run_with_tasks):
    d = run_with_tasks
    html = page(client, f"/task-runs/{d['a']['id']}")
    assert "ck-123" in html and "s3://bucket/result" in html and "Completed</span>" in html
    assert f'href="/flow-runs/{d["run"]["id"]}"' in html
    assert "No log records" in html and "every 2s" not in html
    load = page(client, f"/task-runs/{d['c']['id']}")
    inputs = load.split('id="inputs-h"')[1].split("</section>")[0]
    assert f'href="/task-runs/{d["b"]["id"]}"' in inputs
    assert "flow parameter <code>who</code>" in inputs
    transform = page(client, f"/task-runs/{d['b']['id']}")
    assert "task error" in transform and "info &lt;" not in transform
    assert 'hx-trigger="every 2s"' in transform
    download = client.get(f"/task-runs/{d['b']['id']}/logs.txt")
    assert download.get_data(as_text=True).count("\n") == 1


def test_flow_run_without_tasks_or_logs(client):
    run = make_run(client, make_flow(client))
    set_state(client, run, "COMPLETED")
    html = page(client, f"/flow-runs/{run['id']}")
    assert "This flow run has no task runs." in html and "No task runs to draw" in html
    assert "This run has no parameters" in html and "No log records yet" in html


# ----------------------------------------------------------------------------- flows


def test_flows_list_and_detail(client):
    assert "No flows yet" in page(client, "/flows")
    etl = make_flow(client, "etl")
    make_flow(client, "reports")
    run = make_run(client, etl, name="etl-run")
    set_state(client, run, "FAILED")
    html = page(client, "/flows")
    assert f'href="/flows/{etl["id"]}"' in html and "reports" in html
    assert "Failed</span> 1" in html
    filtered = page(client, "/flows?name=REP", headers=HX)
    assert "reports" in filtered and f"/flows/{etl['id']}" not in filtered
    assert "No flow's name contains" in page(client, "/flows?name=zzz")
    detail = page(client, f"/flows/{etl['id']}")
    assert f'href="/flow-runs/{run["id"]}"' in detail
    assert f"/flow-runs?flow={etl['id']}" in detail
    assert "has not run yet" in page(client, f"/flows/{make_flow(client, 'x')['id']}")
    page(client, "/flows?page=-1", 422)


# ----------------------------------------------------------------------------- limits


def test_concurrency_limits_page(client, run_with_tasks):
    assert "No concurrency limits" in page(client, "/concurrency-limits")
    token = csrf(client)
    response = client.post(
        "/concurrency-limits", data={"csrf_token": token, "tag": EVIL, "concurrency_limit": "2"}
    )
    assert response.status_code == 303
    html = page(client, "/concurrency-limits")
    assert "Created the limit on tag" in html and EVIL not in html
    assert "0 of 2" in html

    client.post(
        "/concurrency-limits", data={"csrf_token": token, "tag": "db", "concurrency_limit": "1"}
    )
    task = client.post(
        "/api/task_runs/",
        json={
            "flow_run_id": run_with_tasks["run"]["id"],
            "task_key": "q",
            "dynamic_key": "0",
            "tags": ["db"],
        },
    ).get_json()
    client.post(f"/api/task_runs/{task['id']}/set_state", json={"state": {"type": "RUNNING"}})
    html = page(client, "/concurrency-limits")
    assert "1 of 1" in html
    assert f'href="/task-runs/{task["id"]}">{task["name"]}</a>' in html

    limit = client.get("/api/concurrency_limits/tag/db").get_json()
    assert (
        client.post(
            f"/concurrency-limits/{limit['id']}/reset", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert "0 of 1" in page(client, "/concurrency-limits")
    assert client.post(f"/concurrency-limits/{limit['id']}/delete").status_code == 400
    assert (
        client.post(
            f"/concurrency-limits/{limit['id']}/delete", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert client.get("/api/concurrency_limits/tag/db").status_code == 404
    assert (
        client.post(
            f"/concurrency-limits/{limit['id']}/delete", data={"csrf_token": token}
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "form, message",
    [
        ({"tag": "", "concurrency_limit": "1"}, "a tag is required"),
        ({"tag": "db", "concurrency_limit": ""}, "a limit is required"),
        ({"tag": "db", "concurrency_limit": "-1"}, "between 0 and"),
        ({"tag": "db", "concurrency_limit": "many"}, "not a whole number"),
    ],
)
def test_concurrency_limit_form_errors_render_in_place(client, form, message):
    response = client.post("/concurrency-limits", data={"csrf_token": csrf(client), **form})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html and 'role="alert"' in html
    assert f'value="{form["tag"]}"' in html  # the form keeps what was typed


# ----------------------------------------------------------------------------- saved searches


def test_saved_searches_store_the_filter_and_bring_it_back(client):
    etl = make_flow(client, "etl")
    failed = make_run(client, etl, name="bad-run", tags=["db", "nightly"])
    set_state(client, failed, "FAILED")
    make_run(client, etl, name="good-run", tags=["db"])
    token = csrf(client)
    filtered = page(client, f"/flow-runs?state=FAILED&tags=db,nightly&flow={etl['id']}&page=1")
    query = re.search(r'save-search.*?name="query" value="([^"]*)"', filtered, re.S).group(1)
    query = query.replace("&amp;", "&")
    assert "page" not in query
    assert "save-search" not in page(client, "/flow-runs")  # nothing to save unfiltered

    response = client.post(
        "/saved-searches", data={"csrf_token": token, "name": "Broken nightlies", "query": query}
    )
    assert response.status_code == 303
    target = response.headers["Location"]
    listing = page(client, target)
    assert "Saved the search &#39;Broken nightlies&#39;." in listing
    assert set(run_ids(listing)) == {failed["id"]}
    saved = re.search(r'<nav class="saved".*?</nav>', listing, re.S).group(0)
    link = re.search(r'<a href="([^"]+)">Broken nightlies</a>', saved).group(1)
    assert set(run_ids(page(client, link.replace("&amp;", "&")))) == {failed["id"]}

    again = client.post(
        "/saved-searches",
        data={"csrf_token": token, "name": "Broken nightlies", "query": "name=good"},
    )
    assert again.status_code == 303
    assert "Replaced the search" in page(client, again.headers["Location"])
    search_id = re.search(r"/saved-searches/([0-9a-f-]{36})/delete", page(client, "/flow-runs"))
    assert client.post(f"/saved-searches/{search_id.group(1)}/delete").status_code == 400
    assert (
        client.post(
            f"/saved-searches/{search_id.group(1)}/delete", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert '<nav class="saved"' not in page(client, "/flow-runs")


@pytest.mark.parametrize(
    "form, message",
    [
        ({"name": "", "query": "state=FAILED"}, "give the search a name"),
        ({"name": "x", "query": "page=2"}, "the filter is empty"),
        ({"name": "x", "query": "state=NOPE"}, "is not a state"),
    ],
)
def test_saved_search_refusals(client, form, message):
    response = client.post("/saved-searches", data={"csrf_token": csrf(client), **form})
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_saved_search_conditions_from_other_clients_are_skipped(client):
    from app.services.saved_searches import upsert_saved_search

    upsert_saved_search(
        "mixed",
        [
            {
                "object": "flow_run",
                "property": "state_type",
                "type": "state",
                "operation": "any",
                "value": ["FAILED", "CRASHED"],
            },
            {
                "object": "deployment",
                "property": "id",
                "type": "uuid",
                "operation": "any",
                "value": [str(uuid.uuid4())],
            },
            "not a condition",
        ],
    )
    html = page(client, "/flow-runs")
    assert 'href="/flow-runs?state=FAILED&amp;state=CRASHED">mixed</a>' in html


def test_flow_run_page_with_500_task_runs_stays_a_constant_number_of_queries(client, app):
    from playhouse.test_utils import count_queries

    from app.db import database
    from app.models import TaskRun

    run = make_run(client, make_flow(client))
    start = utcnow()
    ids = [uuid.uuid4() for _ in range(500)]
    rows = []
    for index, task_id in enumerate(ids):
        # Ten parallel chains of fifty, each task consuming the one before it.
        upstream = (
            {"x": [{"input_type": "task_run", "id": str(ids[index - 10])}]} if index >= 10 else {}
        )
        rows.append(
            {
                "id": task_id,
                "flow_run": run["id"],
                "task_key": f"t{index}",
                "dynamic_key": "0",
                "name": f"task-{index}",
                "task_inputs": upstream,
                "state_type": "COMPLETED",
                "state_name": "Completed",
                "expected_start_time": start + datetime.timedelta(milliseconds=index),
                "start_time": start + datetime.timedelta(milliseconds=index),
                "end_time": start + datetime.timedelta(milliseconds=index + 5),
                "created": start,
                "updated": start,
            }
        )
    with database.atomic():
        TaskRun.insert_many(rows).execute()
    with app.app_context(), count_queries() as counter:
        html = page(client, f"/flow-runs/{run['id']}")
    assert 5 <= counter.count <= 11  # the artifacts are one more
    radar = radar_of(html)
    assert [m[2] for m in radar_members(radar)] == ["COMPLETED"] * 500
    assert len(radar["edges"]) == 490
    assert html.count('class="tl-bar state-completed"') == 500
