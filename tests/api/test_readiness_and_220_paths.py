"""``/api/ready``, and Prefect 2.20's ``/api/version``, ``/api/csrf-token`` and
``/api/flow_runs/lateness``, on both backends."""

import datetime

import pytest

from app import migrations
from app.db import database
from app.models import FlowRun, utcnow
from tests.support import REDIS_URL, free_port


def test_ready_checks_the_database_migrations_and_redis(client, make_app, redis_db):
    answer = client.get("/api/ready")
    assert answer.status_code == 200
    assert answer.get_json() == {"message": "OK", "checks": {"database": "ok", "migrations": "ok"}}

    with_redis = make_app(REDIS_URL=REDIS_URL).test_client().get("/api/ready")
    assert with_redis.status_code == 200 and with_redis.get_json()["checks"]["redis"] == "ok"

    port = free_port()
    without = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0").test_client().get("/api/ready")
    assert without.status_code == 503
    assert without.get_json()["message"] == "Not ready: redis unavailable."
    assert str(port) not in without.get_data(as_text=True)  # the log has the details


def test_ready_is_503_while_a_migration_is_pending(client):
    applied = [name for name, done in migrations.status(database) if done]
    with database.connection_context():
        migrations.downgrade(database, applied[-2])
    try:
        answer = client.get("/api/ready")
        assert answer.status_code == 503
        assert answer.get_json()["checks"]["migrations"] == "1 pending"
    finally:
        with database.connection_context():
            migrations.upgrade(database)
    assert client.get("/api/ready").status_code == 200


def test_version_and_csrf_token_answer_as_prefect_220_does(client):
    assert client.get("/api/version").get_json() == client.get("/api/admin/version").get_json()
    answer = client.get("/api/csrf-token?client=ui")
    assert answer.status_code == 422
    assert answer.get_json() == {"detail": "CSRF protection is disabled."}


def run_with(client, flow, expected, start=None, state="SCHEDULED"):
    body = {"flow_id": flow["id"], "state": {"type": state}}
    run = client.post("/api/flow_runs/", json=body).get_json()
    # No API sets these times: they are what the run's life would have written.
    FlowRun.update(expected_start_time=expected, start_time=start).where(
        FlowRun.id == run["id"]
    ).execute()
    return run


def test_lateness_is_the_mean_delay_of_the_matching_runs(client, flow):
    assert client.post("/api/flow_runs/lateness", json={}).get_json() is None
    now = utcnow()
    minutes = datetime.timedelta(minutes=1)
    run_with(client, flow, now - 10 * minutes, start=now - 8 * minutes, state="RUNNING")  # 120 s
    run_with(client, flow, now - 1 * minutes)  # due, not started: about 60 s so far
    run_with(client, flow, now + 5 * minutes)  # not due: 0
    run_with(client, flow, now - 30 * minutes, state="COMPLETED")  # finished, never started: 0
    late = client.post("/api/flow_runs/lateness", json={}).get_json()
    assert (120 + 60) / 4 <= late <= (120 + 61 + 5) / 4
    only_running = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}
    assert client.post("/api/flow_runs/lateness", json=only_running).get_json() == pytest.approx(
        120, abs=1
    )
    bad = client.post("/api/flow_runs/lateness", json={"flow_runs": {"state": "x"}})
    assert bad.status_code == 422
