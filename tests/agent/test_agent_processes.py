"""Agents as real processes against a real ``orion start`` (SQLite and PostgreSQL), running
real flow subprocesses from a deployment's local storage.

The claim tests run the issue's sizes (500 runs for two agents, 60 half-second runs under a
queue limit of 3), except two agents on SQLite get 200 runs (:data:`CLAIMED_RUNS`); timings
are scaled down: agents poll every 0.3 s, flows heartbeat every 0.5 s, the server's liveness
service loops every second with a 3 s heartbeat timeout.
"""

import os
import shutil
import signal
import sys
import time
import uuid

import pytest

from client import OrionClient
from client.api.settings import Settings
from client.api.states import StateType
from tests.support import (
    AGENT_CANCEL_GRACE,
    AGENT_POLL,
    all_final,
    due_runs,
    module_server,
    states_of,
    wait_for,
)

HEARTBEAT_TIMEOUT = 3
LIVENESS_LOOP = 1
POLL = AGENT_POLL
# Runs that two agents share, by backend. PostgreSQL's claims race on row locks, so it gets
# the issue's 500; SQLite takes one writer at a time, so there two agents' claims can only
# queue, and 200 runs show that as well in less than half the time.
CLAIMED_RUNS = {"postgres": 500, "sqlite": 200}
GRACE = AGENT_CANCEL_GRACE


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    with module_server(
        tmp_path_factory,
        backend,
        "agent_server",
        workers=1,
        threads=4,
        SCHEDULER_ENABLED="false",
        LIVENESS_LOOP_SECONDS=LIVENESS_LOOP,
        RUN_HEARTBEAT_TIMEOUT=HEARTBEAT_TIMEOUT,
    ) as orion:
        yield orion


def deployment(orion, flows_dir, queue, entrypoint, **fields):
    flow_id = orion.create_flow_from_name(entrypoint.split(":")[1])
    return orion.create_deployment(
        flow_id,
        f"{queue}-{entrypoint}",
        path=str(flows_dir),
        entrypoint=entrypoint,
        work_queue_name=queue,
        **fields,
    )


def running_sleepy(orion, agents, flows_dir, queue, seconds):
    """A run of ``sleepy`` (``seconds``) due on ``queue``, and an agent started on that queue;
    returns ``(run id, agent)`` once the run is Running."""
    sleepy = deployment(orion, flows_dir, queue, "flows.py:sleepy")
    [run_id] = due_runs(orion, sleepy, 1, parameters={"seconds": seconds})
    agent = agents.start("-q", queue)
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "RUNNING", 60, "RUNNING")
    return run_id, agent


def process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def child_pid(orion, run_id):
    pid = orion.read_flow_run(run_id).infrastructure_pid
    return int(pid.rsplit(":", 1)[1]) if pid else None


def test_two_agents_claim_each_run_exactly_once(orion, agents, flows_dir, backend):
    queue = f"once-{uuid.uuid4().hex[:6]}"
    quick = deployment(orion, flows_dir, queue, "flows.py:quick")
    run_ids = due_runs(orion, quick, CLAIMED_RUNS[backend])
    first = agents.start("-q", queue, "--limit", "4")
    second = agents.start("-q", queue, "--limit", "4")
    wait_for(lambda: all_final(orion, run_ids), 600, "every run to finish")
    assert set(states_of(orion, run_ids).values()) == {"COMPLETED"}
    for run_id in run_ids:
        pending = [s for s in orion.read_flow_run_states(run_id) if s.type is StateType.PENDING]
        assert len(pending) == 1, run_id
    assert agents.stop(first) == 0 and agents.stop(second) == 0
    claimed = agents.claims(first), agents.claims(second)
    assert not claimed[0] & claimed[1]
    assert claimed[0] | claimed[1] == set(run_ids)
    seen = orion.read_agents({"work_queue_id": {"any_": [orion.read_work_queue_by_name(queue).id]}})
    assert len(seen) == 2


def test_a_queue_limit_of_3_holds_for_3_agents(orion, agents, flows_dir):
    queue = f"limit-{uuid.uuid4().hex[:6]}"
    orion.create_work_queue(queue, concurrency_limit=3)
    run_ids = due_runs(
        orion,
        deployment(orion, flows_dir, queue, "flows.py:sleepy"),
        60,
        parameters={"seconds": 0.5},
    )
    for _ in range(3):
        agents.start("-q", queue)
    wait_for(lambda: all_final(orion, run_ids), 300, "every run to finish")
    assert set(states_of(orion, run_ids).values()) == {"COMPLETED"}
    events = []
    for run_id in run_ids:
        states = orion.read_flow_run_states(run_id)
        start = next(s.timestamp for s in states if s.type is StateType.PENDING)
        end = next(s.timestamp for s in states if s.is_final())
        events += [(start, 1), (end, -1)]
    active = peak = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):
        active += change
        peak = max(peak, active)
    assert peak == 3


