"""Prefect's UI addresses (the links Prefect 2 clients print) redirect to the dashboard's pages
for the same objects, on both backends; unknown objects are the dashboard's 404 page, and the
redirects keep the path prefix a proxy gives."""

import uuid

import pytest

from tests.notification_helpers import install_system_blocks, make_block_document
from tests.ui.test_deployment_pages import make_deployment
from tests.ui.test_pages import make_flow, make_run, page
from tests.ui.test_work_pools import make_pool, make_pool_queue
from tests.ui.test_work_queues import make_queue


def redirected(client, path, **kwargs):
    """Where ``path`` redirects to, after checking that it is a 302 and that the page it
    names exists."""
    response = client.get(path, **kwargs)
    assert response.status_code == 302, response.data[-600:]
    location = response.headers["Location"]
    assert page(client, location.split("#")[0])
    return location


@pytest.fixture
def things(client):
    install_system_blocks(client)
    flow = make_flow(client)
    run = make_run(client, flow)
    task_run = client.post(
        "/api/task_runs/",
        json={"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0", "name": "t-0"},
    ).get_json()
    deployment = make_deployment(client, flow)
    block = make_block_document(client, "json", {"value": {"a": 1}}, name="settings")
    make_pool(client, "docker-pool")
    pool_queue = make_pool_queue(client, "docker-pool", "gpu")
    queue = make_queue(client, "nightly")
    global_limit = client.post("/api/v2/concurrency_limits/", json={"name": "db", "limit": 2})
    return {
        "global_limit": global_limit.get_json(),
        "flow": flow,
        "run": run,
        "task_run": task_run,
        "deployment": deployment,
        "block": block,
        "pool_queue": pool_queue,
        "queue": queue,
    }


def test_every_prefect_address_with_a_page_here_redirects_to_it(client, things):
    run, flow, task_run = things["run"]["id"], things["flow"]["id"], things["task_run"]["id"]
    deployment, block = things["deployment"]["id"], things["block"]["id"]
    pool_queue, queue = things["pool_queue"]["id"], things["queue"]["id"]
    gcl = things["global_limit"]["id"]
    expected = {
        "/dashboard": "/",
        f"/flow-runs/flow-run/{run}": f"/flow-runs/{run}",
        f"/flow-runs/flow-run/{run}/radar": f"/flow-runs/{run}#graph-h",
        f"/flow-runs/task-run/{task_run}": f"/task-runs/{task_run}",
        f"/task-runs/task-run/{task_run}": f"/task-runs/{task_run}",
        f"/flows/flow/{flow}": f"/flows/{flow}",
        f"/deployments/deployment/{deployment}": f"/deployments/{deployment}",
        f"/deployments/deployment/{deployment}/edit": f"/deployments/{deployment}/edit",
        f"/deployments/deployment/{deployment}/run": f"/deployments/{deployment}/custom-run",
        f"/blocks/block/{block}": f"/blocks/{block}",
        f"/blocks/block/{block}/edit": f"/blocks/{block}/edit",
        "/blocks/catalog/json": "/blocks/catalog",
        "/blocks/catalog/json/create": "/blocks/new/json",
        f"/concurrency-limits/concurrency-limit/{uuid.uuid4()}": "/concurrency-limits#task-h",
        f"/concurrency-limits/concurrency-limit-v2/{gcl}": f"/concurrency-limits/global/{gcl}/edit",
        "/work-pools/work-pool/docker-pool": "/work-pools/docker-pool",
        "/work-pools/work-pool/docker-pool/edit": "/work-pools/docker-pool",
        "/work-pools/work-pool/docker-pool/queue/gpu": f"/work-queues/{pool_queue}",
        "/work-pools/work-pool/docker-pool/queue/gpu/edit": f"/work-queues/{pool_queue}/edit",
        f"/work-queues/work-queue/{queue}": f"/work-queues/{queue}",
        f"/work-queues/work-queue/{queue}/edit": f"/work-queues/{queue}/edit",
        "/work-queues/create": "/work-queues/new",
        "/notifications/create": "/notifications/new",
    }
    assert {path: redirected(client, path) for path in expected} == expected


def test_a_pool_named_like_prefects_path_keeps_its_own_page(client):
    make_pool(client, "work-pool")
    assert "work-pool" in page(client, "/work-pools/work-pool")


def test_redirects_keep_the_prefix_a_proxy_gives(client, things):
    run = things["run"]["id"]
    response = client.get(f"/flow-runs/flow-run/{run}", environ_overrides={"SCRIPT_NAME": "/orion"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/orion/flow-runs/{run}"


@pytest.mark.parametrize(
    "path, says",
    [
        (f"/flow-runs/flow-run/{uuid.UUID(int=1)}", "Flow run"),
        ("/work-pools/work-pool/nope/queue/gpu", "nope"),
    ],
)
def test_unknown_objects_are_the_404_page(client, path, says):
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 404
    assert says in response.get_data(as_text=True)


def test_prefect_pages_with_no_counterpart_stay_404(client):
    for path in ("/settings", "/automations", "/events"):
        page(client, path, status=404)
