"""Many processes on one database (issue 21 part 2), bounded.

One ``orion start`` (gunicorn: 4 workers on PostgreSQL, 2 on SQLite) with ORION_REDIS_URL,
so it starts one RQ worker and the ``rq cron`` process; one more ``orion worker`` (2 RQ
workers in all); 3 agents on one work queue; 8 load clients (threads of this test, each with
its own HTTP connection) for ``ORION_SCALE_SECONDS`` (default 120) of load:

- 3 deployments on 5-second interval schedules (the scheduler service, on the RQ workers,
  creates their runs; the agents run them as flow processes);
- API lifecycles: a flow run created Pending, Running, a task run created and started in one
  call, Completed, the flow run Completed, with every proposal accepted;
- ad hoc runs of a deployment, run by the agents;
- cancellations: of an ad hoc run scheduled for later (Cancelled at once) and of a run the
  agents are executing (its process stopped, Cancelled);
- reads: the flow runs filter, the deployment.

Then the agents finish what is due and the test checks: every slot of each schedule from
the first full slot to the end of the load has exactly one flow run (none lost, no duplicate
``(deployment, expected start)``), run once (one RUNNING state in its history) and
Completed; every ad hoc run Completed, every cancelled one Cancelled; nothing left Pending,
Running or Cancelling; no 5xx answered to any client (load clients, agents, flow processes)
and no traceback in any server log. It prints the figures: runs created and completed,
lateness of the scheduled runs (start time minus expected start), request rates and latency.

SQLite serves 2 gunicorn workers, not 4: one writer at a time (docs/deploy.md).
"""

import os
import random
import re
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.support import (
    ORION,
    REDIS_URL,
    Agents,
    OrionServer,
    isolated_database_url,
    orion_env,
    start_logged,
    stop_all,
    write_flows,
)

LOAD_SECONDS = float(os.environ.get("ORION_SCALE_SECONDS", "120"))
INTERVAL = 5
SCHEDULED_DEPLOYMENTS = 3
AGENTS = 3
LOAD_CLIENTS = 8
# Seconds after the load for the agents to finish what is due (flow processes, cancellations).
DRAIN_SECONDS = 60
# Agents poll every second; a scheduled run must start within this many seconds of its time.
AGENT_POLL = 1

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class LoadClient:
    """One load client: an HTTP connection to the API, every answer's status and latency."""

    def __init__(self, api_url):
        self.http = httpx.Client(base_url=api_url + "/", timeout=30)
        self.statuses = []
        self.latencies = []
        self.errors = []

    def call(self, method, path, body=None):
        started = time.perf_counter()
        response = self.http.request(method, path, json=body)
        self.latencies.append(time.perf_counter() - started)
        self.statuses.append(response.status_code)
        if response.status_code >= 400:
            self.errors.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
            return None
        return response.json() if response.content else None

    def set_state(self, kind, run_id, state_type, **state):
        answer = self.call(
            "POST", f"{kind}/{run_id}/set_state", {"state": {"type": state_type, **state}}
        )
        if answer is not None and answer["status"] != "ACCEPT":
            self.errors.append(f"{kind} {run_id} -> {state_type}: {answer}")
        return answer

    def close(self):
        self.http.close()


class Load:
    """What the load clients did, for the checks at the end."""

    def __init__(self):
        self.lock = threading.Lock()
        self.lifecycles = 0
        self.ad_hoc = []  # runs that must end Completed
        self.cancelled = []  # runs that must end Cancelled
        self.clients = []

    def add(self, attribute, run_id):
        with self.lock:
            getattr(self, attribute).append(run_id)


def lifecycle(client, flow_id, load):
    run = client.call("POST", "flow_runs/", {"flow_id": flow_id, "state": {"type": "PENDING"}})
    if run is None:
        return
    client.set_state("flow_runs", run["id"], "RUNNING")
    answer = client.call(
        "POST",
        "task_runs/create_and_set_state",
        {
            "flow_run_id": run["id"],
            "task_key": "scale.step",
            "dynamic_key": "0",
            "name": "step-0",
            "proposed_state": {"type": "RUNNING"},
        },
    )
    if answer is not None:
        task_run_id = answer["task_run"]["id"]
        client.set_state("task_runs", task_run_id, "COMPLETED")
    client.set_state("flow_runs", run["id"], "COMPLETED")
    with load.lock:
        load.lifecycles += 1


