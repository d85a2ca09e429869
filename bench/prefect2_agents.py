"""Prefect 2's agent on bench_agents.py's throughput workload, for the comparison issue 6 asks for.

Run it with the Python of a venv holding ``prefect<3`` (not Orion's), against a Prefect 2
server already listening at ``--api`` (``../shared/anchor-bench/prefect2_server.sh start
sqlite|postgres`` starts one on port 4200):

    $ROOT/venv/bin/python bench/prefect2_agents.py --api http://127.0.0.1:4200/api \
        --runs 200 --limit 10

Compare with ``bench_agents.py --runs 200 --limit 10 --latency-runs 0`` (same limit per agent).

The workload mirrors ``bench_agents.py``: a deployment of a trivial flow kept in a local
folder, run by the Process infrastructure; ``--runs`` runs due now are created first, then
two ``prefect agent start --limit`` processes on the deployment's work queue, polling every
second (``PREFECT_AGENT_QUERY_INTERVAL=1``); runs/minute is the run count over the wall time from
starting the agents to the last run being final. Every run must end Completed. Prints one
Markdown table row.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import httpx

FLOWS = """
from prefect import flow


@flow
def trivial():
    return 1
"""

DEPLOY = """
import sys
from prefect.deployments import Deployment
from prefect.infrastructure import Process
from flows import trivial

Deployment.build_from_flow(flow=trivial, name=sys.argv[1], work_queue_name=sys.argv[1],
                           infrastructure=Process(), apply=True)
"""

FINAL = ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]


def count(api, deployment_id, state_types):
    """How many of the deployment's runs are in one of ``state_types``."""
    response = httpx.post(
        f"{api}/flow_runs/count",
        json={
            "flow_runs": {"state": {"type": {"any_": state_types}}},
            "deployments": {"id": {"any_": [deployment_id]}},
        },
    )
    response.raise_for_status()
    return response.json()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", default="http://127.0.0.1:4200/api")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--limit",
        type=int,
        default=10,
        help="flow runs each agent runs at once (a Prefect flow process "
        "takes ~120 MB; unlimited, 1,000 due runs would exhaust memory)",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    prefect = os.path.join(os.path.dirname(sys.executable), "prefect")
    # A deployment and queue of their own: earlier runs on the same server are not counted.
    name = f"bench-{os.getpid()}"
    env = dict(os.environ, PREFECT_API_URL=args.api, PREFECT_AGENT_QUERY_INTERVAL="1")
    folder = tempfile.mkdtemp(prefix="prefect2-agents-")
    with open(os.path.join(folder, "flows.py"), "w") as flows:
        flows.write(FLOWS)
    subprocess.run(
        [sys.executable, "-c", DEPLOY, name], cwd=folder, env=env, check=True, capture_output=True
    )
    deployment = httpx.get(f"{args.api}/deployments/name/trivial/{name}").json()
    for _ in range(args.runs):
        httpx.post(
            f"{args.api}/deployments/{deployment['id']}/create_flow_run", json={}
        ).raise_for_status()
    agents = []
    started = time.monotonic()
    for index in range(2):
        with open(os.path.join(folder, f"agent-{index}.log"), "w") as log:
            agents.append(
                subprocess.Popen(
                    [prefect, "agent", "start", "-q", name, "--limit", str(args.limit)],
                    env=env,
                    cwd=folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        while count(args.api, deployment["id"], FINAL) < args.runs:
            if time.monotonic() - started > args.timeout:
                sys.exit(f"not all runs final after {args.timeout} s; logs in {folder}")
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(60)
    completed = count(args.api, deployment["id"], ["COMPLETED"])
    if completed != args.runs:
        sys.exit(f"{args.runs - completed} runs did not complete; logs in {folder}")
    print(
        f"| {args.runs} runs, 2 Prefect 2 agents: runs/minute (wall) | "
        f"**{args.runs / elapsed * 60:.0f}** ({elapsed:.0f} s) |"
    )


if __name__ == "__main__":
    main()
