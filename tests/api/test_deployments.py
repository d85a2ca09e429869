"""/api/deployments: upsert, reads, updates that reschedule, filters, runs, backfills."""

import datetime
import uuid

import pytest

from tests.conftest import assert_422

UTC = datetime.UTC
HOURLY = {"interval": 3600, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": "UTC"}


def parse(value):
    return datetime.datetime.fromisoformat(value)


@pytest.fixture
def deployment(client, flow):
    response = client.post(
        "/api/deployments/",
        json={
            "name": "nightly",
            "flow_id": flow["id"],
            "schedule": HOURLY,
            "parameters": {"x": 1, "y": 2},
            "tags": ["prod"],
            "work_queue_name": "etl-queue",
            "entrypoint": "flows/etl.py:etl",
            "path": "s3://bucket/flows",
            "parameter_openapi_schema": {
                "type": "object",
                "properties": {"x": {"type": "integer"}},
            },
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def runs_of(client, deployment_id, **flow_runs_filter):
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    if flow_runs_filter:
        body["flow_runs"] = flow_runs_filter
    response = client.post("/api/flow_runs/filter", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_create_returns_every_field_and_schedules_first_runs(client, flow, deployment):
    assert deployment["name"] == "nightly" and deployment["flow_id"] == flow["id"]
    assert deployment["schedule"] == {**HOURLY, "interval": 3600.0}
    assert deployment["is_schedule_active"] is True
    assert deployment["entrypoint"] == "flows/etl.py:etl"
    assert deployment["path"] == "s3://bucket/flows"
    assert deployment["parameter_openapi_schema"]["properties"]["x"] == {"type": "integer"}
    assert deployment["infra_overrides"] == {} == deployment["job_variables"]
    # A queue named without a pool is the agents' pool's.
    assert deployment["work_pool_name"] == "default-agent-pool"
    runs = runs_of(client, deployment["id"])
    now = datetime.datetime.now(UTC)
    # At least 3 runs and one at least an hour ahead; hourly slots, all in the future.
    assert len(runs) >= 3
    assert parse(runs[-1]["next_scheduled_start_time"]) >= now + datetime.timedelta(minutes=59)
    for run in runs:
        when = parse(run["next_scheduled_start_time"])
        assert when > now - datetime.timedelta(seconds=5) and when.minute == 0
        assert run["state"]["type"] == "SCHEDULED" and run["state"]["name"] == "Scheduled"
        assert run["auto_scheduled"] is True
        assert run["tags"] == ["auto-scheduled", "prod"]
        assert run["parameters"] == {"x": 1, "y": 2}
        assert run["work_queue_name"] == "etl-queue"
        assert run["idempotency_key"] == f"scheduled {deployment['id']} {when.isoformat()}"
        assert run["expected_start_time"] == run["next_scheduled_start_time"]


def test_create_is_an_upsert_on_flow_and_name(client, flow, deployment):
    again = client.post(
        "/api/deployments/",
        json={"name": "nightly", "flow_id": flow["id"], "description": "updated"},
    )
    assert again.status_code == 200
    body = again.get_json()
    assert body["id"] == deployment["id"]
    assert body["description"] == "updated"
    # Fields not given keep their values.
    assert body["tags"] == ["prod"] and body["schedule"] == deployment["schedule"]
    other_flow = client.post("/api/flows/", json={"name": "other"}).get_json()
    same_name = client.post(
        "/api/deployments/", json={"name": "nightly", "flow_id": other_flow["id"]}
    )
    assert same_name.status_code == 201 and same_name.get_json()["id"] != deployment["id"]


def test_create_without_schedule_makes_no_runs(client, flow):
    body = client.post("/api/deployments/", json={"name": "adhoc", "flow_id": flow["id"]})
    assert body.status_code == 201
    created = body.get_json()
    assert created["schedule"] is None and created["parameters"] == {} and created["tags"] == []
    assert runs_of(client, created["id"]) == []


def test_create_for_a_missing_flow_is_404(client):
    response = client.post("/api/deployments/", json={"name": "x", "flow_id": str(uuid.uuid4())})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "extra, loc, message",
    [
        ({"schedule": {"interval": 0}}, ("body", "schedule"), "greater than 0"),
        ({"schedule": {"cron": "61 * * * *"}}, ("body", "schedule"), "Invalid cron"),
        (
            {"schedule": {"cron": "0 * * * *", "timezone": "Nowhere/Land"}},
            ("body", "schedule"),
            "Unknown timezone",
        ),
        ({"schedule": {"rrule": "FREQ=NEVER"}}, ("body", "schedule"), "Invalid rrule"),
        (
            {"schedule": {"cron": "* * * * *", "rrule": "FREQ=DAILY"}},
            ("body", "schedule"),
            "exactly one",
        ),
        ({"entrypoint": "etl"}, ("body", "entrypoint"), "path/to/file.py:flow_function"),
        ({"name": "a/b"}, ("body", "name"), "invalid characters"),
        ({"parameters": []}, ("body", "parameters"), None),
    ],
)
def test_create_rejects_bad_bodies(client, flow, extra, loc, message):
    body = assert_422(
        client.post("/api/deployments/", json={"name": "d", "flow_id": flow["id"], **extra}), *loc
    )
    if message:
        assert any(message in d["msg"] for d in body["exception_detail"]), body


def test_read_by_id_and_name(client, flow, deployment):
    assert client.get(f"/api/deployments/{deployment['id']}").get_json() == deployment
    by_name = client.get("/api/deployments/name/etl/nightly")
    assert by_name.status_code == 200 and by_name.get_json() == deployment
    assert client.get("/api/deployments/name/etl/other").status_code == 404
    assert client.get("/api/deployments/name/nope/nightly").status_code == 404
    assert client.get(f"/api/deployments/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/deployments/not-a-uuid").status_code == 422


def test_patch_of_the_schedule_replaces_future_runs(client, deployment):
    before = runs_of(client, deployment["id"])
    response = client.patch(
        f"/api/deployments/{deployment['id']}",
        json={"schedule": {"cron": "30 * * * *", "timezone": "Europe/Berlin"}},
    )
    assert response.status_code == 204
    after = runs_of(client, deployment["id"])
    assert len(after) >= 3
    assert {parse(r["next_scheduled_start_time"]).minute for r in after} == {30}
    assert not {r["id"] for r in before} & {r["id"] for r in after}


def test_patch_of_other_fields_keeps_the_runs(client, deployment):
    before = runs_of(client, deployment["id"])
    response = client.patch(
        f"/api/deployments/{deployment['id']}", json={"description": "d", "version": "2"}
    )
    assert response.status_code == 204
    assert runs_of(client, deployment["id"]) == before
    read = client.get(f"/api/deployments/{deployment['id']}").get_json()
    assert read["description"] == "d" and read["version"] == "2"


def test_patch_of_parameters_regenerates_runs_with_them(client, deployment):
    client.patch(f"/api/deployments/{deployment['id']}", json={"parameters": {"x": 9}})
    runs = runs_of(client, deployment["id"])
    assert runs and all(r["parameters"] == {"x": 9} for r in runs)


def test_patch_errors(client, deployment):
    assert (
        client.patch(f"/api/deployments/{uuid.uuid4()}", json={"description": "x"}).status_code
        == 404
    )
    assert_422(
        client.patch(f"/api/deployments/{deployment['id']}", json={"schedule": {"interval": -1}}),
        "body",
        "schedule",
    )
    assert_422(
        client.patch(f"/api/deployments/{deployment['id']}", json={"name": "x"}), "body", "name"
    )


def test_pause_deletes_future_auto_runs_only_and_resume_restores(client, flow, deployment):
    runs = runs_of(client, deployment["id"])
    cancelled = runs[0]
    client.post(
        f"/api/flow_runs/{cancelled['id']}/set_state",
        json={"state": {"type": "CANCELLED"}, "force": True},
    )
    manual = client.post(
        f"/api/deployments/{deployment['id']}/create_flow_run",
        json={
            "state": {
                "type": "SCHEDULED",
                "state_details": {"scheduled_time": "2099-01-01T00:00:00+00:00"},
            }
        },
    ).get_json()
    assert (
        client.post(f"/api/deployments/{deployment['id']}/set_schedule_inactive").status_code == 204
    )
    assert (
        client.get(f"/api/deployments/{deployment['id']}").get_json()["is_schedule_active"] is False
    )
    left = {r["id"] for r in runs_of(client, deployment["id"])}
    assert left == {cancelled["id"], manual["id"]}
    assert (
        client.post(f"/api/deployments/{deployment['id']}/set_schedule_active").status_code == 204
    )
    resumed = runs_of(client, deployment["id"], state={"name": {"any_": ["Scheduled"]}})
    # The cancelled slot is not recreated: its idempotency key is still taken.
    assert cancelled["next_scheduled_start_time"] not in {
        r["next_scheduled_start_time"] for r in resumed if r["auto_scheduled"]
    }
    assert len([r for r in resumed if r["auto_scheduled"]]) >= 3
    assert client.post(f"/api/deployments/{uuid.uuid4()}/set_schedule_active").status_code == 404


def test_delete_removes_future_scheduled_runs_and_keeps_others(client, deployment):
    runs = runs_of(client, deployment["id"])
    client.post(
        f"/api/flow_runs/{runs[0]['id']}/set_state",
        json={"state": {"type": "RUNNING"}, "force": True},
    )
    # A run that started and now waits to retry.
    client.post(
        f"/api/flow_runs/{runs[1]['id']}/set_state",
        json={"state": {"type": "RUNNING"}, "force": True},
    )
    client.post(
        f"/api/flow_runs/{runs[1]['id']}/set_state",
        json={
            "state": {
                "type": "SCHEDULED",
                "name": "AwaitingRetry",
                "state_details": {"scheduled_time": "2099-01-01T00:00:00Z"},
            },
            "force": True,
        },
    )
    assert client.delete(f"/api/deployments/{deployment['id']}").status_code == 204
    assert client.get(f"/api/deployments/{deployment['id']}").status_code == 404
    assert client.delete(f"/api/deployments/{deployment['id']}").status_code == 404
    for run in runs[:2]:
        kept = client.get(f"/api/flow_runs/{run['id']}").get_json()
        assert kept["deployment_id"] is None
    assert client.post("/api/flow_runs/count", json={}).get_json() == 2


def test_filter_and_count(client, flow, deployment):
    other_flow = client.post("/api/flows/", json={"name": "other"}).get_json()
    client.post(
        "/api/deployments/",
        json={
            "name": "b",
            "flow_id": other_flow["id"],
            "is_schedule_active": False,
            "tags": ["dev"],
        },
    )

    def names(body):
        return [d["name"] for d in client.post("/api/deployments/filter", json=body).get_json()]

    assert names({}) == ["b", "nightly"]
    assert names({"sort": "NAME_DESC", "limit": 1}) == ["nightly"]
    assert names({"deployments": {"tags": {"all_": ["prod"]}}}) == ["nightly"]
    assert names({"deployments": {"is_schedule_active": {"eq_": False}}}) == ["b"]
    assert names({"deployments": {"work_queue_name": {"any_": ["etl-queue"]}}}) == ["nightly"]
    assert names({"flows": {"name": {"any_": ["other"]}}}) == ["b"]
    assert names({"flow_runs": {"tags": {"all_": ["auto-scheduled"]}}}) == ["nightly"]
    assert client.post("/api/deployments/count", json={}).get_json() == 2
    assert (
        client.post(
            "/api/deployments/count", json={"deployments": {"name": {"like_": "NIGHT"}}}
        ).get_json()
        == 1
    )
    assert_422(
        client.post("/api/deployments/filter", json={"deployments": {"bogus": 1}}),
        "body",
        "deployments",
        "bogus",
    )
    # Flows by their deployments.
    flows = client.post(
        "/api/flows/filter", json={"deployments": {"name": {"any_": ["b"]}}}
    ).get_json()
    assert [f["name"] for f in flows] == ["other"]


def test_create_flow_run_merges_parameters_and_tags(client, deployment):
    response = client.post(
        f"/api/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"y": 3, "z": 4}, "tags": ["adhoc", "prod"], "name": "manual"},
    )
    assert response.status_code == 201, response.get_json()
    run = response.get_json()
    assert run["parameters"] == {"x": 1, "y": 3, "z": 4}
    assert run["tags"] == ["prod", "adhoc"]
    assert run["deployment_id"] == deployment["id"]
    assert run["flow_id"] == deployment["flow_id"]
    assert run["work_queue_name"] == "etl-queue"
    assert run["name"] == "manual" and run["state"]["type"] == "PENDING"
    assert run["auto_scheduled"] is False


def test_create_flow_run_scheduled_in_the_future_and_idempotent(client, deployment):
    url = f"/api/deployments/{deployment['id']}/create_flow_run"
    body = {
        "idempotency_key": "once",
        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "2030-05-01T10:00:00Z"}},
    }
    first = client.post(url, json=body)
    assert first.status_code == 201
    run = first.get_json()
    assert run["state"]["name"] == "Scheduled"
    assert run["next_scheduled_start_time"] == "2030-05-01T10:00:00+00:00"
    second = client.post(url, json=body)
    assert second.status_code == 200 and second.get_json()["id"] == run["id"]


def test_create_flow_run_errors(client, deployment):
    url = f"/api/deployments/{deployment['id']}/create_flow_run"
    assert (
        client.post(f"/api/deployments/{uuid.uuid4()}/create_flow_run", json={}).status_code == 404
    )
    assert_422(client.post(url, json={"state": {"type": "NOPE"}}), "body", "state", "type")
    assert_422(client.post(url, json={"parameters": "x"}), "body", "parameters")
    assert_422(client.post(url, json={"flow_id": deployment["flow_id"]}), "body", "flow_id")


def test_backfill_schedules_every_slot_of_a_past_range(client, deployment):
    url = f"/api/deployments/{deployment['id']}/schedule"
    body = {"start_time": "2025-06-01T00:00:00Z", "end_time": "2025-06-01T23:59:59Z"}
    preview = client.post(url, json={**body, "dry_run": True})
    assert preview.status_code == 200
    assert preview.get_json()["created"] == 24 and preview.get_json()["existing"] == 0
    assert len(preview.get_json()["scheduled_times"]) == 24
    assert (
        runs_of(client, deployment["id"], expected_start_time={"before_": "2025-12-31T00:00:00Z"})
        == []
    )
    done = client.post(url, json=body)
    assert done.status_code == 201
    assert done.get_json() | {"scheduled_times": None} == {
        "dry_run": False,
        "scheduled_times": None,
        "created": 24,
        "existing": 0,
    }
    past = runs_of(
        client, deployment["id"], expected_start_time={"before_": "2025-12-31T00:00:00Z"}
    )
    assert [parse(r["expected_start_time"]).hour for r in past] == list(range(24))
    assert all(r["auto_scheduled"] and r["state"]["name"] == "Scheduled" for r in past)
    again = client.post(url, json=body).get_json()
    assert (again["created"], again["existing"]) == (0, 24)
    assert client.post(url, json={**body, "dry_run": True}).get_json()["existing"] == 24


def test_backfill_limits_and_errors(client, flow, deployment):
    url = f"/api/deployments/{deployment['id']}/schedule"
    capped = client.post(
        url,
        json={
            "start_time": "2025-01-01T00:00:00Z",
            "end_time": "2025-12-31T00:00:00Z",
            "max_runs": 5,
        },
    )
    assert capped.get_json()["created"] == 5
    early = client.post(
        url,
        json={
            "start_time": "2024-01-01T00:00:00Z",
            "min_runs": 2,
            "min_time": 7200,
            "dry_run": True,
        },
    ).get_json()
    assert len(early["scheduled_times"]) == 3
    assert_422(client.post(url, json={"max_runs": 10001}), "body", "max_runs")
    assert_422(client.post(url, json={"max_runs": 0}), "body", "max_runs")
    assert_422(
        client.post(
            url, json={"start_time": "2025-02-01T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"}
        ),
        "body",
        "end_time",
    )
    assert_422(client.post(url, json={"start_time": "soon"}), "body", "start_time")
    assert client.post(f"/api/deployments/{uuid.uuid4()}/schedule", json={}).status_code == 404
    unscheduled = client.post(
        "/api/deployments/", json={"name": "adhoc", "flow_id": flow["id"]}
    ).get_json()
    conflict = client.post(f"/api/deployments/{unscheduled['id']}/schedule", json={})
    assert conflict.status_code == 409
    assert "no active schedule" in conflict.get_json()["detail"]


def test_deleting_the_flow_deletes_its_deployments(client, flow, deployment):
    assert client.delete(f"/api/flows/{flow['id']}").status_code == 204
    assert client.get(f"/api/deployments/{deployment['id']}").status_code == 404


def test_responses_match_their_documented_schemas(client, deployment):
    from app.schemas.core import FlowRunSchema
    from app.schemas.deployments import DeploymentSchema, ScheduleResultSchema

    assert set(deployment) == set(DeploymentSchema().fields)
    DeploymentSchema().load(deployment)
    DeploymentSchema(many=True).load(client.post("/api/deployments/filter", json={}).get_json())
    FlowRunSchema(many=True).load(runs_of(client, deployment["id"]))
    ScheduleResultSchema().load(
        client.post(
            f"/api/deployments/{deployment['id']}/schedule", json={"dry_run": True}
        ).get_json()
    )


class TestNewerPrefectFields:
    """Prefect 2.10+ names: paused, job_variables, schedules; unused ones are ignored."""

    def create(self, client, flow, **fields):
        response = client.post(
            "/api/deployments/", json={"name": f"d-{uuid.uuid4()}", "flow_id": flow["id"], **fields}
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def test_paused_is_the_opposite_of_is_schedule_active(self, client, flow):
        deployment = self.create(client, flow, paused=True, is_schedule_active=True)
        assert (deployment["is_schedule_active"], deployment["paused"]) == (False, True)
        path = f"/api/deployments/{deployment['id']}"
        assert client.patch(path, json={"paused": False}).status_code == 204
        assert client.get(path).get_json()["is_schedule_active"] is True
        assert client.patch(path, json={"paused": None}).status_code == 204
        assert client.get(path).get_json()["paused"] is False

    def test_job_variables_are_infra_overrides(self, client, flow):
        deployment = self.create(
            client, flow, infra_overrides={"a": 1}, job_variables={"env": {"A": "1"}}
        )
        assert deployment["infra_overrides"] == {"env": {"A": "1"}}
        assert self.create(client, flow, job_variables=None)["infra_overrides"] == {}

    def test_the_first_schedule_is_the_schedule(self, client, flow):
        deployment = self.create(
            client,
            flow,
            schedules=[
                {"schedule": HOURLY, "active": False, "max_active_runs": None, "catchup": False},
                {"schedule": {"cron": "0 9 * * *"}},
            ],
        )
        assert deployment["schedule"]["interval"] == HOURLY["interval"]
        # As Prefect 2.20: is_schedule_active is "not paused", whatever each schedule says.
        assert (deployment["is_schedule_active"], deployment["paused"]) == (True, False)
        assert [s["active"] for s in deployment["schedules"]] == [False, True]
        assert self.create(client, flow, schedules=[])["schedule"] is None

    def test_schedules_win_over_a_null_schedule_beside_them(self, client, flow):
        """Prefect 2.20's clients send ``"schedule": null`` with ``schedules``: deploying the
        same deployment again (an upsert), or updating it so, keeps the schedules given."""
        cron = {"cron": "*/5 * * * *", "timezone": None, "day_or": True}
        body = {
            "name": f"d-{uuid.uuid4()}",
            "flow_id": flow["id"],
            "schedule": None,
            "schedules": [{"schedule": cron, "active": True}],
        }
        first = client.post("/api/deployments/", json=body).get_json()
        again = client.post("/api/deployments/", json=body)
        assert again.status_code == 200
        assert [s["schedule"] for s in again.get_json()["schedules"]] == [cron]
        assert again.get_json()["schedules"][0]["id"] == first["schedules"][0]["id"]
        hourly = {"schedule": None, "schedules": [{"schedule": HOURLY}], "is_schedule_active": True}
        path = f"/api/deployments/{first['id']}"
        assert client.patch(path, json=hourly).status_code == 204
        updated = client.get(path).get_json()
        assert [s["schedule"]["interval"] for s in updated["schedules"]] == [HOURLY["interval"]]
        assert updated["paused"] is False
        none = {**body, "schedules": []}
        assert client.post("/api/deployments/", json=none).get_json()["schedules"] == []

    def test_a_bad_schedule_entry_is_422(self, client, flow):
        body = {"name": "d", "flow_id": flow["id"]}
        for bad in ({"interval": -1}, None, "hourly"):
            assert_422(
                client.post("/api/deployments/", json={**body, "schedules": [{"schedule": bad}]}),
                "body",
                "schedules",
            )
        assert_422(
            client.post("/api/deployments/", json={**body, "schedules": [{"active": True}]}),
            "body",
            "schedules",
        )
        assert_422(
            client.post("/api/deployments/", json={**body, "paused": "maybe"}), "body", "paused"
        )

    def test_pull_steps_round_trip(self, client, flow):
        """As ``prefect deploy`` sends them: a run of the deployment reads them back to
        fetch its code (Prefect 2.20's ``load_flow_from_flow_run``)."""
        steps = [
            {"prefect.deployments.steps.set_working_directory": {"directory": "/srv/flows"}},
            {"prefect.deployments.steps.run_shell_script": {"script": "echo hi", "stream": 1}},
        ]
        deployment = self.create(client, flow, pull_steps=steps)
        assert deployment["pull_steps"] == steps
        path = f"/api/deployments/{deployment['id']}"
        assert client.get(path).get_json()["pull_steps"] == steps
        assert client.patch(path, json={"tags": ["a"]}).status_code == 204
        assert client.get(path).get_json()["pull_steps"] == steps
        assert client.patch(path, json={"pull_steps": None}).status_code == 204
        assert client.get(path).get_json()["pull_steps"] is None
        assert self.create(client, flow)["pull_steps"] is None

    def test_bad_pull_steps_are_422(self, client, flow):
        body = {"name": "d", "flow_id": flow["id"]}
        for bad in ("git clone", {"step": {}}, ["step"], [None]):
            assert_422(
                client.post("/api/deployments/", json={**body, "pull_steps": bad}),
                "body",
                "pull_steps",
            )

    def test_a_deployment_without_a_pool_has_no_queue_id(self, client, flow):
        deployment = self.create(client, flow)
        assert deployment["work_pool_name"] is None and deployment["work_queue_id"] is None

    def test_a_null_cron_timezone_round_trips(self, client, flow):
        schedule = {"cron": "0 9 * * *", "timezone": None, "day_or": True}
        deployment = self.create(client, flow, schedule=schedule)
        assert deployment["schedule"] == schedule
        path = f"/api/deployments/{deployment['id']}"
        assert client.get(path).get_json()["schedule"] == schedule
