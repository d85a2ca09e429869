"""Dashboard render times with 1,000,000 flow runs and 10,000,000 task runs, on PostgreSQL
or SQLite.

1. Seeds the bench database, created and migrated (the app's migrations) if missing:
   PostgreSQL's ``orion_bench_ui`` with bulk ``INSERT ... SELECT generate_series``
   statements, or the SQLite file ``--sqlite-path`` (default ``/tmp/orion_bench_ui.db``)
   with ``executemany`` of the same rows made in Python (:func:`sqlite_rows` mirrors the
   statements; ids are the same md5 values). Either way in chunks of ``CHUNK`` flow runs
   (each with its state row and its task runs with theirs), one transaction per chunk.
   Chunks already present are skipped, so an interrupted seeding resumes where it stopped
   and a seeded database is reused as is. While seeding, the run and state tables'
   secondary indexes are dropped (their definitions kept in ``bench_ui_dropped_index``) and
   foreign keys are not checked (PostgreSQL: ``session_replication_role = replica``; SQLite:
   ``foreign_keys`` off, ``synchronous = OFF``); the indexes are rebuilt at the end, then the
   tables are ANALYZEd. The flows, deployments, the agents' pool and its queues are the same
   rows on both (:func:`fixed_rows`).
2. Runs the rollup service's refresh twice, as a server does every minute (the first on a
   fresh database builds every hour of ``flow_run_hourly``), logging how long each took, and
   makes, through the API, the few objects of the pages that do not read runs (blocks,
   notification policies, variables, artifacts, concurrency limits: :func:`seed_extras`).
3. Builds the app in-process on that database and times, through the Flask test client, each
   dashboard page and htmx fragment (``--repeat`` requests each after one warm-up); prints
   p50 / p95 in milliseconds and the 1-minute load average when each page started as a
   Markdown table. This is the server-side time: routing, queries, template rendering; no
   network. Dashboard routes no listed page reaches are logged as "not measured".

Usage: nice python bench/bench_ui.py [--backend postgres|sqlite] [--sqlite-path FILE]
       [--repeat 30] [--only SUBSTRING] [--explain] [--seed-only] [--rollup] [--combinations]
``--explain`` (with ``--only``) prints, for every SELECT the chosen pages ran, its time and
plan (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite). ``--rollup`` (PostgreSQL)
times the rollup service's refresh after stamping ``updated`` on 1,000 and 10,000 runs
instead. ``--combinations`` also times the runs list fragment for every filter of
``COMBINED_FILTERS`` with every sort (page 1, and page 100 unfiltered and FAILED); its rows
are labelled "combination, ...", so ``--only combination`` times just those.

The data (all relative to the moment of seeding): 50 flows, 200 deployments (10 work
queues of the agents' pool, one interval schedule each), 1,000,000 flow runs with expected
start times over the past 90 days, one in ten SCHEDULED for the coming week (one in ten
thousand of those already late), 0.4 % RUNNING in the last two hours, 0.2 % PENDING, about
5 % FAILED, 1 % CRASHED, 2 % CANCELLED and the rest COMPLETED; two tags each (environment and
team, plus "auto-scheduled" on scheduled runs). Every run that is not SCHEDULED has 11 task
runs (1 in 100 has 21), each with a state row: 10,000,000 task runs in all.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import sqlite3
import statistics
import sys
import time

import psycopg2
from psycopg2 import sql

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DATABASE = "orion_bench_ui"
SERVER = "postgresql://postgres@127.0.0.1:5432/"
URL = SERVER + DATABASE
SQLITE_PATH = "/tmp/orion_bench_ui.db"
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
  infrastructure_document_id, infrastructure_pid, created_by, last_heartbeat, work_queue_id)
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
  CASE WHEN type = 'RUNNING' THEN t0 END,
  CASE WHEN deployed THEN md5('queue' || ((i % {DEPLOYMENTS}) % {QUEUES}))::uuid END
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


def md5_hex(text):
    """PostgreSQL's ``md5(text)``: the seeded ids are ``md5(...)::uuid``."""
    return hashlib.md5(text.encode()).hexdigest()


def dashed(hex_id):
    """``uuid::text`` of a 32-digit hex id."""
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def stored_time(when):
    """A naive UTC datetime as the app stores it (``UTCDateTimeField``)."""
    return when.isoformat(sep=" ", timespec="microseconds")


