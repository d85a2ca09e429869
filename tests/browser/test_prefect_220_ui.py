"""Prefect 2.20's own web UI against Orion, in real headless Chromium.

The built app of the Prefect 2.20 wheel (``prefect/server/ui/`` in the 2.20 venv of
tests/compat) is served by a real ``orion start`` itself (``ORION_PREFECT_UI_DIR``,
app/prefect_ui.py) at ``/prefect``, the way Prefect's server serves it beside its API: its
base path placeholder replaced, its files, index.html for the app's routes, and
``/ui-settings`` with the relative ``api_url`` ``/api``; under Orion's own Host check and
security headers (its Content-Security-Policy included). Serving a UI from an origin of its
own (``orion prefect-ui``) is the 2.7 test's.
Prefect 2.20 itself makes the data first: a flow run with tasks, a subflow, logs and
artifacts, a deployment with its work queue, a variable, a JSON block and a Slack webhook
block, a task-run concurrency limit and a global one; a notification policy is added through
the API.

Every page is opened (with its tabs); on each no API call may fail (a 4xx or 5xx answer, or
no answer), no script may throw and nothing may be logged as an error in the console, and the
page must show what it is about (the fixture ``page`` of tests/browser/test_prefect_ui.py).

Pages whose calls Orion does not serve yet are skipped by probing the call they need, so they
run as soon as it is served: the dashboard, the flow runs list, the work queue and work pool
pages and the deployment edit form (``POST /api/work_pools/filter``), and the deployment
pages and a flow's deployments tab (``GET /api/deployments/{id}/schedules``: without the
deployments' ``schedules`` the UI throws; given them (tried by hand, adding ``[]`` to its
answers) these pages and the run form work).
"""

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.test_docs_browser import browser, needs_chromium  # noqa: F401 (fixture)
from tests.browser.test_prefect_ui import (  # noqa: F401 (fixture)
    Api,
    each_tab,
    open_page,
    page,
    seed,
    seeded_ids,
)
from tests.compat.conftest import prefect_venv
from tests.support import OrionServer, isolated_database_url, one_backend

pytestmark = needs_chromium

SEED = """
import asyncio
from datetime import timedelta

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.blocks.notifications import SlackWebhook
from prefect.blocks.system import JSON
from prefect.client.orchestration import get_client
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.deployments import Deployment
from prefect.variables import Variable


@task(tags=["ui-limit"])
def add(x, y):
    get_run_logger().info("adding %s and %s", x, y)
    create_table_artifact([{"x": x, "y": y}], key="ui-table")
    return x + y


@flow(name="ui-child")
def child(n):
    return add(n, 1)


@flow(name="ui-parent")
def parent():
    get_run_logger().info("the parent starts")
    create_markdown_artifact("# Report", key="ui-report", description="made by ui-parent")
    a = add(1, 2)
    b = add(a, 3)
    return child(b)


async def limits():
    async with get_client() as client:
        await client.create_concurrency_limit(tag="ui-limit", concurrency_limit=5)


asyncio.run(limits())
parent()
Deployment.build_from_flow(
    parent,
    name="ui-deployment",
    work_queue_name="ui-queue",
    schedule=IntervalSchedule(interval=timedelta(hours=1)),
    apply=True,
)
JSON(value={"answer": 42}).save("ui-json")
SlackWebhook(url="http://127.0.0.1:9/hook").save("ui-slack")
Variable.set("ui_variable", "forty-two")
"""


#: Where Orion serves the UI (``ORION_PREFECT_UI_PATH``'s default).
UI_PATH = "/prefect"


@pytest.fixture(scope="module", params=one_backend("postgres"))
def backend(request):
    """One backend for this module (PostgreSQL). Its subject is Prefect's UI in Chromium:
    the API calls under it are tested on both backends by tests/api, and the other Prefect
    UI module runs on the other backend."""
    return request.param


