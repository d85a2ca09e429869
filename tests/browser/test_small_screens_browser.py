"""The dashboard's chrome in real headless Chromium (the server, page and API fixtures of
test_dashboard_browser): a favicon, glyphs that the fonts of a plain Debian have, and no
sideways scrolling on a 360 px wide phone screen."""

import pathlib
import shutil
import subprocess

from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import (  # noqa: F401  (fixtures)
    api,
    browser,
    page,
    pytestmark,
    server,
)

APP = pathlib.Path(__file__).resolve().parents[2] / "app"
# What the dashboard writes itself: its templates, stylesheet and script (not vendored code).
OWN_FILES = [
    *sorted((APP / "templates" / "ui").glob("*.html")),
    *sorted((APP / "static" / "ui").glob("*.css")),
    *sorted((APP / "static" / "ui").glob("*.js")),
]


def test_every_page_has_the_favicon(page):
    page.goto("/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    icon = page.request.get(href)
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text().lstrip().startswith("<svg")
    page.goto("/work-queues")
    assert page.locator("link[rel=icon]").get_attribute("href") == href


def test_every_character_the_dashboard_writes_has_an_installed_font():
    """Chromium draws a box for a character no installed font has: every non-ASCII character
    of the dashboard's own files must be in a font on this (plain Debian) machine."""
    fc_list = shutil.which("fc-list")
    assert fc_list, "fc-list (fontconfig, a Chromium dependency) is missing"
    characters = sorted({c for path in OWN_FILES for c in path.read_text() if ord(c) > 127})
    assert characters, "no non-ASCII character found: the scan reads nothing"
    missing = [
        f"U+{ord(c):04X} {c!r}"
        for c in characters
        if not subprocess.run(
            [fc_list, f":charset={ord(c):x}", "family"], capture_output=True, text=True, check=True
        ).stdout.strip()
    ]
    assert missing == []


def test_the_paused_badge_draws_its_glyph(page, api):
    api("POST", "/work_queues/", {"name": "glyph-queue", "is_paused": True})
    page.goto("/work-queues")
    badge = page.locator("tr", has_text="glyph-queue").locator(".health-paused")
    expect(badge).to_have_text("Paused")
    box = badge.locator("svg").bounding_box()
    assert box["width"] >= 8 and box["height"] >= 8


def test_no_page_scrolls_sideways_at_360_px(page, api):
    flow = api.flow("a-flow-with-a-rather-long-name-for-a-phone")
    run = api.run(
        flow,
        name="a-long-flow-run-name-for-a-small-screen",
        state="RUNNING",
        tags=["nightly", "production-europe-west"],
    )
    task = api(
        "POST",
        "/task_runs/",
        {
            "flow_run_id": run["id"],
            "task_key": "t",
            "dynamic_key": "0",
            "name": "transform-the-data-0",
        },
    )
    api(
        "POST",
        "/logs/",
        [
            {
                "name": "etl",
                "level": 20,
                "message": "a long log line " * 30,
                "timestamp": "2026-01-01T00:00:00Z",
                "flow_run_id": run["id"],
            }
        ],
    )
    queue = api("POST", "/work_queues/", {"name": "narrow-queue", "is_paused": True})
    deployment = api(
        "POST",
        "/deployments/",
        {
            "name": "nightly-deployment",
            "flow_id": flow["id"],
            "schedule": {"cron": "0 2 * * *"},
            "work_queue_name": "narrow-queue",
            "parameter_openapi_schema": {
                "type": "object",
                "properties": {"day": {"type": "string"}},
            },
        },
    )
    api("POST", "/concurrency_limits/", {"tag": "narrow", "concurrency_limit": 2})
    api("POST", "/block_types/install_system_block_types")
    slack_type = api("GET", "/block_types/slug/slack-webhook")
    (slack_schema,) = api(
        "POST",
        "/block_schemas/filter",
        {"block_schemas": {"block_type_id": {"any_": [slack_type["id"]]}}},
    )
    slack = api(
        "POST",
        "/block_documents/",
        {
            "name": "a-slack-webhook-with-a-long-name",
            "block_type_id": slack_type["id"],
            "block_schema_id": slack_schema["id"],
            "data": {"url": "https://hooks.example/" + "x" * 80},
        },
    )
    api(
        "POST",
        "/flow_run_notification_policies/",
        {
            "state_names": ["Failed", "Crashed"],
            "tags": ["production-europe-west"],
            "block_document_id": slack["id"],
        },
    )
    page.set_viewport_size({"width": 360, "height": 740})
    paths = [
        "/",
        "/flow-runs",
        f"/flow-runs/{run['id']}",
        f"/flow-runs/{run['id']}/logs",
        "/flows",
        f"/flows/{flow['id']}",
        f"/task-runs/{task['id']}",
        "/deployments",
        f"/deployments/{deployment['id']}",
        f"/deployments/{deployment['id']}/custom-run",
        "/work-queues",
        f"/work-queues/{queue['id']}",
        "/work-queues/new",
        "/work-pools",
        "/work-pools/default-agent-pool",
        "/concurrency-limits",
        "/artifacts",
        "/blocks",
        "/blocks/catalog",
        f"/blocks/{slack['id']}",
        f"/blocks/{slack['id']}/edit",
        "/blocks/new/docker-container",
        "/notifications",
        "/notifications/new",
    ]
    wide = {}
    for path in paths:
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{path} scrolls sideways: {widths}"
        wide[path] = page.evaluate(
            "[...document.querySelectorAll('main table')].some(t => t.scrollWidth > t.clientWidth)"
        )
    # The runs table is wider than the screen: it scrolls inside itself, nothing is cut off.
    assert wide["/flow-runs"]
