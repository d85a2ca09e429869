"""Every response dumper's output loads cleanly with the schema that documents it."""

from app.schemas.core import (
    FlowRunSchema,
    FlowSchema,
    LogSchema,
    TaskRunSchema,
    WorkQueueSchema,
    WorkQueueStatusSchema,
)
from app.schemas.states import StateSchema


def test_dumpers_match_documented_schemas(client, flow, flow_run):
    FlowSchema().load(flow)
    FlowRunSchema().load(client.get(f"/api/flow_runs/{flow_run['id']}").get_json())
    FlowRunSchema(many=True).load(client.post("/api/flow_runs/filter", json={}).get_json())
    task = client.post(
        "/api/task_runs/", json={"flow_run_id": flow_run["id"], "task_key": "k", "dynamic_key": "0"}
    ).get_json()
    TaskRunSchema().load(task)
    TaskRunSchema(many=True).load(client.post("/api/task_runs/filter", json={}).get_json())
    StateSchema().load(client.get(f"/api/flow_run_states/{flow_run['state_id']}").get_json())
    client.post(
        "/api/logs/",
        json=[
            {
                "name": "n",
                "level": 20,
                "message": "m",
                "timestamp": "2030-01-01T00:00:00Z",
                "flow_run_id": flow_run["id"],
            }
        ],
    )
    LogSchema(many=True).load(client.post("/api/logs/filter", json={}).get_json())


def test_every_documented_field_is_present(client, flow_run):
    run = client.get(f"/api/flow_runs/{flow_run['id']}").get_json()
    assert set(run) == set(FlowRunSchema().fields)
    assert set(run["state"]) == set(StateSchema().fields)


def test_work_queue_responses_match_their_schemas(client):
    queue = client.post(
        "/api/work_queues/", json={"name": "q", "filter": {"tags": ["a"], "deployment_ids": None}}
    ).get_json()
    client.post(f"/api/work_queues/{queue['id']}/get_runs", json={})
    read = client.get(f"/api/work_queues/{queue['id']}").get_json()
    assert set(read) == set(WorkQueueSchema().fields)
    WorkQueueSchema().load(read)
    WorkQueueSchema(many=True).load(client.post("/api/work_queues/filter", json={}).get_json())
    WorkQueueStatusSchema().load(client.get(f"/api/work_queues/{queue['id']}/status").get_json())
