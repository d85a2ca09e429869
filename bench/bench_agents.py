"""Agent budgets (issue 6): how soon a deployed run starts, and how fast agents drain a queue.

For each backend (a real ``orion start`` on SQLite in a temporary ORION_HOME, or on the
recreated PostgreSQL database ``orion_bench_agents``), with a deployment of a trivial flow
kept in a local folder:

- **latency**: one ``orion agent start`` polling every second (``ORION_AGENT_QUERY_INTERVAL=1``,
  the default prefetch of 10 s unless ``--prefetch``); ``--latency-runs`` runs are scheduled
  ``--spacing`` seconds apart, the first 5 s ahead. For each run: its RUNNING state's
  timestamp minus its scheduled time (the server's clock; same machine). Budget: p50 ≤ 1.5 s.
- **throughput** (skipped with ``--runs 0``): ``--runs`` runs all due now are created first,
  then two agents (polling every second, no ``--limit`` unless ``--limit``) are started;
  runs/minute is the run count over the wall time from starting the agents to the last run
  being final. Also reported:
  the span between the first PENDING and the last final state (the server's timestamps).

The server listens on ``--port`` (``--port`` + 1 for the second backend) and is stopped at the
end, as are the agents. Every run must end Completed, or the script says which did not.

Usage: python bench/bench_agents.py [--runs 1000] [--latency-runs 20] [--spacing 2]
                                    [--backends sqlite,postgres] [--port 4440]
Needs the package installed (`pip install -e .`). Prints a Markdown table.
"""

import argparse
import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from client import OrionClient
from client.api.settings import Settings
from client.api.states import Scheduled, StateType

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_agents"
UTC = datetime.UTC
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

FLOWS = """
from client.sdk.flows import flow


@flow
def trivial():
    return 1
"""


def orion_script():
    return os.path.join(os.path.dirname(sys.executable), "orion")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def recreate_pg_database():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_agents WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_agents")
    conn.close()


def start_server(env, port, log_path):
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [orion_script(), "start", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"orion start exited; see {log_path}") from None
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("orion start did not answer")


class Agents:
    """``orion agent start`` processes, logging into ``folder``; stopped by :meth:`stop`."""

    def __init__(self, folder, api_url, prefetch):
        self.folder = folder
        self.env = clean_env(
            ORION_API_URL=api_url,
            ORION_HOME=os.path.join(folder, "home"),
            ORION_AGENT_QUERY_INTERVAL=1,
        )
        if prefetch is not None:
            self.env["ORION_AGENT_PREFETCH_SECONDS"] = str(prefetch)
        self.processes = []

    def start(self, queue, limit=None):
        args = ["-q", queue] + (["--limit", str(limit)] if limit else [])
        with open(os.path.join(self.folder, f"agent-{len(self.processes)}.log"), "w") as log:
            self.processes.append(
                subprocess.Popen(
                    [orion_script(), "agent", "start", *args],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=self.folder,
                )
            )

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        self.processes = []


def states_of(orion, run_ids):
    """{run id: state type} of the runs."""
    found = {}
    for start in range(0, len(run_ids), 200):
        for run in orion.read_flow_runs(
            flow_run_filter={"id": {"any_": run_ids[start : start + 200]}}, limit=200
        ):
            found[run.id] = run.state_type
    return found


def wait_final(orion, run_ids, timeout):
    """Wait until every run is final; returns {run id: state type}."""
    deadline = time.monotonic() + timeout
    while True:
        states = states_of(orion, run_ids)
        if len(states) == len(run_ids) and set(states.values()) <= FINAL:
            return states
        if time.monotonic() > deadline:
            waiting = sum(1 for s in states.values() if s not in FINAL)
            raise RuntimeError(f"{waiting} of {len(run_ids)} runs not final after {timeout} s")
        time.sleep(0.5)


def check_completed(states, what):
    others = {run_id: s for run_id, s in states.items() if s != "COMPLETED"}
    if others:
        raise RuntimeError(
            f"{what}: {len(others)} run(s) did not complete: {sorted(set(others.values()))}"
        )


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_latency(orion, deployment_id, queue, folder, api_url, args):
    agents = Agents(folder, api_url, args.prefetch)
    agents.start(queue)
    try:
        time.sleep(2)  # the agent is up and has polled its (empty) queue once
        first = datetime.datetime.now(UTC) + datetime.timedelta(seconds=5)
        scheduled = {}
        for i in range(args.latency_runs):
            at = first + datetime.timedelta(seconds=i * args.spacing)
            run = orion.create_flow_run_from_deployment(deployment_id, state=Scheduled(at))
            scheduled[run.id] = at
        states = wait_final(orion, list(scheduled), args.latency_runs * args.spacing + 120)
    finally:
        agents.stop()
    check_completed(states, "latency")
    delays = []
    for run_id, at in scheduled.items():
        running = next(s for s in orion.read_flow_run_states(run_id) if s.type is StateType.RUNNING)
        delays.append((running.timestamp - at).total_seconds())
    return {
        "p50": statistics.median(delays),
        "p95": percentile(delays, 0.95),
        "min": min(delays),
        "max": max(delays),
    }