def test_a_paused_queue_hands_out_nothing(orion, agents, flows_dir):
    queue = f"paused-{uuid.uuid4().hex[:6]}"
    orion.create_work_queue(queue, is_paused=True)
    run_ids = due_runs(orion, deployment(orion, flows_dir, queue, "flows.py:quick"), 3)
    process = agents.start("-q", queue, "--run-once")
    assert process.wait(timeout=60) == 0, agents.output(process)
    assert set(states_of(orion, run_ids).values()) == {"SCHEDULED"}
    assert agents.claims(process) == set()


def test_code_that_cannot_load_fails_the_run(orion, agents, flows_dir):
    queue = f"broken-{uuid.uuid4().hex[:6]}"
    [run_id] = due_runs(orion, deployment(orion, flows_dir, queue, "flows.py:missing"), 1)
    process = agents.start("-q", queue, "--run-once")
    assert process.wait(timeout=60) == 0, agents.output(process)
    run = orion.read_flow_run(run_id)
    assert run.state_type == "FAILED"
    assert "'flows.py:missing' is not a @flow" in run.state.message


def test_a_flow_process_that_cannot_start_fails_the_run(orion, agents, flows_dir, tmp_path):
    # The agent runs from a virtual environment whose interpreter is then removed (a venv
    # rebuilt under a running agent): its sys.executable is gone, so the flow run's process
    # cannot be spawned.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copy(os.path.join(sys.prefix, "pyvenv.cfg"), venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(os.path.join(sys.prefix, "lib"))
    python = venv / "bin" / "python"
    python.symlink_to(os.path.realpath(sys.executable))
    queue = f"nospawn-{uuid.uuid4().hex[:6]}"
    dep = deployment(orion, flows_dir, queue, "flows.py:quick")
    agent = agents.start("-q", queue, python=(str(python),))
    wait_for(lambda: "started on work queue" in agents.output(agent), 30, "the agent")
    python.unlink()
    [run_id] = due_runs(orion, dep, 1)
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "FAILED", 30, "FAILED")
    run = orion.read_flow_run(run_id)
    assert run.state.message.startswith("Submission failed: the flow run process could not start:")
    assert str(python) in run.state.message
    assert run.infrastructure_pid is None
    assert [s.type for s in orion.read_flow_run_states(run_id)] == [
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.FAILED,
    ]
    assert agents.stop(agent) == 0
    assert f"Flow run {run_id} could not be started" in agents.output(agent)


def test_a_killed_flow_process_is_reported_crashed(orion, agents, flows_dir):
    queue = f"kill-{uuid.uuid4().hex[:6]}"
    run_id, agent = running_sleepy(orion, agents, flows_dir, queue, 60)
    pid = wait_for(lambda: child_pid(orion, run_id), 10, "the pid")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "CRASHED", 5, "CRASHED")
    assert time.monotonic() - killed < 5
    run = orion.read_flow_run(run_id)
    assert "exited with code -9" in run.state.message
    assert run.infrastructure_exit_code == -9  # recorded before the run is made Crashed
    assert agents.stop(agent) == 0


def test_a_killed_agent_and_flow_are_crashed_by_the_liveness_service(orion, agents, flows_dir):
    queue = f"dead-{uuid.uuid4().hex[:6]}"
    orion.create_concurrency_limit("agent-test-db", 5)
    [run_id] = due_runs(orion, deployment(orion, flows_dir, queue, "flows.py:holding"), 1)
    agent = agents.start("-q", queue)

    def holding_a_slot():
        return run_id in {
            t.flow_run_id
            for t in orion.read_task_runs(
                flow_run_filter={"id": {"any_": [run_id]}},
                task_run_filter={"state": {"type": {"any_": ["RUNNING"]}}},
            )
        }

    wait_for(holding_a_slot, 60, "the task to hold its slot")
    wait_for(
        lambda: orion.read_flow_run(run_id).last_heartbeat is not None,
        15,
        "the flow's first heartbeat (the service watches only runs that have heartbeated)",
    )
    assert orion.read_concurrency_limit_by_tag("agent-test-db").active_slots
    pid = child_pid(orion, run_id)
    os.killpg(agent.pid, signal.SIGKILL)
    os.killpg(pid, signal.SIGKILL)
    killed = time.monotonic()
    agent.wait(timeout=30)
    wait_for(
        lambda: orion.read_flow_run(run_id).state_type == "CRASHED",
        HEARTBEAT_TIMEOUT + LIVENESS_LOOP + 5,
        "the liveness service",
    )
    assert time.monotonic() - killed <= HEARTBEAT_TIMEOUT + LIVENESS_LOOP + 5
    assert "no heartbeat" in orion.read_flow_run(run_id).state.message
    assert orion.read_concurrency_limit_by_tag("agent-test-db").active_slots == []
    tasks = orion.read_task_runs(flow_run_filter={"id": {"any_": [run_id]}})
    assert [t.state_type for t in tasks] == ["CRASHED"]


