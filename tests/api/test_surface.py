"""The rest of the Prefect 2.7 surface: admin, work_queue_check, the UI's queries,
collection views and CORS, with their bad input."""

import datetime

import pytest

from app.models import BlockType, Flow, TaskRun
from tests.conftest import assert_422

UTC = datetime.UTC


# ---------------------------------------------------------------- admin
def test_settings_are_listed_with_secrets_obfuscated(make_app):
    client = make_app(
        API_KEY="s3cret", ENCRYPTION_KEY=None, REDIS_URL="redis://user:hunter2@redis:6379/0"
    ).test_client()
    settings = client.get(
        "/api/admin/settings", headers={"Authorization": "Bearer s3cret"}
    ).get_json()
    assert settings["ORION_API_KEY"] == "********"
    assert settings["ORION_SECRET_KEY"] == "********"
    assert settings["ORION_REDIS_URL"] == "redis://user:********@redis:6379/0"
    assert settings["ORION_ENCRYPTION_KEY"] is None
    assert settings["ORION_NOTIFICATIONS_MAX_ATTEMPTS"] == 5
    assert "hunter2" not in str(settings) and "s3cret" not in str(settings)
    assert client.get("/api/admin/settings").status_code == 401


def test_version(client):
    assert isinstance(client.get("/api/admin/version").get_json(), str)


@pytest.mark.parametrize("operation", ["clear", "drop", "create"])
def test_database_operations_are_refused_unless_enabled(client, flow, operation):
    response = client.post(f"/api/admin/database/{operation}", json={"confirm": True})
    assert response.status_code == 403
    assert "ORION_ADMIN_DATABASE_ENABLED" in response.get_json()["detail"]
    assert Flow.select().count() == 1


def test_database_operations_need_confirm_and_the_api_key(make_app, db):
    client = make_app(ADMIN_DATABASE_ENABLED=True, API_KEY="k").test_client()
    auth = {"Authorization": "Bearer k"}
    assert client.post("/api/admin/database/clear", json={}).status_code == 401
    assert client.post("/api/admin/database/clear", json={}, headers=auth).status_code == 400
    assert (
        client.post("/api/admin/database/clear", json={"confirm": False}, headers=auth).status_code
        == 400
    )
    assert_422(
        client.post("/api/admin/database/clear", json={"confirm": "perhaps"}, headers=auth),
        "body",
        "confirm",
    )


def test_clear_drop_and_create(make_app, db):
    client = make_app(ADMIN_DATABASE_ENABLED=True).test_client()
    client.post("/api/flows/", json={"name": "etl"})
    assert client.post("/api/admin/database/clear", json={"confirm": True}).status_code == 204
    assert Flow.select().count() == 0
    assert BlockType.select().where(BlockType.slug == "slack-webhook").exists(), (
        "the system block types are registered again"
    )
    assert client.post("/api/admin/database/drop", json={"confirm": True}).status_code == 204
    assert not db.table_exists("flow")
    assert client.post("/api/admin/database/create", json={"confirm": True}).status_code == 204
    assert client.post("/api/flows/", json={"name": "etl"}).status_code == 201


# ---------------------------------------------------------------- deployments, work queues
def test_work_queue_check(client, flow):
    deployment = client.post(
        "/api/deployments/",
        json={
            "name": "nightly",
            "flow_id": flow["id"],
            "tags": ["prod", "eu"],
            "work_queue_name": "etl",
        },
    ).get_json()
    # Creating the deployment created the queue it names.
    named = client.get("/api/work_queues/name/etl").get_json()
    client.post("/api/work_queues/", json={"name": "other"})
    legacy = client.post(
        "/api/work_queues/", json={"name": "legacy-prod", "filter": {"tags": ["prod"]}}
    ).get_json()
    client.post("/api/work_queues/", json={"name": "legacy-gpu", "filter": {"tags": ["gpu"]}})
    response = client.get(f"/api/deployments/{deployment['id']}/work_queue_check")
    assert response.status_code == 200
    assert [q["id"] for q in response.get_json()] == [named["id"], legacy["id"]]
    assert set(response.get_json()[0]) >= {"id", "name", "filter", "is_paused", "priority"}
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/api/deployments/{missing}/work_queue_check").status_code == 404
    assert_422(client.get("/api/deployments/nope/work_queue_check"), "path")


