"""Several schedules per deployment (Prefect 2.20): ``schedules[]`` next to 0.8.4's single
``schedule``/``is_schedule_active``, ``/deployments/{id}/schedules``, pause and resume,
``enforce_parameter_schema`` and ``get_scheduled_flow_runs``."""

import datetime
import uuid

import pytest

from tests.conftest import assert_422

UTC = datetime.UTC
HOURLY = {"interval": 3600.0, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": "UTC"}
AT_20 = {"cron": "20 * * * *", "timezone": "UTC", "day_or": True}
AT_40 = {"cron": "40 * * * *", "timezone": "UTC", "day_or": True}


def create(client, flow, **fields):
    response = client.post(
        "/api/deployments/",
        json={"name": f"d-{uuid.uuid4().hex[:8]}", "flow_id": flow["id"], **fields},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def read(client, deployment):
    return client.get(f"/api/deployments/{deployment['id']}").get_json()


def future_minutes(client, deployment):
    """The minutes past the hour of the deployment's auto-scheduled runs still Scheduled."""
    runs = client.post(
        "/api/flow_runs/filter",
        json={
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        },
    ).get_json()
    return {datetime.datetime.fromisoformat(r["expected_start_time"]).minute for r in runs}


def test_two_schedules_round_trip_and_both_schedule_runs(client, flow):
    deployment = create(
        client,
        flow,
        schedules=[
            {"schedule": AT_20, "active": True, "max_active_runs": 2, "catchup": True},
            {"schedule": AT_40, "max_scheduled_runs": 5},
        ],
    )
    schedules = deployment["schedules"]
    assert [s["schedule"] for s in schedules] == [AT_20, AT_40]
    assert [(s["active"], s["max_active_runs"], s["catchup"]) for s in schedules] == [
        (True, 2, True),
        (True, None, False),
    ]
    assert schedules[1]["max_scheduled_runs"] == 5
    assert {s["deployment_id"] for s in schedules} == {deployment["id"]}
    # 0.8.4's view: the first schedule, and "not paused".
    assert deployment["schedule"] == AT_20 and deployment["is_schedule_active"] is True
    assert deployment["paused"] is False and deployment["enforce_parameter_schema"] is False
    assert read(client, deployment)["schedules"] == schedules
    listed = client.get(f"/api/deployments/{deployment['id']}/schedules").get_json()
    assert listed == schedules
    assert future_minutes(client, deployment) == {20, 40}


def test_a_legacy_schedule_replaces_the_schedules_with_one(client, flow):
    deployment = create(client, flow, schedule=HOURLY, is_schedule_active=False)
    # As Prefect 2.20: is_schedule_active False pauses the deployment and its schedule.
    assert deployment["paused"] is True and deployment["is_schedule_active"] is False
    assert [(s["schedule"], s["active"]) for s in deployment["schedules"]] == [(HOURLY, False)]
    path = f"/api/deployments/{deployment['id']}"
    assert (
        client.patch(path, json={"schedule": AT_20, "is_schedule_active": True}).status_code == 204
    )
    after = read(client, deployment)
    assert [(s["schedule"], s["active"]) for s in after["schedules"]] == [(AT_20, True)]
    assert after["paused"] is False and after["schedule"] == AT_20
    assert future_minutes(client, deployment) == {20}
    assert client.patch(path, json={"schedule": None}).status_code == 204
    assert (
        read(client, deployment)["schedules"] == [] and future_minutes(client, deployment) == set()
    )


def test_legacy_fields_on_a_deployment_with_several_schedules_are_422(client, flow):
    deployment = create(client, flow, schedules=[{"schedule": AT_20}, {"schedule": AT_40}])
    path = f"/api/deployments/{deployment['id']}"
    body = assert_422(client.patch(path, json={"schedule": HOURLY}), "body", "schedule")
    assert "has 2 schedules" in str(body)
    assert_422(client.patch(path, json={"is_schedule_active": False}), "body", "is_schedule_active")
    # schedules[] replaces them; paused is its own field.
    assert client.patch(path, json={"schedules": [{"schedule": HOURLY}]}).status_code == 204
    assert [s["schedule"] for s in read(client, deployment)["schedules"]] == [HOURLY]


def test_saving_the_same_schedules_again_keeps_the_runs(client, flow):
    deployment = create(client, flow, schedule=HOURLY)
    before = client.get(f"/api/deployments/{deployment['id']}/schedules").get_json()
    ids = {
        r["id"]
        for r in client.post(
            "/api/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}}
        ).get_json()
    }
    path = f"/api/deployments/{deployment['id']}"
    assert client.patch(path, json={"schedule": HOURLY}).status_code == 204
    assert client.get(f"{path}/schedules").get_json() == before
    again = client.post(
        "/api/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}}
    ).get_json()
    assert {r["id"] for r in again} == ids


def test_schedules_endpoints_add_update_and_delete(client, flow):
    deployment = create(client, flow, schedules=[{"schedule": AT_20}])
    path = f"/api/deployments/{deployment['id']}/schedules"
    added = client.post(path, json=[{"schedule": AT_40, "active": False}])
    assert added.status_code == 201, added.get_json()
    (new,) = added.get_json()
    assert (new["schedule"], new["active"]) == (AT_40, False)
    assert future_minutes(client, deployment) == {20}

    assert client.patch(f"{path}/{new['id']}", json={"active": True}).status_code == 204
    assert future_minutes(client, deployment) == {20, 40}
    assert client.patch(f"{path}/{new['id']}", json={"active": None}).status_code == 204
    assert client.get(path).get_json()[1]["active"] is True

    first = deployment["schedules"][0]["id"]
    assert client.delete(f"{path}/{first}").status_code == 204
    assert [s["id"] for s in client.get(path).get_json()] == [new["id"]]
    # Deleting a schedule removes the future runs it gave.
    assert future_minutes(client, deployment) == {40}

    assert client.patch(f"{path}/{new['id']}", json={"active": False}).status_code == 204
    assert future_minutes(client, deployment) == set()


def test_schedules_endpoints_bad_input(client, flow):
    deployment = create(client, flow, schedules=[{"schedule": AT_20}])
    path = f"/api/deployments/{deployment['id']}/schedules"
    missing = uuid.uuid4()
    response = client.get(f"/api/deployments/{missing}/schedules")
    assert response.status_code == 404 and "Deployment" in response.get_json()["detail"]
    response = client.patch(f"{path}/{missing}", json={"active": False})
    assert response.status_code == 404
    assert f"Schedule {missing}" in response.get_json()["detail"]
    assert client.delete(f"{path}/{missing}").status_code == 404
    other = create(client, flow, schedules=[{"schedule": AT_40}])
    # A schedule of another deployment is not this one's.
    assert client.delete(f"{path}/{other['schedules'][0]['id']}").status_code == 404
    assert_422(client.post(path, json={"schedule": AT_40}), "body")
    assert_422(client.post(path, json=[{"schedule": {"cron": "not cron"}}]), "body", 0, "schedule")
    assert_422(client.post(path, json=[{"active": True}]), "body", 0, "schedule")
    assert_422(client.post(path, json=[{"schedule": AT_40, "max_active_runs": 0}]), "body", 0)
    assert_422(
        client.patch(f"{path}/{deployment['schedules'][0]['id']}", json={"active": "often"}),
        "body",
        "active",
    )
    assert client.get(f"{path}/not-a-uuid").status_code in (404, 405)


@pytest.mark.parametrize(
    "pause,resume",
    [("pause_deployment", "resume_deployment"), ("set_schedule_inactive", "set_schedule_active")],
)
def test_pause_and_resume(client, flow, pause, resume):
    deployment = create(client, flow, schedule=HOURLY)
    path = f"/api/deployments/{deployment['id']}"
    assert client.post(f"{path}/{pause}").status_code == 204
    paused = read(client, deployment)
    assert (paused["paused"], paused["is_schedule_active"]) == (True, False)
    # Its one schedule follows, so a 0.8.4 client sees one consistent flag.
    assert paused["schedules"][0]["active"] is False
    assert future_minutes(client, deployment) == set()
    assert client.post(f"{path}/{resume}").status_code == 204
    resumed = read(client, deployment)
    assert (resumed["paused"], resumed["schedules"][0]["active"]) == (False, True)
    assert future_minutes(client, deployment) == {0}
    assert client.post(f"/api/deployments/{uuid.uuid4()}/{pause}").status_code == 404


def test_pausing_a_deployment_with_several_schedules_keeps_their_flags(client, flow):
    deployment = create(
        client, flow, schedules=[{"schedule": AT_20}, {"schedule": AT_40, "active": False}]
    )
    path = f"/api/deployments/{deployment['id']}"
    assert client.post(f"{path}/pause_deployment").status_code == 204
    assert [s["active"] for s in read(client, deployment)["schedules"]] == [True, False]
    assert future_minutes(client, deployment) == set()
    assert client.post(f"{path}/resume_deployment").status_code == 204
    assert future_minutes(client, deployment) == {20}
    assert client.patch(path, json={"paused": True}).status_code == 204
    assert future_minutes(client, deployment) == set()
    assert (
        client.post(
            "/api/deployments/filter", json={"deployments": {"paused": {"eq_": True}}}
        ).get_json()[0]["id"]
        == deployment["id"]
    )


SCHEMA = {
    "title": "Parameters",
    "type": "object",
    "properties": {
        "n": {"title": "n", "type": "integer"},
        "name": {"title": "name", "type": "string"},
        "when": {"$ref": "#/definitions/When"},
    },
    "required": ["n"],
    "definitions": {"When": {"type": "string", "enum": ["now", "later"]}},
}


def test_enforce_parameter_schema_checks_runs_parameters(client, flow):
    deployment = create(
        client,
        flow,
        enforce_parameter_schema=True,
        parameter_openapi_schema=SCHEMA,
        parameters={"name": "x"},
    )
    assert deployment["enforce_parameter_schema"] is True
    path = f"/api/deployments/{deployment['id']}/create_flow_run"
    ok = client.post(path, json={"parameters": {"n": 1, "when": "now"}})
    assert ok.status_code == 201, ok.get_json()
    body = assert_422(
        client.post(path, json={"parameters": {"n": "one"}}), "body", "parameters", "n"
    )
    message = body["exception_detail"][0]["msg"]
    assert "'n'" in message and "integer" in message and "one" not in message
    body = assert_422(client.post(path, json={"parameters": {}}), "body", "parameters", "n")
    assert "'n' is required" in str(body)
    body = assert_422(
        client.post(path, json={"parameters": {"n": 1, "when": "tomorrow"}}),
        "body",
        "parameters",
        "when",
    )
    # The body's enforce_parameter_schema wins over the deployment's (Prefect 2.20).
    loose = client.post(path, json={"parameters": {"n": "one"}, "enforce_parameter_schema": False})
    assert loose.status_code == 201
    # Without the setting nothing is checked.
    assert (
        client.patch(
            f"/api/deployments/{deployment['id']}", json={"enforce_parameter_schema": False}
        ).status_code
        == 204
    )
    assert client.post(path, json={"parameters": {"n": "one"}}).status_code == 201


def test_enforcing_without_a_schema_is_a_conflict(client, flow):
    deployment = create(client, flow, enforce_parameter_schema=True)
    response = client.post(f"/api/deployments/{deployment['id']}/create_flow_run", json={})
    assert response.status_code == 409
    assert "parameter_openapi_schema" in response.get_json()["detail"]


def test_get_scheduled_flow_runs_hands_out_due_runs_earliest_first(client, flow):
    first = create(client, flow)
    second = create(client, flow)
    other = create(client, flow)
    now = datetime.datetime.now(UTC)

    def run_at(deployment, minutes):
        when = (now + datetime.timedelta(minutes=minutes)).isoformat()
        response = client.post(
            f"/api/deployments/{deployment['id']}/create_flow_run",
            json={"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": when}}},
        )
        assert response.status_code == 201
        return response.get_json()["id"]

    late, soon, later = run_at(first, -5), run_at(second, 1), run_at(first, 60)
    run_at(other, -5)
    url = "/api/deployments/get_scheduled_flow_runs"
    ids = [first["id"], second["id"]]
    due = client.post(url, json={"deployment_ids": ids}).get_json()
    assert [r["id"] for r in due] == [late]
    before = (now + datetime.timedelta(minutes=2)).isoformat()
    due = client.post(url, json={"deployment_ids": ids, "scheduled_before": before}).get_json()
    assert [r["id"] for r in due] == [late, soon]
    assert due[0]["state"]["type"] == "SCHEDULED"
    limited = client.post(url, json={"deployment_ids": ids, "scheduled_before": before, "limit": 1})
    assert [r["id"] for r in limited.get_json()] == [late]
    assert later not in {r["id"] for r in due}
    assert client.post(url, json={"deployment_ids": []}).get_json() == []
    assert_422(client.post(url, json={}), "body", "deployment_ids")
    assert_422(client.post(url, json={"deployment_ids": ["x"]}), "body", "deployment_ids")
    assert_422(client.post(url, json={"deployment_ids": ids, "limit": -1}), "body", "limit")


