"""Scale budgets (issue 21): server CPU per flow run lifecycle, and lifecycles/s with 2
gunicorn workers against 1, on PostgreSQL, the load clients on the same machine.

For each worker count (``--workers 1,2``) a fresh ``orion start`` on a fresh database
``orion_bench_scale`` serves ``--clients`` client processes, each running lifecycles (create
a flow run Pending, set Running, set Completed: 3 requests on one keep-alive connection) for
``--seconds``. Measured over the same window: lifecycles/s, and the CPU seconds of the server
(gunicorn master and workers, from /proc), of the clients, and of the PostgreSQL backends
serving the database (pg_stat_activity's pids, from /proc), each per lifecycle.

The load clients speak HTTP with the standard library's ``http.client``: they share the two
cores with the server, and an httpx client spent 2.4-3.0 ms of CPU per lifecycle (against
0.8 ms), over half the server's own, which the ratio then measured as much as the server.

Usage: python bench/bench_scale.py [--workers 1,2] [--clients 4] [--seconds 20] [--port 4960]
Prints a Markdown table.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import httpx
import psycopg2

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_scale"
TICK = os.sysconf("SC_CLK_TCK")

CLIENT = textwrap.dedent("""
    import http.client, json, sys, time
    from urllib.parse import urlsplit
    api, flow_id, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    url = urlsplit(api)
    conn = http.client.HTTPConnection(url.hostname, url.port)
    headers = {"Content-Type": "application/json"}
    def post(path, body):
        conn.request("POST", url.path + "/" + path, json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, response.read()
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, body = post("flow_runs/", {"flow_id": flow_id, "state": {"type": "PENDING"}})
        assert status == 201, body
        run_id = json.loads(body)["id"]
        for kind in ("RUNNING", "COMPLETED"):
            status, body = post(f"flow_runs/{run_id}/set_state", {"state": {"type": kind}})
            assert status == 201, body
        done += 1
    print(done)
""")


def cpu_seconds(pids):
    """utime + stime of ``pids`` (processes gone are skipped)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def postgres_pids():
    with psycopg2.connect(PG_ADMIN) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = 'orion_bench_scale'")
        return [row[0] for row in cur.fetchall()]


def recreate_database():
    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_scale WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_scale")
    conn.close()


def measure(workers, clients, seconds, port):
    recreate_database()
    home = tempfile.mkdtemp(prefix="bench-scale-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update(ORION_HOME=home, ORION_DATABASE_URL=PG_BENCH, ORION_SCHEDULER_ENABLED="false")
    orion = os.path.join(os.path.dirname(sys.executable), "orion")
    server = subprocess.Popen(
        [orion, "start", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        while True:
            try:
                if httpx.get(f"{api}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        flow_id = httpx.post(f"{api}/flows/", json={"name": "bench-scale"}).json()["id"]
        # Warm-up: every worker's connections and prepared statements.
        warm = subprocess.run(
            [sys.executable, "-c", CLIENT, api, flow_id, "2"], capture_output=True, text=True
        )
        assert warm.returncode == 0, warm.stderr
        server_pids = [server.pid, *children(server.pid)]
        pg_pids = postgres_pids()
        before = cpu_seconds(server_pids), cpu_seconds(pg_pids), os.times()
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CLIENT, api, flow_id, str(seconds)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(clients)
        ]
        done = sum(int(p.communicate()[0]) for p in procs)
        elapsed = time.monotonic() - started
        after = cpu_seconds(server_pids), cpu_seconds(pg_pids), os.times()
        client_cpu = (after[2].children_user + after[2].children_system) - (
            before[2].children_user + before[2].children_system
        )
        return {
            "rate": done / elapsed,
            "server_ms": (after[0] - before[0]) / done * 1000,
            "postgres_ms": (after[1] - before[1]) / done * 1000,
            "clients_ms": client_cpu / done * 1000,
        }
    finally:
        server.terminate()
        server.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=4960)
    args = parser.parse_args()
    rows = {}
    for workers in (int(w) for w in args.workers.split(",")):
        rows[workers] = measure(workers, args.clients, args.seconds, args.port)
    print(f"load average: {os.getloadavg()[0]:.1f}; {args.clients} client processes")
    print("| gunicorn workers | lifecycles/s | server CPU ms/lifecycle | PostgreSQL | clients |")
    print("|---|---|---|---|---|")
    for workers, row in rows.items():
        print(
            f"| {workers} | {row['rate']:.1f} | {row['server_ms']:.2f} | "
            f"{row['postgres_ms']:.2f} | {row['clients_ms']:.2f} |"
        )
    if 1 in rows and 2 in rows:
        print(f"2 workers / 1: {rows[2]['rate'] / rows[1]['rate']:.2f}x")


if __name__ == "__main__":
    main()
