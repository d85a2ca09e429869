"""Prefect 2.7.12's own web UI against Orion, in real headless Chromium.

The built app of the Prefect 2.7.12 wheel (``prefect/orion/ui/`` in the 2.7 venv of
tests/compat) is served by ``orion prefect-ui`` (app/prefect_ui.py: its files, index.html for
the app's routes, ``/ui-settings`` naming the API) on a port of its own, against a real
``orion start`` that allows that origin (``ORION_CORS_ALLOWED_ORIGINS``). Prefect 2.7.12
itself makes the data first: a concurrency limit, a flow run with tasks and a subflow, a
deployment with its work queue, a JSON block and a Slack webhook block; a notification policy
is added through the API.

Every page of the UI is opened (with its tabs), and its forms for a block, a notification, a
work queue and a deployment's custom run are submitted and read back through the API; on each
page no API call may fail (a 4xx or 5xx answer, or no answer), no script may throw and nothing
may be logged as an error in the console, and the page must show what it is about. Requests
off 127.0.0.1 are blocked and fail the test, except images (the block types' logos live on the
internet), answered with a blank pixel.

What this found: the work queues pages list the (experimental) work pools whatever the server
enables, so Orion answers ``POST /api/experimental/work_pools/filter`` (with none); and the
radars' race, described at :func:`_run_before_its_graph`.
"""

import base64
import json
import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_docs_browser import browser, needs_chromium  # noqa: F401 (fixture)
from tests.compat.conftest import prefect_venv
from tests.support import (
    ORION,
    JsonApi,
    OrionServer,
    ServerProcess,
    free_port,
    isolated_database_url,
    offline_page,
    one_backend,
    orion_env,
)

pytestmark = needs_chromium

SEED = """
import sys

import httpx
from prefect import flow, task
from prefect.blocks.notifications import SlackWebhook
from prefect.blocks.system import JSON
from prefect.client import get_client
from prefect.deployments import Deployment
from prefect.orion.schemas.schedules import IntervalSchedule
from datetime import timedelta
import asyncio


@task(tags=["ui-limit"])
def add(x, y):
    return x + y


@flow(name="ui-child")
def child(n):
    return add(n, 1)


@flow(name="ui-parent")
def parent():
    a = add(1, 2)
    b = add(a, 3)
    return child(b)


async def limit():
    async with get_client() as client:
        await client.create_concurrency_limit(tag="ui-limit", concurrency_limit=5)


asyncio.run(limit())
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
"""


#: A 1x1 transparent PNG: what the offline test serves for the block types' logos.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Api(JsonApi):
    """Orion's API over plain HTTP (JSON in, JSON out)."""

    def one(self, path, body=None):
        (found,) = self("POST", path, body or {})
        return found


@pytest.fixture(scope="module", params=one_backend("sqlite"))
def backend(request):
    """One backend for this module (SQLite, the default). Its subject is Prefect's UI in Chromium:
    the API calls under it are tested on both backends by tests/api, and the other Prefect
    UI module runs on the other backend."""
    return request.param


@pytest.fixture(scope="module")
def stack(backend, tmp_path_factory):
    """Orion (allowing the UI's origin), Prefect's UI served by ``orion prefect-ui``, and the
    data Prefect 2.7.12 made: ``(ui_url, api, ids)``."""
    venv = prefect_venv("2.7")
    (ui_dir,) = venv.glob("lib/python*/site-packages/prefect/orion/ui")
    folder = tmp_path_factory.mktemp(f"prefect-ui-{backend}")
    ui_port = free_port()
    ui_url = f"http://127.0.0.1:{ui_port}"
    database_url = isolated_database_url(backend, folder, "prefect_ui")
    with OrionServer(
        folder, database_url=database_url, CORS_ALLOWED_ORIGINS=json.dumps([ui_url])
    ) as orion:
        ui = ServerProcess(
            [ORION, "prefect-ui", str(ui_dir), "--port", str(ui_port), "--api-url", orion.api_url],
            env=orion_env(folder / "home"),
            log_path=folder / "prefect-ui.log",
            health_url=f"{ui_url}/ui-settings",
        )
        with ui:
            seed(venv, folder, orion.api_url, SEED)
            api = Api(orion.api_url)
            yield ui_url, api, seeded_ids(api)


