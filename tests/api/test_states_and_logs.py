"""/api/flow_run_states, /api/task_run_states and /api/logs."""

import uuid

import pytest
from peewee import OperationalError

from app.db import database
from app.models import Log
from app.schemas.actions import LogCreateSchema
from app.schemas.limits import TEXT_MAX_LENGTH
from app.services import logs as log_service
from tests.conftest import assert_422


def test_flow_run_states(client, flow_run):
    states = client.get(f"/api/flow_run_states/?flow_run_id={flow_run['id']}").get_json()
    assert [s["id"] for s in states] == [flow_run["state_id"]]
    one = client.get(f"/api/flow_run_states/{flow_run['state_id']}").get_json()
    assert one == flow_run["state"]
    assert client.get(f"/api/flow_run_states/?flow_run_id={uuid.uuid4()}").get_json() == []
    assert client.get(f"/api/flow_run_states/{uuid.uuid4()}").status_code == 404
    assert_422(client.get("/api/flow_run_states/"), "query", "flow_run_id")
    assert_422(client.get("/api/flow_run_states/?flow_run_id=bad"), "query", "flow_run_id")


def test_task_run_states(client, flow_run):
    task = client.post(
        "/api/task_runs/", json={"flow_run_id": flow_run["id"], "task_key": "k", "dynamic_key": "0"}
    ).get_json()
    states = client.get(f"/api/task_run_states/?task_run_id={task['id']}").get_json()
    assert [s["id"] for s in states] == [task["state_id"]]
    assert client.get(f"/api/task_run_states/{task['state_id']}").get_json() == task["state"]
    assert client.get(f"/api/task_run_states/{uuid.uuid4()}").status_code == 404


def log(flow_run, level=20, message="hello", timestamp="2030-01-01T00:00:00Z", **extra):
    return {
        "name": "orion.flow_runs",
        "level": level,
        "message": message,
        "timestamp": timestamp,
        "flow_run_id": flow_run["id"],
        **extra,
    }


def test_logs_batch_create_and_filter(client, flow_run):
    task_id = str(uuid.uuid4())
    batch = [
        log(
            flow_run,
            level=10 * (i % 5),
            message=f"m{i}",
            timestamp=f"2030-01-01T00:00:{i:02d}Z",
            task_run_id=task_id if i % 2 else None,
        )
        for i in range(20)
    ]
    response = client.post("/api/logs/", json=batch)
    assert response.status_code == 201
    logs = client.post("/api/logs/filter", json={}).get_json()
    assert [entry["message"] for entry in logs] == [f"m{i}" for i in range(20)]
    body = {
        "logs": {"level": {"ge_": 30}, "task_run_id": {"any_": [task_id]}},
        "sort": "TIMESTAMP_DESC",
    }
    filtered = client.post("/api/logs/filter", json=body).get_json()
    assert [entry["message"] for entry in filtered] == ["m19", "m13", "m9", "m3"]
    body = {"logs": {"timestamp": {"after_": "2030-01-01T00:00:18Z"}}}
    assert len(client.post("/api/logs/filter", json=body).get_json()) == 2


def test_logs_reject_bad_records(client, flow_run):
    assert_422(client.post("/api/logs/", json=[log(flow_run, level="loud")]), "body", 0, "level")
    assert_422(client.post("/api/logs/", json=[{"message": "m"}]), "body", 0)
    assert_422(client.post("/api/logs/", json={"not": "a list"}), "body")
    body = {"logs": {"level": {"gt_": 1}}}
    assert_422(client.post("/api/logs/filter", json=body), "body", "logs")


def count_logs(flow_run):
    return Log.select().where(Log.flow_run_id == flow_run["id"]).count()


def test_a_batch_of_any_size_the_body_limit_allows_is_stored_whole(client, flow_run):
    """Prefect's clients bound a batch in bytes (4 MB by default), not in records: 5,000
    records (more rows than one statement can carry on SQLite) are all stored."""
    batch = [log(flow_run, message=f"m{i}") for i in range(5000)]
    assert client.post("/api/logs/", json=batch).status_code == 201
    assert count_logs(flow_run) == 5000


def test_a_batch_is_stored_all_or_none(client, flow_run, monkeypatch):
    """Its statements share one transaction: when the third fails, the first two are undone."""
    real_execute_sql = database.obj.execute_sql
    inserts = []

    def failing_third_insert(sql, params=None, *args, **kwargs):
        if sql.startswith("INSERT") and 'INTO "log"' in sql:
            inserts.append(len(params))
            if len(inserts) == 3:
                raise OperationalError("disk I/O error")
        return real_execute_sql(sql, params, *args, **kwargs)

    monkeypatch.setattr(database.obj, "execute_sql", failing_third_insert)
    records = [log(flow_run, message=f"m{i}") for i in range(2500)]
    loaded = LogCreateSchema(many=True).load(records)
    with pytest.raises(OperationalError):
        log_service.create_logs(loaded)
    assert inserts == [9000, 9000, 4500]  # 9 parameters a row
    assert count_logs(flow_run) == 0


