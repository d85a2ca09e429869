"""The flow run page's live poll and full page for a run with 1,000 task runs, on SQLite and
PostgreSQL.

Seeds, on a fresh database per backend, one RUNNING flow run with ``--tasks`` task runs (ten
parallel chains, each task consuming the one before it: the graph has ``tasks - 10`` edges;
nine in ten Completed, the rest Running), each with its state row, one subflow run, a state
history of 3 rows, and 500 log records (a third from task runs). Then times, through the
Flask test client in-process (routing, queries, template rendering; no network), the htmx
poll ``/flow-runs/<id>/live`` as the page sends it (with the marks the previous answer gave
out) when nothing changed, when a log record arrived, when a task run changed, when the run
itself changed state (its head, state history and logs redrawn, the changed task runs sent
alone), and without marks (everything redrawn, which the page itself never asks), then the
full page, the radar's data alone (``/flow-runs/<id>/radar``, as a subflow node opened on its
parent's radar loads it), and last the poll when a task run was added (the whole task section
redrawn: the usual poll while a big flow runs), ``--repeat`` times each after one warm-up;
prints p50 / p95 in milliseconds as a Markdown table.

Usage: nice python bench/bench_run_page.py [--tasks 1000] [--repeat 30]
       [--postgres postgresql://postgres@127.0.0.1:5432/orion_bench_run_page]
The PostgreSQL database is dropped and created again.
"""

import argparse
import datetime
import os
import re
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HX = {"HX-Request": "true"}


