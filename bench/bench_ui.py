"""Dashboard render times with 1,000,000 flow runs and 10,000,000 task runs in PostgreSQL.

1. Seeds the database ``orion_bench_ui`` (created and migrated if missing) with bulk
   ``INSERT ... SELECT generate_series`` statements, in chunks of ``CHUNK`` flow runs (each
   with its state row and its task runs with theirs) committed one at a time. Chunks already
   present are skipped, so an interrupted seeding resumes where it stopped and a seeded
   database is reused as is. While seeding, the run and state tables' secondary indexes are
   dropped (their definitions kept in ``bench_ui_dropped_index``) and foreign-key triggers are
   off (``session_replication_role = replica``); the indexes are rebuilt at the end, then the
   tables are ANALYZEd.
2. Runs the rollup service's refresh twice, as a server does every minute (the first on a
   fresh database builds every hour of ``flow_run_hourly``), logging how long each took.
3. Builds the app in-process on that database and times, through the Flask test client, each
   dashboard page and htmx fragment (``--repeat`` requests each after one warm-up); prints
   p50 / p95 in milliseconds as a Markdown table. This is the server-side time: routing,
   queries, template rendering; no network.

Usage: nice python bench/bench_ui.py [--repeat 30] [--only SUBSTRING] [--explain] [--rollup]
``--explain`` prints EXPLAIN ANALYZE of the SQL the slowest page ran. ``--rollup`` times the
rollup service's refresh after stamping ``updated`` on 1,000 and 10,000 runs instead.

The data (all relative to the moment of seeding): 50 flows, 200 deployments (10 work
queues), 1,000,000 flow runs with expected start times over the past 90 days, one in ten
SCHEDULED for the coming week (one in ten thousand of those already late), 0.4 % RUNNING in
the last two hours, 0.2 % PENDING, about 5 % FAILED, 1 % CRASHED, 2 % CANCELLED and the rest
COMPLETED; two tags each (environment and team, plus "auto-scheduled" on scheduled runs).
Every run that is not SCHEDULED has 11 task runs (1 in 100 has 21), each with a state row:
10,000,000 task runs in all.
"""

import argparse
import datetime
import os
import re
import statistics
import sys
import time

import psycopg2
from psycopg2 import sql

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DATABASE = "orion_bench_ui"
SERVER = "postgresql://postgres@127.0.0.1:5432/"
URL = SERVER + DATABASE
FLOW_RUNS = 1_000_000
CHUNK = 50_000
FLOWS = 50
DEPLOYMENTS = 200
QUEUES = 10
SEEDED_TABLES = ("flow_run", "flow_run_state", "task_run", "task_run_state")

# A run's number i decides everything about it, so a chunk can be re-made identically.
RUN_ID = "md5('run' || i)::uuid"
STATE_ID = "md5('run-state' || i)::uuid"

