"""OrionClient's work pool methods, and an agent serving a pool (its start checks, its worker
heartbeats, a paused pool), against the real app in-process, both backends. Agents that run
flows on a pool: tests/agent/test_agent_pools.py."""

import pytest

from client import OrionClient
from client.agent.agent import Agent, AgentSettings, AgentStartError
from client.api.exceptions import ObjectAlreadyExists, ObjectNotFound
from client.api.settings import Settings
from client.api.states import Scheduled


def pooled_deployment(orion, pool, queue=None, name="d"):
    flow_id = orion.create_flow_from_name("f")
    placement = (
        {"work_pool_name": pool}
        if queue is None
        else {"work_pool_name": pool, "work_queue_name": queue}
    )
    return orion.create_deployment(flow_id, name, **placement)


def test_work_pool_lifecycle(orion):
    pool = orion.create_work_pool("P", description="nightly", concurrency_limit=2)
    assert (pool.name, pool.type, pool.description, pool.concurrency_limit, pool.status) == (
        "P",
        "process",
        "nightly",
        2,
        "NOT_READY",
    )
    with pytest.raises(ObjectAlreadyExists):
        orion.create_work_pool("P")
    orion.create_work_pool("D", type="docker", is_paused=True)
    assert orion.read_work_pool("D").status == "PAUSED"
    assert [p.name for p in orion.read_work_pools()] == ["D", "P"]
    assert [p.name for p in orion.read_work_pools({"type": {"any_": ["process"]}})] == ["P"]
    orion.update_work_pool("P", is_paused=True, concurrency_limit=None)
    changed = orion.read_work_pool("P")
    assert (changed.is_paused, changed.concurrency_limit) == (True, None)
    urgent = orion.create_work_pool_queue("P", "urgent", priority=1, concurrency_limit=1)
    orion.create_work_pool_queue("P", "later")
    with pytest.raises(ObjectAlreadyExists):
        orion.create_work_pool_queue("P", "later")
    assert [(q.name, q.priority) for q in orion.read_work_pool_queues("P")] == [
        ("urgent", 1),
        ("default", 2),
        ("later", 3),
    ]
    assert [q.id for q in orion.read_work_pool_queues("P", {"name": {"any_": ["urgent"]}})] == [
        urgent.id
    ]
    orion.update_work_pool_queue("P", "later", is_paused=True, priority=1)
    assert [(q.name, q.priority, q.is_paused) for q in orion.read_work_pool_queues("P")] == [
        ("later", 1, True),
        ("urgent", 2, False),
        ("default", 3, False),
    ]
    orion.delete_work_pool_queue("P", "later")
    with pytest.raises(ObjectAlreadyExists, match="default queue"):
        orion.delete_work_pool_queue("P", "default")
    assert [q.name for q in orion.read_work_pool_queues("P")] == ["urgent", "default"]
    orion.send_worker_heartbeat("P", "w1", heartbeat_interval_seconds=7)
    [worker] = orion.read_workers_for_work_pool("P")
    assert (worker.name, worker.heartbeat_interval_seconds, worker.status) == ("w1", 7, "ONLINE")
    pooled_deployment(orion, "P")
    with pytest.raises(ObjectAlreadyExists, match="has deployments: f/d"):
        orion.delete_work_pool("P")
    orion.delete_work_pool("D")
    with pytest.raises(ObjectNotFound):
        orion.read_work_pool("D")


def test_scheduled_runs_of_a_pool(app, orion):
    orion.create_work_pool("P")
    orion.create_work_pool_queue("P", "urgent", priority=1)
    slow = pooled_deployment(orion, "P", name="slow")
    fast = pooled_deployment(orion, "P", queue="urgent", name="fast")
    first = orion.create_flow_run_from_deployment(slow.id, state=Scheduled())
    second = orion.create_flow_run_from_deployment(fast.id, state=Scheduled())
    settings = Settings(api_retries=0)
    with OrionClient(
        app, settings=settings, httpx_settings={"headers": {"x-prefect-ui": "true"}}
    ) as quiet:
        assert len(quiet.get_scheduled_flow_runs_for_work_pool("P")) == 2
    assert {q.last_polled for q in orion.read_work_pool_queues("P")} == {None}
    got = orion.get_scheduled_flow_runs_for_work_pool("P")
    assert [item.flow_run.id for item in got] == [second.id, first.id]
    assert {item.work_pool_id for item in got} == {orion.read_work_pool("P").id}
    only = orion.get_scheduled_flow_runs_for_work_pool("P", work_queue_names=["default"], limit=5)
    assert [item.flow_run.id for item in only] == [first.id]
    assert all(q.last_polled for q in orion.read_work_pool_queues("P"))


def one_shot(orion, pool, queues=()):
    return Agent(
        queues,
        pool=pool,
        name="pool-agent",
        client=orion,
        settings=AgentSettings(query_interval=0.1, prefetch_seconds=0, shutdown_timeout=1),
    )


@pytest.mark.parametrize(
    ("pool_type", "queues", "message"),
    [
        (None, (), "Work pool 'P' not found; create it with `orion pool create P --type process`"),
        ("docker", (), "Work pool 'P' is of type 'docker': this agent runs pools of type "),
        ("process", ("urgent", "default"), "has no queue named 'urgent'; its queues: default."),
    ],
)
def test_an_agent_refuses_a_pool_it_cannot_serve(orion, pool_type, queues, message):
    if pool_type is not None:
        orion.create_work_pool("P", type=pool_type)
    agent = one_shot(orion, "P", queues)
    with pytest.raises(AgentStartError) as raised:
        agent.start(run_once=True)
    assert message in str(raised.value)
    if pool_type is not None:
        assert orion.read_workers_for_work_pool("P") == []


def test_an_agent_on_a_paused_pool_gets_no_runs_but_is_its_worker(orion):
    orion.create_work_pool("P", is_paused=True)
    deployment = pooled_deployment(orion, "P")
    run = orion.create_flow_run_from_deployment(deployment.id, state=Scheduled())
    agent = one_shot(orion, "P", ["default"])
    assert agent.start(run_once=True) == []
    assert agent.claimed == []
    assert orion.read_flow_run(run.id).state_type == "SCHEDULED"
    [worker] = orion.read_workers_for_work_pool("P")
    assert (worker.name, worker.status, worker.heartbeat_interval_seconds) == (
        "pool-agent",
        "ONLINE",
        5,
    )
    assert orion.read_work_pool("P").status == "PAUSED"
    orion.update_work_pool("P", is_paused=False)
    assert orion.read_work_pool("P").status == "READY"