# ---------------------------------------------------------------- ui
def run_with(client, flow, states):
    run = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
    for state in states:
        client.post(
            f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": state}, "force": True}
        )
    return client.get(f"/api/flow_runs/{run['id']}").get_json()


def test_flow_run_history_rows(client, flow):
    done = run_with(client, flow, ["RUNNING", "COMPLETED"])
    pending = run_with(client, flow, [])
    rows = client.post(
        "/api/ui/flow_runs/history", json={"sort": "EXPECTED_START_TIME_ASC"}
    ).get_json()
    assert [r["id"] for r in rows] == [done["id"], pending["id"]]
    assert set(rows[0]) == {"id", "state_type", "timestamp", "duration", "lateness"}
    assert rows[0]["state_type"] == "COMPLETED"
    assert rows[0]["timestamp"] == done["start_time"]
    assert rows[0]["duration"] == done["total_run_time"]
    assert rows[1]["timestamp"] == pending["expected_start_time"]
    only = client.post(
        "/api/ui/flow_runs/history",
        json={"flow_runs": {"state": {"type": {"any_": ["PENDING"]}}}, "limit": 5},
    ).get_json()
    assert [r["id"] for r in only] == [pending["id"]]


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"limit": 1001}, ("body", "limit")),
        ({"offset": -1}, ("body", "offset")),
        ({"sort": "SIDEWAYS"}, ("body", "sort")),
        ({"flow_runs": {"state": {"type": {"any_": ["DONE"]}}}}, ("body", "flow_runs")),
    ],
)
def test_flow_run_history_bad_input(client, body, loc):
    assert_422(client.post("/api/ui/flow_runs/history", json=body), *loc)


def task_run_through(client, flow_run, key, *states):
    """A new task run of ``flow_run`` (``key``), forced through ``states`` in turn."""
    run = client.post(
        "/api/task_runs/",
        json={"flow_run_id": flow_run["id"], "task_key": key, "dynamic_key": "0"},
    ).get_json()
    for state in states:
        client.post(
            f"/api/task_runs/{run['id']}/set_state", json={"state": {"type": state}, "force": True}
        )
    return run


def test_task_run_counts_by_state_and_dashboard_buckets(client, flow_run):
    runs = [
        task_run_through(client, flow_run, "a", "RUNNING", "COMPLETED"),
        task_run_through(client, flow_run, "b", "RUNNING", "FAILED"),
        task_run_through(client, flow_run, "c", "RUNNING", "CRASHED"),
        task_run_through(client, flow_run, "d", "RUNNING"),
    ]
    counts = client.post("/api/ui/task_runs/count", json={}).get_json()
    assert counts == {
        "SCHEDULED": 0,
        "PENDING": 0,
        "RUNNING": 1,
        "COMPLETED": 1,
        "FAILED": 1,
        "CANCELLED": 0,
        "CRASHED": 1,
        "PAUSED": 0,
        "CANCELLING": 0,
    }
    # The window ends at the last start, so a minute turning during the test cannot move the
    # buckets; a run that started in the minute before the last one is one bucket earlier.
    started = [
        datetime.datetime.fromisoformat(
            client.get(f"/api/task_runs/{run['id']}").json["start_time"]
        )
        for run in runs
    ]
    last = max(started)

    def minute(moment):
        return moment.replace(second=0, microsecond=0)

    expected = [{"completed": 0, "failed": 0} for _ in range(20)]
    for start, outcome in zip(started[:3], ["completed", "failed", "failed"], strict=True):
        minutes_before = (minute(last) - minute(start)) // datetime.timedelta(minutes=1)
        expected[19 - minutes_before][outcome] += 1
    buckets = client.post(
        "/api/ui/task_runs/dashboard/counts",
        json={
            "task_runs": {
                "start_time": {
                    "after_": (last - datetime.timedelta(minutes=19)).isoformat(),
                    "before_": last.isoformat(),
                }
            },
            "work_pools": None,
            "work_queues": {},
        },
    ).get_json()
    assert buckets == expected
    assert sum(b["failed"] for b in buckets[-2:]) == 2, "the runs started just now"
    after = (datetime.datetime.now(UTC) - datetime.timedelta(minutes=19)).isoformat()
    until_now = client.post(
        "/api/ui/task_runs/dashboard/counts", json={"task_runs": {"start_time": {"after_": after}}}
    ).get_json()
    assert len(until_now) == 20
    assert until_now[:-2] == [{"completed": 0, "failed": 0}] * 18, "the window ends now"
    assert sum(b["completed"] for b in until_now) == 1
    assert sum(b["failed"] for b in until_now) == 2
    earlier = client.post(
        "/api/ui/task_runs/dashboard/counts",
        json={
            "task_runs": {
                "start_time": {"after_": "2020-01-01T00:00:00Z", "before_": "2020-01-02T00:00:00Z"}
            }
        },
    ).get_json()
    assert earlier == [{"completed": 0, "failed": 0}] * 20


