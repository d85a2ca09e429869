"""``orion agent start --pool``: agents as real processes serving work pools against a real
``orion start`` (SQLite and PostgreSQL), running real flow subprocesses; the pool and the
deployment made with ``orion pool create`` and ``orion deployment create --pool``."""

import time
import uuid

import pytest

from client.api.states import Scheduled, StateType
from tests.support import all_final, module_server, states_of, wait_for

# Seconds two agents may take to run the runs of test_two_agents_on_one_pool... to the end.
TWO_AGENTS_BUDGET = 20


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    with module_server(
        tmp_path_factory,
        backend,
        "pool_agent_server",
        workers=1,
        threads=4,
        SCHEDULER_ENABLED="false",
    ) as orion:
        yield orion


def orion_command(agents, *args, cwd):
    result = agents.command(*args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_deployment_in_a_pool_runs_on_an_agent_of_that_pool_only(
    orion, agents, flows_dir, tmp_path
):
    pool, other = f"pool-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    assert f"Created work pool {pool!r}" in orion_command(
        agents, "pool", "create", pool, cwd=tmp_path
    )
    orion_command(agents, "pool", "create", other, cwd=tmp_path)
    orion_command(
        agents,
        "deployment",
        "create",
        f"{flows_dir / 'flows.py'}:quick",
        "--name",
        pool,
        "--pool",
        pool,
        cwd=tmp_path,
    )
    deployment = orion.read_deployment_by_name(f"quick/{pool}")
    assert (deployment.work_pool_name, deployment.work_queue_name) == (pool, "default")
    run_id = orion.create_flow_run_from_deployment(deployment.id, state=Scheduled()).id

    elsewhere = agents.start("--pool", other, "--run-once", "--name", f"on-{other}")
    assert elsewhere.wait(timeout=60) == 0, agents.output(elsewhere)
    assert agents.claims(elsewhere) == set()
    assert orion.read_flow_run(run_id).state_type == "SCHEDULED"
    assert f"started on work pool {other!r} (all its queues)" in agents.output(elsewhere)

    agent = agents.start("--pool", pool, "-q", "default", "--run-once", "--name", f"on-{pool}")
    assert agent.wait(timeout=60) == 0, agents.output(agent)
    assert agents.claims(agent) == {run_id}
    run = orion.read_flow_run(run_id)
    assert run.state_type == "COMPLETED", run.state
    assert run.infrastructure_pid and run.infrastructure_exit_code == 0
    assert f"from work pool {pool!r}" in agents.output(agent)
    assert [w.name for w in orion.read_workers_for_work_pool(pool)] == [f"on-{pool}"]
    assert [w.name for w in orion.read_workers_for_work_pool(other)] == [f"on-{other}"]
    assert orion.read_work_pool(pool).status == "READY"


def test_two_agents_on_one_pool_claim_each_run_exactly_once(orion, agents, flows_dir):
    pool = f"twice-{uuid.uuid4().hex[:6]}"
    orion.create_work_pool(pool)
    orion.create_work_pool_queue(pool, "second")
    flow_id = orion.create_flow_from_name("quick")
    placed = [
        orion.create_deployment(
            flow_id,
            f"{pool}-{queue}",
            path=str(flows_dir),
            entrypoint="flows.py:quick",
            work_pool_name=pool,
            work_queue_name=queue,
        )
        for queue in ("default", "second")
    ]
    run_ids = [
        orion.create_flow_run_from_deployment(placed[i % 2].id, state=Scheduled()).id
        for i in range(12)
    ]
    started = time.monotonic()
    first = agents.start("--pool", pool, "--limit", "4")
    second = agents.start("--pool", pool, "--limit", "4")
    wait_for(lambda: all_final(orion, run_ids), 60, "every run to finish")
    took = time.monotonic() - started
    assert set(states_of(orion, run_ids).values()) == {"COMPLETED"}
    for run_id in run_ids:
        pending = [s for s in orion.read_flow_run_states(run_id) if s.type is StateType.PENDING]
        assert len(pending) == 1, run_id
    assert agents.stop(first) == 0 and agents.stop(second) == 0
    claimed = agents.claims(first), agents.claims(second)
    assert not claimed[0] & claimed[1]
    assert claimed[0] | claimed[1] == set(run_ids)
    assert len(orion.read_workers_for_work_pool(pool)) == 2
    assert took <= TWO_AGENTS_BUDGET, f"{len(run_ids)} runs took {took:.1f} s"