def ad_hoc_run(client, deployment_id, parameters=None, scheduled_time=None):
    state = {"type": "SCHEDULED"}
    if scheduled_time is not None:
        state["state_details"] = {"scheduled_time": scheduled_time.isoformat()}
    body = {"idempotency_key": str(uuid.uuid4()), "state": state}
    if parameters is not None:
        body["parameters"] = parameters
    run = client.call("POST", f"deployments/{deployment_id}/create_flow_run", body)
    return None if run is None else run["id"]


def cancel(client, run_id):
    """Propose Cancelling: a run not started becomes Cancelled at once, a running one
    Cancelling until its agent stops it."""
    answer = client.call("POST", f"flow_runs/{run_id}/set_state", {"state": {"type": "CANCELLING"}})
    if answer is not None and answer["status"] == "ABORT":
        client.errors.append(f"cancel {run_id}: {answer}")


def load_client(api_url, deployments, flow_id, load, deadline, seed):
    """Until ``deadline``: lifecycles and reads, with an ad hoc run every ~20 s, a cancel
    of a later run every ~15 s and of a running one every ~30 s (so the agents' flow
    processes stay within what two cores start)."""
    rng = random.Random(seed)
    client = LoadClient(api_url)
    with load.lock:
        load.clients.append(client)
    next_ad_hoc = time.monotonic() + rng.uniform(0, 20)
    next_cancel_later = time.monotonic() + rng.uniform(0, 15)
    next_cancel_running = time.monotonic() + rng.uniform(5, 30)
    running_to_cancel = []
    try:
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_ad_hoc:
                next_ad_hoc = now + 20
                run_id = ad_hoc_run(client, deployments["quick"], {"x": rng.randint(1, 9)})
                if run_id:
                    load.add("ad_hoc", run_id)
            elif now >= next_cancel_later:
                next_cancel_later = now + 15
                later = datetime.now(UTC) + timedelta(hours=1)
                run_id = ad_hoc_run(client, deployments["quick"], scheduled_time=later)
                if run_id:
                    cancel(client, run_id)
                    load.add("cancelled", run_id)
            elif now >= next_cancel_running:
                next_cancel_running = now + 30
                for run_id in running_to_cancel:
                    cancel(client, run_id)
                    load.add("cancelled", run_id)
                run_id = ad_hoc_run(client, deployments["sleepy"])
                running_to_cancel = [run_id] if run_id else []
            elif rng.random() < 0.8:
                lifecycle(client, flow_id, load)
            else:
                client.call("POST", "flow_runs/filter", {"limit": 50, "sort": "ID_DESC"})
                client.call("GET", f"deployments/{deployments['quick']}")
            time.sleep(0.05)
        for run_id in running_to_cancel:
            cancel(client, run_id)
            load.add("cancelled", run_id)
    except Exception as error:
        client.errors.append(f"load client crashed: {error!r}")


def read_all_runs(http):
    """Every flow run, once, with its deployment, expected start, state and start time.

    Pages by offset in id order: a run inserted meanwhile (a load client's last call, past
    its thread's join) with an id before the page boundary moves the boundary's run onto the
    next page too, so runs are kept by id (nothing is deleted here, so none is skipped)."""
    runs, offset = {}, 0
    while True:
        page = http.post(
            "flow_runs/filter", json={"limit": 200, "offset": offset, "sort": "ID_DESC"}
        )
        page.raise_for_status()
        rows = page.json()
        runs.update((run["id"], run) for run in rows)
        if len(rows) < 200:
            return list(runs.values())
        offset += 200


def running_states(http, run_id):
    answer = http.get("flow_run_states/", params={"flow_run_id": run_id})
    answer.raise_for_status()
    return [s for s in answer.json() if s["type"] == "RUNNING"]


