"""The dashboard under nginx's ``/orion/`` prefix, over https, in real headless Chromium: the
page's own JavaScript (htmx, the radar's fetch, Swagger UI's spec) must build its addresses
under the prefix. nginx and ``orion start`` (SQLite, an API key) are the fixtures of
tests/test_behind_nginx.py; the browser accepts the test's self-signed CA
(``ignore_https_errors``). Console errors and requests off 127.0.0.1 fail the test."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import browser, pytestmark  # noqa: F401 (fixtures)
from tests.support import offline_page
from tests.test_behind_nginx import BEARER, KEY, orion, proxy  # noqa: F401 (fixtures)


@pytest.fixture
def page(browser, proxy):
    base_url = proxy.url("/orion") + "/"
    with offline_page(browser, base_url=base_url, ignore_https_errors=True) as new_page:
        problems, blocked = new_page.problems, new_page.blocked
        responses = []
        new_page.on("response", lambda response: responses.append(response))
        new_page.responses = responses
        yield new_page
    assert problems == []
    assert blocked == []


def _run_with_two_tasks(proxy):
    with proxy.client("/orion", headers=BEARER) as api:
        flow = api.post("/api/flows/", json={"name": "browser-behind-nginx"}).json()
        run = api.post("/api/flow_runs/", json={"flow_id": flow["id"], "name": "proxied"}).json()
        first = api.post(
            "/api/task_runs/",
            json={"flow_run_id": run["id"], "task_key": "load", "dynamic_key": "0"},
        ).json()
        api.post(
            "/api/task_runs/",
            json={
                "flow_run_id": run["id"],
                "task_key": "save",
                "dynamic_key": "0",
                "task_inputs": {"x": [{"input_type": "task_run", "id": first["id"]}]},
            },
        ).raise_for_status()
        return run


def test_sign_in_htmx_radar_and_docs_under_the_prefix(page, proxy):
    run = _run_with_two_tasks(proxy)
    prefix = re.escape(proxy.url("/orion"))

    page.goto("flow-runs?state=FAILED")
    expect(page).to_have_url(re.compile(prefix + r"/login\?next="))
    page.get_by_label("API key").fill(KEY)
    page.get_by_label("API key").press("Enter")
    expect(page).to_have_url(re.compile(prefix + r"/flow-runs\?state=FAILED$"))

    # htmx: a filter change fetches the list and pushes its address, under the prefix.
    page.check("#run-filter input[name=state][value=COMPLETED]")
    expect(page).to_have_url(re.compile(prefix + r"/flow-runs\?.*state=COMPLETED"))

    # The radar fetches its layout from the address the page gives it.
    page.goto(f"flow-runs/{run['id']}")
    expect(page.locator(".radar-node")).to_have_count(2)
    expect(page.locator(".radar-edges path")).to_have_count(1)

    # The nav's API docs link, and Swagger UI loading the spec under the prefix.
    page.click("nav >> text=API docs")
    expect(page).to_have_url(proxy.url("/orion") + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Orion")

    outside = [
        r.url
        for r in page.responses
        if urlsplit(r.url).port == proxy.ports["/orion"]
        and not urlsplit(r.url).path.startswith("/orion/")
    ]
    assert outside == []
    assert all(r.status < 400 for r in page.responses), [
        (r.url, r.status) for r in page.responses if r.status >= 400
    ]