def test_a_runners_poll_makes_its_deployments_ready(client, flow):
    """Prefect 2.20's status: READY while polled within a minute, the poll's time in
    last_polled; a listing by Prefect's UI (x-prefect-ui) is no poll."""
    polled, idle = create(client, flow), create(client, flow)
    assert (polled["status"], polled["last_polled"]) == ("NOT_READY", None)
    url = "/api/deployments/get_scheduled_flow_runs"
    ui = client.post(url, json={"deployment_ids": [idle["id"]]}, headers={"x-prefect-ui": "true"})
    assert ui.status_code == 200
    before = datetime.datetime.now(UTC)
    assert client.post(url, json={"deployment_ids": [polled["id"]]}).status_code == 200
    now = read(client, polled)
    assert now["status"] == "READY"
    assert (
        before <= datetime.datetime.fromisoformat(now["last_polled"]) <= datetime.datetime.now(UTC)
    )
    assert (read(client, idle)["status"], read(client, idle)["last_polled"]) == ("NOT_READY", None)
    listed = client.post("/api/deployments/filter", json={}).get_json()
    assert {d["id"]: d["status"] for d in listed} == {
        polled["id"]: "READY",
        idle["id"]: "NOT_READY",
    }


def test_a_deployment_polled_long_ago_is_not_ready(client, flow):
    from app.models import Deployment, utcnow

    deployment = create(client, flow)
    client.post(
        "/api/deployments/get_scheduled_flow_runs", json={"deployment_ids": [deployment["id"]]}
    )
    long_ago = utcnow() - datetime.timedelta(seconds=61)
    Deployment.update(last_polled=long_ago).where(Deployment.id == deployment["id"]).execute()
    assert read(client, deployment)["status"] == "NOT_READY"
    assert datetime.datetime.fromisoformat(read(client, deployment)["last_polled"]) == long_ago


