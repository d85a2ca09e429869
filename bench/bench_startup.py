"""Start-up costs: what a process pays before Orion does any work.

Each figure is taken in fresh Python processes (median of ``--runs``), on a SQLite database
in a temporary ORION_HOME that one warm-up run has already created and migrated:
  - the server's app: ``import app`` and ``create_app()``, timed inside the process, plus
    the first ``GET /api/openapi.json`` of that app (the API document is built then);
  - a flow of one task with no server configured (ephemeral mode), the whole process:
    wall time and CPU time (user + system, from the child's rusage);
  - ``orion start`` (one worker), from launch until ``/api/health`` answers.

Usage: python bench/bench_startup.py [--runs 7] [--port 4334]
Needs the package installed (`pip install -e .`). Prints a Markdown table.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

APP_BUILD = textwrap.dedent("""
    import json, time
    started = time.perf_counter()
    import app
    imported = time.perf_counter()
    application = app.create_app()
    built = time.perf_counter()
    response = application.test_client().get("/api/openapi.json")
    assert response.status_code == 200, response.status_code
    documented = time.perf_counter()
    print(json.dumps({
        "import_ms": (imported - started) * 1000,
        "build_ms": (built - imported) * 1000,
        "doc_ms": (documented - built) * 1000,
        "paths": len(response.get_json()["paths"]),
    }))
""")

ONE_TASK_FLOW = textwrap.dedent("""
    from client import flow, task

    @task
    def add_one(x):
        return x + 1

    @flow
    def one_task():
        return add_one(1)

    assert one_task() == 2
""")


def clean_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PREFECT_"))}
    env["ORION_HOME"] = home
    return env


def timed_child(args, env):
    """Run a child process to completion: (wall seconds, CPU seconds, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def measure_app_build(env, runs):
    results = [
        json.loads(timed_child([sys.executable, "-c", APP_BUILD], env)[2].splitlines()[-1])
        for _ in range(runs)
    ]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def measure_flow(env, runs):
    timings = [timed_child([sys.executable, "-c", ONE_TASK_FLOW], env) for _ in range(runs)]
    return (
        statistics.median(wall for wall, _, _ in timings) * 1000,
        statistics.median(cpu for _, cpu, _ in timings) * 1000,
    )


def measure_server_start(env, port, runs):
    orion = os.path.join(os.path.dirname(sys.executable), "orion")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(
            [orion, "start", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            times.append(wait_healthy(proc, port) - started)
        finally:
            proc.terminate()
            proc.wait(30)
    return statistics.median(times) * 1000


def wait_healthy(proc, port):
    """The ``perf_counter`` time at which ``/api/health`` first answered."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                return time.perf_counter()
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("orion start exited") from None
            time.sleep(0.01)
    raise RuntimeError("orion start did not answer")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--port", type=int, default=4334)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orion-bench-startup-") as home:
        env = clean_env(home)
        timed_child([sys.executable, "-c", ONE_TASK_FLOW], env)  # creates and migrates
        build = measure_app_build(env, args.runs)
        flow_wall, flow_cpu = measure_flow(env, args.runs)
        start = measure_server_start(env, args.port, max(3, args.runs // 2))
    print(f"| figure (median of {args.runs} fresh processes) | ms |")
    print("|---|---|")
    print(f"| `import app` | {build['import_ms']:.0f} |")
    print(f"| `create_app()` | {build['build_ms']:.0f} |")
    print(f"| first `GET /api/openapi.json` ({build['paths']} paths) | {build['doc_ms']:.0f} |")
    print(f"| one-task flow, ephemeral, whole process: wall | {flow_wall:.0f} |")
    print(f"| same, CPU (user + system) | {flow_cpu:.0f} |")
    print(f"| `orion start --workers 1` to `/api/health` | {start:.0f} |")


if __name__ == "__main__":
    main()