def test_dashboard_buckets_are_whole_minutes_ending_with_the_minute_of_before(client, flow_run):
    """Runs either side of a minute's turn fall in the buckets of their own minutes."""
    starts = {
        "COMPLETED": "2026-03-01T12:00:59.999000+00:00",
        "FAILED": "2026-03-01T12:01:00+00:00",
        "CRASHED": "2026-03-01T11:42:45+00:00",
    }
    for state, start in starts.items():
        run = task_run_through(client, flow_run, state, state)
        TaskRun.update(start_time=datetime.datetime.fromisoformat(start)).where(
            TaskRun.id == run["id"]
        ).execute()
    buckets = client.post(
        "/api/ui/task_runs/dashboard/counts",
        json={
            "task_runs": {
                "start_time": {
                    "after_": "2026-03-01T11:42:30+00:00",
                    "before_": "2026-03-01T12:01:30+00:00",
                }
            }
        },
    ).get_json()
    expected = [{"completed": 0, "failed": 0} for _ in range(20)]
    expected[0]["failed"] = expected[18]["completed"] = expected[19]["failed"] = 1
    assert buckets == expected


@pytest.mark.parametrize(
    "body, loc",
    [
        ({}, ("body", "task_runs")),
        ({"task_runs": {"start_time": {"before_": "2026-01-01T00:00:00Z"}}}, ("body", "task_runs")),
        ({"task_runs": {"start_time": {"after_": "yesterday"}}}, ("body", "task_runs")),
        (
            {
                "task_runs": {"start_time": {"after_": "2026-01-01T00:00:00Z"}},
                "work_queues": {"name": {"any_": ["q"]}},
                "work_pool_queues": {"name": {"any_": ["q"]}},
            },
            ("body", "work_queues"),
        ),
        (
            {
                "task_runs": {"start_time": {"after_": "2026-01-01T00:00:00Z"}},
                "work_pools": {"name": {"any_": "p"}},
            },
            ("body", "work_pools", "name", "any_"),
        ),
    ],
)
def test_dashboard_counts_bad_input(client, body, loc):
    assert_422(client.post("/api/ui/task_runs/dashboard/counts", json=body), *loc)


def test_schema_validation_errors_follow_prefects_shape(client):
    schema = {
        "type": "object",
        "required": ["x", "y"],
        "properties": {
            "x": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    result = client.post(
        "/api/ui/schemas/validate",
        json={"schema": schema, "values": {"x": "one", "tags": ["a", 2]}},
    ).get_json()
    assert result["valid"] is False
    assert {"property": "x", "errors": ["'one' is not of type 'integer'"]} in result["errors"]
    assert {"property": "y", "errors": ["'y' is a required property"]} in result["errors"]
    assert {
        "property": "tags",
        "errors": [{"index": 1, "errors": ["2 is not of type 'string'"]}],
    } in result["errors"]
    ok = client.post(
        "/api/ui/schemas/validate", json={"schema": schema, "values": {"x": 1, "y": None}}
    ).get_json()
    assert ok == {"errors": [], "valid": True}


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"values": {}}, ("body", "schema")),
        ({"schema": {}}, ("body", "values")),
        ({"schema": {"type": "whatever"}, "values": {}}, ("body", "schema")),
        ({"schema": [], "values": {}}, ("body", "schema")),
    ],
)
def test_schema_validation_bad_input(client, body, loc):
    assert_422(client.post("/api/ui/schemas/validate", json=body), *loc)


