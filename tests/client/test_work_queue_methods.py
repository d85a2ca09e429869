"""OrionClient's work queue and agent methods against the real app in-process, both backends."""

import uuid

import pytest

from client import OrionClient
from client.agent.agent import Agent
from client.api.exceptions import ObjectAlreadyExists, ObjectNotFound
from client.api.settings import Settings
from client.api.states import Scheduled


def test_work_queue_lifecycle(orion):
    queue = orion.create_work_queue("etl", description="nightly", concurrency_limit=2)
    assert (queue.name, queue.description, queue.concurrency_limit) == ("etl", "nightly", 2)
    with pytest.raises(ObjectAlreadyExists):
        orion.create_work_queue("etl")
    assert orion.read_work_queue(queue.id) == queue
    assert orion.read_work_queue_by_name("etl").id == queue.id
    orion.update_work_queue(queue.id, is_paused=True, concurrency_limit=None)
    changed = orion.read_work_queue(queue.id)
    assert (changed.is_paused, changed.concurrency_limit) == (True, None)
    orion.create_work_queue("legacy", tags=["prod"])
    assert orion.read_work_queue_by_name("legacy").filter["tags"] == ["prod"]
    # With the agents' pool's "default" queue, made with the pool.
    assert [q.name for q in orion.read_work_queues()] == ["default", "etl", "legacy"]
    assert [q.name for q in orion.read_work_queues({"name": {"startswith_": ["le"]}})] == ["legacy"]
    assert orion.read_work_queue_status(queue.id).healthy is False
    orion.delete_work_queue_by_id(queue.id)
    with pytest.raises(ObjectNotFound):
        orion.read_work_queue(queue.id)


def test_get_runs_records_the_agent(orion):
    queue = orion.create_work_queue("etl")
    flow_id = orion.create_flow_from_name("f")
    run = orion.create_flow_run(flow_id, state=Scheduled(), work_queue_name="etl")
    agent_id = uuid.uuid4()
    runs = orion.get_runs_in_work_queue(queue.id, agent_id=agent_id, agent_name="a1")
    assert [r.id for r in runs] == [run.id]
    agent = orion.read_agent(agent_id)
    assert (agent.name, agent.work_queue_id) == ("a1", queue.id)
    assert [a.id for a in orion.read_agents({"name": {"any_": ["a1"]}})] == [str(agent_id)]
    assert orion.read_agents({"name": {"any_": ["other"]}}) == []


def test_a_dashboard_client_polls_without_recording(app, orion):
    queue = orion.create_work_queue("etl")
    settings = Settings(api_retries=0)
    with OrionClient(
        app, settings=settings, httpx_settings={"headers": {"x-prefect-ui": "true"}}
    ) as quiet:
        assert quiet.get_runs_in_work_queue(queue.id, agent_id=uuid.uuid4()) == []
    assert orion.read_work_queue(queue.id).last_polled is None
    assert orion.read_agents() == []


def test_an_agent_serves_its_queues_highest_priority_first(orion):
    for name, priority in (("low", 3), ("high", 1), ("mid", 2), ("also-low", 3)):
        queue = orion.create_work_queue(name)
        orion.update_work_queue(queue.id, priority=priority)
    agent = Agent(["low", "high", "mid", "also-low", "new"], client=orion)
    # "new" is created by the agent with the first free rank (4); ties keep the given order.
    assert [q.name for q in agent.source.queues_by_priority()] == [
        "high",
        "mid",
        "low",
        "also-low",
        "new",
    ]
