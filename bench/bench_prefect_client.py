"""A Prefect 2.7.12 client's flow of 200 tasks: against Orion and against Prefect 2.7.12's own
server, side by side in one run (issue 15's budget: ≥ 3× faster on Orion).

    .venv/bin/python bench/bench_prefect_client.py [--tasks 200] [--rounds 3] [--sequential]

Both servers run on this machine at once, each with a fresh SQLite database in a temporary
home and its default settings: ``orion start`` from this checkout, and ``prefect orion start``
from the Prefect 2.7 venv (``--prefect-venv``, default ``$ORION_TEST_PREFECT_2_7`` or
``.venv-prefect-2.7``, which ``scripts/test`` builds). The flow is the same script run by the
same Prefect 2.7.12 client, once against each server per round, alternating (Orion first in
odd rounds, Prefect first in even ones) so load on the machine falls on both alike. After one
warm-up flow on each server (Prefect creates its flow and block documents), each round times
the flow call inside the client process (``--tasks`` tasks submitted to the default
concurrent task runner, or called one after another with ``--sequential``; results not
persisted); the process start-up and imports are not counted. Every flow run must end
Completed with every task run Completed, checked through each server's API. Prints the
timings of every round, the medians and their ratio.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
ORION = str(Path(sys.executable).parent / "orion")

FLOW = """
import sys
import time

from prefect import flow, task
from prefect.context import get_run_context

TASKS, SEQUENTIAL = int(sys.argv[1]), sys.argv[2] == "sequential"


@task
def work(i):
    return i


@flow(name="bench-prefect-client")
def many():
    if SEQUENTIAL:
        total = sum(work(i) for i in range(TASKS))
    else:
        total = sum(future.result() for future in [work.submit(i) for i in range(TASKS)])
    return str(get_run_context().flow_run.id), total


start = time.perf_counter()
flow_run_id, total = many()
elapsed = time.perf_counter() - start
assert total == TASKS * (TASKS - 1) // 2, total
print(f"FLOW_RUN={flow_run_id} SECONDS={elapsed:.3f}", flush=True)
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(api, process, log, timeout=180):
    """Wait until the server at ``api`` answers its health check; exit if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited:\n{Path(log).read_text()}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    sys.exit(f"server did not answer within {timeout}s:\n{Path(log).read_text()}")


def start_orion(port, home):
    """``orion start`` on ``port`` with its home (and SQLite database) in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PREFECT_"))}
    env.update(ORION_HOME=home)
    log = os.path.join(home, "server.log")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [ORION, "start", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
        )
    return process, log


def start_prefect(venv, port, home):
    """Prefect 2.7.12's own server, ``prefect orion start``, from ``venv``, homed in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PREFECT_"))}
    env.update(
        PATH=f"{venv}/bin{os.pathsep}{env.get('PATH', '')}",
        PREFECT_HOME=home,
        PREFECT_ORION_ANALYTICS_ENABLED="false",
    )
    log = os.path.join(home, "server.log")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [f"{venv}/bin/prefect", "orion", "start", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    return process, log


def run_flow(venv, api, script, tasks, mode):
    """Run the flow once with the Prefect client against ``api``; (seconds, flow run id)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PREFECT_"))}
    with tempfile.TemporaryDirectory() as home:
        env.update(PREFECT_HOME=home, PREFECT_API_URL=api, PREFECT_LOGGING_LEVEL="WARNING")
        done = subprocess.run(
            [f"{venv}/bin/python", script, str(tasks), mode],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if done.returncode != 0:
        sys.exit(f"flow against {api} failed:\n{done.stdout}\n{done.stderr}")
    [line] = [line for line in done.stdout.splitlines() if line.startswith("FLOW_RUN=")]
    flow_run, seconds = (part.split("=", 1)[1] for part in line.split())
    check_completed(api, flow_run, tasks)
    return float(seconds)


def check_completed(api, flow_run_id, tasks):
    """The flow run and all ``tasks`` of its task runs are Completed, per the server's API."""
    run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=30).json()
    assert run["state"]["type"] == "COMPLETED", run["state"]
    body = {
        "flow_runs": {"id": {"any_": [flow_run_id]}},
        "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }
    completed = httpx.post(f"{api}/task_runs/count", json=body, timeout=30).json()
    assert completed == tasks, f"{completed} of {tasks} task runs Completed on {api}"


def main():
    default_venv = os.environ.get("ORION_TEST_PREFECT_2_7") or str(REPO / ".venv-prefect-2.7")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="call the tasks one after another instead of submitting them",
    )
    parser.add_argument("--prefect-venv", default=default_venv)
    parser.add_argument(
        "--ports",
        default=None,
        help="two ports, Orion's and Prefect's: 'P1,P2' (default: free ones)",
    )
    args = parser.parse_args()
    mode = "sequential" if args.sequential else "submit"
    ports = [int(p) for p in args.ports.split(",")] if args.ports else [free_port(), free_port()]

    work = tempfile.mkdtemp(prefix="bench-prefect-client-")
    script = os.path.join(work, "flow.py")
    Path(script).write_text(FLOW)
    orion_home, prefect_home = (os.path.join(work, name) for name in ("orion", "prefect"))
    os.mkdir(orion_home)
    os.mkdir(prefect_home)
    servers = {
        "Orion": (start_orion(ports[0], orion_home), f"http://127.0.0.1:{ports[0]}/api"),
        "Prefect 2.7.12": (
            start_prefect(args.prefect_venv, ports[1], prefect_home),
            f"http://127.0.0.1:{ports[1]}/api",
        ),
    }
    try:
        for (process, log), api in servers.values():
            wait_healthy(api, process, log)
        for name, (_, api) in servers.items():
            seconds = run_flow(args.prefect_venv, api, script, args.tasks, mode)
            print(f"warm-up on {name}: {seconds:.2f} s", flush=True)
        timings = {name: [] for name in servers}
        names = list(servers)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else reversed(names):
                seconds = run_flow(args.prefect_venv, servers[name][1], script, args.tasks, mode)
                timings[name].append(seconds)
                print(f"round {round_ + 1}, {name}: {seconds:.2f} s", flush=True)
    finally:
        for (process, _), _ in servers.values():
            process.terminate()
        for (process, _), _ in servers.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(
        f"\nPrefect 2.7.12 client, flow of {args.tasks} tasks ({mode}), "
        f"median of {args.rounds} rounds:"
    )
    print("| server | median | rounds |")
    print("|---|---|---|")
    for name, values in timings.items():
        print(f"| {name} | {medians[name]:.2f} s | {', '.join(f'{v:.2f}' for v in values)} |")
    print(
        f"\nOrion is {medians['Prefect 2.7.12'] / medians['Orion']:.1f}× faster "  # noqa: RUF001
        "(budget: ≥ 3×)"  # noqa: RUF001
    )


if __name__ == "__main__":
    main()