def test_a_nul_in_a_log_message_is_replaced_not_the_batch_refused(client, flow_run):
    """A Prefect client drops a log batch the server refuses, every line of it; a message
    with a NUL (binary data decoded into a log line) would have cost all its neighbours."""
    batch = [log(flow_run, message=f"line {i}") for i in range(50)]
    batch.append(log(flow_run, message="raw \x00\x00 bytes"))
    assert client.post("/api/logs/", json=batch).status_code == 201
    stored = client.post(
        "/api/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}}
    ).get_json()
    assert len(stored) == 51
    assert "raw \ufffd\ufffd bytes" in [record["message"] for record in stored]
    # Only the message: a NUL anywhere else still refuses the batch, storing nothing.
    refused = client.post(
        "/api/logs/", json=[log(flow_run, message="fine"), log(flow_run, name="a\x00b")]
    )
    assert refused.status_code == 422
    assert "NUL" in refused.get_json()["exception_detail"][0]["msg"]
    assert client.post("/api/logs/filter", json={}).get_json() == stored


def test_log_records_with_client_ids_are_stored_once(client, flow_run):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [
        {
            "id": ids[i],
            "name": "n",
            "level": 20,
            "message": f"line {i}",
            "timestamp": "2030-01-01T00:00:00Z",
            "flow_run_id": flow_run["id"],
        }
        for i in range(3)
    ]
    assert client.post("/api/logs/", json=batch).status_code == 201
    # A retried batch, plus one new record and one without an id.
    again = batch + [
        dict(batch[0], id=str(uuid.uuid4()), message="line 3"),
        {k: v for k, v in batch[0].items() if k != "id"},
    ]
    assert client.post("/api/logs/", json=again).status_code == 201
    logs = client.post("/api/logs/filter", json={"sort": "TIMESTAMP_ASC"}).get_json()
    assert len(logs) == 5 == Log.select().count()
    assert {log["id"] for log in logs} >= set(ids)
    assert sorted(log["message"] for log in logs) == [
        "line 0",
        "line 0",
        "line 1",
        "line 2",
        "line 3",
    ]
    response = client.post("/api/logs/", json=[dict(batch[0], id="not-a-uuid")])
    assert response.status_code == 422


def test_a_state_message_past_the_text_bound_is_cut_not_refused(client, flow_run):
    """A state's message is the client's exception, which may be any length: refusing it
    would refuse the transition (a Prefect task run would crash instead of failing, and lose
    its retries). Past ``TEXT_MAX_LENGTH`` characters it is stored cut, saying so."""
    run_url = f"/api/flow_runs/{flow_run['id']}"
    started = client.post(f"{run_url}/set_state", json={"state": {"type": "RUNNING"}})
    assert started.status_code == 201
    whole = "ValueError: " + "é" * (TEXT_MAX_LENGTH - 12)
    running = {"type": "RUNNING", "message": whole}
    response = client.post(f"{run_url}/set_state", json={"state": running, "force": True})
    assert response.status_code == 201, response.get_json()
    assert client.get(run_url).get_json()["state"]["message"] == whole  # the bound: whole

    longer = "ValueError: " + "x" * 2_000_000
    response = client.post(
        f"{run_url}/set_state", json={"state": {"type": "FAILED", "message": longer}}
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "ACCEPT"
    stored = client.get(run_url).get_json()["state"]["message"]
    assert len(stored) == TEXT_MAX_LENGTH
    assert stored.startswith("ValueError: xxx")
    assert stored.endswith(" [cut by the server: 2,000,012 characters in all]")

    assert_422(
        client.post(f"{run_url}/set_state", json={"state": {"type": "FAILED", "message": 7}}),
        "body",
        "state",
    )


def test_a_failed_task_run_with_a_long_message_still_gets_its_retry(client, flow_run):
    task_run = client.post(
        "/api/task_runs/",
        json={
            "flow_run_id": flow_run["id"],
            "task_key": "big",
            "dynamic_key": "0",
            "empirical_policy": {"retries": 1, "retry_delay": 0},
        },
    ).get_json()
    url = f"/api/task_runs/{task_run['id']}/set_state"
    client.post(f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    assert client.post(url, json={"state": {"type": "RUNNING"}}).get_json()["status"] == "ACCEPT"
    answer = client.post(
        url, json={"state": {"type": "FAILED", "message": "RuntimeError: " + "m" * 3_000_000}}
    ).get_json()
    assert answer["status"] == "REJECT", answer
    assert answer["state"]["name"] == "AwaitingRetry"
    assert len(answer["state"]["message"]) == TEXT_MAX_LENGTH


def test_the_openapi_document_says_state_messages_are_cut(client):
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    message = schemas["StateCreate"]["properties"]["message"]
    assert "maxLength" not in message
    assert "cut" in message["description"]