def test_an_enforcing_deployments_own_parameters_must_match_its_schema(client, flow):
    body = {"enforce_parameter_schema": True, "parameter_openapi_schema": SCHEMA}
    name = f"d-{uuid.uuid4().hex[:8]}"
    bad = client.post(
        "/api/deployments/",
        json={"name": name, "flow_id": flow["id"], "parameters": {"n": "one"}, **body},
    )
    assert_422(bad, "body", "parameters", "n")
    assert client.get(f"/api/deployments/name/{flow['name']}/{name}").status_code == 404
    # Required parameters may be left to the runs.
    deployment = create(client, flow, parameters={"name": "x"}, **body)
    path = f"/api/deployments/{deployment['id']}"
    assert_422(client.patch(path, json={"parameters": {"when": "never"}}), "body", "parameters")
    assert read(client, deployment)["parameters"] == {"name": "x"}
    assert client.patch(path, json={"parameters": {"n": 3}}).status_code == 204


def test_get_scheduled_flow_runs_skips_runs_another_poller_holds(client, flow, backend):
    """Runs are picked FOR UPDATE SKIP LOCKED, as agents' get_runs picks them: a runner
    polling while another holds a run gets the others, never the same one."""
    if backend != "postgres":
        pytest.skip("row locks exist on PostgreSQL only")
    import psycopg2

    from app.services import deployments
    from tests.support import POSTGRES_URL

    deployment = create(client, flow)
    when = (datetime.datetime.now(UTC) - datetime.timedelta(minutes=1)).isoformat()
    ids = [
        client.post(
            f"/api/deployments/{deployment['id']}/create_flow_run",
            json={"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": when}}},
        ).get_json()["id"]
        for _ in range(2)
    ]
    other = psycopg2.connect(POSTGRES_URL)
    try:
        with other.cursor() as cur:
            cur.execute("SELECT id FROM flow_run WHERE id = %s FOR UPDATE", (ids[0],))
            handed = deployments.get_scheduled_flow_runs([deployment["id"]])
            assert [str(r.id) for r in handed] == [ids[1]]
    finally:
        other.rollback()
        other.close()
