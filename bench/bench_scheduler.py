"""Scheduling budgets (issue 5), measured in-process on each backend.

For each backend (SQLite in a temporary folder, PostgreSQL database `orion_bench_scheduler`,
recreated):
  - scheduling N active deployments from nothing (a third interval, cron and rrule, in UTC and
    Europe/Berlin): one ``schedule_deployments`` pass, i.e. one worker's job; checked after:
    every deployment has >= 3 runs and one at least 1 h ahead;
  - deployment created -> its first scheduled runs exist: ``POST /api/deployments/`` through
    the Flask test client, then the runs read back (they are written in the create's
    transaction, so this is the API call's latency);
  - marking M overdue runs Late: one ``mark_late_runs`` pass.

Usage: python bench/bench_scheduler.py [--deployments 1000] [--late 10000]
                                       [--backends sqlite,postgres] [--repeat 3]
Prints a Markdown table of the medians.
"""

import argparse
import datetime
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app, migrations
from app.config import load_config
from app.db import database, init_database
from app.models import Deployment, Flow, FlowRun, utcnow
from app.services.scheduler import (
    SCHEDULED,
    SchedulerSettings,
    build_scheduled_runs,
    insert_scheduled_runs,
    mark_late_runs,
    schedule_deployments,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NAME = "orion_bench_scheduler"
SCHEDULES = [
    {"interval": 600, "timezone": "UTC"},
    {"cron": "*/15 * * * *", "timezone": "Europe/Berlin", "day_or": True},
    {"rrule": "FREQ=HOURLY;INTERVAL=1", "timezone": "Europe/Berlin"},
    {"interval": 3600, "timezone": "Europe/Berlin"},
    {"cron": "0 * * * *", "timezone": "UTC", "day_or": True},
    {"rrule": "FREQ=MINUTELY;INTERVAL=20", "timezone": "UTC"},
]


def fresh_url(backend, tmp):
    if backend == "sqlite":
        return f"sqlite:///{tmp}/orion-{uuid.uuid4().hex[:8]}.db"
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {PG_NAME}")
    conn.close()
    return f"postgresql://postgres@127.0.0.1:5432/{PG_NAME}"


def make_app(backend, tmp):
    settings = {
        "HOME": tmp,
        "DATABASE_URL": fresh_url(backend, tmp),
        "REDIS_URL": None,
        "API_KEY": None,
        "SCHEDULER_ENABLED": False,
    }
    init_database(load_config(settings))
    with database.connection_context():
        migrations.reset(database)
    return create_app(settings)


def seed_deployments(count, now):
    flow = Flow.create(name=f"bench-{uuid.uuid4().hex[:6]}")
    rows = [
        {
            "id": uuid.uuid4(),
            "flow": flow.id,
            "name": f"d{i}",
            "created": now,
            "updated": now,
            "schedule": SCHEDULES[i % len(SCHEDULES)],
            "is_schedule_active": True,
            "parameters": {"i": i},
            "tags": ["bench"],
            "infra_overrides": {},
            "work_queue_name": "bench",
        }
        for i in range(count)
    ]
    with database.atomic():
        for offset in range(0, count, 500):
            Deployment.insert_many(rows[offset : offset + 500]).execute()
    return [row["id"] for row in rows]


def check_scheduled(ids, now, settings):
    horizon = now + settings.min_scheduled_time
    per = {}
    for deployment_id, when in (
        FlowRun.select(FlowRun.deployment, FlowRun.expected_start_time)
        .where(FlowRun.state_type == SCHEDULED)
        .tuples()
    ):
        per.setdefault(deployment_id, []).append(when)
    bad = [i for i in ids if len(per.get(i, [])) < settings.min_runs or max(per[i]) < horizon]
    if bad:
        raise SystemExit(f"{len(bad)} deployments were not scheduled enough")


def bench_schedule(count):
    now = utcnow()
    settings = SchedulerSettings()
    ids = seed_deployments(count, now)
    started = time.perf_counter()
    inserted = schedule_deployments(now, settings)
    elapsed = time.perf_counter() - started
    check_scheduled(ids, now, settings)
    return elapsed, inserted


def bench_create(app, repeat=20):
    client = app.test_client()
    flow_id = client.post("/api/flows/", json={"name": "bench-create"}).get_json()["id"]
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        deployment = client.post(
            "/api/deployments/",
            json={
                "flow_id": flow_id,
                "name": f"c{i}",
                "schedule": SCHEDULES[i % len(SCHEDULES)],
            },
        ).get_json()
        runs = client.post(
            "/api/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}}
        ).get_json()
        samples.append(time.perf_counter() - started)
        assert len(runs) >= 3, runs
    return statistics.median(samples)


def bench_late(count):
    FlowRun.delete().execute()  # the earlier figures' runs, some overdue by now
    now = utcnow()
    flow = Flow.create(name=f"late-{uuid.uuid4().hex[:6]}")
    deployment = Deployment.create(
        flow=flow.id,
        name="late",
        schedule=None,
        tags=[],
        parameters={},
        infra_overrides={},
        created=now,
        updated=now,
    )
    dates = [now - datetime.timedelta(hours=2, seconds=i) for i in range(count)]
    runs, states = build_scheduled_runs(deployment, dates, now - datetime.timedelta(hours=3))
    with database.atomic():
        insert_scheduled_runs(runs, states)
    started = time.perf_counter()
    marked = mark_late_runs(now)
    elapsed = time.perf_counter() - started
    if marked != count:
        raise SystemExit(f"marked {marked} of {count}")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--late", type=int, default=10000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        figures = {"schedule": [], "create": [], "late": []}
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                app = make_app(backend, tmp)
                with app.app_context():
                    elapsed, inserted = bench_schedule(args.deployments)
                    figures["schedule"].append(elapsed)
                    figures["create"].append(bench_create(app))
                    figures["late"].append(bench_late(args.late))
                database.close_all()
        rows.append((backend, {k: statistics.median(v) for k, v in figures.items()}, inserted))
    print(f"| figure | budget | {' | '.join(b for b, _, _ in rows)} |")
    print("|---|---|" + "---|" * len(rows))
    print(
        f"| schedule {args.deployments} deployments from nothing | ≤ 3 s | "
        + " | ".join(f"{f['schedule']:.2f} s ({n} runs)" for _, f, n in rows)
        + " |"
    )
    print(
        "| deployment created → first runs exist | ≤ 1 s | "
        + " | ".join(f"{f['create'] * 1000:.0f} ms" for _, f, _ in rows)
        + " |"
    )
    print(
        f"| mark {args.late} runs Late | ≤ 2 s | "
        + " | ".join(f"{f['late']:.2f} s" for _, f, _ in rows)
        + " |"
    )


if __name__ == "__main__":
    main()
