"""SDK budgets: what ``@flow``/``@task`` add to the code they wrap.

For each mode (ephemeral: the API in-process on SQLite; an ``orion start`` server on SQLite;
one on PostgreSQL, database ``orion_bench_sdk``), in a fresh Python process:
  - a flow calling a trivial task 1,000 times sequentially: the per-task overhead is
    (flow time - empty flow time - the same 1,000 plain calls) / 1,000;
  - an empty flow run: median wall time of ``--empty`` runs (after one warm-up run);
and once: ``import client`` in a fresh process (median of 5), checking that it loads neither
httpx nor the server (``app``).

Each mode's flows write to a fresh ORION_HOME in a temporary folder. Servers listen on
``--port`` and ``--port`` + 1 and are stopped at the end.

Usage: python bench/bench_sdk.py [--tasks 1000] [--empty 20] [--modes ephemeral,sqlite,postgres]
Needs the package installed (`pip install -e .`). Prints a Markdown table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_sdk"

WORKLOAD = textwrap.dedent("""
    import json, statistics, sys, time
    from client import flow, task

    TASKS, EMPTY = int(sys.argv[1]), int(sys.argv[2])

    def plain(i):
        return i

    noop = task(plain)

    @flow
    def many():
        for i in range(TASKS):
            noop(i)

    @flow
    def empty():
        pass

    empty()  # warm-up: flow upserted, connections open, modules loaded
    empties = []
    for _ in range(EMPTY):
        started = time.perf_counter()
        empty()
        empties.append(time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(TASKS):
        plain(i)
    plain_time = time.perf_counter() - started
    started = time.perf_counter()
    many()
    many_time = time.perf_counter() - started
    empty_median = statistics.median(empties)
    print(json.dumps({
        "empty_ms": empty_median * 1000,
        "flow_s": many_time,
        "per_task_ms": (many_time - empty_median - plain_time) / TASKS * 1000,
    }))
""")

IMPORT_CHECK = textwrap.dedent("""
    import json, sys, time
    started = time.perf_counter()
    import client
    elapsed = time.perf_counter() - started
    print(json.dumps({"ms": elapsed * 1000, "httpx": "httpx" in sys.modules,
                      "app": "app" in sys.modules}))
""")


def recreate_pg_database():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_sdk WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_sdk")
    conn.close()


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_server(env, port):
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "orion"), "start", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("orion start exited") from None
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("orion start did not answer")


def run_workload(env, tasks, empty):
    out = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(tasks), str(empty)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_mode(mode, home, port, tasks, empty):
    env = clean_env(ORION_HOME=home)
    if mode == "ephemeral":
        return run_workload(env, tasks, empty)
    server_env = clean_env(ORION_HOME=home)
    if mode == "postgres":
        recreate_pg_database()
        server_env["ORION_DATABASE_URL"] = PG_BENCH
    server = start_server(server_env, port)
    try:
        env["ORION_API_URL"] = f"http://127.0.0.1:{port}/api"
        return run_workload(env, tasks, empty)
    finally:
        server.terminate()
        server.wait(30)


def measure_import():
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", IMPORT_CHECK],
                env=clean_env(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(5)
    ]
    return statistics.median(r["ms"] for r in runs), runs[0]["httpx"], runs[0]["app"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--empty", type=int, default=20)
    parser.add_argument("--modes", default="ephemeral,sqlite,postgres")
    parser.add_argument("--port", type=int, default=4332)
    args = parser.parse_args()
    rows = []
    for offset, mode in enumerate(args.modes.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"orion-bench-sdk-{mode}-") as home:
            result = measure_mode(mode, home, args.port + offset, args.tasks, args.empty)
        rows.append((mode, result))
    import_ms, httpx_loaded, app_loaded = measure_import()
    print(
        f"| mode | per-task overhead ({args.tasks} sequential tasks) | empty flow run "
        f"(median of {args.empty}) | flow total |"
    )
    print("|---|---|---|---|")
    for mode, r in rows:
        print(
            f"| {mode} | {r['per_task_ms']:.2f} ms | {r['empty_ms']:.1f} ms | {r['flow_s']:.2f} s |"
        )
    print(
        f"\n`import client`: {import_ms:.0f} ms (median of 5; httpx loaded: {httpx_loaded}, "
        f"server loaded: {app_loaded})"
    )


if __name__ == "__main__":
    main()
