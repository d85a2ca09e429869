"""What the run indexes of migrations 0026 (SQLite's trigram index of flow run names, kept by
triggers), 0027 (SQLite: runs by expected start with their state columns), 0029 (SQLite: runs
by state type and end time, and by state type and name), 0030 (both backends: runs by flow
and end time, by flow and name; PostgreSQL also 0029's two and runs by state type and
expected start) and 0031 (both backends: the queue name index also holds the queue id) cost
the writes of runs.

On a fresh database, in-process (Flask test client: routing, services, the database; no
network), in rotating rounds between schemas: on SQLite (a fresh file) 0025 (neither), 0026,
0027 (both), 0029 (0028 replaces an index by another, so 0029 adds two to 0027's), 0030 and
0031; on PostgreSQL (``--backend postgres``: the scratch database ``--postgres-url``, dropped
and created again, dropped at the end) 0029, 0030 and 0031, the migrations before 0030 adding
none of these indexes there. Each round: ``POST /api/flow_runs/`` (a run created, one transaction),
``POST /api/flow_runs/{id}/set_state`` (PENDING, RUNNING, COMPLETED) and ``DELETE
/api/flow_runs/{id}``. Before the rounds, ``--prefill`` runs are inserted in one transaction,
so the indexes are not empty. Prints the median over the rounds of each request's mean time,
in milliseconds, as a Markdown table.

Then, on SQLite only, the statements alone (the bare table has no end time or flow: 0029 and
0030 are measured by the requests only), which a shared machine's noise hides less: on a bare
``flow_run`` (the columns and indexes these statements touch, ``--prefill`` runs),
single-row INSERT, UPDATE of the state columns (as a transition writes them) and DELETE, each
its own transaction (WAL, ``synchronous = NORMAL``), with neither, the name index (the app's
own statements) or the chart index added, rotating; and whether SQLite compiles a trigger
program into the state UPDATE at all (``EXPLAIN``: it codes an ``UPDATE OF name`` trigger only
into statements that set ``name``).

Usage: nice python bench/bench_run_writes.py [--backend sqlite|postgres] [--postgres-url URL]
    [--runs 500] [--rounds 6] [--prefill 100000]
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Per backend: (migration, label) of each schema the rounds rotate between.
SCHEMAS = {
    "sqlite": (
        ("0025_flow_run_subflow_index", "neither (0025)"),
        ("0026_flow_run_name_search", "name index (0026)"),
        ("0027_flow_run_chart_index", "both (0027)"),
        ("0029_flow_run_state_sort_indexes", "state sort indexes (0029)"),
        ("0030_flow_run_state_and_flow_sort_indexes", "flow sort indexes (0030)"),
        ("0031_flow_run_queue_name_index_queue_id", "queue id in the queue name index (0031)"),
    ),
    "postgres": (
        ("0029_flow_run_state_sort_indexes", "before (0029)"),
        ("0030_flow_run_state_and_flow_sort_indexes", "state and flow sort indexes (0030)"),
        ("0031_flow_run_queue_name_index_queue_id", "queue id in the queue name index (0031)"),
    ),
}
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/orion_bench_writes"


def timed(samples, key, call, path, body=None):
    """``call(path, json=body)``, its time added to ``samples[key]``; the JSON answer."""
    started = time.perf_counter()
    response = call(path, json=body)
    samples.setdefault(key, []).append((time.perf_counter() - started) * 1000)
    assert response.status_code < 300, (key, response.status_code, response.get_json())
    return response.get_json()


def one_round(client, flow_id, runs, round_number):
    """Create ``runs`` runs, move each through three states, delete them: mean ms of each."""
    samples = {}
    ids = []
    for i in range(runs):
        body = {"flow_id": flow_id, "name": f"bench-otter-{round_number}-{i}"}
        ids.append(timed(samples, "create", client.post, "/api/flow_runs/", body)["id"])
    for state in ("PENDING", "RUNNING", "COMPLETED"):
        for run_id in ids:
            path = f"/api/flow_runs/{run_id}/set_state"
            timed(samples, "set_state", client.post, path, {"state": {"type": state}})
    for run_id in ids:
        timed(samples, "delete", client.delete, f"/api/flow_runs/{run_id}")
    return {key: statistics.mean(values) for key, values in samples.items()}


def rotated(items, round_number):
    """``items`` starting at a different one each round, so no variant always goes first."""
    shift = round_number % len(items)
    return items[shift:] + items[:shift]


def request_costs(folder, url, schemas, prefill, rounds, runs):
    """``{schema label: {request: median ms}}`` through the app on the empty database at
    ``url``, rotating between ``schemas``."""
    from app import create_app, migrations
    from app.db import database
    from app.models import Flow, FlowRun

    app = create_app({"DATABASE_URL": url, "HOME": folder, "API_KEY": None})
    client = app.test_client()
    with database.connection_context():
        migrations.upgrade(database)
        flow_id = uuid.uuid4()
        Flow.insert(id=flow_id, name="bench").execute()
        with database.atomic():
            rows = [
                {"flow": flow_id, "name": f"prefill-{'heron' if i % 2 else 'lynx'}-{i}"}
                for i in range(prefill)
            ]
            for start in range(0, len(rows), 5000):
                FlowRun.insert_many(rows[start : start + 5000]).execute()
    results = {label: [] for _, label in schemas}
    for round_number in range(rounds):
        for target, label in rotated(list(schemas), round_number):
            with database.connection_context():
                migrations.upgrade(database)
                migrations.downgrade(database, target=target)
            results[label].append(one_round(client, str(flow_id), runs, round_number))
    database.close_all()
    return {
        label: {key: statistics.median(r[key] for r in rounds_) for key in rounds_[0]}
        for label, rounds_ in results.items()
    }


def postgres_database(url, create):
    """Drop the database of ``url`` if it exists, and create it again if ``create``."""
    import psycopg2

    server, name = url.rsplit("/", 1)
    connection = psycopg2.connect(server + "/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


BARE_TABLE = (
    'CREATE TABLE "flow_run" ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "state_type" TEXT, '
    '"state_name" TEXT, "state_timestamp" TEXT, "expected_start_time" TEXT, '
    '"total_run_time" REAL)'
)
BARE_INDEXES = ("name", "state_type", "state_name", "expected_start_time")
STATEMENTS = {
    "insert": "INSERT INTO \"flow_run\" VALUES (?, ?, 'PENDING', 'Pending', ?, ?, 0.0)",
    "update of the state": (
        'UPDATE "flow_run" SET "state_type" = \'RUNNING\', "state_name" = \'Running\', '
        '"state_timestamp" = ?, "total_run_time" = 1.5 WHERE "id" = ?'
    ),
    "delete": 'DELETE FROM "flow_run" WHERE "id" = ?',
}


def statement_costs(folder, prefill, rounds, runs):
    """``{variant: {statement: median µs}}`` on the bare table, and whether the state
    UPDATE's program holds a trigger program with the name index in place."""
    from app.migrations import __name__ as package
    from app.models.runs import FLOW_RUN_NAME_SEARCH, FLOW_RUN_NAME_SEARCH_SCHEMA

    chart_index = __import__(f"{package}.0027_flow_run_chart_index", fromlist=["INDEX"])
    conn = sqlite3.connect(os.path.join(folder, "bare.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(BARE_TABLE)
    for column in BARE_INDEXES:
        conn.execute(f'CREATE INDEX "flow_run_{column}" ON "flow_run" ("{column}")')
    stamp = "2026-12-05 00:00:00.000000"
    rows = [(uuid.uuid4().hex, f"prefill-heron-{i}", stamp, stamp) for i in range(prefill)]
    conn.execute("BEGIN")
    conn.executemany(STATEMENTS["insert"], rows)
    conn.execute("COMMIT")

    def drop_all():
        for event in ("insert", "delete", "update"):
            conn.execute(f'DROP TRIGGER IF EXISTS "{FLOW_RUN_NAME_SEARCH}_{event}"')
        for statement in FLOW_RUN_NAME_SEARCH_SCHEMA.drop:
            conn.execute(statement)
        conn.execute(f'DROP INDEX IF EXISTS "{chart_index.NAME}"')

    def name_index():
        for statement in FLOW_RUN_NAME_SEARCH_SCHEMA.create:
            conn.execute(statement)
        conn.execute(
            f'INSERT INTO "{FLOW_RUN_NAME_SEARCH}" ("{FLOW_RUN_NAME_SEARCH}") VALUES (\'rebuild\')'
        )

    variants = [
        ("neither", lambda: None),
        ("name index (0026)", name_index),
        ("chart index (0027)", lambda: conn.execute(chart_index.INDEX)),
    ]
    results = {label: [] for label, _ in variants}
    for round_number in range(rounds):
        for label, make in rotated(variants, round_number):
            drop_all()
            make()
            ids = [uuid.uuid4().hex for _ in range(runs)]
            params = {
                "insert": [
                    (x, f"brave-otter-{round_number}-{i}", stamp, stamp) for i, x in enumerate(ids)
                ],
                "update of the state": [(stamp, x) for x in ids],
                "delete": [(x,) for x in ids],
            }
            costs = {}
            for key, sql in STATEMENTS.items():
                started = time.perf_counter()
                for values in params[key]:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(sql, values)
                    conn.execute("COMMIT")
                costs[key] = (time.perf_counter() - started) / runs * 1e6
            results[label].append(costs)
    drop_all()
    name_index()
    update = STATEMENTS["update of the state"]
    opcodes = [row[1] for row in conn.execute("EXPLAIN " + update, (stamp, "x"))]
    conn.close()
    medians = {
        label: {key: statistics.median(r[key] for r in rounds_) for key in STATEMENTS}
        for label, rounds_ in results.items()
    }
    return medians, "Program" in opcodes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="the scratch database")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--prefill", type=int, default=100_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="orion-bench-run-writes-")
    postgres = args.backend == "postgres"
    try:
        if postgres:
            postgres_database(args.postgres_url, create=True)
        report(folder, args)
    finally:
        shutil.rmtree(folder)
        if postgres:
            postgres_database(args.postgres_url, create=False)


def report(folder, args):
    """Run the measurements in ``folder`` (and the PostgreSQL database) and print their
    tables."""
    if args.backend == "postgres":
        url = args.postgres_url
    else:
        url = "sqlite:///" + os.path.join(folder, "orion.db")
    started_load = os.getloadavg()[0]
    requests = request_costs(
        folder, url, SCHEMAS[args.backend], args.prefill, args.rounds, args.runs
    )
    print(
        f"\n{args.backend}: {args.runs} runs per round, {args.rounds} rounds, "
        f"{args.prefill:,} runs prefilled; load average {started_load:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end; ms per request\n"
    )
    print("| request | " + " | ".join(requests) + " |\n" + "|---" * (len(requests) + 1) + "|")
    for key in ("create", "set_state", "delete"):
        print(f"| {key} | " + " | ".join(f"{r[key]:.3f}" for r in requests.values()) + " |")
    if args.backend != "sqlite":
        return

    statements, triggered = statement_costs(folder, args.prefill, args.rounds, args.runs * 4)
    print(
        f"\nThe statements alone, {args.runs * 4} each per round; load average "
        f"{os.getloadavg()[0]:.2f}; trigger program in the state UPDATE: {triggered}; "
        "µs per statement\n"
    )
    print("| statement | " + " | ".join(statements) + " |\n" + "|---" * (len(statements) + 1) + "|")
    for key in STATEMENTS:
        print(f"| {key} | " + " | ".join(f"{s[key]:.0f}" for s in statements.values()) + " |")


if __name__ == "__main__":
    main()