@pytest.fixture(scope="module")
def stack(backend, tmp_path_factory):
    """Orion serving Prefect 2.20's UI at :data:`UI_PATH`, and the data Prefect 2.20 made:
    ``(orion_url, api, ids)``."""
    venv = prefect_venv("2.20")
    (ui_dir,) = venv.glob("lib/python*/site-packages/prefect/server/ui")
    folder = tmp_path_factory.mktemp(f"prefect-220-ui-{backend}")
    database_url = isolated_database_url(backend, folder, "prefect_220_ui")
    with OrionServer(folder, database_url=database_url, PREFECT_UI_DIR=str(ui_dir)) as orion:
        seed(venv, folder, orion.api_url, SEED)
        api = Api(orion.api_url)
        api("POST", "/v2/concurrency_limits/", {"name": "ui-global", "limit": 3})
        yield orion.url, api, _ids(api)


def _ids(api):
    """The seeded objects' ids (:func:`seeded_ids`), and the seeded artifact's."""
    return {**seeded_ids(api), "artifact": api("GET", "/artifacts/ui-report/latest")["id"]}


def served(api, method, path, body=None):
    """Whether Orion serves ``method path`` (anything but 404/405 for a well-formed call)."""
    try:
        api(method, path, body)
    except urllib.error.HTTPError as error:
        return error.code not in (404, 405)
    return True


# What pages need that Orion does not serve yet, as (method, path, body): probed, and the
# page's test skipped while the call is missing (so it runs once the call is served).
WORK_POOLS = ("POST", "/work_pools/filter", {})
SCHEDULES = ("GET", "/deployments/{deployment}/schedules", None)


def _needs(stack, *calls):
    """Skip the test unless Orion serves every call (path formatted with the seeded ids)."""
    _, api, ids = stack
    for method, path, body in calls:
        if not served(api, method, path.format(**ids), body):
            pytest.skip(f"Orion does not serve {method} /api{path} yet")


def _open(page, path, *texts):
    """:func:`open_page` on the UI's ``path``."""
    open_page(page, UI_PATH + path, *texts)


PAGES = [
    ("flows", "/flows", "ui-parent"),
    ("blocks", "/blocks", "ui-json"),
    ("block catalog", "/blocks/catalog", "JSON"),
    ("block create form", "/blocks/catalog/json/create", "JSON"),
    ("variables", "/variables", "ui_variable"),
    ("artifacts", "/artifacts", "ui-report"),
    ("notifications", "/notifications", "Failed"),
    ("notification create form", "/notifications/create", "Notification"),
    ("global concurrency", "/concurrency-limits", "ui-global"),
    ("settings", "/settings", "Settings"),
]


@pytest.mark.parametrize(("name", "path", "text"), PAGES, ids=[p[0] for p in PAGES])
def test_list_and_form_pages(page, name, path, text):
    _open(page, path, text)


def test_flow_runs(page, stack):
    _needs(stack, WORK_POOLS)  # its work pool filter
    _open(page, "/flow-runs", "ui-parent", "ui-child")


def test_dashboard(page, stack):
    _needs(stack, WORK_POOLS)  # its Active Work Pools card
    _open(page, "/dashboard", "Flow Runs", "Task Runs", "Active Work Pools")


