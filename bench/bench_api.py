"""Foundation budgets, measured against a real `orion start` server over HTTP.

For each backend (SQLite in a temp ORION_HOME, PostgreSQL database `orion_bench`):
  - server start to healthy (process spawn until GET /api/health answers 200),
  - idle RSS of the server processes (gunicorn master + workers),
  - POST /api/flow_runs/filter returning 200 runs with N runs in the database (p50, p95),
  - GET /api/flow_runs/{id} (p50, p95).
Runs are seeded over HTTP, then the database is ANALYZEd (see ``analyze``).

Usage: python bench/bench_api.py [--runs 10000] [--backends sqlite,postgres] [--port 4299]
Needs the package installed (`pip install -e .`) and httpx. Prints a Markdown table.
"""

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import psycopg2

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench"


def recreate_pg_database():
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench")
    conn.close()


def rss_mb(pid):
    """Resident memory in MB of ``pid`` (the gunicorn master) and of each child (workers)."""
    pids = [pid]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    pids += [int(p) for p in children.stdout.split()]
    sizes = []
    for p in pids:
        with open(f"/proc/{p}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
    return sizes


def start_server(env, port):
    started = time.perf_counter()
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "orion"), "start", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        time.sleep(0.02)


def timed(fn, repeat):
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def seed(client, runs):
    flow = client.post("/flows/", json={"name": "bench"}).json()
    states = ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED"]
    for i in range(runs):
        state = {"type": states[i % len(states)]}
        response = client.post(
            "/flow_runs/",
            json={
                "flow_id": flow["id"],
                "tags": ["bench", f"t{i % 7}"],
                "parameters": {"i": i, "name": f"item-{i}"},
                "state": state,
            },
        )
        response.raise_for_status()


def analyze(name, home):
    """Refresh planner statistics, as autovacuum (PostgreSQL) would within a minute of the
    bulk insert; a database that has held N runs for a while has them."""
    if name == "postgres":
        conn = psycopg2.connect(PG_BENCH)
        conn.autocommit = True
        conn.cursor().execute("ANALYZE")
    else:
        conn = sqlite3.connect(os.path.join(home, "orion.db"))
        conn.execute("ANALYZE")
    conn.close()


def bench_backend(name, runs, port):
    home = tempfile.mkdtemp(prefix="orion-bench-")
    env = dict(os.environ, ORION_HOME=home)
    if name == "postgres":
        recreate_pg_database()
        env["ORION_DATABASE_URL"] = PG_BENCH
    else:
        env.pop("ORION_DATABASE_URL", None)
    proc, url, start_s = start_server(env, port)
    try:
        time.sleep(1.0)
        idle_mb = rss_mb(proc.pid)
        with httpx.Client(base_url=url, timeout=30) as client:
            seed(client, runs)
            analyze(name, home)
            body = {"limit": 200}
            assert len(client.post("/flow_runs/filter", json=body).json()) == 200
            timed(lambda: client.post("/flow_runs/filter", json=body), 10)
            filter_p50, filter_p95 = timed(lambda: client.post("/flow_runs/filter", json=body), 100)
            sorted_body = {
                "limit": 200,
                "sort": "EXPECTED_START_TIME_DESC",
                "flow_runs": {"tags": {"all_": ["bench"]}},
            }
            sorted_p50, _ = timed(lambda: client.post("/flow_runs/filter", json=sorted_body), 50)
            run_id = client.post("/flow_runs/filter", json={"limit": 1}).json()[0]["id"]
            get_p50, get_p95 = timed(lambda: client.get(f"/flow_runs/{run_id}"), 500)
        loaded_mb = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {
        "backend": name,
        "start_s": start_s,
        "idle_mb": idle_mb,
        "filter_p50": filter_p50,
        "filter_p95": filter_p95,
        "filter_sorted_p50": sorted_p50,
        "get_p50": get_p50,
        "get_p95": get_p95,
        "loaded_mb": loaded_mb,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--port", type=int, default=4299)
    args = parser.parse_args()
    results = [bench_backend(b, args.runs, args.port) for b in args.backends.split(",")]
    print(f"runs in database: {args.runs}")
    print(
        "| backend | start→healthy | idle RSS master / worker | filter 200 p50 / p95 | "
        "filter sorted+tags p50 | GET run p50 / p95 | RSS after |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        idle = " / ".join(f"{mb:.0f}" for mb in r["idle_mb"])
        after = " / ".join(f"{mb:.0f}" for mb in r["loaded_mb"])
        print(
            f"| {r['backend']} | {r['start_s']:.2f} s | {idle} MB | "
            f"{r['filter_p50']:.1f} / {r['filter_p95']:.1f} ms | "
            f"{r['filter_sorted_p50']:.1f} ms | "
            f"{r['get_p50']:.2f} / {r['get_p95']:.2f} ms | {after} MB |"
        )


if __name__ == "__main__":
    main()