FLOW_RUNS_SQL = f"""
WITH base AS (
  SELECT i, i % 1000 AS r,
         (i % 5 <> 3 OR i % 10 = 0) AS deployed,
         now() AT TIME ZONE 'UTC' AS t0
  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
), shaped AS (
  SELECT *,
    CASE WHEN r % 10 = 0 THEN 'SCHEDULED'
         WHEN r < 5 THEN 'RUNNING'
         WHEN r < 7 THEN 'PENDING'
         WHEN r BETWEEN 11 AND 69 THEN 'FAILED'
         WHEN r BETWEEN 71 AND 79 THEN 'CRASHED'
         WHEN r BETWEEN 81 AND 99 THEN 'CANCELLED'
         ELSE 'COMPLETED' END AS type
  FROM base
), timed AS (
  SELECT *,
    CASE WHEN type = 'SCHEDULED' AND i % 10000 = 0
           THEN t0 - make_interval(secs => 60 + (i / 10000) % 3600)
         WHEN type = 'SCHEDULED' THEN t0 + make_interval(secs => 60 + (i * 7919) % 604800)
         WHEN type IN ('RUNNING', 'PENDING') THEN t0 - make_interval(secs => (i * 7919) % 7200)
         ELSE t0 - make_interval(secs => 7200 + (i * 7919) % 7776000) END AS expected,
    ((i * 104729) % 3600) / 10.0 AS run_seconds
  FROM shaped
), runs AS (
  SELECT *,
    CASE WHEN type IN ('SCHEDULED', 'PENDING') THEN NULL
         ELSE expected + make_interval(secs => (i % 30)) END AS started,
    CASE WHEN type = 'SCHEDULED' AND i % 10000 = 0 THEN 'Late'
         WHEN type = 'CRASHED' THEN 'Crashed'
         ELSE initcap(type) END AS state_name
  FROM timed
), ins_state AS (
  INSERT INTO flow_run_state (id, created, updated, type, name, timestamp, message, data,
                              state_details, flow_run_id)
  SELECT {STATE_ID}, t0, t0, type, state_name,
         COALESCE(started + make_interval(secs => run_seconds), expected), NULL, NULL,
         CASE WHEN type = 'SCHEDULED'
              THEN jsonb_build_object(
                     'scheduled_time', to_char(expected, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'),
                     'flow_run_id', {RUN_ID}::text)
              ELSE jsonb_build_object('flow_run_id', {RUN_ID}::text) END,
         {RUN_ID}
  FROM runs
)
INSERT INTO flow_run (id, created, updated, name, tags, empirical_policy, state_id, state_type,
  state_name, state_timestamp, run_count, expected_start_time, next_scheduled_start_time,
  start_time, end_time, total_run_time, flow_id, deployment_id, work_queue_name, flow_version,
  parameters, context, idempotency_key, parent_task_run_id, auto_scheduled,
  infrastructure_document_id, infrastructure_pid, created_by, last_heartbeat)
SELECT {RUN_ID}, t0, t0,
  (ARRAY['brave','calm','eager','fancy','gentle','happy','jolly','keen','lucky',
         'merry'])[1 + i % 10]
    || '-' || (ARRAY['otter','heron','lynx','panda','koala','tiger','whale','finch','gecko',
                     'bison'])[1 + (i / 10) % 10]
    || '-' || i,
  CASE WHEN type = 'SCHEDULED'
       THEN jsonb_build_array('auto-scheduled', (ARRAY['prod','staging','dev'])[1 + i % 3],
                              'team-' || (i % 7))
       ELSE jsonb_build_array((ARRAY['prod','staging','dev'])[1 + i % 3],
                              'team-' || (i % 7)) END,
  '{{"retries": 0, "retry_delay": 0}}'::jsonb, {STATE_ID}, type, state_name,
  COALESCE(started + make_interval(secs => run_seconds), expected),
  CASE WHEN started IS NULL THEN 0 ELSE 1 END, expected,
  CASE WHEN type = 'SCHEDULED' THEN expected END,
  started,
  CASE WHEN type IN ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')
       THEN started + make_interval(secs => run_seconds) END,
  CASE WHEN type IN ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED') THEN run_seconds ELSE 0 END,
  md5('flow' || (i % {FLOWS}))::uuid,
  CASE WHEN deployed THEN md5('deployment' || (i % {DEPLOYMENTS}))::uuid END,
  CASE WHEN deployed THEN 'queue-' || ((i % {DEPLOYMENTS}) % {QUEUES}) END,
  '1.' || (i / 100000), jsonb_build_object('batch', i % 100, 'source', 's3://bucket/' || (i % 50)),
  '{{}}'::jsonb, NULL, NULL, type = 'SCHEDULED', NULL, NULL, NULL,
  CASE WHEN type = 'RUNNING' THEN t0 END
FROM runs
"""

