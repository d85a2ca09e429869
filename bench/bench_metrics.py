"""What the metrics cost on the hot path (issue 21, part 3).

Two measurements, each in a child process per value store (``memory``: one process;
``multiprocess``: ``PROMETHEUS_MULTIPROC_DIR`` set, as under ``orion start``):

``ops``: the metric work one state proposal does, alone (request timer, counter and
histogram observation, the transition counter; the pool gauges are written only when they
change), in microseconds.

``api``: through the app in-process (Flask's test client, SQLite in a temporary folder), the
time of the hot-path calls with the metric hooks on and off, in alternating rounds (medians):
a flow run ``set_state`` (PENDING, RUNNING, COMPLETED) and a task run create
(``POST /api/task_runs/``). "Off" removes the request hooks and makes the transition counter a
no-op, which is what the metrics add.

Usage: python bench/bench_metrics.py [--rounds 5] [--runs 150]
Prints a Markdown table.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit


def child(rounds, runs):
    """Measure in this process (its value store is set by the parent); print JSON."""
    from app import create_app, metrics, migrations
    from app.db import database

    ops_n = 20000

    def one_call():
        started = time.perf_counter()
        metrics._child(metrics.REQUEST_SECONDS, "flow_runs.set_flow_run_state").observe(
            time.perf_counter() - started
        )
        metrics._child(metrics.REQUESTS, "flow_runs.set_flow_run_state", "POST", "201").inc()
        metrics.record_transition("flow_run", "RUNNING", "ACCEPT")

    ops_us = min(timeit.repeat(one_call, number=ops_n, repeat=5)) / ops_n * 1e6

    home = tempfile.mkdtemp(prefix="bench-metrics-")
    settings = {"HOME": home, "DATABASE_URL": f"sqlite:///{home}/orion.db", "TESTING": True}
    from app.config import load_config
    from app.db import init_database

    init_database(load_config(settings))
    with database.connection_context():
        migrations.upgrade(database)
    app = create_app(settings)
    client = app.test_client()
    flow_id = client.post("/api/flows/", json={"name": "bench"}).get_json()["id"]
    before = list(app.before_request_funcs[None])
    after = list(app.after_request_funcs[None])
    teardown = list(app.teardown_request_funcs[None])
    record = metrics.record_transition

    def switch(on):
        if on:
            app.before_request_funcs[None] = list(before)
            app.after_request_funcs[None] = list(after)
            app.teardown_request_funcs[None] = list(teardown)
            metrics.record_transition = record
        else:
            app.before_request_funcs[None] = [f for f in before if f is not metrics._start_timer]
            app.after_request_funcs[None] = [f for f in after if f is not metrics._observe]
            app.teardown_request_funcs[None] = [
                f for f in teardown if f.__qualname__ != "init_app.<locals>._pool_gauge"
            ]
            metrics.record_transition = lambda *args: None

    def measure():
        set_state, create_task = [], []
        for _ in range(runs):
            run_id = client.post("/api/flow_runs/", json={"flow_id": flow_id}).get_json()["id"]
            for state in ("PENDING", "RUNNING"):
                start = time.perf_counter()
                client.post(
                    f"/api/flow_runs/{run_id}/set_state",
                    json={"state": {"type": state, "name": state.title()}},
                )
                set_state.append(time.perf_counter() - start)
            start = time.perf_counter()
            client.post(
                "/api/task_runs/",
                json={"flow_run_id": run_id, "task_key": "t", "dynamic_key": "0"},
            )
            create_task.append(time.perf_counter() - start)
            start = time.perf_counter()
            client.post(
                f"/api/flow_runs/{run_id}/set_state",
                json={"state": {"type": "COMPLETED", "name": "Completed"}},
            )
            set_state.append(time.perf_counter() - start)
        return statistics.median(set_state), statistics.median(create_task)

    results = {True: [], False: []}
    measure()  # warm up
    for _ in range(rounds):
        for on in (True, False):
            switch(on)
            results[on].append(measure())
    switch(True)
    database.close_all()
    shutil.rmtree(home, ignore_errors=True)
    out = {"ops_us": ops_us}
    for on, label in ((True, "on"), (False, "off")):
        out[f"set_state_{label}_ms"] = statistics.median(r[0] for r in results[on]) * 1e3
        out[f"create_task_{label}_ms"] = statistics.median(r[1] for r in results[on]) * 1e3
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.rounds, args.runs)
        return
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min) at start")
    print()
    print("| store | metric work per call | set_state on | off | task run create on | off |")
    print("|---|---|---|---|---|---|")
    for store in ("memory", "multiprocess"):
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        if store == "multiprocess":
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-mp-")
        argv = [sys.executable, __file__, "--child", "--rounds", str(args.rounds)]
        argv += ["--runs", str(args.runs)]
        try:
            done = subprocess.run(argv, env=env, check=True, capture_output=True)
        finally:
            if store == "multiprocess":
                shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
        found = json.loads(done.stdout)
        print(
            f"| {store} | {found['ops_us']:.1f} µs "
            f"| {found['set_state_on_ms']:.3f} ms | {found['set_state_off_ms']:.3f} ms "
            f"| {found['create_task_on_ms']:.3f} ms | {found['create_task_off_ms']:.3f} ms |"
        )
    print()
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min) at end")


if __name__ == "__main__":
    main()