def measure_throughput(orion, deployment_id, queue, folder, api_url, args):
    run_ids = [
        orion.create_flow_run_from_deployment(deployment_id, state=Scheduled()).id
        for _ in range(args.runs)
    ]
    agents = Agents(folder, api_url, args.prefetch)
    started = time.monotonic()
    for _ in range(2):
        agents.start(queue, args.limit)
    try:
        states = wait_final(orion, run_ids, args.runs * 5 + 120)
        wall = time.monotonic() - started
    finally:
        agents.stop()
    check_completed(states, "throughput")
    first_pending = last_final = None
    for start in range(0, len(run_ids), 200):
        for run in orion.read_flow_runs(
            flow_run_filter={"id": {"any_": run_ids[start : start + 200]}}, limit=200
        ):
            pending = next(
                s.timestamp
                for s in orion.read_flow_run_states(run.id)
                if s.type is StateType.PENDING
            )
            first_pending = min(first_pending or pending, pending)
            last_final = max(last_final or run.state.timestamp, run.state.timestamp)
    span = (last_final - first_pending).total_seconds()
    return {
        "wall": wall,
        "per_minute": args.runs / wall * 60,
        "span": span,
        "span_per_minute": args.runs / span * 60,
    }


def measure_backend(backend, port, args):
    with tempfile.TemporaryDirectory(prefix=f"orion-bench-agents-{backend}-") as folder:
        server_env = clean_env(
            ORION_HOME=os.path.join(folder, "server"), ORION_SCHEDULER_ENABLED="false"
        )
        if backend == "postgres":
            recreate_pg_database()
            server_env["ORION_DATABASE_URL"] = PG_BENCH
        flows = os.path.join(folder, "flows")
        os.makedirs(flows)
        with open(os.path.join(flows, "flows.py"), "w") as f:
            f.write(FLOWS)
        server = start_server(server_env, port, os.path.join(folder, "server.log"))
        api_url = f"http://127.0.0.1:{port}/api"
        try:
            with OrionClient(api_url, settings=Settings(api_retries=2)) as orion:
                flow_id = orion.create_flow_from_name("trivial")
                results = {}
                parts = [("latency", measure_latency)] + (
                    [("throughput", measure_throughput)] if args.runs else []
                )
                for part, measure in parts:
                    deployment = orion.create_deployment(
                        flow_id,
                        part,
                        path=flows,
                        entrypoint="flows.py:trivial",
                        work_queue_name=part,
                    )
                    results[part] = measure(orion, deployment.id, part, folder, api_url, args)
                    print(f"{backend} {part}: {results[part]}", file=sys.stderr, flush=True)
                return results
        finally:
            server.terminate()
            server.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument(
        "--prefetch",
        type=float,
        default=None,
        help="ORION_AGENT_PREFETCH_SECONDS for the agents (default: theirs)",
    )
    parser.add_argument("--limit", type=int, default=None, help="each agent's --limit")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--port", type=int, default=4440)
    args = parser.parse_args()
    rows = [
        (backend, measure_backend(backend, args.port + offset, args))
        for offset, backend in enumerate(args.backends.split(","))
    ]
    print(
        f"| backend | scheduled → RUNNING p50 / p95 / max ({args.latency_runs} runs) | "
        f"{args.runs} runs, 2 agents: runs/min (wall) | first PENDING → last final |"
    )
    print("|---|---|---|---|")
    for backend, r in rows:
        lat, thr = r["latency"], r.get("throughput")
        drained = (
            (
                f"{thr['per_minute']:.0f} ({thr['wall']:.1f} s) | {thr['span']:.1f} s "
                f"({thr['span_per_minute']:.0f}/min)"
            )
            if thr
            else "- | -"
        )
        print(
            f"| {backend} | {lat['p50']:.2f} / {lat['p95']:.2f} / {lat['max']:.2f} s | {drained} |"
        )


if __name__ == "__main__":
    main()
