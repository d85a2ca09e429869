"""POST /api/flow_runs/{id}/heartbeat: last_heartbeat, lease renewal, 404."""

import datetime
import uuid

from app.models import ConcurrencySlot, FlowRun, utcnow


def running_task_with_tag(client, flow_run, tag, dynamic_key="0"):
    body = client.post(
        "/api/task_runs/create_and_set_state",
        json={
            "flow_run_id": flow_run["id"],
            "task_key": "t",
            "dynamic_key": dynamic_key,
            "tags": [tag],
            "proposed_state": {"type": "RUNNING"},
        },
    ).get_json()
    assert body["orchestration_result"]["status"] == "ACCEPT", body
    return body["task_run"]["id"]


def test_heartbeat_records_the_time(client, flow_run):
    assert client.get(f"/api/flow_runs/{flow_run['id']}").get_json()["last_heartbeat"] is None
    before = utcnow()
    response = client.post(f"/api/flow_runs/{flow_run['id']}/heartbeat")
    assert response.status_code == 204 and response.data == b""
    seen = client.get(f"/api/flow_runs/{flow_run['id']}").get_json()["last_heartbeat"]
    assert datetime.datetime.fromisoformat(seen) >= before
    assert FlowRun.get_by_id(flow_run["id"]).last_heartbeat >= before


def test_heartbeat_renews_unexpired_leases_of_its_task_runs_only(app, client, flow, flow_run):
    other = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
    for run in (flow_run, other):
        client.post(f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    client.post("/api/concurrency_limits/", json={"tag": "db", "concurrency_limit": 10})
    mine = running_task_with_tag(client, flow_run, "db")
    lapsed = running_task_with_tag(client, flow_run, "db", "1")
    theirs = running_task_with_tag(client, other, "db")
    soon = utcnow() + datetime.timedelta(seconds=5)
    past = utcnow() - datetime.timedelta(seconds=5)
    ConcurrencySlot.update(expires=soon).execute()
    ConcurrencySlot.update(expires=past).where(ConcurrencySlot.task_run == lapsed).execute()

    assert client.post(f"/api/flow_runs/{flow_run['id']}/heartbeat").status_code == 204

    expires = {str(s.task_run_id): s.expires for s in ConcurrencySlot.select()}
    lease = datetime.timedelta(seconds=app.config["TASK_CONCURRENCY_LEASE_SECONDS"])
    assert expires[mine] > utcnow() + lease - datetime.timedelta(seconds=30)
    assert expires[lapsed] == past
    assert expires[theirs] == soon
    active = client.get("/api/concurrency_limits/tag/db").get_json()["active_slots"]
    assert sorted(active) == sorted([mine, theirs])


def test_heartbeat_of_a_missing_run_is_404(client):
    response = client.post(f"/api/flow_runs/{uuid.uuid4()}/heartbeat")
    assert response.status_code == 404 and "Flow run" in response.get_json()["detail"]
    assert client.post("/api/flow_runs/nope/heartbeat").status_code == 422


def test_heartbeat_is_documented(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/flow_runs/{flow_run_id}/heartbeat"]["post"]
    assert "Orion extension" in operation["summary"] and "204" in operation["responses"]
    run_fields = spec["components"]["schemas"]["FlowRun"]["properties"]
    assert "last_heartbeat" in run_fields
