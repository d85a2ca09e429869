"""Notifications budget (issue 17): sent within 10 s of the state change, 1,000 runs changing
state.

For each backend (a real ``orion start``, one gthread worker, embedded services, on SQLite in
a temporary ORION_HOME, or on the recreated PostgreSQL database
``orion_bench_notifications``): saves a ``slack-webhook`` block pointing at an HTTP receiver
in this process (``http.server`` on a thread), a policy for ``Failed`` runs tagged ``bench``,
creates ``--runs`` flow runs (every ``--tag-every``-th tagged, by default half, so half the
transitions match), moves them all to
Running, then to Failed from ``--clients`` threads as fast as the server answers. For each
notification the latency is its arrival at the receiver minus the moment its Failed
transition was answered; the table gives p50, p95 and the maximum, the time from the first
Failed transition to the last notification, and the count received (each must arrive once).

Usage: python bench/bench_notifications.py [--runs 1000] [--clients 8] [--tag-every 2]
                                           [--backends sqlite,postgres] [--port 4563]
                                           [--receiver-port 4564]
Prints a Markdown table.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_notifications"


class Receiver(BaseHTTPRequestHandler):
    """Records (arrival time, flow run id found in the Slack text) per request."""

    arrivals: ClassVar[list[tuple[float, str]]] = []
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        now = time.monotonic()
        run_id = body["text"].split("Flow run ID: ")[1].split()[0]
        with self.lock:
            self.arrivals.append((now, run_id))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def recreate_pg_database():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_notifications WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_notifications")
    conn.close()


def start_server(home, port, database_url=None):
    """``orion start`` on ``port`` (embedded services); returns it once /api/health answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update(ORION_HOME=home, ORION_SERVER_PORT=str(port), ORION_SERVER_WORKERS="1")
    if database_url:
        env["ORION_DATABASE_URL"] = database_url
    log = open(os.path.join(home, "server.log"), "w")
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "orion"), "start"],
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            sys.exit(f"orion start exited; see {log.name}")
        time.sleep(0.1)
    process.kill()
    sys.exit("orion start did not become healthy in 60 s")


def set_state(api, run_id, state_type):
    response = api.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": state_type}, "force": True}
    )
    response.raise_for_status()
    return time.monotonic()


def measure(backend, args, receiver_url):
    home = tempfile.mkdtemp(prefix="orion-bench-notify-")
    url = None
    if backend == "postgres":
        recreate_pg_database()
        url = PG_BENCH
    server = start_server(home, args.port, url)
    Receiver.arrivals.clear()
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{args.port}/api", timeout=60)
        block_type = api.get("/block_types/slug/slack-webhook").json()
        schema = api.post(
            "/block_schemas/filter",
            json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
        ).json()[0]
        document = api.post(
            "/block_documents/",
            json={
                "name": "bench",
                "block_type_id": block_type["id"],
                "block_schema_id": schema["id"],
                "data": {"url": f"{receiver_url}/hook"},
            },
        ).json()
        api.post(
            "/flow_run_notification_policies/",
            json={
                "state_names": ["Failed"],
                "tags": ["bench"],
                "block_document_id": document["id"],
            },
        ).raise_for_status()
        flow = api.post("/flows/", json={"name": "bench-notify"}).json()
        runs = [
            api.post(
                "/flow_runs/",
                json={"flow_id": flow["id"], "tags": ["bench"] if i % args.tag_every == 0 else []},
            ).json()["id"]
            for i in range(args.runs)
        ]
        expected = set(runs[:: args.tag_every])
        clients = [httpx.Client(base_url=api.base_url, timeout=60) for _ in range(args.clients)]

        def move(index_and_run, state_type):
            index, run_id = index_and_run
            return run_id, set_state(clients[index % args.clients], run_id, state_type)

        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda item: move(item, "RUNNING"), enumerate(runs)))
            started = time.monotonic()
            answered = dict(pool.map(lambda item: move(item, "FAILED"), enumerate(runs)))
        transitions = time.monotonic() - started
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with Receiver.lock:
                if len(Receiver.arrivals) >= len(expected):
                    break
            time.sleep(0.05)
        time.sleep(2 * 2)  # two service loops: anything sent twice would arrive by now
        with Receiver.lock:
            arrivals = list(Receiver.arrivals)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    received = [run_id for _, run_id in arrivals]
    latencies = sorted(at - answered[run_id] for at, run_id in arrivals)
    return {
        "backend": backend,
        "received": len(received),
        "expected": len(expected),
        "duplicates": len(received) - len(set(received)),
        "unexpected": len(set(received) - expected),
        "transitions_s": transitions,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "all_sent_s": (max(at for at, _ in arrivals) - started) if arrivals else float("nan"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tag-every", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--port", type=int, default=4563)
    parser.add_argument("--receiver-port", type=int, default=4564)
    args = parser.parse_args()
    # A listen backlog of 5 (http.server's default) would reset the sender's parallel
    # connections: measure Orion, not the receiver.
    ThreadingHTTPServer.request_queue_size = 128
    receiver = ThreadingHTTPServer(("127.0.0.1", args.receiver_port), Receiver)
    receiver.daemon_threads = True
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{args.receiver_port}"
    results = [measure(backend, args, receiver_url) for backend in args.backends.split(",")]
    receiver.shutdown()
    print(
        f"{args.runs} runs to Failed ({len(range(0, args.runs, args.tag_every))} tagged, "
        "one policy), "
        f"{args.clients} client threads; latency = arrival - set_state answered\n"
    )
    print(
        "| backend | received / expected | duplicates | transitions (s) | p50 (s) "
        "| p95 (s) | max (s) | first Failed to last sent (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['received']} / {r['expected']} | {r['duplicates']} "
            f"| {r['transitions_s']:.1f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} "
            f"| {r['all_sent_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