def seed(tasks):
    """The flow run's id, after writing its rows through the models (one transaction)."""
    from app.db import database
    from app.models import Flow, FlowRun, FlowRunState, Log, TaskRun, TaskRunState

    now = datetime.datetime.now(datetime.UTC)
    with database.atomic():
        flow = Flow.create(id=uuid.uuid4(), name="bench-flow")
        run_id = uuid.uuid4()
        states = [
            (name, now - datetime.timedelta(seconds=60 - i))
            for i, name in enumerate(("SCHEDULED", "PENDING", "RUNNING"))
        ]
        state_ids = [uuid.uuid4() for _ in states]
        FlowRun.create(
            id=run_id,
            flow=flow.id,
            name="bench-run",
            state_id=state_ids[-1],
            state_type="RUNNING",
            state_name="Running",
            start_time=states[-1][1],
            expected_start_time=states[0][1],
            run_count=1,
        )
        FlowRunState.insert_many(
            [
                {
                    "id": state_id,
                    "flow_run": run_id,
                    "type": name,
                    "name": name.capitalize(),
                    "timestamp": when,
                }
                for state_id, (name, when) in zip(state_ids, states)
            ]
        ).execute()
        ids = [uuid.uuid4() for _ in range(tasks)]
        task_rows, state_rows = [], []
        for i, task_id in enumerate(ids):
            running = i % 10 == 9
            start = now - datetime.timedelta(seconds=50) + datetime.timedelta(milliseconds=40 * i)
            state_id = uuid.uuid4()
            state_type = "RUNNING" if running else "COMPLETED"
            task_rows.append(
                {
                    "id": task_id,
                    "flow_run": run_id,
                    "task_key": f"step-{i % 10}",
                    "dynamic_key": str(i // 10),
                    "name": f"step-{i % 10}-{i // 10}",
                    "task_inputs": (
                        {"x": [{"input_type": "task_run", "id": str(ids[i - 10])}]}
                        if i >= 10
                        else {}
                    ),
                    "state_id": state_id,
                    "state_type": state_type,
                    "state_name": state_type.capitalize(),
                    "expected_start_time": start,
                    "start_time": start,
                    "end_time": None if running else start + datetime.timedelta(milliseconds=30),
                    "created": start,
                    "updated": start,
                }
            )
            state_rows.append(
                {
                    "id": state_id,
                    "task_run": task_id,
                    "type": state_type,
                    "name": state_type.capitalize(),
                    "timestamp": start,
                }
            )
        for batch in range(0, tasks, 500):
            TaskRun.insert_many(task_rows[batch : batch + 500]).execute()
            TaskRunState.insert_many(state_rows[batch : batch + 500]).execute()
        FlowRun.create(
            id=uuid.uuid4(),
            flow=flow.id,
            name="bench-subflow",
            parent_task_run_id=ids[0],
            state_type="COMPLETED",
            state_name="Completed",
            run_count=1,
        )
        Log.insert_many(
            [
                {
                    "name": "bench",
                    "level": 20,
                    "message": f"record {i}",
                    "flow_run_id": run_id,
                    "task_run_id": ids[i % tasks] if i % 3 == 0 else None,
                    "timestamp": now - datetime.timedelta(milliseconds=500 - i),
                }
                for i in range(500)
            ]
        ).execute()
    return run_id


def timed(client, path, repeat, headers=None, before=None):
    """p50 and p95 in ms of ``repeat`` GETs of ``path`` (after one warm-up). ``path`` may be
    a function of the previous response's text (a poll's next address); ``before()`` runs
    untimed ahead of each request."""
    text = ""
    times = []
    for attempt in range(repeat + 1):
        if before is not None:
            before()
        address = path(text) if callable(path) else path
        start = time.perf_counter()
        response = client.get(address, headers=headers or {})
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, (address, response.status_code)
        text = response.get_data(as_text=True)
        if attempt:
            times.append(elapsed)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def _touch_a_task_run(run_id):
    """A task run of the run changes (as a state change stamps ``updated``)."""
    from app.clock import utcnow
    from app.models import TaskRun

    first = TaskRun.select(TaskRun.id).where(TaskRun.flow_run == run_id).first()
    TaskRun.update(updated=utcnow()).where(TaskRun.id == first.id).execute()


def _change_the_run(run_id):
    """The run changes (as its state change stamps ``updated``), and a task run with it."""
    from app.clock import utcnow
    from app.models import FlowRun

    FlowRun.update(updated=utcnow()).where(FlowRun.id == run_id).execute()
    _touch_a_task_run(run_id)


def _add_a_task_run(run_id):
    """A task run is created in the run (Pending, not started), as a running flow's tasks are."""
    from app.clock import utcnow
    from app.models import TaskRun

    now = utcnow()
    TaskRun.create(
        id=uuid.uuid4(),
        flow_run=run_id,
        task_key="added",
        dynamic_key=str(uuid.uuid4()),
        name="added",
        state_type="PENDING",
        state_name="Pending",
        expected_start_time=now,
        created=now,
        updated=now,
    )


def _add_a_log(run_id):
    from app.clock import utcnow
    from app.models import Log

    Log.create(name="bench", level=20, message="one more", flow_run_id=run_id, timestamp=utcnow())


def bench(url, tasks, repeat):
    """Rows ``(what, p50, p95)`` for one database ``url``."""
    from app import create_app, migrations
    from app.config import load_config
    from app.db import database, init_database
    from app.serving import freeze_loaded_app

    settings = {"DATABASE_URL": url, "TESTING": True}
    init_database(load_config(settings))
    with database.connection_context():
        migrations.reset(database)
    app = create_app(settings)
    with app.app_context():
        database.connect(reuse_if_open=True)
        run_id = seed(tasks)
        database.close()
    # As `orion start` and wsgi.py do once the app is built: without it, a full garbage
    # collection walks every object of the loaded app (60-80 ms) on one request in ten or so.
    freeze_loaded_app()
    client = app.test_client()
    page = f"/flow-runs/{run_id}"
    since = re.compile(r'hx-get="([^"]+/live\?since=[0-9a-f.-]+)"')

    def next_poll(text):
        # As the browser does: the address the last answer (or the page) gave out.
        found = since.search(text) or since.search(client.get(page).get_data(as_text=True))
        return found.group(1) + "&level=0"

    def in_app(action):
        def run():
            with app.app_context():
                with database.connection_context():
                    action(run_id)

        return run

    return [
        ("poll, nothing changed", *timed(client, next_poll, repeat, HX)),
        ("poll, a log record arrived", *timed(client, next_poll, repeat, HX, in_app(_add_a_log))),
        (
            "poll, a task run changed",
            *timed(client, next_poll, repeat, HX, in_app(_touch_a_task_run)),
        ),
        (
            "poll, the run changed state (and a task run)",
            *timed(client, next_poll, repeat, HX, in_app(_change_the_run)),
        ),
        (
            "poll, everything (no marks)",
            *timed(client, f"{page}/live?level=0", repeat, HX),
        ),
        ("full page", *timed(client, page, repeat)),
        (
            "radar data alone (/radar, as a subflow node loads it)",
            *timed(client, f"{page}/radar", repeat, HX),
        ),
        # Last: the run then has more than 1,000 task runs, which the rows above would see.
        (
            "poll, a task run was added (the task runs redrawn)",
            *timed(client, next_poll, repeat, HX, in_app(_add_a_task_run)),
        ),
    ]


def _fresh_postgres(url):
    import psycopg2

    server, name = url.rsplit("/", 1)
    connection = psycopg2.connect(server + "/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432/orion_bench_run_page"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["ORION_HOME"] = home
        results = [("SQLite", bench(f"sqlite:///{home}/bench.db", args.tasks, args.repeat))]
        _fresh_postgres(args.postgres)
        results.append(("PostgreSQL", bench(args.postgres, args.tasks, args.repeat)))
    print(f"\nFlow run page, {args.tasks:,} task runs, {args.repeat} requests each (ms)\n")
    print("| request | backend | p50 | p95 |\n|---|---|---|---|")
    for backend, rows in results:
        for what, p50, p95 in rows:
            print(f"| {what} | {backend} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