def test_cancel_from_the_cli_stops_the_process(orion, agents, flows_dir, tmp_path):
    queue = f"cancel-{uuid.uuid4().hex[:6]}"
    run_id, agent = running_sleepy(orion, agents, flows_dir, queue, 60)
    pid = wait_for(lambda: child_pid(orion, run_id), 10, "the pid")
    cancel = agents.command("flow-run", "cancel", run_id, timeout=60)
    assert cancel.returncode == 0, cancel.stderr
    assert "is cancelling" in cancel.stdout
    asked = time.monotonic()
    wait_for(
        lambda: orion.read_flow_run(run_id).state_type == "CANCELLED",
        POLL * 1.3 + GRACE + 5,
        "CANCELLED",
    )
    assert time.monotonic() - asked <= POLL * 1.3 + GRACE + 5
    assert process_gone(pid)
    assert agents.stop(agent) == 0


def test_cancelling_marks_the_interrupted_task_run_cancelled(orion, agents, flows_dir):
    """The agent stops a cancelled run's process in the middle of a task: the task run ends
    Cancelled (the engine sees its flow run cancelling), not Crashed."""
    queue = f"cancel-task-{uuid.uuid4().hex[:6]}"
    [run_id] = due_runs(orion, deployment(orion, flows_dir, queue, "flows.py:holding"), 1)
    agent = agents.start("-q", queue)

    def task_running():
        return [
            t
            for t in orion.read_task_runs(flow_run_filter={"id": {"any_": [run_id]}})
            if t.state_type == "RUNNING"
        ]

    wait_for(task_running, 60, "the task to run")
    cancel = agents.command("flow-run", "cancel", run_id, timeout=60)
    assert cancel.returncode == 0, cancel.stderr
    wait_for(
        lambda: orion.read_flow_run(run_id).state_type == "CANCELLED",
        POLL * 1.3 + GRACE + 5,
        "CANCELLED",
    )
    [task_run] = orion.read_task_runs(flow_run_filter={"id": {"any_": [run_id]}})
    assert task_run.state_type == "CANCELLED"
    assert "its flow run was cancelled" in task_run.state.message
    assert agents.stop(agent) == 0


def test_sigterm_lets_running_flows_finish(orion, agents, flows_dir):
    queue = f"term-{uuid.uuid4().hex[:6]}"
    run_id, agent = running_sleepy(orion, agents, flows_dir, queue, 3)
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=60) == 0
    assert orion.read_flow_run(run_id).state_type == "COMPLETED"
    assert "no more polls" in agents.output(agent)


def test_the_agent_survives_an_api_outage(server, orion, agents, flows_dir):
    queue = f"outage-{uuid.uuid4().hex[:6]}"
    dep = deployment(orion, flows_dir, queue, "flows.py:quick")
    agent = agents.start("-q", queue)
    wait_for(lambda: "started on work queue" in agents.output(agent), 30, "the agent")
    server.stop()
    time.sleep(2)
    assert agent.poll() is None
    server.start()
    with OrionClient(server.api_url, settings=Settings(api_retries=2)) as fresh:
        [run_id] = due_runs(fresh, dep, 1)
        wait_for(
            lambda: fresh.read_flow_run(run_id).state_type == "COMPLETED",
            90,
            "the run after the outage",
        )
    assert "the Orion API failed" in agents.output(agent)
    assert agents.stop(agent) == 0


def test_a_deployment_made_with_the_cli_runs_on_its_schedule_with_its_logs(
    orion, agents, flows_dir, tmp_path
):
    """End to end: ``orion deployment create`` with an interval schedule, its code uploaded to
    a local storage folder; an agent on its queue runs the scheduled runs to Completed, and
    their logs reach the server."""
    queue = f"e2e-{uuid.uuid4().hex[:6]}"
    storage = tmp_path / "storage"
    created = agents.command(
        "deployment",
        "create",
        f"{flows_dir / 'flows.py'}:quick",
        "--name",
        "e2e",
        "--interval",
        "2",
        "--work-queue",
        queue,
        "--storage",
        storage.as_uri(),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert (storage / "flows.py").exists()
    deployment_ = orion.read_deployment_by_name("quick/e2e")
    assert deployment_.work_queue_name == queue
    agents.start("-q", queue)

    def completed():
        runs = orion.read_flow_runs(
            flow_run_filter={
                "deployment_id": {"any_": [deployment_.id]},
                "state": {"type": {"any_": ["COMPLETED"]}},
            }
        )
        return runs if len(runs) >= 2 else None

    runs = wait_for(completed, 90, "two scheduled runs of the deployment to complete")
    for run in runs:
        assert "auto-scheduled" in run.tags

        def final_log(run_id=run.id):
            # The flow process ships its logs after proposing the final state, so the run
            # can be read as Completed a moment before its last lines are stored.
            messages = [
                log.message
                for log in orion.read_logs(log_filter={"flow_run_id": {"any_": [run_id]}})
            ]
            return any("Finished in state Completed" in m for m in messages)

        wait_for(final_log, 30, f"the logs of flow run {run.id}")
