"""The radar of a flow run with 1,000 task runs, drawn in headless Chromium.

Serves the app in-process (werkzeug, threaded) on a fresh SQLite database holding one flow
run per shape below, each with 1,000 Completed task runs written through the models; opens
each run's page ``--repeat`` times in /usr/bin/chromium (playwright) and reports the p50 and
worst of:

- **layout + draw**: what radar.js measured for dagre's layout and the SVG drawing
  (``data-rendered-ms``);
- **page to radar**: from the start of the navigation to the radar drawn, as the user waits
  for it (server, network, scripts, layout and drawing);
- **expand**: for the mapped shapes, clicking a 1,000-run group open (layout + draw again).

Shapes: ``map`` (extract → transform ×499 → load ×500, each load fed by one transform: 3
nodes), ``map-1000`` (one task mapped 1,000 times: 1 node), ``tasks-100`` (100 tasks of 10
runs, 10 chains of 10 tasks: 100 nodes) and ``distinct-1000`` (1,000 tasks of one run each in
ten chains: 1,000 nodes, dagre's worst case here).

Usage: nice python bench/bench_radar.py [--repeat 5]
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SHAPES = {
    # name: (task key, upstream index or None) of each of the 1,000 task runs, by index.
    "map": lambda i: (
        ("extract", None) if i == 0 else ("transform", 0) if i < 500 else ("load", i - 500 + 1)
    ),
    "map-1000": lambda i: ("transform", None),
    "tasks-100": lambda i: (f"task-{i % 100}", i - 10 if i % 100 >= 10 else None),
    "distinct-1000": lambda i: (f"task-{i}", i - 10 if i >= 10 else None),
}
TASKS = 1000


def seed(shape):
    """A flow run whose task runs follow ``shape``; returns its id."""
    from app.db import database
    from app.models import Flow, FlowRun, TaskRun

    now = datetime.datetime.now(datetime.UTC)
    run_id = uuid.uuid4()
    with database.atomic():
        flow = Flow.create(id=uuid.uuid4(), name=f"radar-{shape}")
        FlowRun.create(
            id=run_id,
            flow=flow.id,
            name=f"radar-{shape}",
            state_type="COMPLETED",
            state_name="Completed",
            run_count=1,
        )
        ids = [uuid.uuid4() for _ in range(TASKS)]
        rows = []
        for i, task_id in enumerate(ids):
            key, upstream = SHAPES[shape](i)
            start = now - datetime.timedelta(seconds=60) + datetime.timedelta(milliseconds=i)
            rows.append(
                {
                    "id": task_id,
                    "flow_run": run_id,
                    "task_key": key,
                    "dynamic_key": str(i),
                    "name": f"{key}-{i}",
                    "task_inputs": (
                        {"x": [{"input_type": "task_run", "id": str(ids[upstream])}]}
                        if upstream is not None
                        else {}
                    ),
                    "state_type": "COMPLETED",
                    "state_name": "Completed",
                    "expected_start_time": start,
                    "start_time": start,
                    "end_time": start + datetime.timedelta(milliseconds=5),
                    "created": start,
                    "updated": start,
                }
            )
        for batch in range(0, TASKS, 500):
            TaskRun.insert_many(rows[batch : batch + 500]).execute()
    return run_id


def serve(home):
    """The base URL of the app serving a fresh database in ``home`` (a daemon thread)."""
    import logging

    from werkzeug.serving import make_server

    from app import create_app, migrations
    from app.config import load_config
    from app.db import database, init_database
    from app.serving import freeze_loaded_app

    settings = {"DATABASE_URL": f"sqlite:///{home}/radar.db"}
    init_database(load_config(settings))
    with database.connection_context():
        migrations.reset(database)
    app = create_app(settings)
    with app.app_context():
        database.connect(reuse_if_open=True)
        runs = {shape: seed(shape) for shape in SHAPES}
        database.close()
    freeze_loaded_app()  # as `orion start` and wsgi.py do once the app is built
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", runs


def measure(page, url, expand):
    """(layout + draw ms, page to radar ms, expand ms or None) of one visit."""
    page.goto(url)
    radar = page.locator("[data-radar][data-drawn]")
    radar.wait_for()
    to_radar = page.evaluate("performance.now()")
    drawn = float(radar.get_attribute("data-rendered-ms"))
    expanded = None
    if expand:
        toggle = page.locator("[data-action=expand]").last
        before = radar.get_attribute("data-rendered-ms")
        toggle.click()
        page.wait_for_function(
            "(before) => document.querySelector('[data-radar]')"
            ".getAttribute('data-rendered-ms') !== before",
            arg=before,
        )
        expanded = float(radar.get_attribute("data-rendered-ms"))
    return drawn, to_radar, expanded


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as home:
        os.environ["ORION_HOME"] = home
        base, runs = serve(home)
        rows = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            for shape, run_id in runs.items():
                samples = []
                for _ in range(args.repeat):
                    # A new page each time: the radar's view (expanded groups) is per page.
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    samples.append(
                        measure(page, f"{base}/flow-runs/{run_id}", shape.startswith("map"))
                    )
                    page.close()
                rows.append((shape, samples))
            browser.close()
    print(f"\nRadar of a flow run with {TASKS:,} task runs, {args.repeat} visits each (ms)\n")
    print("| shape | layout + draw p50 / max | page to radar p50 / max | expand p50 / max |")
    print("|---|---|---|---|")
    for shape, samples in rows:
        cells = []
        for column in range(3):
            values = [s[column] for s in samples if s[column] is not None]
            cells.append(f"{statistics.median(values):.0f} / {max(values):.0f}" if values else "—")
        print(f"| {shape} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
