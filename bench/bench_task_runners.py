"""Task runner budget: what DaskTaskRunner adds per task over bare Dask (issue 19: <= 10 ms).

Starts an ``orion start`` server (``--server-workers`` gunicorn workers of 8 threads;
PostgreSQL database ``orion_bench_runners``, recreated; or ``--sqlite``) and a
``distributed.LocalCluster`` of ``--workers`` worker processes with one thread each, then,
``--runs`` times:
  - bare Dask: ``client.submit`` of a trivial function ``--tasks`` times, then ``gather``;
  - DaskTaskRunner: a flow that submits a trivial task ``--tasks`` times and waits for them,
    minus an empty flow on the same runner (connecting and shutting down the session);
  - ThreadPoolTaskRunner with as many threads as workers, for reference.
Per-task figures are wall time / tasks; the overhead is DaskTaskRunner's minus bare Dask's.
Prints a Markdown table of medians, with the load average.

Usage: python bench/bench_task_runners.py [--tasks 200] [--runs 3] [--workers 2] [--sqlite]
       [--server-workers 1]
Needs the package installed with the dask extra (`pip install -e .[dask]`).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_runners"


def trivial(i):
    return i


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recreate_postgres():
    import psycopg2

    connection = psycopg2.connect(PG_ADMIN)
    connection.autocommit = True
    with connection.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_runners WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_runners")
    connection.close()


def start_server(home, database_url, workers):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update(ORION_HOME=str(home), ORION_SCHEDULER_ENABLED="false")
    if database_url:
        env["ORION_DATABASE_URL"] = database_url
    orion = str(Path(sys.executable).parent / "orion")
    process = subprocess.Popen(
        [orion, "start", "--port", str(port), "--workers", str(workers), "--threads", "8"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--server-workers", type=int, default=1)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from client import OrionClient, ThreadPoolTaskRunner, flow, task, using_client
    from client.task_runners import DaskTaskRunner

    home = Path(tempfile.mkdtemp(prefix="bench-runners-"))
    os.environ["ORION_RESULTS_STORAGE"] = str(home / "results")
    os.environ["ORION_LOGGING_LEVEL"] = "WARNING"
    if not args.sqlite:
        recreate_postgres()
    server, api_url = start_server(home, None if args.sqlite else PG_BENCH, args.server_workers)
    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = Client(cluster)
    noop = task(trivial, name="noop")

    @flow
    def many(n):
        return sum(f.result() for f in [noop.submit(i) for i in range(n)])

    figures = {"bare": [], "dask": [], "threads": []}
    try:
        with OrionClient(api_url) as orion, using_client(orion):
            dask_flow = many.with_options(task_runner=DaskTaskRunner(cluster.scheduler_address))
            thread_flow = many.with_options(task_runner=ThreadPoolTaskRunner(args.workers))
            dask_flow(2)  # warm-up: the workers import the client
            for _ in range(args.runs):
                start = time.perf_counter()
                client.gather([client.submit(trivial, i, pure=False) for i in range(args.tasks)])
                figures["bare"].append((time.perf_counter() - start) / args.tasks)
                start = time.perf_counter()
                dask_flow(0)
                empty = time.perf_counter() - start
                start = time.perf_counter()
                dask_flow(args.tasks)
                figures["dask"].append((time.perf_counter() - start - empty) / args.tasks)
                start = time.perf_counter()
                thread_flow(0)
                empty = time.perf_counter() - start
                start = time.perf_counter()
                thread_flow(args.tasks)
                figures["threads"].append((time.perf_counter() - start - empty) / args.tasks)
    finally:
        client.close()
        cluster.close()
        server.terminate()
        server.wait(30)

    def ms(values):
        return f"{statistics.median(values) * 1000:.1f} ms"

    overhead = [d - b for d, b in zip(figures["dask"], figures["bare"])]
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"load average before/after: {os.getloadavg()}")
    print(
        f"\n{args.tasks} tasks, {args.workers} workers x 1 thread, {backend}, median of {args.runs}"
    )
    print("\n| per task | median |\n|---|---|")
    print(f"| bare Dask `client.submit` + gather | {ms(figures['bare'])} |")
    print(f"| DaskTaskRunner (task run recorded) | {ms(figures['dask'])} |")
    print(f"| **overhead over bare Dask** (budget <= 10 ms) | **{ms(overhead)}** |")
    print(f"| ThreadPoolTaskRunner({args.workers}), for reference | {ms(figures['threads'])} |")


if __name__ == "__main__":
    main()
