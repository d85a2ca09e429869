"""Work pool budgets (issue 20): a worker's poll of a big pool, and workers claiming together.

For each backend (SQLite in a temporary folder; PostgreSQL in ``<ORION_TEST_POSTGRES_URL's
database>_bench_pools``, emptied first), an in-process app (the real Flask app, no HTTP
socket) gets a pool with 10 queues and 10,000 SCHEDULED flow runs spread over the queues and
over the next week, of which about 100 are due:

- **poll**: ``POST /api/work_pools/P/get_scheduled_flow_runs`` as a Prefect 2.20 worker sends
  it (every queue, due within 10 s, no limit), ``--polls`` times; p50 and p95. Budget: p50 ≤
  20 ms.
- **claim**: 500 runs all due, 4 threads acting as workers: each polls with ``limit`` 10 and
  proposes PENDING for every run it got, until a poll comes back empty. Each run must be
  claimed exactly once (the script fails otherwise); the wall time is reported.

Usage: python bench/bench_pools.py [--backends sqlite,postgres] [--polls 200]
Prints a Markdown table.
"""

import argparse
import datetime
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app, migrations
from app.db import database
from app.models import FlowRun, utcnow
from tests.support import isolated_database_url

QUEUES = 10


def make_app(backend, tmp):
    url = isolated_database_url(backend, Path(tmp), "bench_pools")
    app = create_app(
        {"HOME": tmp, "DATABASE_URL": url, "REDIS_URL": None, "API_KEY": None, "TESTING": True}
    )
    migrations.upgrade(database)
    database.close()
    return app


def setup_pool(client, runs, due_every):
    """A pool with QUEUES queues, one deployment per queue, and ``runs`` scheduled runs: every
    ``due_every``-th one due a minute ago, the others later this week. Returns the run ids."""
    assert client.post("/api/work_pools/", json={"name": "P", "type": "process"}).status_code in (
        201,
        409,
    )
    flow = client.post("/api/flows/", json={"name": f"f-{uuid.uuid4()}"}).get_json()
    queue_ids = []
    for index in range(QUEUES):
        deployment = client.post(
            "/api/deployments/",
            json={
                "name": f"d{index}",
                "flow_id": flow["id"],
                "work_pool_name": "P",
                "work_queue_name": f"q{index}",
            },
        ).get_json()
        queue_ids.append((deployment["id"], client.get(f"/api/work_pools/P/queues/q{index}")))
    now = utcnow()
    rows = []
    for i in range(runs):
        deployment_id, queue = queue_ids[i % QUEUES]
        when = now - datetime.timedelta(minutes=1)
        if i % due_every:
            when = now + datetime.timedelta(minutes=10 + i % 10000)
        rows.append(
            {
                "id": uuid.uuid4(),
                "name": f"r{i}",
                "flow": flow["id"],
                "deployment": deployment_id,
                "work_queue_name": f"q{i % QUEUES}",
                "work_queue_id": queue.get_json()["id"],
                "state_type": "SCHEDULED",
                "state_name": "Scheduled",
                "state_timestamp": now,
                "expected_start_time": when,
                "next_scheduled_start_time": when,
                "created": now,
                "updated": now,
            }
        )
    for start in range(0, len(rows), 500):
        FlowRun.insert_many(rows[start : start + 500]).execute()
    return [str(row["id"]) for row in rows]


def poll(app, polls):
    client = app.test_client()
    with app.app_context():
        setup_pool(client, 10_000, 100)
    times = []
    for _ in range(polls):
        before = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=10)).isoformat()
        start = time.perf_counter()
        response = client.post(
            "/api/work_pools/P/get_scheduled_flow_runs",
            json={"work_queue_names": [], "scheduled_before": before},
        )
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200 and len(response.get_json()) == 100
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def claim(app):
    client = app.test_client()
    with app.app_context():
        FlowRun.delete().execute()
        runs = setup_pool(client, 500, 1)
    claimed, errors = [], []

    def worker():
        worker_client = app.test_client()
        try:
            while True:
                got = worker_client.post(
                    "/api/work_pools/P/get_scheduled_flow_runs", json={"limit": 10}
                ).get_json()
                if not got:
                    return
                for item in got:
                    run_id = item["flow_run"]["id"]
                    result = worker_client.post(
                        f"/api/flow_runs/{run_id}/set_state",
                        json={"state": {"type": "PENDING"}},
                    ).get_json()
                    if result["status"] == "ACCEPT":
                        claimed.append(run_id)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    assert not errors, errors
    assert sorted(claimed) == sorted(runs), "a run was claimed twice or not at all"
    return wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--polls", type=int, default=200)
    args = parser.parse_args()
    print("| backend | poll p50 (ms) | poll p95 (ms) | 4 workers claim 500 runs (s) |")
    print("|---|---|---|---|")
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            app = make_app(backend, tmp)
            p50, p95 = poll(app, args.polls)
            wall = claim(app)
            print(f"| {backend} | {p50:.1f} | {p95:.1f} | {wall:.1f} (each exactly once) |")


if __name__ == "__main__":
    main()