TASK_RUNS_SQL = f"""
WITH runs AS (
  SELECT i, {RUN_ID} AS flow_run_id, fr.state_type AS flow_state, fr.start_time AS started,
         fr.total_run_time AS run_seconds, now() AT TIME ZONE 'UTC' AS t0
  FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
  JOIN flow_run fr ON fr.id = {RUN_ID}
  WHERE fr.state_type <> 'SCHEDULED'
), tasks AS (
  SELECT runs.*, j, (CASE WHEN i % 100 = 1 THEN 21 ELSE 11 END) AS n,
         md5('task' || i || '-' || j)::uuid AS id,
         md5('task-state' || i || '-' || j)::uuid AS state_id
  FROM runs, generate_series(0, 20) AS j
  WHERE j < (CASE WHEN i % 100 = 1 THEN 21 ELSE 11 END)
), shaped AS (
  SELECT *,
    CASE WHEN flow_state IN ('COMPLETED') THEN 'COMPLETED'
         WHEN flow_state IN ('FAILED', 'CRASHED') AND j = n - 1 THEN 'FAILED'
         WHEN flow_state = 'CANCELLED' AND j >= n - 2 THEN 'CANCELLED'
         WHEN flow_state = 'RUNNING' AND j = n - 1 THEN 'RUNNING'
         WHEN flow_state = 'PENDING' THEN 'PENDING'
         ELSE 'COMPLETED' END AS type,
    started + make_interval(secs => run_seconds * j / n) AS task_start,
    run_seconds / n AS task_seconds
  FROM tasks
), ins_state AS (
  INSERT INTO task_run_state (id, created, updated, type, name, timestamp, message, data,
                              state_details, task_run_id)
  SELECT state_id, t0, t0, type, initcap(type),
         COALESCE(task_start + make_interval(secs => task_seconds), t0), NULL, NULL,
         jsonb_build_object('flow_run_id', flow_run_id::text, 'task_run_id', id::text), id
  FROM shaped
)
INSERT INTO task_run (id, created, updated, name, tags, empirical_policy, state_id, state_type,
  state_name, state_timestamp, run_count, expected_start_time, next_scheduled_start_time,
  start_time, end_time, total_run_time, flow_run_id, task_key, dynamic_key, cache_key,
  cache_expiration, task_version, task_inputs, flow_run_run_count)
SELECT id, t0, t0,
  (ARRAY['extract','clean','transform','validate','load','notify'])[1 + j % 6] || '-' || j,
  jsonb_build_array((ARRAY['io','cpu','db'])[1 + j % 3]),
  '{{"max_retries": 0, "retry_delay_seconds": 0}}'::jsonb, state_id, type, initcap(type),
  COALESCE(task_start + make_interval(secs => task_seconds), t0),
  CASE WHEN type = 'PENDING' THEN 0 ELSE 1 END,
  COALESCE(task_start, t0), NULL,
  CASE WHEN type = 'PENDING' THEN NULL ELSE task_start END,
  CASE WHEN type IN ('COMPLETED', 'FAILED', 'CANCELLED')
       THEN task_start + make_interval(secs => task_seconds) END,
  CASE WHEN type IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN task_seconds ELSE 0 END,
  flow_run_id, 'task-' || (j % 6), j::text, NULL, NULL, '1.0',
  CASE WHEN j = 0 THEN '{{}}'::jsonb
       ELSE jsonb_build_object('x', jsonb_build_array(jsonb_build_object(
              'input_type', 'task_run', 'id', md5('task' || i || '-' || (j - 1))::uuid::text))) END,
  1
FROM shaped
"""


def chunk_sql(template, first, last):
    """The statement for runs ``first`` to ``last`` (integers; no parameters are passed, so
    the ``%`` of the SQL stays as written)."""
    return template.replace("%(first)s", str(int(first))).replace("%(last)s", str(int(last)))


def connect(dbname=None):
    conn = psycopg2.connect(SERVER + (dbname or DATABASE))
    conn.autocommit = True
    return conn