def as_json(value):
    return json.dumps(value, separators=(",", ":"))


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fixed_rows(uuid_of, now):
    """``{table: [row dict]}``: the flows, the agents' pool, its queues, the deployments and
    their schedules; ``uuid_of(hex)`` is the backend's form of an id."""
    stamp_now = stored_time(now)
    pool_id = uuid_of(md5_hex("pool-agents"))

    def stamped(**row):
        return {"created": stamp_now, "updated": stamp_now, **row}

    return {
        "flow": [
            stamped(id=uuid_of(md5_hex(f"flow{f}")), name=f"flow-{f:02d}", tags="[]")
            for f in range(FLOWS)
        ],
        "work_pool": [
            stamped(
                id=pool_id,
                name="default-agent-pool",
                description=None,
                type="prefect-agent",
                base_job_template="{}",
                is_paused=False,
                concurrency_limit=None,
                default_queue_id=None,
            )
        ],
        "work_queue": [
            stamped(
                id=uuid_of(md5_hex(f"queue{q}")),
                name=f"queue-{q}",
                description=f"Queue {q}",
                is_paused=q == 9,
                concurrency_limit=10 if q % 3 == 0 else None,
                filter=None,
                last_polled=stored_time(now - datetime.timedelta(seconds=q * 20)),
                priority=q + 1,
                work_pool_id=pool_id,
            )
            for q in range(QUEUES)
        ],
        "deployment": [
            stamped(
                id=uuid_of(md5_hex(f"deployment{d}")),
                name=f"deployment-{d}",
                flow_id=uuid_of(md5_hex(f"flow{d % FLOWS}")),
                version="1",
                description="",
                parameters="{}",
                tags="[]",
                work_queue_name=f"queue-{d % QUEUES}",
                work_queue_id=uuid_of(md5_hex(f"queue{d % QUEUES}")),
                infra_overrides="{}",
                paused=False,
                enforce_parameter_schema=False,
            )
            for d in range(DEPLOYMENTS)
        ],
        "deployment_schedule": [
            stamped(
                id=uuid_of(md5_hex(f"schedule{d}")),
                deployment_id=uuid_of(md5_hex(f"deployment{d}")),
                schedule=as_json({"interval": 3600}),
                active=True,
                max_active_runs=None,
                max_scheduled_runs=None,
                catchup=False,
            )
            for d in range(DEPLOYMENTS)
        ],
    }


# The SQLite rows of run i, computed as FLOW_RUNS_SQL and TASK_RUNS_SQL compute them.
ADJECTIVES = (
    "brave",
    "calm",
    "eager",
    "fancy",
    "gentle",
    "happy",
    "jolly",
    "keen",
    "lucky",
    "merry",
)
ANIMALS = ("otter", "heron", "lynx", "panda", "koala", "tiger", "whale", "finch", "gecko", "bison")
ENVIRONMENTS = ("prod", "staging", "dev")
TASK_NAMES = ("extract", "clean", "transform", "validate", "load", "notify")
TASK_TAGS = ("io", "cpu", "db")
FINISHED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
FLOW_RUN_COLUMNS = (
    "id, created, updated, name, tags, empirical_policy, state_id, state_type, state_name, "
    "state_timestamp, run_count, expected_start_time, next_scheduled_start_time, start_time, "
    "end_time, total_run_time, flow_id, deployment_id, work_queue_name, flow_version, "
    "parameters, context, idempotency_key, parent_task_run_id, auto_scheduled, "
    "infrastructure_document_id, infrastructure_pid, created_by, last_heartbeat, work_queue_id"
)
TASK_RUN_COLUMNS = (
    "id, created, updated, name, tags, empirical_policy, state_id, state_type, state_name, "
    "state_timestamp, run_count, expected_start_time, next_scheduled_start_time, start_time, "
    "end_time, total_run_time, flow_run_id, task_key, dynamic_key, cache_key, "
    "cache_expiration, task_version, task_inputs, flow_run_run_count"
)
STATE_COLUMNS = "id, created, updated, type, name, timestamp, message, data, state_details, {}"


def flow_run_type(i):
    r = i % 1000
    if r % 10 == 0:
        return "SCHEDULED"
    if r < 5:
        return "RUNNING"
    if r < 7:
        return "PENDING"
    if 11 <= r <= 69:
        return "FAILED"
    if 71 <= r <= 79:
        return "CRASHED"
    if 81 <= r <= 99:
        return "CANCELLED"
    return "COMPLETED"


