"""The radar of a flow run's page in real headless Chromium against a real ``orion start``:
tasks laid out with their dependencies (by dagre, or by radar.js's own layered layout for a
large graph), a mapped task as one group that expands into its runs, a subflow opened inside
its node, zoom and pan."""

import re

from playwright.sync_api import expect

from tests.browser.test_dashboard_browser import api, browser, page, pytestmark, server  # noqa: F401 (fixtures)


def task_run(api, run, key, index=0, inputs=None, state=None):
    created = api(
        "POST",
        "/task_runs/",
        {
            "flow_run_id": run["id"],
            "task_key": key,
            "dynamic_key": str(index),
            "name": f"{key}-{index}",
            "task_inputs": inputs or {},
        },
    )
    if state:
        api.set_state(created, state, kind="task_runs")
    return created


def upstream(task):
    return {"x": [{"input_type": "task_run", "id": task["id"]}]}


def count_dagre_layouts(page):
    """From now on, count the page's calls of dagre's layout in ``window.dagreLayouts``."""
    page.evaluate(
        """() => {
            const real = dagre;
            window.dagreLayouts = 0;
            const layout = (...args) => { window.dagreLayouts++; return real.layout(...args); };
            dagre = { graphlib: real.graphlib, layout: layout };
        }"""
    )


def transform_of(page):
    return page.locator(".radar-node[data-task='transform']")


def test_tasks_and_their_dependencies_link_to_their_runs(page, api):
    run = api.run(api.flow("radar-chain"), name="radar-chain-run")
    tasks = []
    for index in range(6):
        inputs = upstream(tasks[index - 1]) if index else {}
        if index == 5:
            inputs["y"] = upstream(tasks[0])["x"]
        tasks.append(task_run(api, run, f"step-{index}", 0, inputs))
    page.goto(f"/flow-runs/{run['id']}")
    expect(page.locator(".radar-node")).to_have_count(6)
    expect(page.locator(".radar-edges path")).to_have_count(6)
    # Laid out left to right: each step right of the one it consumed.
    xs = [page.locator(f".radar-node[data-task='step-{i}']").bounding_box()["x"] for i in range(5)]
    assert xs == sorted(xs) and len(set(xs)) == 5
    page.locator(f".radar a[data-task-run='{tasks[3]['id']}']").click()
    expect(page).to_have_url(re.compile(f"/task-runs/{tasks[3]['id']}$"))
    expect(page.locator("h1")).to_contain_text("step-3")


def test_a_mapped_task_is_one_group_that_expands_into_its_runs(page, api):
    run = api.run(api.flow("radar-map"), name="radar-map-run")
    extract = task_run(api, run, "extract", state="COMPLETED")
    for index in range(40):
        task_run(
            api, run, "transform", index, upstream(extract), "COMPLETED" if index else "FAILED"
        )
    page.goto(f"/flow-runs/{run['id']}")
    group = transform_of(page)
    expect(group).to_contain_text("transform  \u00d740")
    expect(group).to_have_class(re.compile("state-failed"))  # the run that needs attention
    expect(page.locator(".radar-edges")).to_contain_text("\u00d740")
    expect(page.locator(".radar-cell")).to_have_count(0)

    count_dagre_layouts(page)
    group.locator("[data-action=expand]").click()
    expect(page.locator(".radar-cell")).to_have_count(40)
    assert page.evaluate("window.dagreLayouts") == 1  # a small graph: dagre lays it out
    expect(page.locator(".radar-cell.state-failed")).to_have_count(1)
    expect(group.locator("[data-action=expand]")).to_have_attribute("aria-expanded", "true")
    # Keyboard too: Enter on the toggle collapses the group.
    group.locator("[data-action=expand]").press("Enter")
    expect(page.locator(".radar-cell")).to_have_count(0)


def test_a_subflow_opens_inside_its_node(page, api):
    flow = api.flow("radar-parent")
    run = api.run(flow, name="radar-parent-run")
    call = task_run(api, run, "child-flow", state="RUNNING")
    child = api.run(api.flow("radar-child"), name="radar-child-run", parent_task_run_id=call["id"])
    first = task_run(api, child, "inner-a", state="COMPLETED")
    task_run(api, child, "inner-b", 0, upstream(first), "RUNNING")
    page.goto(f"/flow-runs/{run['id']}")
    node = page.locator(".radar-node[data-task='child-flow']")
    expect(node.locator("a")).to_have_attribute("href", f"/flow-runs/{child['id']}")
    node.locator("[data-action=open]").first.click()
    nested = page.locator(".radar-subflow .radar-node")
    expect(nested).to_have_count(2)
    expect(page.locator(".radar-subflow .radar-edges path")).to_have_count(1)
    expect(page.locator(".radar-subflow .radar-node.state-running")).to_contain_text("inner-b")
    node.locator("[data-action=open]").first.click()
    expect(nested).to_have_count(0)