def ensure_database():
    """Create and migrate the bench database if needed."""
    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    admin.close()
    from app import migrations
    from app.config import load_config
    from app.db import database, init_database

    init_database(load_config({"DATABASE_URL": URL}))
    with database.connection_context():
        migrations.upgrade(database)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def drop_secondary_indexes(cur):
    """Drop the seeded tables' indexes other than primary keys, keeping their definitions;
    a resumed seeding finds them already dropped and recorded."""
    cur.execute(
        "CREATE TABLE IF NOT EXISTS bench_ui_dropped_index (name text PRIMARY KEY, "
        "definition text NOT NULL)"
    )
    cur.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
          AND i.indexname NOT LIKE '%%_pkey'""",
        (list(SEEDED_TABLES),),
    )
    for name, definition in cur.fetchall():
        cur.execute(
            "INSERT INTO bench_ui_dropped_index VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (name, definition),
        )
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))


def rebuild_indexes(cur):
    cur.execute("SELECT to_regclass('bench_ui_dropped_index')")
    if cur.fetchone()[0] is None:
        return
    cur.execute("SET maintenance_work_mem = '512MB'")
    cur.execute("SELECT name, definition FROM bench_ui_dropped_index ORDER BY name")
    for name, definition in cur.fetchall():
        started = time.perf_counter()
        cur.execute(
            definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1).replace(
                "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX IF NOT EXISTS", 1
            )
        )
        cur.execute("DELETE FROM bench_ui_dropped_index WHERE name = %s", (name,))
        log(f"rebuilt {name} in {time.perf_counter() - started:.0f} s")
    cur.execute("DROP TABLE bench_ui_dropped_index")


def seed():
    """Seed the chunks not yet present, rebuild indexes, ANALYZE (see module doc)."""
    ensure_database()
    conn = connect()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM flow_run WHERE id = md5('run' || %s)::uuid", (FLOW_RUNS - 1,))
    last_present = cur.fetchone()[0] == 1
    cur.execute("SELECT to_regclass('bench_ui_dropped_index')")
    if last_present and cur.fetchone()[0] is None:
        log("already seeded")
        conn.close()
        return
    cur.execute(
        """
        INSERT INTO flow (id, created, updated, name, tags)
        SELECT md5('flow' || f)::uuid, now(), now(), 'flow-' || lpad(f::text, 2, '0'),
               '[]'::jsonb FROM generate_series(0, %(flows)s - 1) f
        ON CONFLICT DO NOTHING;
        INSERT INTO deployment (id, created, updated, name, flow_id, version, description,
            schedule, is_schedule_active, parameters, tags, work_queue_name, infra_overrides)
        SELECT md5('deployment' || d)::uuid, now(), now(), 'deployment-' || d,
               md5('flow' || (d %% %(flows)s))::uuid, '1', '',
               jsonb_build_object('interval', 3600), true, '{}'::jsonb, '[]'::jsonb,
               'queue-' || (d %% %(queues)s), '{}'::jsonb
        FROM generate_series(0, %(deployments)s - 1) d
        ON CONFLICT DO NOTHING;
        INSERT INTO work_queue (id, created, updated, name, description, is_paused,
                                concurrency_limit, filter, last_polled, priority)
        SELECT md5('queue' || q)::uuid, now(), now(), 'queue-' || q, 'Queue ' || q, q = 9,
               CASE WHEN q %% 3 = 0 THEN 10 END, NULL,
               now() AT TIME ZONE 'UTC' - make_interval(secs => q * 20), q + 1
        FROM generate_series(0, %(queues)s - 1) q
        ON CONFLICT DO NOTHING;
    """,
        {"flows": FLOWS, "deployments": DEPLOYMENTS, "queues": QUEUES},
    )
    drop_secondary_indexes(cur)
    for first in range(0, FLOW_RUNS, CHUNK):
        last = first + CHUNK - 1
        cur.execute("SELECT count(*) FROM flow_run WHERE id = md5('run' || %s)::uuid", (last,))
        if cur.fetchone()[0]:
            continue
        started = time.perf_counter()
        with conn:  # one transaction per chunk: present entirely, or not at all
            conn.autocommit = False
            with conn.cursor() as chunk:
                chunk.execute("SET LOCAL session_replication_role = replica")
                chunk.execute(chunk_sql(FLOW_RUNS_SQL, first, last))
                chunk.execute(chunk_sql(TASK_RUNS_SQL, first, last))
        conn.autocommit = True
        log(f"flow runs {first:,}-{last:,} seeded in {time.perf_counter() - started:.1f} s")
    rebuild_indexes(cur)
    for table in SEEDED_TABLES + ("flow", "deployment", "work_queue"):
        cur.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    log("seeded and analyzed")
    conn.close()


DAY, DAYS_8, DAYS_100 = (datetime.timedelta(days=d) for d in (1, 8, 100))


def stamp(when):
    return when.strftime("%Y-%m-%dT%H:%M")


def pages(cur):
    """``[(label, path, htmx?)]``: every dashboard page and fragment, on real ids."""
    # Run 502 is COMPLETED with 11 task runs; run 101 (i % 100 == 1) has 21.
    cur.execute("SELECT md5('run502')::uuid, md5('run101')::uuid")
    run_id, big_run_id = cur.fetchone()
    cur.execute("SELECT id FROM task_run WHERE flow_run_id = %s LIMIT 1", (run_id,))
    task_id = cur.fetchone()[0]
    cur.execute("SELECT md5('flow7')::uuid, md5('queue3')::uuid")
    flow_id, queue_id = cur.fetchone()
    now = datetime.datetime.now(datetime.UTC)
    listed = [
        ("dashboard, last day", "/", False),
        ("dashboard fragment, last hour", "/?window=hour", True),
        ("dashboard fragment, last week", "/?window=week", True),
        (
            "dashboard fragment, custom window over all runs",
            f"/?window=custom&start={stamp(now - DAYS_100)}&end={stamp(now + DAYS_8)}",
            True,
        ),
        ("flow runs, unfiltered", "/flow-runs", False),
        ("flow runs fragment, FAILED", "/flow-runs?state=FAILED", True),
        (
            "flow runs fragment, FAILED+CRASHED, by expected start",
            "/flow-runs?state=FAILED&state=CRASHED&sort=EXPECTED_START_TIME_DESC",
            True,
        ),
        ("flow runs fragment, one flow", f"/flow-runs?flow={flow_id}", True),
        ("flow runs fragment, tag prod + team-3", "/flow-runs?tags=prod,team-3", True),
        ("flow runs fragment, name contains otter-12", "/flow-runs?name=otter-12", True),
        ("flow runs fragment, name contains otter (1 run in 10)", "/flow-runs?name=otter", True),
        ("flow runs fragment, by name", "/flow-runs?sort=NAME_ASC", True),
        ("flow runs fragment, by end time", "/flow-runs?sort=END_TIME_DESC", True),
        ("flow runs fragment, page 100 (the deepest)", "/flow-runs?page=100", True),
        (
            "flow runs fragment, RUNNING since a day ago",
            f"/flow-runs?state=RUNNING&start={stamp(now - DAY)}",
            True,
        ),
        ("flows", "/flows", False),
        ("flow page", f"/flows/{flow_id}", False),
        ("flow run page (11 task runs)", f"/flow-runs/{run_id}", False),
        ("flow run page (21 task runs)", f"/flow-runs/{big_run_id}", False),
        ("flow run state fragment", f"/flow-runs/{run_id}/state", True),
        ("flow run logs fragment", f"/flow-runs/{run_id}/logs", True),
        ("task run page", f"/task-runs/{task_id}", False),
        ("concurrency limits", "/concurrency-limits", False),
    ]
    cur.execute("SELECT md5('deployment7')::uuid, md5('deployment10')::uuid")
    past_deployment, ahead_deployment = cur.fetchone()
    ids = {
        "queue_id": queue_id,
        "past_deployment": past_deployment,
        "ahead_deployment": ahead_deployment,
        "run_id": run_id,
        "task_id": task_id,
    }
    return listed + [(label, path.format(**ids), hx) for label, path, hx in EXTRA_PAGES]


# Pages added with their features (kept apart so the list above stays readable).
EXTRA_PAGES = [
    ("work queues", "/work-queues", False),
    ("work queue page", "/work-queues/{queue_id}", False),
    ("new work queue form", "/work-queues/new", False),
    ("work pools", "/work-pools", False),
    # The seeded queues are the agents' pool's; deployment 10's 5,000 scheduled runs are in it.
    ("work pool page, the agents' pool", "/work-pools/default-agent-pool", False),
    ("work pool page, upcoming runs page 40", "/work-pools/default-agent-pool?page=40", False),
    (
        "deployments (first 50 of 200, last run, runs of the last day by state)",
        "/deployments",
        False,
    ),
    ("deployments fragment, name contains deployment-1", "/deployments?name=deployment-1", True),
    # Of the seeded runs, deployment 7 has 5,000 over the past 90 days and none scheduled;
    # deployment 10 has 5,000 all scheduled over the coming week.
    ("deployment page, 5,000 past runs", "/deployments/{past_deployment}", False),
    ("deployment page, 5,000 runs scheduled ahead", "/deployments/{ahead_deployment}", False),
    ("deployment custom run form", "/deployments/{past_deployment}/custom-run", False),
    ("deployment edit form", "/deployments/{past_deployment}/edit", False),
    ("flows fragment, name contains flow-0", "/flows?name=flow-0", True),
    ("task run logs fragment", "/task-runs/{task_id}/logs", True),
    ("flow run logs download", "/flow-runs/{run_id}/logs.txt", False),
]


def refresh_rollup():
    """One pass of the rollup service, as it runs every minute on a server (the first on a
    fresh database builds every hour); logs how long it took."""
    from app.db import database
    from app.services import rollups

    with database.connection_context():
        started = time.perf_counter()
        result = rollups.refresh_flow_run_hourly()
    log(
        f"rollup refresh ({'full' if result['full'] else 'incremental'}, "
        f"{result['hours']} hours): {time.perf_counter() - started:.2f} s"
    )


# Churn for --rollup: (label, SQL choosing the runs whose ``updated`` is stamped).
ROLLUP_CHURN = [
    (
        "1,000 runs in the recent hours",
        (
            "SELECT id FROM flow_run WHERE expected_start_time > now() AT TIME ZONE 'UTC' "
            "- interval '3 hours' ORDER BY expected_start_time LIMIT 1000"
        ),
    ),
    (
        "10,000 runs in the recent hours",
        (
            "SELECT id FROM flow_run WHERE expected_start_time > now() AT TIME ZONE 'UTC' "
            "- interval '3 hours' ORDER BY expected_start_time LIMIT 10000"
        ),
    ),
    (
        "10,000 runs spread over every hour",
        "SELECT id FROM flow_run TABLESAMPLE SYSTEM (2) LIMIT 10000",
    ),
]


def measure_rollup():
    """Time the rollup refresh after stamping ``updated`` on runs, as transitions would (the
    runs are otherwise unchanged, so the rollup's figures stay the same). Before each step,
    runs stamped in the last 10 minutes (the refresh looks back 5 before the previous one)
    are stamped an hour earlier, and a refresh runs, so each timed refresh sees only its own
    step's runs."""
    from app.config import load_config
    from app.db import database, init_database
    from app.services import rollups

    init_database(load_config({"DATABASE_URL": URL}))
    with database.connection_context():
        for label, chosen in [("nothing", None)] + ROLLUP_CHURN:
            database.execute_sql(
                "UPDATE flow_run SET updated = updated - interval '1 hour' "
                "WHERE updated > now() AT TIME ZONE 'UTC' - interval '10 minutes'"
            )
            rollups.refresh_flow_run_hourly()
            if chosen:
                database.execute_sql(
                    f"UPDATE flow_run SET updated = now() AT TIME ZONE 'UTC' WHERE id IN ({chosen})"
                )
            started = time.perf_counter()
            result = rollups.refresh_flow_run_hourly()
            log(
                f"rollup refresh after {label} changed: {result['hours']} hours, "
                f"{'full' if result['full'] else 'incremental'}, "
                f"{time.perf_counter() - started:.3f} s"
            )


def measure(repeat, only, explain):
    from app import create_app
    from app.db import database

    app = create_app({"DATABASE_URL": URL, "DATABASE_MIGRATE_ON_START": False})
    refresh_rollup()
    refresh_rollup()
    client = app.test_client()
    conn = connect()
    rows = []
    for label, path, htmx in pages(conn.cursor()):
        if only and only not in label:
            continue
        headers = {"HX-Request": "true"} if htmx else {}
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (
            path,
            response.status_code,
            response.get_data(as_text=True)[-500:],
        )
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p95 = samples[max(0, round(len(samples) * 0.95) - 1)]
        rows.append((label, path, statistics.median(samples), p95))
        log(f"{label}: p50 {rows[-1][2]:.1f} ms, p95 {p95:.1f} ms")
        if explain and only:
            explain_queries(client, path, headers, conn)
    print("\n| page | p50 ms | p95 ms |\n|---|---|---|")
    for label, path, p50, p95 in rows:
        shown = path if len(path) < 60 else path[:57] + "…"
        print(f"| {label} (`{shown}`) | {p50:.1f} | {p95:.1f} |")
    del database


def explain_queries(client, path, headers, conn):
    """EXPLAIN ANALYZE every SELECT one request of ``path`` runs (from peewee's debug log)."""
    import logging

    captured = []

    class Capture(logging.Handler):
        def emit(self, record):
            if isinstance(record.msg, tuple):
                captured.append(record.msg)

    logger = logging.getLogger("peewee")
    handler = Capture()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    client.get(path, headers=headers)
    logger.removeHandler(handler)
    with conn.cursor() as cur:
        for query, params in captured:
            if not re.match(r"\s*SELECT", query, re.I):
                continue
            cur.execute("EXPLAIN ANALYZE " + query, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
            print(f"\n-- {query[:300]}\n{plan}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", default="", help="time only pages whose label contains this")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument(
        "--rollup",
        action="store_true",
        help="time the rollup refresh after runs change, instead of the pages",
    )
    args = parser.parse_args()
    seed()
    if args.rollup:
        measure_rollup()
    elif not args.seed_only:
        measure(args.repeat, args.only, args.explain)


if __name__ == "__main__":
    main()
