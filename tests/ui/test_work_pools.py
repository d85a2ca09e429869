"""Work pool pages through the Flask test client, on both backends: the list (status,
queues, workers online and offline, upcoming runs), a pool's page (queues and their health,
workers, base job template, upcoming runs a page at a time), pausing and resuming (CSRF,
unknown pools), the work queue pages naming their pool, the queries these pages cost, and the
services counting a pool's runs checked against the per-queue conditions they stand for."""

import datetime
import operator
import re
from functools import reduce
from urllib.parse import quote, unquote

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
from tests.ui.test_work_queues import make_queue as make_agent_queue

TEMPLATE = {
    "job_configuration": {"command": "{{ command }}"},
    "variables": {
        "type": "object",
        "properties": {"command": {"type": "string", "default": EVIL}},
    },
}


def make_pool(client, name, **fields):
    body = {"name": name, "type": "process", **fields}
    response = client.post("/api/work_pools/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_pool_queue(client, pool, name, **fields):
    response = client.post(f"/api/work_pools/{pool}/queues", json={"name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def heartbeat(client, pool, name, interval=None, ago=None):
    """A heartbeat of worker ``name`` now, or ``ago`` (a timedelta) ago."""
    if ago is None:
        body = {"name": name, "heartbeat_interval_seconds": interval}
        response = client.post(f"/api/work_pools/{pool}/workers/heartbeat", json=body)
        assert response.status_code == 204, response.get_json()
        return
    from app.services import work_pools

    work_pools.worker_heartbeat(pool, name, interval, now=utcnow() - ago)


def make_deployment(client, flow, name, **fields):
    response = client.post(
        "/api/deployments/", json={"name": name, "flow_id": flow["id"], **fields}
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def deployment_run(client, deployment, when, name=None):
    """A SCHEDULED run of ``deployment`` at ``when`` (it goes to the deployment's queue)."""
    state = {"type": "SCHEDULED", "state_details": {"scheduled_time": when.isoformat()}}
    body = {"state": state, **({"name": name} if name else {})}
    response = client.post(f"/api/deployments/{deployment['id']}/create_flow_run", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def pool_url(name):
    return "/work-pools/" + quote(name, safe="")


def row_of(html, name):
    """The table row whose first link's text is ``name`` (escaped as the page escapes it)."""
    from markupsafe import escape

    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        if f">{escape(name)}</a>" in row:
            return row
    raise AssertionError(f"no row for {name}")


def cell(row, css_class):
    return re.search(rf'<td class="{css_class}">(.*?)</td>', row, re.S).group(1)


# ----------------------------------------------------------------------------- the list


def test_list_shows_each_pool_with_its_queues_workers_and_upcoming_runs(client):
    html = page(client, "/work-pools")
    assert is_full_page(html) and "No work pools yet" in html
    flow = make_flow(client)
    make_pool(client, "busy", concurrency_limit=5, description=EVIL)
    make_pool_queue(client, "busy", "second")
    make_pool(client, QUOTED_NAME, is_paused=True)
    make_pool(client, "idle")
    heartbeat(client, "busy", "fresh", interval=30)
    heartbeat(client, "busy", "lost", ago=datetime.timedelta(minutes=5))
    heartbeat(client, "idle", "gone", ago=datetime.timedelta(hours=1))
    deployment = make_deployment(client, flow, "d", work_pool_name="busy")
    soon = utcnow() + datetime.timedelta(hours=1)
    deployment_run(client, deployment, soon)
    late = deployment_run(client, deployment, utcnow() - datetime.timedelta(minutes=5))
    set_state(client, late, "SCHEDULED", name="Late")
    set_state(client, deployment_run(client, deployment, soon), "RUNNING")
    # The agents' pool: a queue named by a run of Prefect 2.7's agents.
    make_agent_queue(client, "agents")
    make_run(client, flow, work_queue_name="agents", state={"type": "SCHEDULED"})

    html = page(client, "/work-pools")
    busy = row_of(html, "busy")
    assert "<code>process</code>" in busy and "Ready" in busy and "<td>5</td>" in busy
    assert cell(busy, "queues") == "2" and cell(busy, "upcoming") == "2"
    assert ">1 online<" in busy and ">1 offline<" in busy
    assert EVIL not in html and "&lt;script&gt;" in html
    paused = row_of(html, QUOTED_NAME)
    assert "Paused" in paused and "Resume" in paused and "Pause " not in paused
    assert "&#34;Jerry&#34;" in paused or "&quot;Jerry&quot;" in paused
    idle = row_of(html, "idle")
    assert "Not ready" in idle and ">0 online<" in idle and ">1 offline<" in idle
    assert cell(idle, "queues") == "1" and cell(idle, "upcoming") == "0"
    agents = row_of(html, "default-agent-pool")
    assert "Ready" in agents and cell(agents, "upcoming") == "1"
    assert 'data-confirm="Pause the work pool busy?' in busy
    fragment = page(client, "/work-pools", headers=HX)
    assert not is_full_page(fragment) and 'id="work-pools"' in fragment


def test_navigation_marks_the_pools_pages(client):
    make_pool(client, "p")
    for path in ("/work-pools", "/work-pools/p"):
        nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page(client, path), re.S).group(1)
        assert 'aria-current="page">Work pools' in nav


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "just now"), (42, "42 s ago"), (300, "5 min ago"), (7300, "2 h ago"), (200000, "2 d ago")],
)
def test_ago_says_how_long_ago_with_utc_on_hover(app, seconds, words):
    from app.blueprints.ui import _ago

    when = utcnow() - datetime.timedelta(seconds=seconds)
    html = str(_ago(when))
    assert f">{words}</time>" in html
    assert f'title="{when.strftime("%Y-%m-%d %H:%M:%S")} UTC"' in html
    assert "—" in str(_ago(None))


# ----------------------------------------------------------------------------- pause


def test_pause_and_resume_a_pool(client):
    token = csrf(client)
    make_pool(client, QUOTED_NAME)
    url = pool_url(QUOTED_NAME)
    response = client.post(url + "/pause", data={"csrf_token": token, "next": "/work-pools"})
    assert response.status_code == 303 and response.headers["Location"] == "/work-pools"
    api = client.get("/api/work_pools/" + quote(QUOTED_NAME, safe="")).get_json()
    assert api["is_paused"] is True and api["status"] == "PAUSED"
    html = page(client, "/work-pools")
    assert "Paused the work pool" in html and "Resume" in row_of(html, QUOTED_NAME)
    # An address off this site is not followed: back to the pool's page.
    response = client.post(
        url + "/resume", data={"csrf_token": token, "next": "https://evil.example/"}
    )
    assert response.status_code == 303
    assert unquote(response.headers["Location"]) == "/work-pools/" + QUOTED_NAME
    assert (
        client.get("/api/work_pools/" + quote(QUOTED_NAME, safe="")).get_json()["is_paused"]
        is False
    )
    assert "Resumed the work pool" in page(client, url)


def test_pause_needs_the_token_and_a_known_pool(client):
    token = csrf(client)
    make_pool(client, "p")
    assert client.post("/work-pools/p/pause").status_code == 400
    assert client.post("/work-pools/p/pause", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/api/work_pools/p").get_json()["is_paused"] is False
    response = client.post("/work-pools/nope/pause", data={"csrf_token": token})
    assert response.status_code == 404 and response.content_type.startswith("text/html")
    assert 'role="alert"' in response.get_data(as_text=True)
    assert "nope" in response.get_data(as_text=True)
    assert client.post("/work-pools/nope/resume", data={"csrf_token": token}).status_code == 404
    response = client.post("/work-pools/nope/pause", data={"csrf_token": token}, headers=HX)
    assert response.status_code == 404 and 'role="alert"' in response.get_data(as_text=True)
    assert client.get("/work-pools/p/pause").status_code == 405
    # Nothing was created by the attempts.
    assert client.get("/api/work_pools/nope").status_code == 404


# ----------------------------------------------------------------------------- a pool


def test_pool_page_queues_workers_template_and_upcoming_runs(client):
    flow = make_flow(client, "etl")
    make_pool(client, "p", base_job_template=TEMPLATE, concurrency_limit=3)
    make_pool_queue(client, "p", "urgent", priority=1, concurrency_limit=2)
    make_pool_queue(client, "p", "slow", is_paused=True)
    heartbeat(client, "p", "alive", interval=10)
    heartbeat(client, "p", "silent", interval=10, ago=datetime.timedelta(minutes=2))
    # Three intervals of 60 s: still online 90 s after its heartbeat.
    heartbeat(client, "p", "patient", interval=60, ago=datetime.timedelta(seconds=90))
    nightly = make_deployment(client, flow, "nightly", work_pool_name="p")
    urgent = make_deployment(client, flow, "hurry", work_pool_name="p", work_queue_name="urgent")
    now = utcnow()
    first = deployment_run(client, urgent, now + datetime.timedelta(minutes=5), "first-run")
    second = deployment_run(client, nightly, now + datetime.timedelta(hours=2), "second-run")
    running = deployment_run(client, nightly, now)
    set_state(client, running, "RUNNING")

    html = page(client, "/work-pools/p")
    assert is_full_page(html) and "Not ready" not in html and "Ready" in html
    assert "1 pending or running now" in html
    queues = html.split('id="queues-h"')[1].split('id="workers-h"')[0]
    names = re.findall(r'<a href="/work-queues/[0-9a-f-]{36}">([^<]+)</a>', queues)
    assert names == ["urgent", "default", "slow"]
    urgent_row = row_of(queues, "urgent")
    assert "<td>1</td>" in urgent_row and "<td>2</td>" in urgent_row
    assert "never polled" in urgent_row
    assert "Paused" in row_of(queues, "slow")
    assert "(default)" in row_of(queues, "default")

    workers = html.split('id="workers-h"')[1].split('id="template-h"')[0]
    rows = re.findall(r"<tr>(.*?)</tr>", workers, re.S)[1:]
    assert [re.search(r"<td>([^<]+)</td>", r).group(1) for r in rows] == [
        "alive",
        "patient",
        "silent",
    ]
    assert "Online" in rows[0] and "Online" in rows[1] and "Offline" in rows[2]
    assert "2 min ago" in rows[2] and "10 s" in rows[2]
    assert re.search(r'<time datetime="[^"]+" title="[0-9-]+ [0-9:]+ UTC" data-local>', rows[2])

    template = html.split('id="template-h"')[1].split('id="upcoming-h"')[0]
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in template
    assert "&#34;job_configuration&#34;" in template or "&quot;job_configuration" in template

    upcoming = html.split('id="upcoming-h"')[1]
    assert upcoming.index("first-run") < upcoming.index("second-run")
    assert ">hurry</a>" in upcoming and ">nightly</a>" in upcoming and "urgent" in upcoming
    assert first["id"] in upcoming and second["id"] in upcoming and running["id"] not in upcoming


def test_pool_page_pages_its_upcoming_runs(client):
    flow = make_flow(client)
    make_pool(client, "p")
    deployment = make_deployment(client, flow, "d", work_pool_name="p")
    start = utcnow() + datetime.timedelta(hours=1)
    for index in range(27):
        deployment_run(
            client, deployment, start + datetime.timedelta(minutes=index), f"r{index:02}"
        )
    first = page(client, "/work-pools/p")
    assert "r00" in first and "r24" in first and "r25" not in first
    assert 'href="/work-pools/p?page=2"' in first
    second = page(client, "/work-pools/p?page=2")
    assert "r25" in second and "r26" in second and "r24" not in second
    assert "page=3" not in second and 'href="/work-pools/p?page=1"' in second
    assert "No more upcoming runs" in page(client, "/work-pools/p?page=3")
    for bad, message in (("0", "between 1 and 200"), ("201", "between 1 and 200")):
        assert message in page(client, f"/work-pools/p?page={bad}", 422)
    assert "not a whole number" in page(client, "/work-pools/p?page=two", 422)


def test_pool_page_of_an_unknown_pool_is_a_404_page(client):
    html = page(client, "/work-pools/nope", 404)
    assert 'role="alert"' in html and "nope" in html
    assert client.get("/api/work_pools/nope").status_code == 404


def test_agents_pool_page_shows_agents_and_runs_named_by_queue(client):
    flow = make_flow(client)
    queue = make_agent_queue(client, "legacy")
    agent = "a1b2c3d4-0000-4000-8000-000000000001"
    body = {"agent_id": agent, "agent_name": "old-agent"}
    assert client.post(f"/api/work_queues/{queue['id']}/get_runs", json=body).status_code == 200
    when = utcnow() + datetime.timedelta(hours=1)
    run = scheduled(client, flow, when, work_queue_name="legacy", name="named-run")
    html = page(client, "/work-pools/default-agent-pool")
    assert "1 agent online" in html and "Agents, not workers" in html
    assert "named-run" in html.split('id="upcoming-h"')[1] and run["id"] in html
    assert "Healthy" in row_of(html, "legacy")


# ----------------------------------------------------------------------------- queue pages


def test_work_queue_pages_name_their_pool(client):
    token = csrf(client)
    make_pool(client, "p")
    other = make_pool_queue(client, "p", "jobs")
    legacy = make_agent_queue(client, "legacy")
    html = page(client, "/work-queues")
    assert '<a href="/work-pools/p">p</a>' in row_of(html, "jobs")
    assert '<a href="/work-pools/default-agent-pool">default-agent-pool</a>' in row_of(
        html, "legacy"
    )
    html = page(client, f"/work-queues/{other['id']}")
    assert 'class="pool" href="/work-pools/p">p</a>' in html
    assert "prefect worker start --pool p --work-queue jobs" in html
    html = page(client, f"/work-queues/{legacy['id']}")
    assert 'href="/work-pools/default-agent-pool"' in html
    assert "orion agent start -q legacy" in html

    # A pool's default queue cannot be deleted here either; another queue can.
    default_id = client.get("/api/work_pools/p").get_json()["default_queue_id"]
    assert 'action="/work-queues/' + default_id + '/delete"' not in page(
        client, f"/work-queues/{default_id}"
    )
    response = client.post(f"/work-queues/{default_id}/delete", data={"csrf_token": token})
    assert response.status_code == 409 and "default queue" in response.get_data(as_text=True)
    assert client.get(f"/api/work_queues/{default_id}").status_code == 200
    response = client.post(f"/work-queues/{other['id']}/delete", data={"csrf_token": token})
    assert response.status_code == 303


def test_a_paused_pool_says_so_on_its_queues_page(client):
    flow = make_flow(client)
    make_pool(client, "p", is_paused=True)
    deployment = make_deployment(client, flow, "d", work_pool_name="p")
    deployment_run(client, deployment, utcnow() + datetime.timedelta(hours=1))
    default_id = client.get("/api/work_pools/p").get_json()["default_queue_id"]
    html = page(client, f"/work-queues/{default_id}")
    assert "is paused: none of its queues hands out runs" in html


def test_deployment_page_links_its_queue_and_pool(client):
    flow = make_flow(client)
    make_pool(client, "p")
    deployment = make_deployment(client, flow, "d", work_pool_name="p")
    html = page(client, f"/deployments/{deployment['id']}")
    queue = html.split("Work queue</dt>")[1].split("</dd>")[0]
    default_id = client.get("/api/work_pools/p").get_json()["default_queue_id"]
    assert f'href="/work-queues/{default_id}"><code>default</code></a>' in queue
    assert 'class="pool" href="/work-pools/p">p</a>' in queue


# ----------------------------------------------------------------------------- query counts


def _count(app, call):
    from playhouse.test_utils import count_queries

    with app.app_context(), count_queries() as counter:
        result = call()
    return result, counter.count


def _populate_pool(client, flow, name, queues, workers):
    make_pool(client, name)
    for index in range(queues):
        make_pool_queue(client, name, f"q{index}")
    for index in range(workers):
        heartbeat(client, name, f"w{index}", interval=10)
    heartbeat(client, name, "old", ago=datetime.timedelta(hours=1))
    deployment = make_deployment(client, flow, f"d-{name}", work_pool_name=name)
    deployment_run(client, deployment, utcnow() + datetime.timedelta(hours=1))


def test_pool_pages_cost_the_same_queries_for_few_and_many(client, app):
    flow = make_flow(client)
    make_agent_queue(client, "agents")
    _populate_pool(client, flow, "a", 1, 1)
    _populate_pool(client, flow, "b", 1, 1)
    _, list_two = _count(app, lambda: page(client, "/work-pools"))
    _, pool_few = _count(app, lambda: page(client, "/work-pools/a"))
    for index in range(4):
        _populate_pool(client, flow, f"more{index}", 3, 3)
    _populate_pool(client, flow, "big", 8, 8)
    html, list_many = _count(app, lambda: page(client, "/work-pools"))
    assert list_many == list_two and "more3" in html
    html, pool_many = _count(app, lambda: page(client, "/work-pools/big"))
    assert pool_many == pool_few and "w7" in html


def test_work_queues_page_costs_the_same_queries_for_few_and_many(client, app):
    flow = make_flow(client)
    for index in range(2):
        make_agent_queue(client, f"q{index}")
    _, two = _count(app, lambda: page(client, "/work-queues"))
    make_pool(client, "p")
    for index in range(2, 10):
        make_agent_queue(client, f"q{index}")
        make_pool_queue(client, "p", f"pq{index}")
        make_run(client, flow, work_queue_name=f"q{index}", state={"type": "SCHEDULED"})
    html, many = _count(app, lambda: page(client, "/work-queues"))
    assert many == two and "pq9" in html


def test_deployments_api_list_reads_pool_names_in_one_query(client, app):
    """Prefect's UI lists deployments with their pool: the pool names are read for the whole
    page at once, not per deployment."""
    flow = make_flow(client)
    make_pool(client, "p")

    def listing():
        response = client.post("/api/deployments/filter", json={})
        assert response.status_code == 200
        return response.get_json()

    make_deployment(client, flow, "d0", work_pool_name="p")
    make_deployment(client, flow, "d1", work_queue_name="agents")
    _, two = _count(app, listing)
    for index in range(2, 8):
        fields = {"work_pool_name": "p"} if index % 2 else {"work_queue_name": f"a{index}"}
        make_deployment(client, flow, f"d{index}", **fields)
    make_deployment(client, flow, "nowhere")
    found, many = _count(app, listing)
    assert many == two
    pools = {d["name"]: d["work_pool_name"] for d in found}
    assert pools["d0"] == pools["d3"] == "p"
    assert pools["d1"] == pools["d2"] == "default-agent-pool"
    assert pools["nowhere"] is None


def test_pools_api_list_reads_every_status_in_one_query(client, app):
    """Prefect's UI lists pools with their status: their workers are read at once."""

    def listing():
        response = client.post("/api/work_pools/filter", json={})
        assert response.status_code == 200
        return {p["name"]: p["status"] for p in response.get_json()}

    make_pool(client, "a")
    heartbeat(client, "a", "w")
    make_pool(client, "b")
    _, two = _count(app, listing)
    make_pool(client, "c", is_paused=True)
    make_agent_queue(client, "agents")
    for name in ("d", "e", "f"):
        make_pool(client, name)
        heartbeat(client, name, "w", ago=datetime.timedelta(minutes=1 if name == "d" else 0))
    statuses, many = _count(app, listing)
    assert many == two
    assert statuses == {
        "a": "READY",
        "b": "NOT_READY",
        "c": "PAUSED",
        "default-agent-pool": "READY",
        "d": "NOT_READY",
        "e": "READY",
        "f": "READY",
    }
    for name, status in statuses.items():
        assert client.get(f"/api/work_pools/{name}").get_json()["status"] == status


# ----------------------------------------------------------------------------- the services


@pytest.fixture
def mixed_queues(client):
    """Queues of a pool and of the agents' pool (one by a deprecated filter) with SCHEDULED,
    Late and running runs sent to them by id, by name alone, and matching the filter."""
    flow = make_flow(client)
    make_pool(client, "p")
    make_pool_queue(client, "p", "other")
    make_agent_queue(client, "named")
    make_agent_queue(client, "empty")
    make_agent_queue(client, "tagged", filter={"tags": ["prod"], "deployment_ids": None})
    in_pool = make_deployment(client, flow, "in-pool", work_pool_name="p")
    by_agent = make_deployment(client, flow, "by-agent", work_queue_name="named")
    soon = utcnow() + datetime.timedelta(hours=1)
    for _ in range(3):
        deployment_run(client, in_pool, soon)
    deployment_run(client, by_agent, soon)
    late = deployment_run(client, by_agent, soon)
    set_state(client, late, "SCHEDULED", name="Late")
    set_state(client, deployment_run(client, by_agent, soon), "RUNNING")
    # Runs naming a queue only (Prefect 2.7's clients), one of them tagged for the filter.
    make_run(client, flow, work_queue_name="named", state={"type": "SCHEDULED"})
    make_run(client, flow, work_queue_name="named", tags=["prod"], state={"type": "SCHEDULED"})
    make_run(client, flow, tags=["prod"], state={"type": "SCHEDULED"})


def _oracle(queues):
    """Per queue, its SCHEDULED runs counted with queue_runs_condition, one query each."""
    from app.models import FlowRun
    from app.services import work_queues

    return {
        str(q.id): FlowRun.select()
        .where(work_queues.queue_runs_condition(q) & (FlowRun.state_type == "SCHEDULED"))
        .count()
        for q in queues
    }


def test_scheduled_run_counts_match_each_queues_condition(mixed_queues):
    from app.services import work_queues

    queues = work_queues.read_work_queues({"sort": "NAME_ASC", "limit": 50, "offset": 0})
    counts = work_queues.scheduled_run_counts(queues)
    expected = _oracle(queues)
    assert counts == expected
    by_name = {(q.work_pool.name, q.name): counts[str(q.id)] for q in queues}
    # named: 2 deployment runs (one Late) + 2 naming it; tagged: the 2 prod runs.
    assert by_name == {
        ("default-agent-pool", "default"): 0,
        ("default-agent-pool", "named"): 4,
        ("default-agent-pool", "empty"): 0,
        ("default-agent-pool", "tagged"): 2,
        ("p", "default"): 3,
        ("p", "other"): 0,
    }
    assert work_queues.scheduled_run_counts([]) == {}


def test_pool_runs_condition_is_the_union_of_its_queues(mixed_queues):
    """A pool's upcoming runs are its queues' SCHEDULED runs, each once; its count on the list
    adds up its queues' counts (a run that a deprecated-filter queue also selects counts
    twice, as its docstring says)."""
    from app.models import FlowRun
    from app.services import work_pools, work_queues

    now, timeout = utcnow(), datetime.timedelta(seconds=20)
    for name, distinct, summed in (("p", 3, 3), ("default-agent-pool", 5, 6)):
        pool = work_pools.read_work_pool(name)
        queues = work_pools.pool_queues(pool)
        upcoming = [run.id for run in work_pools.upcoming_pool_runs(pool, queues, 100)]
        union = FlowRun.select(FlowRun.id).where(
            (FlowRun.state_type == "SCHEDULED")
            & reduce(operator.or_, [work_queues.queue_runs_condition(q) for q in queues])
        )
        assert sorted(upcoming) == sorted(str(row.id) for row in union), name
        assert len(upcoming) == len(set(upcoming)) == distinct, name
        assert (
            work_pools.upcoming_pool_runs(pool, queues, 2, 2)
            == (work_pools.upcoming_pool_runs(pool, queues, 100)[2:4])
        )
        overview = work_pools.pool_overview([pool], now, timeout)[str(pool.id)]
        assert overview["upcoming_runs"] == summed, name


def test_scheduled_run_counts_pair_each_agents_queue_name_with_its_id(client):
    """A queue of the agents' pool counts the SCHEDULED runs (Late ones too) carrying its name and
    its id or no id, not those carrying its name with another queue's id (a renamed queue's
    runs) nor its id with another name; a pool's queue counts the runs carrying its id,
    whatever their name. Both pool pages show these counts."""
    from app.models import AGENT_POOL as AGENTS
    from app.models import FlowRun
    from app.services import work_pools, work_queues

    flow = make_flow(client)
    make_agent_queue(client, "a")
    make_agent_queue(client, "b")
    make_pool(client, "p")
    make_pool_queue(client, "p", "a")
    pool_p, agents = (work_pools.read_work_pool(name) for name in ("p", AGENTS))
    queues = work_pools.pool_queues(agents) + work_pools.pool_queues(pool_p)
    ids = {(q.work_pool.name, q.name): q.id for q in queues}
    agent_a, agent_b, p_a = ids[(AGENTS, "a")], ids[(AGENTS, "b")], ids[("p", "a")]
    sent = [  # (queue name, queue id, state type, state name)
        ("a", agent_a, "SCHEDULED", "Scheduled"),
        ("a", None, "SCHEDULED", "Late"),
        ("a", agent_b, "SCHEDULED", "Scheduled"),
        ("old-b", agent_b, "SCHEDULED", "Scheduled"),
        ("b", agent_b, "SCHEDULED", "Late"),
        ("b", agent_b, "RUNNING", "Running"),
        ("b", None, "PENDING", "Pending"),
        ("a", p_a, "SCHEDULED", "Scheduled"),
        ("elsewhere", p_a, "SCHEDULED", "Scheduled"),
        ("a", p_a, "COMPLETED", "Completed"),
    ]
    for queue_name, queue_id, state_type, state_name in sent:
        run = make_run(client, flow, state={"type": state_type, "name": state_name})
        FlowRun.update(work_queue_name=queue_name, work_queue_id=queue_id).where(
            FlowRun.id == run["id"]
        ).execute()
    counts = work_queues.scheduled_run_counts(queues)
    assert counts == _oracle(queues)
    assert {key: counts[str(queue_id)] for key, queue_id in ids.items()} == {
        (AGENTS, "default"): 0,
        (AGENTS, "a"): 2,
        (AGENTS, "b"): 1,
        ("p", "default"): 0,
        ("p", "a"): 2,
    }
    now, timeout = utcnow(), datetime.timedelta(seconds=20)
    overview = work_pools.pool_overview([agents, pool_p], now, timeout)
    assert overview[str(agents.id)]["upcoming_runs"] == 3
    assert overview[str(pool_p.id)]["upcoming_runs"] == 2
    listing = page(client, "/work-pools")
    assert cell(row_of(listing, AGENTS), "upcoming") == "3"
    assert cell(row_of(listing, "p"), "upcoming") == "2"
    for pool, queue, upcoming in ((AGENTS, "a", "2"), (AGENTS, "b", "1"), ("p", "a", "2")):
        # The queue's row: ..., last polled, upcoming, late, active.
        cells = re.findall(r"<td>(.*?)</td>", row_of(page(client, f"/work-pools/{pool}"), queue))
        assert cells[-3] == upcoming, (pool, queue)
