"""Liveness and durability budgets (issue 18, parts 7 and 8).

Two measurements, each against a real ``orion start`` (one gthread worker, 8 threads,
embedded services):

``sync``: SQLite ``synchronous=NORMAL`` against ``FULL`` (``ORION_SQLITE_SYNCHRONOUS``), on a
fresh SQLite file in a temporary ``ORION_HOME`` per level. Per level and round: flow run
lifecycles/s (create SCHEDULED, then PENDING, RUNNING, COMPLETED: four requests) from 1 and
from 4 clients, and task run lifecycles/s from 1 client (a task run created RUNNING with
``create_and_set_state``, then COMPLETED: two requests) in one running flow run. The levels
alternate round by round, so a drift of the machine's speed hits both alike; the table gives
the median of the rounds.

``heartbeat``: the cost of flow run heartbeats at the default interval on the lifecycle
rate (``--backends``). Lifecycles/s from 4 clients, in alternating rounds with and without
``--running`` RUNNING flow runs heartbeating every ``--interval`` seconds (5, the default
``ORION_HEARTBEAT_SECONDS``) from a thread of this process; and the heartbeat's own latency
(p50 over 500 calls). The cost is given twice: measured (the drop of the median lifecycle
rate; on a shared 2-core machine its noise is larger than the budget), and computed
(heartbeats/s × the server time of one heartbeat ÷ the server time of one lifecycle ÷ the
lifecycle rate, i.e. the share of the server's lifecycle capacity the heartbeats use).

Usage: python bench/bench_liveness.py [sync] [heartbeat] [--seconds 8] [--rounds 3]
                                      [--backends sqlite,postgres] [--running 50]
                                      [--interval 5] [--port 4571]
Prints Markdown tables.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import httpx

# No scheduler; no liveness service, which would crash the benchmark's RUNNING runs that do
# not heartbeat (its pass every 5 s is one indexed query: nothing next to the load here).
QUIET = {"SCHEDULER_ENABLED": "false", "LIVENESS_ENABLED": "false"}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_liveness"


def recreate_pg_database():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_liveness WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_liveness")
    conn.close()


class Server:
    """``orion start`` in a temporary home, stopped by :meth:`stop`."""

    def __init__(self, port, **settings):
        self.home = tempfile.mkdtemp(prefix="orion-bench-liveness-")
        self.base = f"http://127.0.0.1:{port}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
        env.update(ORION_HOME=self.home, ORION_SERVER_PORT=str(port), ORION_SERVER_WORKERS="1")
        env.update({f"ORION_{k}": str(v) for k, v in settings.items()})
        self.log = open(os.path.join(self.home, "server.log"), "w")
        self.process = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "orion"), "start"],
            env=env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                sys.exit(f"orion start exited; see {self.log.name}")
            time.sleep(0.1)
        sys.exit("orion start did not become healthy in 60 s")

    def stop(self):
        self.process.terminate()
        self.process.wait(30)
        self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)


def check(response):
    response.raise_for_status()
    return response.json()


def set_state(api, path, state_type):
    body = check(api.post(path, json={"state": {"type": state_type}}))
    assert body["status"] == "ACCEPT", body


def flow_lifecycle(api, flow_id):
    run = check(api.post("/flow_runs/", json={"flow_id": flow_id, "state": {"type": "SCHEDULED"}}))
    for state_type in ("PENDING", "RUNNING", "COMPLETED"):
        set_state(api, f"/flow_runs/{run['id']}/set_state", state_type)


def task_lifecycle(api, flow_run_id):
    body = check(
        api.post(
            "/task_runs/create_and_set_state",
            json={
                "flow_run_id": flow_run_id,
                "task_key": "bench",
                "dynamic_key": uuid.uuid4().hex,
                "proposed_state": {"type": "RUNNING"},
            },
        )
    )
    assert body["orchestration_result"]["status"] == "ACCEPT", body
    set_state(api, f"/task_runs/{body['task_run']['id']}/set_state", "COMPLETED")


def rate(base, clients, seconds, make_one):
    """Operations/s that ``clients`` threads complete in ``seconds``; ``make_one(api)`` returns
    the callable one operation is."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def work(index):
        with httpx.Client(base_url=base, timeout=30) as api:
            one = make_one(api)
            while time.monotonic() < stop:
                one()
                done[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def new_flow(base):
    return check(httpx.post(f"{base}/flows/", json={"name": f"bench-{uuid.uuid4().hex[:8]}"}))["id"]


def running_flow_run(base, flow_id):
    run = check(httpx.post(f"{base}/flow_runs/", json={"flow_id": flow_id}))
    check(
        httpx.post(f"{base}/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    )
    return run["id"]


def bench_sync(args):
    levels = ("normal", "full")
    servers = {}
    results = {level: {"flow1": [], "flow4": [], "task1": []} for level in levels}
    try:
        for offset, level in enumerate(levels):
            servers[level] = Server(args.port + offset, SQLITE_SYNCHRONOUS=level, **QUIET)
        for round_ in range(args.rounds):
            for level in levels if round_ % 2 == 0 else reversed(levels):
                base = servers[level].base
                flow_id = new_flow(base)

                def flows(api, flow_id=flow_id):
                    return lambda: flow_lifecycle(api, flow_id)

                results[level]["flow1"].append(rate(base, 1, args.seconds, flows))
                results[level]["flow4"].append(rate(base, 4, args.seconds, flows))
                run_id = running_flow_run(base, flow_id)

                def tasks(api, run_id=run_id):
                    return lambda: task_lifecycle(api, run_id)

                results[level]["task1"].append(rate(base, 1, args.seconds, tasks))
                print(f"round {round_ + 1} {level}: {results[level]}", file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
    median = {lv: {k: statistics.median(v) for k, v in results[lv].items()} for lv in levels}
    print("\n| SQLite synchronous | flow lifecycles/s, 1 client | 4 clients | task lifecycles/s |")
    print("|---|---|---|---|")
    for level in levels:
        m = median[level]
        print(f"| {level.upper()} | {m['flow1']:.1f} | {m['flow4']:.1f} | {m['task1']:.1f} |")
    n, f = median["normal"], median["full"]
    print(
        "| FULL / NORMAL | "
        + " | ".join(f"{100 * f[k] / n[k]:.0f} %" for k in ("flow1", "flow4", "task1"))
        + " |"
    )


class Heartbeating:
    """``count`` RUNNING flow runs heartbeating every ``interval`` seconds, spread evenly, from
    one thread, while started."""

    def __init__(self, base, flow_id, count, interval):
        self.base = base
        self.runs = [running_flow_run(base, flow_id) for _ in range(count)]
        self.interval = interval
        self.sent = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        gap = self.interval / len(self.runs)
        with httpx.Client(base_url=self.base, timeout=30) as api:
            next_at = time.monotonic()
            index = 0
            while not self._stop.is_set():
                response = api.post(f"/flow_runs/{self.runs[index]}/heartbeat")
                assert response.status_code == 204, response.text
                self.sent += 1
                index = (index + 1) % len(self.runs)
                next_at += gap
                self._stop.wait(max(0.0, next_at - time.monotonic()))


def latency_ms(base, calls, one):
    times = []
    with httpx.Client(base_url=base, timeout=30) as api:
        for _ in range(calls):
            started = time.perf_counter()
            one(api)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench_heartbeat(args):
    print(
        f"\n| backend | lifecycles/s, 4 clients, no heartbeats | with {args.running} runs "
        f"heartbeating every {args.interval:g} s | measured drop | heartbeat p50 | lifecycle "
        "p50 (4 requests) | computed cost | running runs at 2 % |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for index, backend in enumerate(args.backends.split(",")):
        heartbeat_row(args, backend, args.port + 10 + index)


def heartbeat_row(args, backend, port):
    """Measure one backend and print its row of the heartbeat table."""
    settings = dict(QUIET)
    if backend == "postgres":
        recreate_pg_database()
        settings["DATABASE_URL"] = PG_BENCH
    server = Server(port, **settings)
    try:
        base = server.base
        flow_id = new_flow(base)
        beats = Heartbeating(base, flow_id, args.running, args.interval)
        heartbeat_ms = latency_ms(
            base, 500, lambda api: api.post(f"/flow_runs/{beats.runs[0]}/heartbeat")
        )
        lifecycle_ms = latency_ms(base, 200, lambda api: flow_lifecycle(api, flow_id))

        def flows(api):
            return lambda: flow_lifecycle(api, flow_id)

        without, with_ = [], []
        for round_ in range(args.rounds):
            for beating in (False, True) if round_ % 2 == 0 else (True, False):
                if beating:
                    beats.start()
                measured = rate(base, 4, args.seconds, flows)
                if beating:
                    beats.stop()
                (with_ if beating else without).append(measured)
                print(
                    f"{backend} round {round_ + 1} beating={beating}: {measured:.1f}/s",
                    file=sys.stderr,
                )
    finally:
        server.stop()
    plain, beating = statistics.median(without), statistics.median(with_)
    per_second = args.running / args.interval
    # Share of the lifecycle capacity: each second the heartbeats use per_second times
    # (heartbeat time / lifecycle time) lifecycles' worth of the server, out of `plain`.
    computed = per_second * heartbeat_ms / lifecycle_ms / plain
    print(
        f"| {backend} | {plain:.1f} | {beating:.1f} | {100 * (plain - beating) / plain:.1f} % "
        f"| {heartbeat_ms:.2f} ms | {lifecycle_ms:.2f} ms | {100 * computed:.2f} % "
        f"| {0.02 / (computed / args.running):.0f} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", default=["sync", "heartbeat"])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--running", type=int, default=50)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument("--port", type=int, default=4571)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    if "sync" in args.what:
        bench_sync(args)
    if "heartbeat" in args.what:
        bench_heartbeat(args)
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