def parse_time(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


FIVE_HUNDRED = re.compile(r"failed \(5\d\d|\b5\d\d (Server|Internal|Service)|Traceback")


def test_many_processes_one_database(backend, tmp_path, redis_db):
    workers = 4 if backend == "postgres" else 2
    settings = dict(
        REDIS_URL=REDIS_URL,
        REDIS_QUEUE=f"scale-{uuid.uuid4().hex[:6]}",
        SCHEDULER_LOOP_SECONDS=2,
        LATE_RUNS_LOOP_SECONDS=2,
        LIVENESS_LOOP_SECONDS=2,
        RUN_HEARTBEAT_TIMEOUT=15,
    )
    database_url = isolated_database_url(backend, tmp_path, "scale")
    flows_dir = tmp_path / "flows"
    flows_dir.mkdir()
    write_flows(flows_dir)
    server = OrionServer(
        tmp_path / "server", database_url=database_url, workers=workers, threads=8, **settings
    )
    processes = []
    with server:
        env = orion_env(
            tmp_path / "home",
            ORION_DATABASE_URL=database_url,
            **{f"ORION_{k}": v for k, v in settings.items()},
        )
        processes.append(
            start_logged(
                [ORION, "worker"], env=env, cwd=tmp_path, log_path=tmp_path / "worker-2.log"
            )
        )
        http = httpx.Client(base_url=server.api_url + "/", timeout=30)
        queue = "scale"
        deployments = {}
        anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
        for name in ("quick", "sleepy"):
            flow_id = http.post("flows/", json={"name": name}).json()["id"]
            deployments[name] = http.post(
                "deployments/",
                json={
                    "flow_id": flow_id,
                    "name": f"ad-hoc-{name}",
                    "path": str(flows_dir),
                    "entrypoint": f"flows.py:{name}",
                    "work_queue_name": queue,
                },
            ).json()["id"]
        scheduled = []
        for index in range(SCHEDULED_DEPLOYMENTS):
            flow_id = http.post("flows/", json={"name": "quick"}).json()["id"]
            scheduled.append(
                http.post(
                    "deployments/",
                    json={
                        "flow_id": flow_id,
                        "name": f"every-5s-{index}",
                        "path": str(flows_dir),
                        "entrypoint": "flows.py:quick",
                        "work_queue_name": queue,
                        "schedule": {"interval": INTERVAL, "anchor_date": anchor.isoformat()},
                    },
                ).json()["id"]
            )
        api_flow_id = http.post("flows/", json={"name": "scale-api-lifecycle"}).json()["id"]
        agents = Agents(
            server,
            tmp_path,
            {
                "ORION_AGENT_QUERY_INTERVAL": AGENT_POLL,
                "ORION_AGENT_PREFETCH_SECONDS": 0,
                "ORION_AGENT_CANCEL_GRACE_SECONDS": 5,
                "ORION_HEARTBEAT_SECONDS": 2,
            },
        )
        for index in range(AGENTS):
            processes.append(agents.start("-q", queue, "-n", f"agent-{index}"))
        load = Load()
        load_started = time.monotonic()
        deadline = load_started + LOAD_SECONDS
        threads = [
            threading.Thread(
                target=load_client,
                args=(server.api_url, deployments, api_flow_id, load, deadline, seed),
            )
            for seed in range(LOAD_CLIENTS)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(LOAD_SECONDS + 120)
            load_seconds = time.monotonic() - load_started
            load_end_time = datetime.now(UTC)

            # The schedule slots that must have run: from the anchor (the first slot after
            # the deployments were created) up to the end of the load.
            slots = []
            slot = anchor
            while slot <= load_end_time:
                slots.append(slot)
                slot += timedelta(seconds=INTERVAL)

            must_complete = set(load.ad_hoc)
            must_cancel = set(load.cancelled)
            drain_deadline = time.monotonic() + DRAIN_SECONDS
            while True:
                runs = read_all_runs(http)
                by_id = {run["id"]: run for run in runs}
                due = [
                    run
                    for run in runs
                    if run["deployment_id"] in scheduled
                    and parse_time(run["expected_start_time"]) <= slots[-1]
                ]
                waiting = [r for r in due if r["state_type"] not in FINAL]
                waiting += [
                    by_id[i]
                    for i in must_complete | must_cancel
                    if by_id[i]["state_type"] not in FINAL
                ]
                if not waiting or time.monotonic() > drain_deadline:
                    break
                time.sleep(1)
            drain_seconds = time.monotonic() - load_started - load_seconds
        finally:
            for thread in threads:
                thread.join(5)
            stop_all(processes)
            for client in load.clients:
                client.close()
        runs = read_all_runs(http)
        states_by_id = {run["id"]: run for run in runs}
        ran = {
            run["id"]: len(running_states(http, run["id"]))
            for run in runs
            if run["deployment_id"] in scheduled
        }
        http.close()
    server_log = server.output()

    # Every slot exactly once per deployment, Completed, run once.
    problems = []
    lateness = []
    for deployment_id in scheduled:
        mine = [r for r in runs if r["deployment_id"] == deployment_id]
        starts = [parse_time(r["expected_start_time"]) for r in mine]
        duplicates = sorted({s for s in starts if starts.count(s) > 1})
        if duplicates:
            problems.append(f"deployment {deployment_id}: duplicate runs at {duplicates}")
        by_slot = {parse_time(r["expected_start_time"]): r for r in mine}
        for slot in slots:
            run = by_slot.get(slot)
            if run is None:
                problems.append(f"deployment {deployment_id}: no run for the slot {slot}")
            elif run["state_type"] != "COMPLETED":
                problems.append(f"scheduled run {run['id']} at {slot}: {run['state_type']}")
            else:
                lateness.append((parse_time(run["start_time"]) - slot).total_seconds())
                if ran[run["id"]] != 1:
                    problems.append(f"scheduled run {run['id']} ran {ran[run['id']]} times")
    for run_id in load.ad_hoc:
        if states_by_id[run_id]["state_type"] != "COMPLETED":
            problems.append(f"ad hoc run {run_id}: {states_by_id[run_id]['state_type']}")
    for run_id in load.cancelled:
        if states_by_id[run_id]["state_type"] != "CANCELLED":
            problems.append(f"cancelled run {run_id}: {states_by_id[run_id]['state_type']}")
    stuck = [r for r in runs if r["state_type"] in ("PENDING", "RUNNING", "CANCELLING")]
    for run in stuck:
        problems.append(f"run {run['id']} ({run['name']}) left {run['state_type']}")

    statuses = [s for c in load.clients for s in c.statuses]
    latencies = sorted(x for c in load.clients for x in c.latencies)
    client_errors = [e for c in load.clients for e in c.errors]
    logs = {"server": server_log}
    for process in processes:
        with open(process.log_path) as log:
            logs[process.log_path.name] = log.read()
    log_problems = [
        f"{name}: {line}"
        for name, text in logs.items()
        for line in text.splitlines()
        if FIVE_HUNDRED.search(line)
    ]

    completed = sum(1 for r in runs if r["state_type"] == "COMPLETED")
    future = sum(1 for r in runs if r["state_type"] == "SCHEDULED")
    print(
        f"\n[{backend}, {workers} gunicorn workers] load {load_seconds:.0f} s, "
        f"drain {drain_seconds:.0f} s; flow runs created {len(runs)} ({future} scheduled "
        f"for later), {completed} Completed ({completed / (load_seconds + drain_seconds):.1f}/s); "
        f"schedule slots due {len(slots) * len(scheduled)}, lateness median "
        f"{statistics.median(lateness) if lateness else float('nan'):.2f} s, max "
        f"{max(lateness, default=float('nan')):.2f} s; API lifecycles {load.lifecycles} "
        f"({load.lifecycles / load_seconds:.1f}/s); ad hoc {len(load.ad_hoc)}, cancelled "
        f"{len(load.cancelled)}; load requests {len(statuses)} "
        f"({len(statuses) / load_seconds:.0f}/s), p50 {latencies[len(latencies) // 2] * 1000:.0f} "
        f"ms, p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms, "
        f"5xx {sum(1 for s in statuses if s >= 500)}"
    )
    assert not client_errors, client_errors[:20]
    assert not log_problems, log_problems[:20]
    assert not problems, problems[:20]
    assert load.lifecycles > 0 and load.ad_hoc and load.cancelled
