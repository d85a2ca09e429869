"""Agents: recorded by get_runs polls that carry agent_id, read and filtered through the API."""

import datetime
import threading
import uuid

from app.models import Agent
from tests.conftest import assert_422


def make_queue(client, name):
    response = client.post("/api/work_queues/", json={"name": name})
    assert response.status_code == 201
    return response.get_json()["id"]


def poll(client, queue_id, agent_id=None, **body):
    if agent_id is not None:
        body["agent_id"] = str(agent_id)
    return client.post(f"/api/work_queues/{queue_id}/get_runs", json=body)


def read(client, agent_id):
    response = client.get(f"/api/agents/{agent_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_poll_with_an_agent_id_records_the_agent(client):
    queue = make_queue(client, "etl")
    agent_id = uuid.uuid4()
    before = datetime.datetime.now(datetime.UTC)
    assert poll(client, queue, agent_id).status_code == 200
    agent = read(client, agent_id)
    assert agent["name"] == f"agent-{agent_id}"
    assert agent["work_queue_id"] == queue
    assert datetime.datetime.fromisoformat(agent["last_activity_time"]) >= before


def test_later_polls_move_the_agent_and_its_time(client):
    first, second = make_queue(client, "a"), make_queue(client, "b")
    agent_id = uuid.uuid4()
    poll(client, first, agent_id, agent_name="worker-1")
    seen = read(client, agent_id)
    poll(client, second, agent_id)
    agent = read(client, agent_id)
    assert agent["work_queue_id"] == second
    assert agent["name"] == "worker-1"
    assert agent["last_activity_time"] > seen["last_activity_time"]
    poll(client, second, agent_id, agent_name="worker-2")
    assert read(client, agent_id)["name"] == "worker-2"
    assert Agent.select().count() == 1


def test_another_agents_name_is_409_and_nothing_changes(client):
    queue = make_queue(client, "etl")
    poll(client, queue, uuid.uuid4(), agent_name="taken")
    response = poll(client, queue, uuid.uuid4(), agent_name="taken")
    assert response.status_code == 409
    assert "taken" in response.get_json()["detail"]
    assert Agent.select().count() == 1


def test_bad_agent_fields_are_422(client):
    queue = make_queue(client, "etl")
    assert_422(poll(client, queue, agent_name="lonely"), "body", "agent_name")
    assert_422(poll(client, queue, agent_id="nope"), "body", "agent_id")
    assert_422(poll(client, queue, uuid.uuid4(), agent_name=""), "body", "agent_name")


def test_dashboard_polls_and_anonymous_polls_record_no_agent(client):
    queue = make_queue(client, "etl")
    client.post(
        f"/api/work_queues/{queue}/get_runs",
        json={"agent_id": str(uuid.uuid4())},
        headers={"x-prefect-ui": "true"},
    )
    poll(client, queue)
    assert Agent.select().count() == 0


def test_filter_by_name_id_and_queue(client):
    first, second = make_queue(client, "a"), make_queue(client, "b")
    ids = [uuid.uuid4() for _ in range(3)]
    poll(client, first, ids[0], agent_name="alpha")
    poll(client, first, ids[1], agent_name="beta")
    poll(client, second, ids[2], agent_name="gamma")

    def names(body):
        response = client.post("/api/agents/filter", json=body)
        assert response.status_code == 200, response.get_json()
        return [agent["name"] for agent in response.get_json()]

    assert names({}) == ["alpha", "beta", "gamma"]
    assert names({"agents": {"work_queue_id": {"any_": [first]}}}) == ["alpha", "beta"]
    assert names({"agents": {"name": {"any_": ["gamma"]}}}) == ["gamma"]
    assert names({"agents": {"id": {"any_": [str(ids[1])]}}}) == ["beta"]
    assert names({"limit": 1, "offset": 1}) == ["beta"]
    # An unknown criterion that asks something is refused; an empty one asks nothing.
    assert_422(
        client.post("/api/agents/filter", json={"agents": {"colour": {"any_": ["red"]}}}),
        "body",
        "agents",
        "colour",
    )
    assert names({"agents": {"colour": {}}}) == ["alpha", "beta", "gamma"]


def test_a_deleted_queue_leaves_its_agents(client):
    queue = make_queue(client, "etl")
    agent_id = uuid.uuid4()
    poll(client, queue, agent_id)
    assert client.delete(f"/api/work_queues/{queue}").status_code == 204
    assert read(client, agent_id)["work_queue_id"] is None


def test_a_missing_agent_is_404(client):
    response = client.get(f"/api/agents/{uuid.uuid4()}")
    assert response.status_code == 404 and "Agent" in response.get_json()["detail"]


def test_concurrent_first_polls_make_one_agent(app, client):
    queue = make_queue(client, "etl")
    agent_id = uuid.uuid4()
    barrier = threading.Barrier(8)
    codes = []

    def worker():
        test_client = app.test_client()
        barrier.wait()
        codes.append(poll(test_client, queue, agent_id).status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 8
    assert Agent.select().count() == 1


def heartbeat(client, agent_id, **body):
    return client.post(f"/api/agents/{agent_id}/heartbeat", json=body)


def test_a_heartbeat_creates_an_unknown_agent_and_records_the_time(client):
    agent_id = uuid.uuid4()
    before = datetime.datetime.now(datetime.UTC)
    response = heartbeat(client, agent_id)
    assert response.status_code == 204 and response.data == b""
    agent = read(client, agent_id)
    assert agent["name"] == f"agent-{agent_id}"
    assert agent["work_queue_id"] is None and agent["last_activity_time"] is None
    assert datetime.datetime.fromisoformat(agent["last_heartbeat"]) >= before


def test_heartbeats_keep_the_agents_queue_and_name_unless_named(client):
    queue = make_queue(client, "etl")
    agent_id = uuid.uuid4()
    poll(client, queue, agent_id, agent_name="worker-1")
    polled = read(client, agent_id)
    assert polled["last_heartbeat"] is None
    assert heartbeat(client, agent_id, name=None).status_code == 204
    agent = read(client, agent_id)
    assert agent["name"] == "worker-1" and agent["work_queue_id"] == queue
    assert agent["last_activity_time"] == polled["last_activity_time"]
    first = agent["last_heartbeat"]
    assert heartbeat(client, agent_id, name="worker-2").status_code == 204
    agent = read(client, agent_id)
    assert agent["name"] == "worker-2" and agent["last_heartbeat"] > first
    assert Agent.select().count() == 1


def test_bad_heartbeats_are_4xx(client):
    heartbeat(client, uuid.uuid4(), name="taken")
    response = heartbeat(client, uuid.uuid4(), name="taken")
    assert response.status_code == 409 and "taken" in response.get_json()["detail"]
    assert_422(heartbeat(client, uuid.uuid4(), name=""), "body", "name")
    assert_422(heartbeat(client, uuid.uuid4(), name="x" * 201), "body", "name")
    assert_422(heartbeat(client, uuid.uuid4(), name=5), "body", "name")
    assert client.post("/api/agents/nope/heartbeat", json={}).status_code == 422
    assert Agent.select().count() == 1