def task_run_type(flow_state, j, n):
    if flow_state == "COMPLETED":
        return "COMPLETED"
    if flow_state in ("FAILED", "CRASHED") and j == n - 1:
        return "FAILED"
    if flow_state == "CANCELLED" and j >= n - 2:
        return "CANCELLED"
    if flow_state == "RUNNING" and j == n - 1:
        return "RUNNING"
    if flow_state == "PENDING":
        return "PENDING"
    return "COMPLETED"


def sqlite_rows(first, last, t0):
    """``(flow runs, flow run states, task runs, task run states)`` rows of runs ``first`` to
    ``last`` for SQLite, as the PostgreSQL statements make them (ids hex, times text, JSON
    text, booleans 0/1)."""
    seconds = datetime.timedelta(seconds=1)
    now = stored_time(t0)
    flow_runs, flow_states, task_runs, task_states = [], [], [], []
    for i in range(first, last + 1):
        kind = flow_run_type(i)
        deployed = i % 5 != 3 or i % 10 == 0
        late = kind == "SCHEDULED" and i % 10000 == 0
        if late:
            expected = t0 - (60 + (i // 10000) % 3600) * seconds
        elif kind == "SCHEDULED":
            expected = t0 + (60 + (i * 7919) % 604800) * seconds
        elif kind in ("RUNNING", "PENDING"):
            expected = t0 - ((i * 7919) % 7200) * seconds
        else:
            expected = t0 - (7200 + (i * 7919) % 7776000) * seconds
        run_seconds = ((i * 104729) % 3600) / 10.0
        started = None if kind in ("SCHEDULED", "PENDING") else expected + (i % 30) * seconds
        name = "Late" if late else kind.capitalize()
        finished = kind in FINISHED
        timestamp = stored_time(started + run_seconds * seconds if started else expected)
        run_hex = md5_hex(f"run{i}")
        run_text = dashed(run_hex)
        state_hex = md5_hex(f"run-state{i}")
        details = {"flow_run_id": run_text}
        if kind == "SCHEDULED":
            details["scheduled_time"] = expected.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        environment, team = ENVIRONMENTS[i % 3], f"team-{i % 7}"
        tags = ["auto-scheduled", environment, team] if kind == "SCHEDULED" else [environment, team]
        flow_states.append(
            (state_hex, now, now, kind, name, timestamp, None, None, as_json(details), run_hex)
        )
        flow_runs.append(
            (
                run_hex,
                now,
                now,
                f"{ADJECTIVES[i % 10]}-{ANIMALS[(i // 10) % 10]}-{i}",
                as_json(tags),
                '{"retries":0,"retry_delay":0}',
                state_hex,
                kind,
                name,
                timestamp,
                0 if started is None else 1,
                stored_time(expected),
                stored_time(expected) if kind == "SCHEDULED" else None,
                stored_time(started) if started else None,
                stored_time(started + run_seconds * seconds) if finished else None,
                run_seconds if finished else 0,
                md5_hex(f"flow{i % FLOWS}"),
                md5_hex(f"deployment{i % DEPLOYMENTS}") if deployed else None,
                f"queue-{(i % DEPLOYMENTS) % QUEUES}" if deployed else None,
                f"1.{i // 100000}",
                as_json({"batch": i % 100, "source": f"s3://bucket/{i % 50}"}),
                "{}",
                None,
                None,
                int(kind == "SCHEDULED"),
                None,
                None,
                None,
                now if kind == "RUNNING" else None,
                md5_hex(f"queue{(i % DEPLOYMENTS) % QUEUES}") if deployed else None,
            )
        )
        if kind == "SCHEDULED":
            continue
        total = run_seconds if finished else 0.0
        n = 21 if i % 100 == 1 else 11
        previous = None
        for j in range(n):
            task_kind = task_run_type(kind, j, n)
            task_hex = md5_hex(f"task{i}-{j}")
            task_state_hex = md5_hex(f"task-state{i}-{j}")
            task_seconds = total / n
            task_start = started + (total * j / n) * seconds if started else None
            task_end = task_start + task_seconds * seconds if task_start else None
            task_timestamp = stored_time(task_end) if task_end else now
            task_done = task_kind in ("COMPLETED", "FAILED", "CANCELLED")
            task_states.append(
                (
                    task_state_hex,
                    now,
                    now,
                    task_kind,
                    task_kind.capitalize(),
                    task_timestamp,
                    None,
                    None,
                    f'{{"flow_run_id":"{run_text}","task_run_id":"{dashed(task_hex)}"}}',
                    task_hex,
                )
            )
            task_runs.append(
                (
                    task_hex,
                    now,
                    now,
                    f"{TASK_NAMES[j % 6]}-{j}",
                    f'["{TASK_TAGS[j % 3]}"]',
                    '{"max_retries":0,"retry_delay_seconds":0}',
                    task_state_hex,
                    task_kind,
                    task_kind.capitalize(),
                    task_timestamp,
                    0 if task_kind == "PENDING" else 1,
                    stored_time(task_start) if task_start else now,
                    None,
                    None if task_kind == "PENDING" or not task_start else stored_time(task_start),
                    stored_time(task_end) if task_done and task_end else None,
                    task_seconds if task_done else 0,
                    run_hex,
                    f"task-{j % 6}",
                    str(j),
                    None,
                    None,
                    "1.0",
                    "{}"
                    if previous is None
                    else f'{{"x":[{{"input_type":"task_run","id":"{dashed(previous)}"}}]}}',
                    1,
                )
            )
            previous = task_hex
    return flow_runs, flow_states, task_runs, task_states


class Postgres:
    """The PostgreSQL bench database: seeded by INSERT ... SELECT generate_series."""

    name = "postgres"
    param = "%s"

    def __init__(self, url=URL):
        self.url = url
        self.server, self.database = url.rsplit("/", 1)

    @staticmethod
    def uuid_of(hex_id):
        return dashed(hex_id)

    def connect(self, dbname=None):
        conn = psycopg2.connect(f"{self.server}/{dbname or self.database}")
        conn.autocommit = True
        return conn

    def create(self):
        admin = self.connect("postgres")
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        admin.close()

    def table_exists(self, cur, table):
        cur.execute("SELECT to_regclass(%s)", (table,))
        return cur.fetchone()[0] is not None

    def secondary_indexes(self, cur):
        cur.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
              AND i.indexname NOT LIKE '%%_pkey'""",
            (list(SEEDED_TABLES),),
        )
        return cur.fetchall()

    def seed_chunk(self, conn, first, last):
        """Runs ``first`` to ``last`` in one transaction, foreign-key triggers off."""
        with conn:
            conn.autocommit = False
            with conn.cursor() as chunk:
                chunk.execute("SET LOCAL session_replication_role = replica")
                chunk.execute(chunk_sql(FLOW_RUNS_SQL, first, last))
                chunk.execute(chunk_sql(TASK_RUNS_SQL, first, last))
        conn.autocommit = True

    def before_rebuild(self, cur):
        cur.execute("SET maintenance_work_mem = '512MB'")

    def analyze(self, cur):
        for table in SEEDED_TABLES + ("flow", "deployment", "work_queue"):
            cur.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))

    def explain(self, cur, query, params):
        cur.execute("EXPLAIN ANALYZE " + query, params)
        return "\n".join(row[0] for row in cur.fetchall())


class Sqlite:
    """The SQLite bench file: seeded by ``executemany`` of rows made in Python
    (:func:`sqlite_rows`), ``synchronous = OFF`` and a 2 GB page cache while seeding."""

    name = "sqlite"
    param = "?"

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.url = "sqlite:///" + self.path

    @staticmethod
    def uuid_of(hex_id):
        return hex_id

    def connect(self):
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def create(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)

    def table_exists(self, cur, table):
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return cur.fetchone() is not None

    def secondary_indexes(self, cur):
        marks = ", ".join("?" for _ in SEEDED_TABLES)
        cur.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            SEEDED_TABLES,
        )
        return cur.fetchall()

    def seed_chunk(self, conn, first, last):
        """Runs ``first`` to ``last`` in one transaction, written in slices of 1,000 runs."""
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -2000000")
        t0 = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        marks = {width: ", ".join("?" * width) for width in (10, 24, 30)}
        conn.execute("BEGIN")
        try:
            for start in range(first, last + 1, 1000):
                flow_runs, flow_states, task_runs, task_states = sqlite_rows(
                    start, min(start + 999, last), t0
                )
                conn.executemany(
                    f"INSERT INTO flow_run_state ({STATE_COLUMNS.format('flow_run_id')}) "
                    f"VALUES ({marks[10]})",
                    flow_states,
                )
                conn.executemany(
                    f"INSERT INTO flow_run ({FLOW_RUN_COLUMNS}) VALUES ({marks[30]})", flow_runs
                )
                conn.executemany(
                    f"INSERT INTO task_run_state ({STATE_COLUMNS.format('task_run_id')}) "
                    f"VALUES ({marks[10]})",
                    task_states,
                )
                conn.executemany(
                    f"INSERT INTO task_run ({TASK_RUN_COLUMNS}) VALUES ({marks[24]})", task_runs
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def before_rebuild(self, cur):
        cur.execute("PRAGMA cache_size = -2000000")
        cur.execute("PRAGMA temp_store = MEMORY")

    def analyze(self, cur):
        cur.execute("ANALYZE")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def explain(self, cur, query, params):
        cur.execute("EXPLAIN QUERY PLAN " + query, params)
        return "\n".join(f"{row[0]:>4} {row[1]:>4} {row[3]}" for row in cur.fetchall())


def ensure_database(backend):
    """Create and migrate the bench database if needed."""
    backend.create()
    from app import migrations
    from app.config import load_config
    from app.db import database, init_database

    init_database(load_config({"DATABASE_URL": backend.url}))
    with database.connection_context():
        migrations.upgrade(database)


def drop_secondary_indexes(backend, cur):
    """Drop the seeded tables' indexes other than primary keys, keeping their definitions;
    a resumed seeding finds them already dropped and recorded."""
    p = backend.param
    cur.execute(
        "CREATE TABLE IF NOT EXISTS bench_ui_dropped_index (name text PRIMARY KEY, "
        "definition text NOT NULL)"
    )
    for name, definition in backend.secondary_indexes(cur):
        cur.execute(
            f"INSERT INTO bench_ui_dropped_index VALUES ({p}, {p}) ON CONFLICT DO NOTHING",
            (name, definition),
        )
        cur.execute(f'DROP INDEX "{name}"')


def rebuild_indexes(backend, cur):
    if not backend.table_exists(cur, "bench_ui_dropped_index"):
        return
    backend.before_rebuild(cur)
    cur.execute("SELECT name, definition FROM bench_ui_dropped_index ORDER BY name")
    for name, definition in cur.fetchall():
        started = time.perf_counter()
        cur.execute(
            definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1).replace(
                "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX IF NOT EXISTS", 1
            )
        )
        cur.execute(f"DELETE FROM bench_ui_dropped_index WHERE name = {backend.param}", (name,))
        log(f"rebuilt {name} in {time.perf_counter() - started:.0f} s")
    cur.execute("DROP TABLE bench_ui_dropped_index")


def run_present(backend, cur, i):
    cur.execute(
        f"SELECT count(*) FROM flow_run WHERE id = {backend.param}",
        (backend.uuid_of(md5_hex(f"run{i}")),),
    )
    return cur.fetchone()[0] == 1


def insert_fixed_rows(backend, cur):
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    for table, rows in fixed_rows(backend.uuid_of, now).items():
        columns = list(rows[0])
        marks = ", ".join(backend.param for _ in columns)
        cur.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            [tuple(row[c] for c in columns) for row in rows],
        )


def seed(backend):
    """Seed the chunks not yet present, rebuild indexes, ANALYZE (see module doc)."""
    ensure_database(backend)
    conn = backend.connect()
    cur = conn.cursor()
    if run_present(backend, cur, FLOW_RUNS - 1) and not backend.table_exists(
        cur, "bench_ui_dropped_index"
    ):
        log(f"{backend.name}: already seeded")
        conn.close()
        return
    insert_fixed_rows(backend, cur)
    drop_secondary_indexes(backend, cur)
    for first in range(0, FLOW_RUNS, CHUNK):
        last = first + CHUNK - 1
        if run_present(backend, cur, last):
            continue
        started = time.perf_counter()
        backend.seed_chunk(conn, first, last)  # one transaction: all of the chunk, or none
        log(f"flow runs {first:,}-{last:,} seeded in {time.perf_counter() - started:.1f} s")
    rebuild_indexes(backend, cur)
    started = time.perf_counter()
    backend.analyze(cur)
    log(f"{backend.name}: seeded and analyzed ({time.perf_counter() - started:.0f} s analyzing)")
    conn.close()


DAY, DAYS_8, DAYS_100 = (datetime.timedelta(days=d) for d in (1, 8, 100))


def stamp(when):
    return when.strftime("%Y-%m-%dT%H:%M")


def api(client, method, path, body=None, created=False):
    """One API call through the test client; the JSON answer. An error status raises, but
    for ``created`` calls a 409 (made by an earlier, interrupted run) is None."""
    response = client.open(path, method=method, json=body)
    if created and response.status_code == 409:
        return None
    assert response.status_code < 300, (method, path, response.status_code, response.get_json())
    return response.get_json()


def seed_extras(client):
    """The objects of the pages that do not read runs, made through the API (so the same on
    both backends) unless the variable ``bench_ui_extras`` says they were: 20 block documents
    (5 each of slack-webhook, secret, json, string), 10 notification policies, 100 variables,
    3 artifacts of run 502, 10 tag concurrency limits and 10 global ones. Returns the ids the
    pages need."""
    data = {
        "slack-webhook": {"url": "https://hooks.slack.com/services/T0/B0/bench"},
        "secret": {"value": "bench-secret"},
        "json": {"value": {"rows": [1, 2, 3], "owner": "bench"}},
        "string": {"value": "bench"},
    }
    if client.get("/api/variables/name/bench_ui_extras").status_code != 200:
        for slug, value in data.items():
            block_type = api(client, "GET", f"/api/block_types/slug/{slug}")
            schema = api(
                client,
                "POST",
                "/api/block_schemas/filter",
                {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
            )[0]
            for k in range(5):
                api(
                    client,
                    "POST",
                    "/api/block_documents/",
                    {
                        "name": f"bench-{slug}-{k}",
                        "block_type_id": block_type["id"],
                        "block_schema_id": schema["id"],
                        "data": value,
                    },
                    created=True,
                )
        slack = block_document(client, "slack-webhook")
        for k in range(10):
            api(
                client,
                "POST",
                "/api/flow_run_notification_policies/",
                {
                    "state_names": ["Failed", "Crashed"][: 1 + k % 2],
                    "tags": [f"team-{k % 7}"] if k % 2 else [],
                    "block_document_id": slack,
                },
            )
        for k in range(100):
            api(
                client,
                "POST",
                "/api/variables/",
                {"name": f"bench_var_{k}", "value": f"value {k}", "tags": ["bench"]},
                created=True,
            )
        run_id = dashed(md5_hex("run502"))
        for kind, value in (
            ("markdown", "# Report\n\n| rows | errors |\n|---|---|\n| 1000 | 0 |"),
            ("table", json.dumps([{"rows": i, "errors": i % 3} for i in range(20)])),
            ("result", json.dumps({"rows": 1000})),
        ):
            api(
                client,
                "POST",
                "/api/artifacts/",
                {"key": f"bench-{kind}", "type": kind, "data": value, "flow_run_id": run_id},
            )
        for k in range(10):
            api(
                client,
                "POST",
                "/api/concurrency_limits/",
                {"tag": f"bench-tag-{k}", "concurrency_limit": 5 + k},
            )
            api(
                client,
                "POST",
                "/api/v2/concurrency_limits/",
                {"name": f"bench-{k}", "limit": k + 1},
                created=True,
            )
        api(client, "POST", "/api/variables/", {"name": "bench_ui_extras", "value": "seeded"})
    policy = api(client, "POST", "/api/flow_run_notification_policies/filter", {"limit": 1})[0]
    return {
        "block_id": block_document(client, "slack-webhook"),
        "secret_block_id": block_document(client, "secret"),
        "policy_id": policy["id"],
        "variable_id": api(client, "GET", "/api/variables/name/bench_var_0")["id"],
    }


def block_document(client, slug):
    """The id of a block document of type ``slug``."""
    return api(
        client,
        "POST",
        "/api/block_documents/filter",
        {"block_types": {"slug": {"any_": [slug]}}, "limit": 1},
    )[0]["id"]


def pages(ids):
    """``[(label, path, htmx?)]``: every dashboard page and fragment, on real ids."""
    # Run 502 is COMPLETED with 11 task runs; run 101 (i % 100 == 1) has 21.
    run_id, big_run_id = dashed(md5_hex("run502")), dashed(md5_hex("run101"))
    ids = {
        **ids,
        "run_id": run_id,
        "task_id": dashed(md5_hex("task502-0")),
        "flow_id": dashed(md5_hex("flow7")),
        "queue_id": dashed(md5_hex("queue3")),
        "past_deployment": dashed(md5_hex("deployment7")),
        "ahead_deployment": dashed(md5_hex("deployment10")),
    }
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
        ("flow runs fragment, one flow", f"/flow-runs?flow={ids['flow_id']}", True),
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
        ("flow page", f"/flows/{ids['flow_id']}", False),
        ("flow run page (11 task runs)", f"/flow-runs/{run_id}", False),
        ("flow run page (21 task runs)", f"/flow-runs/{big_run_id}", False),
        ("flow run state fragment", f"/flow-runs/{run_id}/state", True),
        ("flow run logs fragment", f"/flow-runs/{run_id}/logs", True),
        ("task run page", f"/task-runs/{ids['task_id']}", False),
        ("concurrency limits", "/concurrency-limits", False),
    ]
    return listed + [(label, path.format(**ids), hx) for label, path, hx in EXTRA_PAGES]


# Pages added with their features (kept apart so the list above stays readable).
EXTRA_PAGES = [
    ("work queues", "/work-queues", False),
    ("work queue page", "/work-queues/{queue_id}", False),
    ("work queue edit form", "/work-queues/{queue_id}/edit", False),
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
    ("flow run live poll, nothing marked (11 task runs)", "/flow-runs/{run_id}/live", True),
    ("flow run radar data (11 task runs)", "/flow-runs/{run_id}/radar", True),
    ("task run logs fragment", "/task-runs/{task_id}/logs", True),
    ("flow run logs download", "/flow-runs/{run_id}/logs.txt", False),
    ("task run logs download", "/task-runs/{task_id}/logs.txt", False),
    ("blocks (20 documents)", "/blocks", False),
    ("block catalogue", "/blocks/catalog", False),
    ("block page (slack-webhook)", "/blocks/{block_id}", False),
    ("block edit form (secret)", "/blocks/{secret_block_id}/edit", False),
    ("new block form (slack-webhook)", "/blocks/new/slack-webhook", False),
    ("notifications (10 policies)", "/notifications", False),
    ("new notification form", "/notifications/new", False),
    ("notification edit form", "/notifications/{policy_id}/edit", False),
    ("variables (100)", "/variables", False),
    ("variable edit form", "/variables/{variable_id}/edit", False),
]


# GET routes of the dashboard that are not pages: the login form redirects to / when no
# password is set (as here).
NOT_TIMED = {"ui.login_page"}


# The runs list's filters for ``--combinations``: (label, query string), each combined with
# every sort of RUN_SORTS; the ones also timed on page 100 (MAX_PAGE).
COMBINED_FILTERS = [
    ("no filter", ""),
    ("FAILED", "state=FAILED"),
    ("RUNNING", "state=RUNNING"),
    ("SCHEDULED", "state=SCHEDULED"),
    ("FAILED+CRASHED", "state=FAILED&state=CRASHED"),
    ("one flow", "flow={flow_id}"),
    ("tag prod + team-3", "tags=prod,team-3"),
]
DEEP_FILTERS = ("no filter", "FAILED")


def combination_pages():
    """``[(label, path, htmx?)]``: the runs list fragment for every filter of
    ``COMBINED_FILTERS`` with every sort of ``RUN_SORTS``, page 1 (and page 100 for
    ``DEEP_FILTERS``). Labels start with "combination, " (for ``--only``)."""
    from app.blueprints.ui.run_filter import MAX_PAGE, RUN_SORTS

    flow_id = dashed(md5_hex("flow7"))
    listed = []
    for name, query in COMBINED_FILTERS:
        query = query.format(flow_id=flow_id)
        for sort in RUN_SORTS:
            for page in (1, MAX_PAGE) if name in DEEP_FILTERS else (1,):
                args = "&".join(a for a in (query, f"sort={sort}", f"page={page}") if a)
                label = f"combination, {name}, {sort}, page {page}"
                listed.append((label, f"/flow-runs?{args}", True))
    return listed


def work_pool_pages(app):
    """The work pool pages, if this app has them: the list, and each page of the agents'
    pool (a ``uuid`` route parameter gets the pool's id, any other its name)."""
    found = []
    pool_id, pool_name = dashed(md5_hex("pool-agents")), "default-agent-pool"
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/work-pools") or "GET" not in rule.methods:
            continue
        path = rule.rule
        for converter, _ in re.findall(r"<(?:(\w+):)?(\w+)>", path):
            path = re.sub(r"<[^>]+>", pool_id if converter == "uuid" else pool_name, path, count=1)
        if "<" not in path:
            found.append((f"work pools: {rule.rule}", path, False))
    return sorted(found)


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


def measure_rollup(backend):
    """Time the rollup refresh after stamping ``updated`` on runs, as transitions would (the
    runs are otherwise unchanged, so the rollup's figures stay the same). Before each step,
    runs stamped in the last 10 minutes (the refresh looks back 5 before the previous one)
    are stamped an hour earlier, and a refresh runs, so each timed refresh sees only its own
    step's runs."""
    from app.config import load_config
    from app.db import database, init_database
    from app.services import rollups

    init_database(load_config({"DATABASE_URL": backend.url}))
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


def measure(backend, repeat, only, explain, combinations=False):
    from app import create_app
    from app.db import database
    from app.serving import freeze_loaded_app

    app = create_app({"DATABASE_URL": backend.url, "DATABASE_MIGRATE_ON_START": False})
    refresh_rollup()
    refresh_rollup()
    client = app.test_client()
    with app.app_context():
        ids = seed_extras(client)
    freeze_loaded_app()  # as `orion start` and wsgi.py do once the app is built
    listed = pages(ids) + work_pool_pages(app)
    report_unmeasured(app, listed)
    if combinations:
        listed += combination_pages()
    conn = backend.connect()
    rows, loads = [], []
    for label, path, htmx in listed:
        if only and only not in label:
            continue
        headers = {"HX-Request": "true"} if htmx else {}
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (
            path,
            response.status_code,
            response.get_data(as_text=True)[-500:],
        )
        load = os.getloadavg()[0]
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p95 = samples[max(0, round(len(samples) * 0.95) - 1)]
        loads.append(load)
        rows.append((label, path, statistics.median(samples), p95, load))
        log(f"{label}: p50 {rows[-1][2]:.1f} ms, p95 {p95:.1f} ms (load {load:.2f})")
        if explain and only:
            explain_queries(backend, client, path, headers, conn)
    print(
        f"\n{backend.name}: 1-minute load average while timing: min {min(loads):.2f}, "
        f"median {statistics.median(loads):.2f}, max {max(loads):.2f} (2 cores)"
    )
    print("\n| page | p50 ms | p95 ms | load |\n|---|---|---|---|")
    for label, path, p50, p95, load in rows:
        shown = path if len(path) < 60 else path[:57] + "…"
        print(f"| {label} (`{shown}`) | {p50:.1f} | {p95:.1f} | {load:.2f} |")
    del database


def report_unmeasured(app, listed):
    """Log the dashboard's GET routes that no listed page reaches (a page added since)."""
    adapter = app.url_map.bind("localhost")
    reached = set()
    for _, path, _ in listed:
        endpoint, _ = adapter.match(path.split("?")[0], method="GET")
        reached.add(endpoint)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("ui.") and "GET" in rule.methods:
            if rule.endpoint not in reached | NOT_TIMED:
                log(f"not measured: {rule.rule} ({rule.endpoint})")


def explain_queries(backend, client, path, headers, conn):
    """EXPLAIN (ANALYZE on PostgreSQL, QUERY PLAN on SQLite) every SELECT one request of
    ``path`` runs (from peewee's debug log)."""
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
    cur = conn.cursor()
    for query, params in captured:
        if not re.match(r"\s*(SELECT|WITH)", query, re.I):
            continue
        started = time.perf_counter()
        cur.execute(query, params)
        cur.fetchall()
        took = (time.perf_counter() - started) * 1000
        print(f"\n-- ({took:.1f} ms) {query}\n-- {params}\n{backend.explain(cur, query, params)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--sqlite-path", default=SQLITE_PATH, help=f"the SQLite file (default {SQLITE_PATH})"
    )
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--only", default="", help="time only pages whose label contains this")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument(
        "--combinations",
        action="store_true",
        help='also time the runs list for every filter x sort (labels "combination, ...")',
    )
    parser.add_argument(
        "--rollup",
        action="store_true",
        help="time the rollup refresh after runs change, instead of the pages (PostgreSQL)",
    )
    args = parser.parse_args()
    if args.rollup and args.backend != "postgres":
        parser.error("--rollup: PostgreSQL only (its churn statements are PostgreSQL's)")
    backend = Postgres() if args.backend == "postgres" else Sqlite(args.sqlite_path)
    seed(backend)
    if args.rollup:
        measure_rollup(backend)
    elif not args.seed_only:
        measure(backend, args.repeat, args.only, args.explain, args.combinations)


if __name__ == "__main__":
    main()
