"""Where a flow run lifecycle's server CPU goes, layer by layer (issue 21's budget of 2.5 ms).

In one process, on a fresh database (SQLite in a temporary ORION_HOME, or the recreated
PostgreSQL database ``orion_bench_layers``), the lifecycle ``bench_scale.py``'s clients run
(create a flow run Pending, set Running, set Completed: the same three JSON bodies) is done
``--lifecycles`` times at each layer, and the CPU time (``time.process_time``) per lifecycle
is printed:

- ``load``: marshmallow loading the three bodies (the schemas the API's views declare), no
  database;
- ``services``: the same loads, then Orion's services (``flow_runs.create_flow_run``,
  ``orchestration.set_flow_run_state`` twice), each of the three in its own pooled
  connection checkout, as a request has: the orchestration rules, the SQL and the commits;
- ``wsgi``: the app's WSGI callable called with a request environ as gunicorn builds it (the
  body in ``wsgi.input``), the response body read: Flask, flask-smorest and webargs, Orion's
  request hooks, the views, the responses' dumps and JSON, and all of ``services``.

The layers alternate for ``--rounds`` rounds (a first, unmeasured one warms every path up)
and each row gives the lowest and highest round. ``wsgi`` minus ``services`` is what the web
framework and the API layer cost; what gunicorn and HTTP add on top is
``bench_cpu_floor.py``'s ``wsgi`` floor, and ``bench_scale.py`` measures the whole.

Usage: python bench/bench_layers.py [--backend sqlite|postgres] [--lifecycles 2000] [--rounds 3]
Needs the package installed (`pip install -e .`). Prints a Markdown table.
"""

import argparse
import io
import json
import os
import sys
import tempfile
import time

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_layers"


def recreate_pg_database():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_layers WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_layers")
    conn.close()


def bodies(flow_id):
    """The lifecycle's three request bodies, as ``bench_scale.py``'s clients send them."""
    return (
        {"flow_id": flow_id, "state": {"type": "PENDING"}},
        {"state": {"type": "RUNNING"}},
        {"state": {"type": "COMPLETED"}},
    )


def layers(app, flow_id):
    """``{name: lifecycle()}``: one flow run lifecycle done at each layer."""
    from app.db import database
    from app.schemas.actions import FlowRunCreateSchema, SetStateSchema
    from app.services import flow_runs, orchestration

    create_schema, set_state_schema = FlowRunCreateSchema(), SetStateSchema()
    create, running, completed = bodies(flow_id)

    def load():
        create_schema.load(create)
        set_state_schema.load(running)
        set_state_schema.load(completed)

    def services():
        with database.connection_context():
            run, _ = flow_runs.create_flow_run(create_schema.load(create))
        for body in (running, completed):
            with database.connection_context():
                result = orchestration.set_flow_run_state(run.id, **set_state_schema.load(body))
            assert result.written, result.status

    encoded = [json.dumps(body).encode() for body in (create, running, completed)]

    def call(path, body):
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "4200",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:4200",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        status = []
        chunks = app(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            answer = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        assert status[0].startswith("201"), (status, answer)
        return answer

    def wsgi():
        run_id = json.loads(call("/api/flow_runs/", encoded[0]))["id"]
        call(f"/api/flow_runs/{run_id}/set_state", encoded[1])
        call(f"/api/flow_runs/{run_id}/set_state", encoded[2])

    return {"load": load, "services": services, "wsgi": wsgi}


def cpu_ms_per_call(function, count):
    began = time.process_time()
    for _ in range(count):
        function()
    return (time.process_time() - began) * 1000 / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--lifecycles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    os.environ["ORION_HOME"] = tempfile.mkdtemp(prefix="orion-bench-layers-")
    # What bench_scale.py's server runs: no scheduler; metrics and the rest as by default.
    os.environ["ORION_SCHEDULER_ENABLED"] = "false"
    if args.backend == "postgres":
        recreate_pg_database()
        os.environ["ORION_DATABASE_URL"] = PG_BENCH
    else:
        os.environ.pop("ORION_DATABASE_URL", None)

    from app import create_app, migrations
    from app.db import database
    from app.models import Flow

    app = create_app()
    with app.app_context():
        with database.connection_context():
            migrations.upgrade(database)
            flow_id = str(Flow.create(name="bench-layers").id)
        steps = layers(app, flow_id)
        figures = {name: [] for name in steps}
        for round_number in range(args.rounds + 1):
            count = args.lifecycles if round_number else max(args.lifecycles // 10, 50)
            for name, step in steps.items():
                figure = cpu_ms_per_call(step, count)
                if round_number:
                    figures[name].append(figure)

    def span(values):
        return f"{min(values):.2f}-{max(values):.2f}"

    services, whole = figures["services"], figures["wsgi"]
    print(
        f"{args.backend}, {args.lifecycles:,} lifecycles a round, {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| layer | CPU ms per lifecycle (3 requests) |\n|---|---|")
    print(f"| load: marshmallow loading the 3 bodies | {span(figures['load'])} |")
    print(f"| services: the loads, orchestration, SQL, commits | {span(services)} |")
    print(f"| wsgi: the app's WSGI callable, all of the above included | {span(whole)} |")
    framework = [w - s for w, s in zip(whole, services)]
    print(f"| wsgi - services: web framework and API layer | {span(framework)} |")


if __name__ == "__main__":
    main()