def test_the_menu_is_prefect_220s_own(page):
    """The experiments Prefect 2.20's server enables by default (``/ui-settings``' flags) are
    enabled here too: without them the menu offers the legacy Work Queues, not Work Pools."""
    _open(page, "/dashboard", "Dashboard")
    expect(page.get_by_role("button", name="Work Pools", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Work Queues", exact=True)).to_have_count(0)


def test_deployments(page, stack):
    _needs(stack, SCHEDULES)  # every deployment's schedules
    _open(page, "/deployments", "ui-deployment")


def test_task_run_concurrency_tab(page):
    _open(page, "/concurrency-limits", "ui-global")
    each_tab(page, "Task Run")
    expect(page.locator("body")).to_contain_text("ui-limit")


def test_flow_run_page_its_logs_task_runs_and_artifacts(page, stack):
    _, _, ids = stack
    _open(page, f"/flow-runs/flow-run/{ids['flow_run']}", "ui-parent")
    expect(page.locator("body")).to_contain_text("the parent starts")  # the Logs tab
    each_tab(page, "Task Runs")
    expect(page.locator("body")).to_contain_text("add-0")
    each_tab(page, "Subflow Runs", "Artifacts")
    expect(page.locator("body")).to_contain_text("ui-report")
    each_tab(page, "Details", "Parameters")


def test_task_run_page(page, stack):
    _, _, ids = stack
    _open(page, f"/task-runs/task-run/{ids['task_run']}", "add")
    expect(page.locator("body")).to_contain_text("adding ")  # the Logs tab
    each_tab(page, "Artifacts")
    expect(page.locator("body")).to_contain_text("ui-table")
    each_tab(page, "Task inputs")


def test_flow_page(page, stack):
    _, _, ids = stack
    _open(page, f"/flows/flow/{ids['flow']}", "ui-parent")
    each_tab(page, "Runs", "Details")


def test_flow_page_deployments_tab(page, stack):
    _needs(stack, SCHEDULES)
    _, _, ids = stack
    _open(page, f"/flows/flow/{ids['flow']}", "ui-parent")
    each_tab(page, "Deployments")


def test_deployment_page(page, stack):
    _needs(stack, SCHEDULES)
    _, _, ids = stack
    _open(page, f"/deployments/deployment/{ids['deployment']}", "ui-deployment")
    each_tab(page, "Runs", "Upcoming", "Parameters", "Configuration", "Description")


def test_run_a_deployment_with_the_run_form(page, stack):
    _needs(stack, SCHEDULES)
    _, api, ids = stack
    runs = {"deployments": {"id": {"any_": [ids["deployment"]]}}}

    def by_hand():  # the scheduler's runs carry its idempotency key
        return {
            r["id"]
            for r in api("POST", "/flow_runs/filter", runs)
            if not (r["idempotency_key"] or "").startswith("scheduled ")
        }

    before = by_hand()
    _open(page, f"/deployments/deployment/{ids['deployment']}/run", "ui-deployment")
    # The form answers a click once its data has loaded.
    page.wait_for_load_state("networkidle")
    with page.expect_response(
        lambda r: r.url.endswith("/create_flow_run") and r.request.method == "POST"
    ) as created:
        page.get_by_role("button", name="Submit").click()
    assert created.value.ok, created.value.text()
    expect(page).not_to_have_url(re.compile(r"/run$"))
    assert len(by_hand() - before) == 1


def test_deployment_edit_form(page, stack):
    _needs(stack, SCHEDULES, WORK_POOLS)  # its work pool field
    _, _, ids = stack
    _open(page, f"/deployments/deployment/{ids['deployment']}/edit", "ui-deployment")


def test_block_page(page, stack):
    _, _, ids = stack
    _open(page, f"/blocks/block/{ids['block']}", "ui-json")


def test_artifact_pages(page, stack):
    _, _, ids = stack
    _open(page, f"/artifacts/artifact/{ids['artifact']}", "ui-report")
    _open(page, "/artifacts/key/ui-report", "ui-report")


def test_notification_edit_form(page, stack):
    _, _, ids = stack
    _open(page, f"/notifications/{ids['notification']}/edit", "Slack")


def test_task_run_concurrency_limit_page(page, stack):
    _, _, ids = stack
    _open(page, f"/concurrency-limits/concurrency-limit/{ids['concurrency_limit']}", "ui-limit")


def test_work_queue_pages(page, stack):
    _needs(stack, WORK_POOLS)  # the pages tell a pool's queues from the others
    _, api, ids = stack
    _open(page, "/work-queues", "ui-queue")
    # The list looks the agents' queues ("default" and "ui-queue") up by name, two or more in
    # one batch, and Prefect 2.20's UI keys the batch's answer by id: each lookup then fails in
    # its own console, as against Prefect's own server (whose default-agent-pool has its
    # "default" queue too). The UI's bug, not an API call that failed: the list is shown.
    batch_bug = 'Batch lookup failed for id: "'
    page.problems[:] = [problem for problem in page.problems if batch_bug not in problem]
    _open(page, f"/work-queues/work-queue/{ids['work_queue']}", "ui-queue")
    each_tab(page, "Upcoming Runs", "Runs")
    # The page lists the queue's runs with get_runs marked X-PREFECT-UI: no poll recorded.
    assert api("GET", f"/work_queues/{ids['work_queue']}")["last_polled"] is None


def test_work_pools_pages(page, stack):
    _needs(stack, WORK_POOLS)
    _open(page, "/work-pools", "Work Pools")
