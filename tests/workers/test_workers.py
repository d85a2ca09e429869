"""RQ workers and the services in `orion start`: real Redis, real rq processes, real servers.

Redis: ``ORION_TEST_REDIS_URL`` (default database 5 on the local server) through the
``redis_db`` fixture; only that database is ever flushed. Servers listen on ports from
``ORION_TEST_PORTS`` (tests/support.py).
"""

import datetime
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest
import redis
from click.testing import CliRunner
from rq import Queue, cron_scheduler_registry
from rq.cron import get_cron_job_ids

from app.models import Deployment, DeploymentSchedule, Flow, FlowRun, FlowRunState
from app.services import flow_runs
from orion_cli import orion_cli
from tests.support import ORION, REDIS_URL, OrionServer, free_port, orion_env, wait_for

UTC = datetime.UTC
HOURLY = {"interval": 3600, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": "UTC"}


def app_env(app, **settings):
    """The environment of an Orion process on the test app's database, with ``settings`` as
    ``ORION_<NAME>`` variables."""
    return orion_env(
        app.config["HOME"],
        ORION_DATABASE_URL=app.config["DATABASE_URL"],
        **{f"ORION_{key}": value for key, value in settings.items()},
    )


def run_orion(app, *args, timeout=60, **settings):
    return subprocess.run(
        [ORION, *args],
        env=app_env(app, **settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def unscheduled_deployments(count):
    """Active hourly deployments inserted directly, so no run exists yet."""
    flow = Flow.create(name=f"flow-{uuid.uuid4().hex[:8]}")
    deployments = [Deployment.create(name=f"d{i}", flow=flow.id) for i in range(count)]
    for deployment in deployments:
        DeploymentSchedule.create(deployment=deployment.id, schedule=HOURLY)
    return deployments


def overdue_run():
    """A flow run Scheduled ten minutes ago (late)."""
    flow, _ = Flow.get_or_create(name="late-flow")
    when = datetime.datetime.now(UTC) - datetime.timedelta(minutes=10)
    run, _ = flow_runs.create_flow_run(
        {
            "flow_id": flow.id,
            "state": {
                "type": "SCHEDULED",
                "name": "Scheduled",
                "message": None,
                "data": None,
                "state_details": {"scheduled_time": when.isoformat()},
            },
        }
    )
    return run.id


def future_runs(deployment):
    return (
        FlowRun.select()
        .where((FlowRun.deployment == deployment.id) & (FlowRun.state_name == "Scheduled"))
        .count()
    )


def test_worker_runs_jobs_enqueued_by_dotted_path(app, db, redis_db):
    deployments = unscheduled_deployments(5)
    late = overdue_run()
    queue = Queue("orion", connection=redis_db)
    schedule_job = queue.enqueue("workers.jobs.schedule_deployments")
    late_job = queue.enqueue("workers.jobs.mark_late_runs")
    result = run_orion(app, "worker", "--burst", REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stderr
    assert schedule_job.get_status(refresh=True) == "finished", result.stderr
    assert late_job.get_status(refresh=True) == "finished"
    assert schedule_job.return_value() == sum(future_runs(d) for d in deployments)
    assert all(future_runs(d) >= 3 for d in deployments)
    assert late_job.return_value() == 1
    assert FlowRun.get_by_id(late).state_name == "Late"


def test_worker_loads_the_jobs_once_before_forking(app, db, redis_db):
    """Each job runs in a work-horse forked from the worker's main process, which loaded
    workers.jobs and bound its settings first: no job imports them again."""
    queue = Queue("orion", connection=redis_db)
    probes = [queue.enqueue("tests.workers.probe.loaded") for _ in range(2)]
    result = run_orion(app, "worker", "--burst", REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stderr
    answers = [probe.return_value(refresh=True) for probe in probes]
    assert all(a["jobs_loaded"] and a["settings_bound"] for a in answers), answers
    assert answers[0]["pid"] != answers[1]["pid"]  # one horse per job


def test_worker_and_cron_need_redis(monkeypatch):
    monkeypatch.delenv("ORION_REDIS_URL", raising=False)
    for command in ("worker", "cron"):
        result = CliRunner().invoke(orion_cli, [command])
        assert result.exit_code == 1
        assert "ORION_REDIS_URL is not set" in result.output


def enqueued(connection, name):
    """Ids of the jobs rq cron has enqueued for ``workers.jobs.<name>``."""
    return get_cron_job_ids(f"workers.jobs.{name}", connection)


def test_cron_enqueues_and_recovers_from_a_redis_flush(app, db, redis_db):
    env = app_env(app, REDIS_URL=REDIS_URL, SCHEDULER_LOOP_SECONDS=1, LATE_RUNS_LOOP_SECONDS=1)
    cron = subprocess.Popen(
        [ORION, "cron"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(
            lambda: (
                len(enqueued(redis_db, "schedule_deployments")) >= 2
                and len(enqueued(redis_db, "mark_late_runs")) >= 2
            ),
            15,
            "rq cron to enqueue both jobs every second",
        )
        # Redis loses everything; the database still says what to do.
        redis_db.flushdb()
        deployments = unscheduled_deployments(3)
        late = overdue_run()
        # Recovered: both jobs enqueued again, and rq cron back in its registry (its
        # heartbeat, right after enqueueing, re-adds it). Stopping it before that makes rq
        # fail to unregister it and exit 1.
        wait_for(
            lambda: (
                enqueued(redis_db, "schedule_deployments")
                and enqueued(redis_db, "mark_late_runs")
                and cron_scheduler_registry.get_keys(redis_db)
            ),
            5,
            "rq cron to enqueue again and re-register after the flush",
        )
    finally:
        cron.send_signal(signal.SIGTERM)
        output = cron.communicate(timeout=20)[0]
    assert cron.returncode == 0, output
    result = run_orion(app, "worker", "--burst", REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stderr
    assert all(future_runs(d) >= 3 for d in deployments)
    assert FlowRun.get_by_id(late).state_name == "Late"
    assert (
        FlowRunState.select()
        .where((FlowRunState.flow_run == late) & (FlowRunState.name == "Late"))
        .count()
        == 1
    )


def http(port, method, path, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"null")


def start_server(app, tmp_path, workers, **settings):
    """A real ``orion start`` on the test app's database and home, answering."""
    return OrionServer(
        tmp_path,
        home=app.config["HOME"],
        workers=workers,
        threads=2,
        database_url=app.config["DATABASE_URL"],
        **settings,
    ).start(20)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers; read its state.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def session_members(session_id):
    """Pids of the live (not zombie) processes of a session."""
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().split(")")[-1].split()
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            continue
        # Fields after the command: state, ppid, pgrp, session.
        if fields[0] != "Z" and int(fields[3]) == session_id:
            pids.append(int(entry))
    return pids


def kill_session(session_id, timeout=10):
    """SIGKILL every process of a session until none is left. ``os.killpg`` would reach one
    process group only, and an rq work-horse runs in a group of its own."""
    deadline = time.monotonic() + timeout
    while members := session_members(session_id):
        if time.monotonic() > deadline:
            pytest.fail(f"processes {members} of session {session_id} outlived SIGKILL")
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:
        return []


def create_scheduled_deployment(port):
    status, flow = http(port, "POST", "/flows/", {"name": "served"})
    status, deployment = http(
        port, "POST", "/deployments/", {"name": "hourly", "flow_id": flow["id"], "schedule": HOURLY}
    )
    assert status == 201
    status, runs = http(
        port, "POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}}
    )
    return runs


def test_orion_start_with_redis_runs_worker_and_cron_children(app, db, redis_db, tmp_path):
    server = start_server(
        app,
        tmp_path,
        workers=1,
        REDIS_URL=REDIS_URL,
        SCHEDULER_LOOP_SECONDS=1,
        LATE_RUNS_LOOP_SECONDS=1,
    )
    try:
        output = server.output()
        assert "RQ worker (pid" in output, output
        supervisors = [int(part.split(")")[0]) for part in output.split("pid ")[1:3]]
        # Each `orion worker` / `orion cron` supervises its rq process.
        wait_for(
            lambda: all(children_of(pid) for pid in supervisors),
            10,
            "the rq processes to start",
        )
        pids = supervisors + [c for pid in supervisors for c in children_of(pid)]
        assert all(pid_alive(pid) for pid in pids)
        # The deployment's first runs exist when the API answers.
        assert len(create_scheduled_deployment(server.port)) >= 3
        late = overdue_run()
        wait_for(
            lambda: FlowRun.get_by_id(late).state_name == "Late",
            30,
            lambda: "the RQ services to mark the overdue run Late: " + server.output(),
        )
    finally:
        returncode = server.stop()
    assert returncode == 0
    assert not any(pid_alive(pid) for pid in pids), "RQ children outlived the server"


def test_orion_start_embedded_runs_services_in_one_worker(app, db, tmp_path):
    server = start_server(
        app, tmp_path, workers=3, SCHEDULER_LOOP_SECONDS=1, LATE_RUNS_LOOP_SECONDS=1
    )
    try:
        assert "Services:   embedded" in server.output()
        assert len(create_scheduled_deployment(server.port)) >= 3
        deployments = unscheduled_deployments(2)
        late = overdue_run()
        wait_for(
            lambda: (
                FlowRun.get_by_id(late).state_name == "Late"
                and all(future_runs(d) >= 3 for d in deployments)
            ),
            10,
            lambda: "the embedded services to run: " + server.output(),
        )
        time.sleep(2)
        runners = [
            line
            for line in server.output().splitlines()
            if "Embedded services running in process" in line
        ]
        assert len(runners) == 1, server.output()
    finally:
        assert server.stop() == 0


def assert_every_run_has_its_state():
    orphans = (
        FlowRun.select()
        .where(FlowRun.state_id.not_in(FlowRunState.select(FlowRunState.id)))
        .count()
    )
    assert orphans == 0


def test_three_workers_scheduling_at_once_never_duplicate(app, db, redis_db):
    deployments = unscheduled_deployments(100)
    queue = Queue("orion", connection=redis_db)
    jobs = [queue.enqueue("workers.jobs.schedule_deployments") for _ in range(3)]
    env = app_env(app, REDIS_URL=REDIS_URL, SCHEDULER_DEPLOYMENT_BATCH_SIZE=4)
    workers = [
        subprocess.Popen(
            [ORION, "worker", "--burst"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert all(job.get_status(refresh=True) == "finished" for job in jobs), outputs
    runs = FlowRun.select().count()
    assert sum(job.return_value() for job in jobs) == runs
    keys = [r.idempotency_key for r in FlowRun.select(FlowRun.idempotency_key)]
    assert len(keys) == len(set(keys))
    assert all(future_runs(d) >= 3 for d in deployments)
    assert_every_run_has_its_state()


def test_kill_9_while_scheduling_then_the_next_tick_completes(app, db, redis_db):
    # 200 deployments x 100 runs (20,000 runs), 5 deployments (500 runs) per transaction.
    deployments = unscheduled_deployments(200)
    settings = dict(REDIS_URL=REDIS_URL, SCHEDULER_MIN_RUNS=100, SCHEDULER_DEPLOYMENT_BATCH_SIZE=5)
    queue = Queue("orion", connection=redis_db)
    queue.enqueue("workers.jobs.schedule_deployments")
    worker = subprocess.Popen(
        [ORION, "worker"],
        env=app_env(app, **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: FlowRun.select().count() > 0, 30, "the worker to schedule runs")
    finally:
        # The orion wrapper, the rq worker and its work-horse: the whole session.
        kill_session(worker.pid)
        worker.wait()
    assert FlowRun.select().count() < 200 * 100, "killed after scheduling had finished"
    assert_every_run_has_its_state()
    queue.enqueue("workers.jobs.schedule_deployments")
    result = run_orion(app, "worker", "--burst", **settings)
    assert result.returncode == 0, result.stderr
    for deployment in deployments:
        assert future_runs(deployment) >= 100
    keys = [r.idempotency_key for r in FlowRun.select(FlowRun.idempotency_key)]
    assert len(keys) == len(set(keys))
    # Nothing beyond what one pass generates (a second slot at most if an hour boundary
    # passed between the two passes).
    assert len(keys) <= 200 * 101
    assert_every_run_has_its_state()


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own (so it can be killed), on a port of our range.

    Yields ``(url, restart)``; ``restart()`` starts it again on the same port after a kill.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    servers = []

    def start():
        servers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        connection = redis.Redis(port=port)
        wait_for(lambda: _pings(connection), 10, "redis-server to start")
        return servers[-1]

    start()
    yield f"redis://127.0.0.1:{port}/0", servers, start
    for server in servers:
        if server.poll() is None:
            server.kill()
        server.wait()


def _pings(connection):
    try:
        return connection.ping()
    except redis.ConnectionError:
        return False


# The issue's outage: long enough for the rq processes' restart backoff to reach its cap.
REDIS_OUTAGE_SECONDS = 30


def test_services_recover_after_redis_is_killed_and_restarted(app, db, tmp_path, private_redis):
    url, servers, start_redis = private_redis
    server = start_server(
        app, tmp_path, workers=1, REDIS_URL=url, SCHEDULER_LOOP_SECONDS=1, LATE_RUNS_LOOP_SECONDS=1
    )
    try:
        first = overdue_run()
        wait_for(
            lambda: FlowRun.get_by_id(first).state_name == "Late",
            30,
            lambda: "the services to run: " + server.output(),
        )
        servers[-1].kill()
        servers[-1].wait()
        # Redis is down: the API keeps answering, and deployments still get their runs.
        assert len(create_scheduled_deployment(server.port)) >= 3
        second = overdue_run()
        # Deployments written behind the API's back need the scheduler's tick for their runs.
        waiting = unscheduled_deployments(5)
        outage_end = time.monotonic() + REDIS_OUTAGE_SECONDS
        while time.monotonic() < outage_end:
            assert http(server.port, "GET", "/health")[0] == 200
            assert http(server.port, "POST", "/flow_runs/count", {})[0] == 200
            time.sleep(0.5)
        assert FlowRun.get_by_id(second).state_name == "Scheduled"
        assert all(future_runs(d) == 0 for d in waiting)
        start_redis()
        back = time.monotonic()
        # The rq processes restart with a backoff of up to 30 s, so recovery may take as long.
        wait_for(
            lambda: (
                FlowRun.get_by_id(second).state_name == "Late"
                and all(future_runs(d) >= 3 for d in waiting)
            ),
            60,
            lambda: "the services to recover: " + server.output(),
        )
        # A chaos figure (tests/chaos/test_chaos.py prints the others; bench/README.md).
        print(
            f"\nCHAOS Redis down {REDIS_OUTAGE_SECONDS} s: services resumed "
            f"{time.monotonic() - back:.1f} s after it came back"
        )
        time.sleep(2)  # more ticks after recovery must add nothing twice
    finally:
        assert server.stop() == 0
    keys = [
        r.idempotency_key
        for r in FlowRun.select(FlowRun.idempotency_key).where(
            FlowRun.idempotency_key.is_null(False)
        )
    ]
    assert len(keys) == len(set(keys))
    assert_every_run_has_its_state()
    late_states = (
        FlowRunState.select()
        .where(FlowRunState.flow_run.in_([first, second]) & (FlowRunState.name == "Late"))
        .count()
    )
    assert late_states == 2