def test_a_subflow_without_task_runs_opens_to_say_so(page, api):
    """A subflow that does its work without tasks: opened, its node says it has no task runs
    and the layout stays finite (dagre sizes an empty graph -Infinity, which had put every
    node after it at an infinite offset; the ``page`` fixture fails on the console errors
    that caused)."""
    run = api.run(api.flow("radar-parent-of-empty"), name="radar-parent-of-empty-run")
    call = task_run(api, run, "empty-flow", state="COMPLETED")
    api.run(api.flow("radar-empty"), name="radar-empty-run", parent_task_run_id=call["id"])
    after = task_run(api, run, "after", 0, upstream(call), "COMPLETED")
    page.goto(f"/flow-runs/{run['id']}")
    node = page.locator(".radar-node[data-task='empty-flow']")
    node.locator("[data-action=open]").first.click()
    expect(node.locator(".radar-subflow")).to_contain_text("No task runs")
    after_node = page.locator(f".radar-node:has(a[data-task-run='{after['id']}'])")
    transforms = [g.get_attribute("transform") for g in page.locator(".radar g[transform]").all()]
    assert transforms and not any("Infinity" in t for t in transforms), transforms
    assert node.bounding_box()["x"] < after_node.bounding_box()["x"]  # still left to right


def test_zoom_and_pan_move_the_drawing_and_fit_brings_it_back(page, api):
    run = api.run(api.flow("radar-zoom"), name="radar-zoom-run")
    first = task_run(api, run, "a")
    task_run(api, run, "b", 0, upstream(first))
    page.goto(f"/flow-runs/{run['id']}")
    layer = page.locator(".radar-layer")
    expect(layer).to_have_attribute("transform", re.compile("scale"))
    fitted = layer.get_attribute("transform")
    page.click(".radar-tools [data-zoom=in]")
    zoomed = layer.get_attribute("transform")
    assert zoomed != fitted
    scale = float(re.search(r"scale\(([\d.]+)\)", zoomed).group(1))
    assert scale == float(re.search(r"scale\(([\d.]+)\)", fitted).group(1)) * 1.25
    page.locator(".radar-canvas").scroll_into_view_if_needed()
    box = page.locator(".radar-canvas").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] - 5)
    page.mouse.down()
    page.mouse.move(box["x"] + 105, box["y"] + box["height"] - 25, steps=4)
    page.mouse.up()
    panned = layer.get_attribute("transform")
    x0, y0 = map(float, re.search(r"translate\(([-\d.]+),([-\d.]+)\)", zoomed).groups())
    x1, y1 = map(float, re.search(r"translate\(([-\d.]+),([-\d.]+)\)", panned).groups())
    assert (round(x1 - x0), round(y1 - y0)) == (100, -20)
    page.click(".radar-tools [data-zoom=fit]")
    expect(layer).to_have_attribute("transform", fitted)


OVERLAPS = """() => {
    const boxes = [...document.querySelectorAll('.radar-node > .radar-box')]
        .map((box) => box.getBoundingClientRect());
    let overlaps = 0;
    boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => {
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
            overlaps++;
        }
    }));
    return overlaps;
}"""


def test_a_large_graph_is_laid_out_without_dagre_left_to_right(page, api):
    # Over radar.js's DAGRE_MAX_NODES (200) tasks: its own layered layout. Ten chains of 21
    # distinct tasks, and two tasks feeding each other (a cycle, which dagre would break).
    run = api.run(api.flow("radar-large"), name="radar-large-run")
    steps = []
    for index in range(210):
        inputs = upstream(steps[index - 10]) if index >= 10 else {}
        steps.append(task_run(api, run, f"step-{index}", 0, inputs, "COMPLETED"))
    ping = task_run(api, run, "ping", 0, state="COMPLETED")
    pong = task_run(api, run, "pong", 0, upstream(ping), "COMPLETED")
    task_run(api, run, "ping", 1, upstream(pong), "FAILED")
    page.goto(f"/flow-runs/{run['id']}")
    expect(page.locator(".radar-node")).to_have_count(212)
    expect(page.locator(".radar-edges path")).to_have_count(202)
    xs = [
        page.locator(f".radar-node[data-task='step-{i}']").bounding_box()["x"]
        for i in range(5, 210, 10)
    ]
    assert xs == sorted(xs) and len(set(xs)) == 21
    assert page.evaluate(OVERLAPS) == 0
    group = page.locator(".radar-node[data-task='ping']")
    expect(group).to_have_class(re.compile("state-failed"))
    count_dagre_layouts(page)
    group.locator("[data-action=expand]").click()
    expect(page.locator(".radar-cell")).to_have_count(2)
    assert page.evaluate(OVERLAPS) == 0
    assert page.evaluate("window.dagreLayouts") == 0
