"""Work queue pages through the Flask test client, on both backends: the list with health,
the create and edit forms (errors next to their fields), pause and resume, delete, a queue's
page (agent command, upcoming runs without recording a poll, recent runs) and the
dashboard's health widget."""

import datetime
import re
import uuid

import pytest

from app.models import utcnow
from tests.ui.test_pages import (
    EVIL,
    HX,
    QUOTED_NAME,
    csrf,
    is_full_page,
    make_flow,
    make_run,
    page,
    scheduled,
    set_state,
)


def make_queue(client, name, **fields):
    response = client.post("/api/work_queues/", json={"name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def read_queue(client, queue):
    return client.get(f"/api/work_queues/{queue['id']}").get_json()


def poll(client, queue):
    assert client.post(f"/api/work_queues/{queue['id']}/get_runs", json={}).status_code == 200


def row_of(html, name):
    """The list's table row of the queue called ``name``."""
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        if f">{name}</a>" in row:
            return row
    raise AssertionError(f"no row for {name}")


def test_list_shows_health_and_empty_state(client):
    assert "No work queues yet" in page(client, "/work-queues")
    flow = make_flow(client)
    polled = make_queue(client, "polled")
    poll(client, polled)
    late = make_queue(client, "late", concurrency_limit=3)
    poll(client, late)
    make_queue(client, "silent")
    make_queue(client, "paused", is_paused=True)
    due = utcnow() - datetime.timedelta(minutes=5)
    run = scheduled(client, flow, due, work_queue_name="late")
    set_state(
        client, run, "SCHEDULED", name="Late", state_details={"scheduled_time": due.isoformat()}
    )
    running = make_run(client, flow, work_queue_name="late")
    set_state(client, running, "RUNNING")

    html = page(client, "/work-queues")
    assert is_full_page(html)
    assert "Healthy" in row_of(html, "polled")
    late_row = row_of(html, "late")
    assert "Unhealthy" in late_row and "1 late run" in late_row and "1 of 3" in late_row
    silent = row_of(html, "silent")
    assert "Not polled yet" in silent and "never polled" in silent and "Unhealthy" not in silent
    assert "Paused" in row_of(html, "paused") and "Resume" in row_of(html, "paused")
    fragment = page(client, "/work-queues", headers=HX)
    assert not is_full_page(fragment) and 'id="work-queues"' in fragment


def test_create_validates_next_to_the_field(client):
    token = csrf(client)
    assert 'name="concurrency_limit"' in page(client, "/work-queues/new")
    make_queue(client, "taken")
    cases = [
        ({"name": "", "concurrency_limit": ""}, "name", "Name must not be empty"),
        ({"name": "a/b"}, "name", "invalid characters"),
        ({"name": "taken"}, "name", "already exists"),
        ({"name": "ok", "concurrency_limit": "two"}, "concurrency_limit", "whole number"),
        ({"name": "ok", "concurrency_limit": "-1"}, "concurrency_limit", "greater than"),
    ]
    for form, field, message in cases:
        response = client.post("/work-queues/new", data={"csrf_token": token, **form})
        html = response.get_data(as_text=True)
        assert response.status_code == 422, form
        error = re.search(rf'<span class="field-error" id="{field}-error">([^<]*)</span>', html)
        assert error and message in error.group(1), (form, html[-2000:])
        assert f'aria-describedby="{field}-error"' in html
        # What was typed comes back.
        assert f'value="{form.get("concurrency_limit", "")}"' in html
    assert client.post("/work-queues/new", data={"name": "x"}).status_code == 400

    response = client.post(
        "/work-queues/new",
        data={
            "csrf_token": token,
            "name": QUOTED_NAME,
            "description": EVIL,
            "concurrency_limit": "4",
            "is_paused": "on",
        },
    )
    assert response.status_code == 303
    queue = client.get("/api/work_queues/name/" + QUOTED_NAME).get_json()
    assert (queue["description"], queue["concurrency_limit"], queue["is_paused"]) == (EVIL, 4, True)
    assert response.headers["Location"] == f"/work-queues/{queue['id']}"
    html = page(client, response.headers["Location"])
    assert EVIL not in html and "&lt;script&gt;" in html and "Created the work queue" in html
    assert QUOTED_NAME not in html and "Tom &#34;Jerry&#34; O&#39;Hara" in html


def test_edit_changes_and_clears_fields(client):
    token = csrf(client)
    queue = make_queue(client, "edit-me", concurrency_limit=2, description="old")
    make_queue(client, "other")
    form = page(client, f"/work-queues/{queue['id']}/edit")
    assert 'value="edit-me"' in form and 'value="2"' in form and ">old</textarea>" in form
    clash = client.post(
        f"/work-queues/{queue['id']}/edit",
        data={"csrf_token": token, "name": "other", "concurrency_limit": "2"},
    )
    assert clash.status_code == 422 and "already exists" in clash.get_data(as_text=True)
    response = client.post(
        f"/work-queues/{queue['id']}/edit",
        data={"csrf_token": token, "name": "renamed", "description": "", "concurrency_limit": ""},
    )
    assert response.status_code == 303
    after = read_queue(client, queue)
    assert (
        after["name"],
        after["description"],
        after["concurrency_limit"],
        after["is_paused"],
    ) == ("renamed", "", None, False)
    assert page(client, f"/work-queues/{queue['id']}/edit", headers=HX).lstrip().startswith("<form")


def test_pause_resume_and_delete(client):
    token = csrf(client)
    queue = make_queue(client, "toggle")
    response = client.post(
        f"/work-queues/{queue['id']}/pause", data={"csrf_token": token, "next": "/work-queues"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/work-queues"
    assert read_queue(client, queue)["is_paused"] is True
    assert "Paused the work queue" in page(client, "/work-queues")
    response = client.post(
        f"/work-queues/{queue['id']}/resume",
        data={"csrf_token": token, "next": "https://evil.example/"},
    )
    assert response.headers["Location"] == f"/work-queues/{queue['id']}"
    assert read_queue(client, queue)["is_paused"] is False
    assert client.post(f"/work-queues/{queue['id']}/pause").status_code == 400

    html = page(client, f"/work-queues/{queue['id']}")
    assert 'data-confirm="Delete the work queue toggle?' in html
    response = client.post(f"/work-queues/{queue['id']}/delete", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/work-queues"
    assert client.get(f"/api/work_queues/{queue['id']}").status_code == 404
    assert "Deleted the work queue" in page(client, "/work-queues")
    assert 'role="alert"' in page(client, f"/work-queues/{queue['id']}", 404)
    missing = client.post(f"/work-queues/{queue['id']}/delete", data={"csrf_token": token})
    assert missing.status_code == 404


def test_queue_page_command_upcoming_and_recent_runs(client):
    flow = make_flow(client)
    queue = make_queue(client, "it's prod", concurrency_limit=2)
    now = utcnow()
    soon = scheduled(
        client,
        flow,
        now + datetime.timedelta(hours=1),
        work_queue_name="it's prod",
        name="soon-run",
    )
    later = scheduled(
        client,
        flow,
        now + datetime.timedelta(days=2),
        work_queue_name="it's prod",
        name="later-run",
    )
    scheduled(
        client,
        flow,
        now + datetime.timedelta(days=3),
        work_queue_name="it's prod",
        name="beyond-the-limit",
    )
    scheduled(
        client,
        flow,
        now + datetime.timedelta(hours=1),
        work_queue_name="elsewhere",
        name="other-queue-run",
    )
    done = make_run(client, flow, work_queue_name="it's prod", name="done-run")
    set_state(client, done, "RUNNING")
    set_state(client, done, "COMPLETED")

    html = page(client, f"/work-queues/{queue['id']}")
    command = re.search(r'<code id="agent-command">([^<]*)</code>', html).group(1)
    assert command == "orion agent start -q &#39;it&#39;&#34;&#39;&#34;&#39;s prod&#39;"
    assert 'data-copy="#agent-command"' in html
    upcoming = html.split("<h2>Upcoming runs</h2>")[1].split("<h2>Recent runs</h2>")[0]
    # Two free slots: the two soonest runs, in order; other queues' runs never.
    assert upcoming.index("soon-run") < upcoming.index("later-run")
    assert "beyond-the-limit" not in upcoming and "other-queue-run" not in upcoming
    recent = html.split("<h2>Recent runs</h2>")[1]
    assert "done-run" in recent and "soon-run" not in recent
    # Looking is not polling.
    assert read_queue(client, queue)["last_polled"] is None
    assert soon["id"] and later["id"]

    client.patch(f"/api/work_queues/{queue['id']}", json={"is_paused": True})
    assert "The queue is paused" in page(client, f"/work-queues/{queue['id']}")


def test_dashboard_work_queue_health_widget(client):
    assert "No work queues yet" in page(client, "/")
    healthy = make_queue(client, "a-healthy")
    poll(client, healthy)
    make_queue(client, "b-silent")
    make_queue(client, "c-paused", is_paused=True)
    make_queue(client, "d-late")
    due = utcnow() - datetime.timedelta(minutes=5)
    run = scheduled(client, make_flow(client), due, work_queue_name="d-late")
    set_state(
        client, run, "SCHEDULED", name="Late", state_details={"scheduled_time": due.isoformat()}
    )
    html = page(client, "/?window=hour", headers=HX)
    widget = html.split('id="queues-h"')[1].split("</section>")[0]
    # A queue never polled is unhealthy once a run of it is late; until then it (like the
    # agents' pool's "default" queue, which nobody sends work to) is only not polled yet.
    assert "1 healthy, <strong>1 unhealthy</strong>, 2 not polled yet, 1 paused" in widget
    order = ["d-late", "b-silent", "a-healthy", "c-paused"]
    assert [widget.index(name) for name in order] == sorted(widget.index(n) for n in order)
    assert "Not polled yet" in widget.split("b-silent")[1].split("</li>")[0]
    assert "Unhealthy" in widget.split("d-late")[1].split("</li>")[0]


def agent_seen(client, queue, name, seconds_ago):
    """An agent called ``name`` that polled ``queue`` and last heartbeated ``seconds_ago``."""
    from app.models import Agent

    agent_id = str(uuid.uuid4())
    body = {"agent_id": agent_id, "agent_name": name}
    assert client.post(f"/api/work_queues/{queue['id']}/get_runs", json=body).status_code == 200
    seen = utcnow() - datetime.timedelta(seconds=seconds_ago)
    Agent.update(last_activity_time=seen, last_heartbeat=seen).where(Agent.id == agent_id).execute()
    return agent_id


def test_queue_health_shows_agents_online_and_offline(client, app):
    """Online: seen within ORION_AGENT_HEARTBEAT_TIMEOUT (20 s by default); offline: seen
    within a day but not since the timeout; older agents are left out."""
    assert app.config["AGENT_HEARTBEAT_TIMEOUT"] == 20
    queue = make_queue(client, "served")
    agent_seen(client, queue, "fresh", 5)
    agent_seen(client, queue, "lost", 25)
    agent_seen(client, queue, "<b>gone</b>", 2 * 86400)
    agent_seen(client, make_queue(client, "other"), "elsewhere", 1)
    widget = page(client, "/?window=hour", headers=HX).split('id="queues-h"')[1]
    widget = widget.split("</section>")[0]
    served = widget.split("served</a>")[1].split("</li>")[0]
    assert "1 agent online" in served and "1 offline" in served
    html = page(client, f"/work-queues/{queue['id']}")
    assert (
        "Online: fresh" in html
        and "Offline (silent longer than the heartbeat timeout): lost" in html
    )
    assert "gone" not in html and "elsewhere" not in html
    assert "1 agent online" in row_of(page(client, "/work-queues"), "other")
    # A heartbeat brings the lost agent back online.
    lost = agent_seen(client, queue, "back", 60)
    assert client.post(f"/api/agents/{lost}/heartbeat", json={}).status_code == 204
    assert "Online: back, fresh" in page(client, f"/work-queues/{queue['id']}")


def test_queue_health_is_two_queries(client, app):
    from app.db import database
    from app.services import work_queues

    flow = make_flow(client)
    queues = [make_queue(client, f"q{i}") for i in range(5)]
    legacy = make_queue(client, "legacy", filter={"tags": ["prod"], "deployment_ids": None})
    for queue in queues[:2]:
        set_state(client, make_run(client, flow, work_queue_name=queue["name"]), "RUNNING")
    set_state(client, make_run(client, flow, tags=["prod"]), "PENDING")
    rows = work_queues.read_work_queues({"sort": "NAME_ASC", "limit": 50, "offset": 0})
    calls = []
    original = database.obj.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        calls.append(sql)
        return original(sql, params, *args, **kwargs)

    database.obj.execute_sql = counting
    try:
        health = work_queues.queue_health(rows)
    finally:
        database.obj.execute_sql = original
    # One for the runs of every queue, one for their agents.
    assert len([c for c in calls if c.lstrip().upper().startswith("SELECT")]) == 2
    assert [health[q["id"]]["active_runs"] for q in queues] == [1, 1, 0, 0, 0]
    assert health[legacy["id"]]["active_runs"] == 1


def test_preview_sees_runs_an_agent_holds_locked(client, backend):
    """An agent's get_runs locks what it picks (FOR UPDATE SKIP LOCKED on PostgreSQL); the
    queue page's preview must neither skip those runs nor lock runs away from agents."""
    if backend != "postgres":
        pytest.skip("row locks exist on PostgreSQL only")
    import psycopg2

    from app.services import work_queues
    from tests.support import POSTGRES_URL

    flow = make_flow(client)
    queue = make_queue(client, "locked")
    run = scheduled(
        client, flow, utcnow() - datetime.timedelta(minutes=1), work_queue_name="locked"
    )
    agent = psycopg2.connect(POSTGRES_URL)
    try:
        with agent.cursor() as cur:
            cur.execute("SELECT id FROM flow_run WHERE id = %s FOR UPDATE", (run["id"],))
            assert work_queues.get_runs(queue["id"], record_poll=False) == []
            preview = work_queues.get_runs(queue["id"], record_poll=False, claim=False)
            assert [r.id for r in preview] == [run["id"]]
    finally:
        agent.rollback()
        agent.close()