def seed(venv, folder, api_url, code):
    """The Prefect of ``venv`` makes the data (``code``, a script), as a user's flows and
    commands would."""
    script = folder / "seed.py"
    script.write_text(textwrap.dedent(code))
    env = orion_env(folder / "home", PREFECT_API_URL=api_url, PREFECT_HOME=folder / "prefect")
    env = {k: v for k, v in env.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    done = subprocess.run(
        [str(Path(venv) / "bin" / "python"), str(script)],
        cwd=str(folder),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-6000:]


def seeded_ids(api):
    """The seeded objects' ids, read back through the API; adds the notification policy."""
    parent = api.one(
        "/flow_runs/filter",
        {
            "flows": {"name": {"any_": ["ui-parent"]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        },
    )
    task_runs = api("POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [parent["id"]]}}})
    slack = api.one(
        "/block_documents/filter", {"block_documents": {"name": {"any_": ["ui-slack"]}}}
    )
    policy = api(
        "POST",
        "/flow_run_notification_policies/",
        {
            "name": "ui-policy",
            "state_names": ["Failed"],
            "tags": ["ui"],
            "block_document_id": slack["id"],
        },
    )
    deployment = api.one("/deployments/filter")
    return {
        "flow_run": parent["id"],
        "task_run": next(t["id"] for t in task_runs if t["name"].startswith("add"))
        if task_runs
        else None,
        "flow": parent["flow_id"],
        "deployment": deployment["id"],
        "work_queue": api("GET", "/work_queues/name/ui-queue")["id"],
        "block": api.one(
            "/block_documents/filter", {"block_documents": {"name": {"any_": ["ui-json"]}}}
        )["id"],
        "concurrency_limit": api("GET", "/concurrency_limits/tag/ui-limit")["id"],
        "notification": policy["id"],
    }


@pytest.fixture
def page(browser, stack):
    """A fresh page on the UI that fails the test on any failed API call, script error or
    console error, and on any request off 127.0.0.1 (blocked)."""
    ui_url, _, _ = stack
    # Block types' logos live on the internet (their logo_url); the test is offline.
    with offline_page(browser, base_url=ui_url, timeout=20_000, offline_images=PIXEL) as new_page:
        problems, blocked = new_page.problems, new_page.blocked

        def response(answer):
            if answer.status >= 400:
                body = answer.text() if answer.request.method != "HEAD" else ""
                problems.append(
                    f"{answer.status} {answer.request.method} {answer.url} "
                    f"{answer.request.post_data or ''} -> {body[:300]}"
                )

        new_page.on("response", response)
        # A request the browser aborted itself (the UI navigating away or the page closing
        # while a poll was in flight) never reached an answer: not a failed call.
        new_page.on(
            "requestfailed",
            lambda request: (
                None
                if "ERR_ABORTED" in (request.failure or "")
                else problems.append(f"failed {request.method} {request.url}: {request.failure}")
            ),
        )
        yield new_page
    assert not problems, "\n".join(problems)
    assert not blocked, blocked


def open_page(page, path, *texts):
    """Open ``path``, wait until its calls are done, and check it shows every one of
    ``texts``."""
    page.goto(path)
    page.wait_for_load_state("networkidle")
    for text in texts:
        try:
            expect(page.locator("body")).to_contain_text(text)
        except AssertionError as error:
            raise AssertionError(f"{error}\nproblems:\n" + "\n".join(page.problems)) from None
    page.wait_for_load_state("networkidle")


PAGES = [
    ("flow runs", "/flow-runs", "ui-parent"),
    ("flows", "/flows", "ui-parent"),
    ("deployments", "/deployments", "ui-deployment"),
    ("work queues", "/work-queues", "ui-queue"),
    ("blocks", "/blocks", "ui-json"),
    ("block catalog", "/blocks/catalog", "JSON"),
    ("block create form", "/blocks/catalog/json/create", "JSON"),
    ("notifications", "/notifications", "Failed"),
    ("notification create form", "/notifications/create", "Notification"),
    ("concurrency limits", "/concurrency-limits", "ui-limit"),
    ("settings", "/settings", "Settings"),
]


@pytest.mark.parametrize(("name", "path", "text"), PAGES, ids=[p[0] for p in PAGES])
def test_list_and_form_pages(page, name, path, text):
    open_page(page, path, text)


def each_tab(page, *names):
    """Open each of the page's tabs (by label), waiting until its calls are done."""
    for name in names:
        page.locator(".p-tab", has_text=name).first.click()
        page.wait_for_load_state("networkidle")


def test_flow_runs_history_chart(page, stack):
    _, _, ids = stack
    with page.expect_response(re.compile(r"/api/ui/flow_runs/history$")) as history:
        open_page(page, "/flow-runs", "ui-parent")
    assert history.value.status == 200
    assert ids["flow_run"] in history.value.text()  # the seeded run is a point of the chart
    expect(page.locator(".flow-runs__chart")).to_be_visible()


def test_flow_run_page_and_its_tabs(page, stack):
    _, _, ids = stack
    _run_before_its_graph(page, ids["flow_run"])  # its small radar
    open_page(page, f"/flow-runs/flow-run/{ids['flow_run']}", "ui-parent")
    each_tab(page, "Task Runs", "Subflow Runs", "Parameters", "Logs")
    each_tab(page, "Task Runs")
    expect(page.locator("body")).to_contain_text("add-0")


def _run_before_its_graph(page, flow_run_id):
    """Hold the browser's first request for the run's graph until the run itself has been
    answered.

    Prefect 2.7.12's radars (the page's and the small one on the run's page) ask for the run
    and its graph at once, and draw the graph's nodes around the run: when the graph answers
    first, there is no run to link them to and the UI throws (``computeLinks``: "Cannot read
    properties of undefined (reading 'downstreamNodes')"). The race is inside the UI: it
    depends only on which answer comes first (opened directly, the radar page threw in about
    half of eight tries here), so no answer of the server can prevent it. This puts the answers
    in the order the UI assumes, so that any other error still fails the test.
    """
    run = re.compile(rf"/api/flow_runs/{flow_run_id}$")
    pending, answered = set(), []

    def finished(request):
        if request in pending:
            pending.discard(request)
            answered.append(request)

    page.on("request", lambda request: run.search(request.url) and pending.add(request))
    page.on("requestfinished", finished)
    page.on("requestfailed", finished)

    def hold(route):
        page.wait_for_timeout(50)  # the UI asks for the run in the same tick as the graph
        deadline = time.monotonic() + 15
        while (pending or not answered) and time.monotonic() < deadline:
            page.wait_for_timeout(20)
        route.continue_()

    page.route(re.compile(rf"/api/flow_runs/{flow_run_id}/graph$"), hold)


def test_flow_run_radar(page, stack):
    _, _, ids = stack
    _run_before_its_graph(page, ids["flow_run"])
    open_page(page, f"/flow-runs/flow-run/{ids['flow_run']}/radar", "ui-parent")
    expect(page.locator(".radar")).to_contain_text("add-0")
    expect(page.locator(".radar")).to_contain_text("add-1")
    page.wait_for_load_state("networkidle")


def test_task_run_page(page, stack):
    _, _, ids = stack
    open_page(page, f"/flow-runs/task-run/{ids['task_run']}", "add")
    each_tab(page, "Task Inputs", "Logs")


def test_flow_page(page, stack):
    _, _, ids = stack
    open_page(page, f"/flows/flow/{ids['flow']}", "ui-parent")
    each_tab(page, "Deployments", "Runs")


def test_deployment_page(page, stack):
    _, _, ids = stack
    open_page(page, f"/deployments/deployment/{ids['deployment']}", "ui-deployment")
    each_tab(page, "Runs", "Parameters", "Infra Overrides", "Description")


def test_work_queue_page(page, stack):
    _, _, ids = stack
    open_page(page, f"/work-queues/work-queue/{ids['work_queue']}", "ui-queue")
    each_tab(page, "Runs", "Upcoming Runs")


EDIT_PAGES = [
    ("block type", "/blocks/catalog/json", None, "JSON"),
    ("block edit form", "/blocks/block/{}/edit", "block", "ui-json"),
    ("notification edit form", "/notifications/{}/edit", "notification", "Slack"),
    ("deployment edit form", "/deployments/deployment/{}/edit", "deployment", "ui-deployment"),
    ("deployment custom run form", "/deployments/deployment/{}/run", "deployment", "ui-deployment"),
    ("work queue create form", "/work-queues/create", None, "Work Queue"),
    ("work queue edit form", "/work-queues/work-queue/{}/edit", "work_queue", "ui-queue"),
]


@pytest.mark.parametrize(
    ("name", "path", "key", "text"), EDIT_PAGES, ids=[p[0] for p in EDIT_PAGES]
)
def test_other_forms_and_pages(page, stack, name, path, key, text):
    _, _, ids = stack
    open_page(page, path.format(ids[key]) if key else path, text)


def test_block_page(page, stack):
    _, _, ids = stack
    open_page(page, f"/blocks/block/{ids['block']}", "ui-json")


def test_concurrency_limit_page(page, stack):
    _, _, ids = stack
    open_page(page, f"/concurrency-limits/concurrency-limit/{ids['concurrency_limit']}", "ui-limit")
    each_tab(page, "Active Task Runs")


def test_create_a_block_with_the_form(page, stack):
    _, api, _ = stack
    open_page(page, "/blocks/catalog/json/create", "Block Name")
    page.locator("input[type=text]").first.fill("ui-json-form")
    page.locator("textarea").first.fill('{"made": "in the form"}')
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/blocks/block/[0-9a-f-]{36}$"))
    expect(page.locator("body")).to_contain_text("ui-json-form")
    page.wait_for_load_state("networkidle")
    saved = api.one(
        "/block_documents/filter", {"block_documents": {"name": {"any_": ["ui-json-form"]}}}
    )
    assert saved["data"] == {"value": {"made": "in the form"}}


def test_create_a_notification_with_the_form(page, stack):
    _, api, _ = stack
    before = {p["id"] for p in api("POST", "/flow_run_notification_policies/filter", {})}
    open_page(page, "/notifications/create", "Webhook URL")
    page.get_by_placeholder("https://hooks.slack.com/XXX").fill("http://127.0.0.1:9/form-hook")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/notifications$"))
    page.wait_for_load_state("networkidle")
    (created,) = [
        p
        for p in api("POST", "/flow_run_notification_policies/filter", {})
        if p["id"] not in before
    ]
    block = api("GET", f"/block_documents/{created['block_document_id']}?include_secrets=true")
    assert block["data"]["url"] == "http://127.0.0.1:9/form-hook"


@pytest.mark.parametrize(
    "sort",
    ["START_TIME_DESC", "START_TIME_ASC", "NAME_ASC", "NAME_DESC", "EXPECTED_START_TIME_DESC"],
)
def test_flow_runs_sorted_every_way_the_list_offers(page, sort):
    with page.expect_request(
        lambda request: (
            request.url.endswith("/api/flow_runs/filter")
            and json.loads(request.post_data).get("sort") == sort
        )
    ):
        open_page(page, f"/flow-runs?sort={sort}", "ui-parent")


def test_flow_runs_searched_by_name(page):
    open_page(page, "/flow-runs", "ui-parent")
    with page.expect_request(
        lambda request: (
            request.url.endswith("/api/flow_runs/filter") and "ui-par" in (request.post_data or "")
        )
    ):
        page.locator(".flow-runs__list-controls input[type=search]").fill("ui-par")
    page.wait_for_load_state("networkidle")


def test_create_a_work_queue_with_the_form(page, stack):
    _, api, _ = stack
    open_page(page, "/work-queues/create", "Name")
    page.locator("input[type=text]").first.fill("ui-form-queue")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/work-queues/work-queue/[0-9a-f-]{36}$"))
    expect(page.locator("body")).to_contain_text("ui-form-queue")
    page.wait_for_load_state("networkidle")
    assert api("GET", "/work_queues/name/ui-form-queue")["name"] == "ui-form-queue"


def test_run_a_deployment_with_the_custom_run_form(page, stack):
    _, api, ids = stack
    runs = {"deployments": {"id": {"any_": [ids["deployment"]]}}}

    def by_hand():  # the scheduler's runs carry its idempotency key
        return {
            r["id"]
            for r in api("POST", "/flow_runs/filter", runs)
            if not (r["idempotency_key"] or "").startswith("scheduled ")
        }

    before = by_hand()
    open_page(page, f"/deployments/deployment/{ids['deployment']}/run", "ui-deployment")
    page.locator("button[type=submit]").last.click()
    expect(page).to_have_url(re.compile(r"/deployments/deployment/[0-9a-f-]{36}$"))
    page.wait_for_load_state("networkidle")
    assert len(by_hand() - before) == 1