# ---------------------------------------------------------------- collections
def test_collection_views(client):
    workers = client.get("/api/collections/views/aggregate-worker-metadata")
    assert workers.status_code == 200
    assert "process" in workers.get_json()["prefect"]
    missing = client.get("/api/collections/views/demo-flows")
    assert missing.status_code == 404 and "missing" in missing.get_json()["detail"]
    unknown = client.get("/api/collections/views/nope")
    assert unknown.status_code == 404 and "not found" in unknown.get_json()["detail"]


# ---------------------------------------------------------------- CORS
def test_cors_is_off_by_default(client):
    response = client.get("/api/hello", headers={"Origin": "https://ui.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/api/flows/filter",
        headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_answers_allowed_origins_only(make_app):
    client = make_app(CORS_ALLOWED_ORIGINS=["https://ui.example"], API_KEY="k").test_client()
    preflight = client.options(
        "/api/flows/filter",
        headers={
            "Origin": "https://ui.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204, "a preflight carries no API key"
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    response = client.get(
        "/api/hello", headers={"Origin": "https://ui.example", "Authorization": "Bearer k"}
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert "Origin" in response.headers["Vary"]
    other = client.get(
        "/api/hello", headers={"Origin": "https://evil.example", "Authorization": "Bearer k"}
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    assert (
        client.options(
            "/api/flows/filter",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        ).status_code
        == 401
    )


# ---------------------------------------------------------------- task run history
def test_task_run_history_buckets_by_expected_start(client, flow_run):
    now = datetime.datetime.now(UTC)
    for key, state in (("a", "COMPLETED"), ("b", "COMPLETED"), ("c", "FAILED")):
        task_run_through(client, flow_run, key, state)
    body = {
        "history_start": (now - datetime.timedelta(minutes=30)).isoformat(),
        "history_end": (now + datetime.timedelta(minutes=90)).isoformat(),
        "history_interval_seconds": 3600,
    }
    history = client.post("/api/task_runs/history", json=body).get_json()
    assert len(history) == 2
    states = {(s["state_type"], s["count_runs"]) for s in history[0]["states"]}
    assert states == {("COMPLETED", 2), ("FAILED", 1)}
    assert history[1]["states"] == []
    only_failed = client.post(
        "/api/task_runs/history",
        json={**body, "task_runs": {"state": {"type": {"any_": ["FAILED"]}}}},
    ).get_json()
    assert [(s["state_type"], s["count_runs"]) for s in only_failed[0]["states"]] == [("FAILED", 1)]
    assert_422(
        client.post("/api/task_runs/history", json={**body, "history_end": "soon"}),
        "body",
        "history_end",
    )
    assert_422(
        client.post("/api/task_runs/history", json={**body, "history_interval_seconds": 0.5}),
        "body",
        "history_interval_seconds",
    )


# ---------------------------------------------------------------- work pools (2.7, experimental)
def test_experimental_work_pools_are_the_work_pools(client, flow):
    """Prefect 2.7's UI lists pools on every work queues page: the same pools as 2.20's."""
    assert client.post("/api/experimental/work_pools/filter", json={}).get_json() == []
    assert client.post("/api/experimental/work_pools/", json={"name": "p"}).status_code == 201
    body = {"work_pools": {"name": {"any_": ["p"]}}, "limit": 10, "offset": 0}
    listed = client.post("/api/experimental/work_pools/filter", json=body).get_json()
    assert [pool["name"] for pool in listed] == ["p"]
    assert client.get("/api/work_pools/p").get_json()["id"] == listed[0]["id"]


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"limit": -1}, ("body", "limit")),
        ({"offset": "x"}, ("body", "offset")),
        ({"work_pools": {"name": {"any_": "default"}}}, ("body", "work_pools")),
    ],
)
def test_work_pools_filter_bad_input(client, body, loc):
    assert_422(client.post("/api/experimental/work_pools/filter", json=body), *loc)
