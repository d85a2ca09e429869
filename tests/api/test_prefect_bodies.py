"""Bodies real Prefect clients send (2.7.12 and 2.20) are accepted and applied.

The request logs under ``tests/data/prefect_bodies/`` were recorded once by
``scripts/capture_prefect_bodies.py``: each client ran a flow (retries, caching, a subflow,
logs) and called every client method that reaches an endpoint this server has, against its own
version's Prefect server. Here they are replayed, in order, against Orion: ids the reference
server returned are swapped for the ones Orion returns, so later requests name Orion's objects.
"""

import json
import pathlib
import re
import uuid

import pytest

from app.schemas.filters import UNSUPPORTED_FILTER
from tests.conftest import assert_422

DATA = pathlib.Path(__file__).resolve().parent.parent / "data" / "prefect_bodies"
VERSIONS = ("2.7", "2.20")
# Paths of the recordings this server does not serve yet, with the reason.
NOT_SERVED = {
    "/block_": "the blocks API is another part of issue 15",
    "/csrf-token": "no CSRF tokens: the 2.20 client reads the 404 as 'disabled'",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def recording(version):
    return json.loads((DATA / f"prefect-{version}.json").read_text())


def served(request):
    return not any(request["path"].startswith(prefix) for prefix in NOT_SERVED)


def remap(text, ids):
    return _UUID.sub(lambda match: ids.get(match.group(0), match.group(0)), text)


def replay(client, request, ids):
    """Send one recorded request with recorded ids swapped for Orion's; returns the response."""
    url = "/api" + remap(request["path"], ids)
    if request["query"]:
        url += "?" + remap(request["query"], ids)
    body = request["body"]
    data = None if body is None else remap(json.dumps(body), ids)
    response = client.open(
        url, method=request["method"], data=data, content_type="application/json"
    )
    answer = response.get_json(silent=True)
    if request["response_id"] and isinstance(answer, dict) and "id" in answer:
        ids[request["response_id"]] = answer["id"]
    return response


@pytest.mark.parametrize("version", VERSIONS)
def test_every_recorded_request_is_accepted(client, version):
    ids, failures = {}, []
    for index, request in enumerate(recording(version)):
        if not served(request):
            continue
        response = replay(client, request, ids)
        status = response.status_code
        expected_ok = 200 <= request["status"] < 300
        if status == 422 or status >= 500 or (expected_ok and not 200 <= status < 300):
            failures.append(
                (
                    index,
                    request["method"],
                    request["path"],
                    status,
                    response.get_data(as_text=True)[:300],
                )
            )
    assert failures == []


def test_the_recordings_hold_what_the_issue_names():
    """Guards the data: the bodies that used to be refused are in the recordings."""
    bodies = {
        version: [json.dumps(r["body"]) for r in recording(version) if r["body"]]
        for version in VERSIONS
    }
    for version in VERSIONS:
        text = "\n".join(bodies[version])
        for key in ('"work_pools"', '"work_pool_queues"', '"priority"', '"sort": null'):
            assert key in text, (version, key)
    text = "\n".join(bodies["2.20"])
    for key in (
        '"retry_type"',
        '"paused"',
        '"enforce_parameter_schema"',
        '"schedules"',
        '"work_pool_name"',
        '"job_variables"',
    ):
        assert key in text, key


def _replayed(client, version, stop):
    """Replay ``version``'s recording up to (not including) the first request ``stop``
    matches; returns that request and the id map."""
    ids = {}
    for request in recording(version):
        if stop(request):
            return request, ids
        if served(request):
            replay(client, request, ids)
    raise AssertionError("no such request in the recording")


@pytest.mark.parametrize("version", VERSIONS)
def test_recorded_work_queue_and_deployment_fields_are_applied(client, version):
    _request, _ids = _replayed(client, version, lambda r: r["path"] == "/deployments/filter")
    queues = client.post("/api/work_queues/filter", json={}).get_json()
    by_name = {queue["name"]: queue for queue in queues}
    # wire-queue is created with priority 3 and wire-queue-2 with 1, but 2.7.12's client
    # drops both and sends null (first free rank after the agents' pool's default queue: 2,
    # then 3); wire-queue is then updated to 2.
    assert by_name["wire-queue"]["priority"] == 2
    assert by_name["wire-queue-2"]["priority"] == {"2.7": 3, "2.20": 1}[version]
    deployments = client.post("/api/deployments/filter", json={}).get_json()
    cron = next(d for d in deployments if d["name"] == "wire-deployment")
    assert cron["schedule"]["timezone"] is None
    assert cron["is_schedule_active"] is True and cron["paused"] is False
    assert cron["infra_overrides"] == {"env": {"A": "1"}}


def _filter_requests():
    for version in VERSIONS:
        for index, request in enumerate(recording(version)):
            if (
                request["path"].endswith(("/filter", "/count", "/history"))
                and isinstance(request["body"], dict)
                and "work_pools" in request["body"]
            ):
                yield pytest.param(request, id=f"{version}-{index}-{request['path']}")


@pytest.mark.parametrize("request_", list(_filter_requests()))
def test_recorded_filters_asking_for_work_pool_ids_select_by_pool(client, flow, request_):
    """A pool id no pool has selects no flow run, deployment or flow (flows by their
    deployments' pools), whatever else the recorded body asks."""
    client.post("/api/flow_runs/", json={"flow_id": flow["id"], "work_queue_name": "q"})
    body = dict(request_["body"], work_pools={"id": {"any_": [str(uuid.uuid4())]}})
    body = json.loads(_UUID.sub("00000000-0000-0000-0000-000000000000", json.dumps(body)))
    response = client.post("/api" + request_["path"], json=body)
    assert response.status_code == 200, response.get_json()
    if request_["path"].endswith("/history"):
        assert all(interval["states"] == [] for interval in response.get_json())
    else:
        assert response.get_json() in ([], 0)


def test_work_pools_by_name_select_the_default_agent_pool(client, flow):
    """The 2.20 agent's cancellation check names "default-agent-pool": every queue's runs."""
    client.post("/api/work_queues/", json={"name": "q"})
    queued = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "work_queue_name": "q"}
    ).get_json()
    client.post("/api/flow_runs/", json={"flow_id": flow["id"]})

    def names(pools, path="/api/flow_runs/filter"):
        response = client.post(path, json={"work_pools": pools})
        assert response.status_code == 200, response.get_json()
        return [run["id"] for run in response.get_json()]

    assert names({"name": {"any_": ["default-agent-pool"]}}) == [queued["id"]]
    assert names({"type": {"any_": ["prefect-agent"]}}) == [queued["id"]]
    assert names({"name": {"any_": ["gpu-pool"]}}) == []
    assert names(
        {"operator": "or_", "name": {"any_": ["gpu-pool"]}, "type": {"any_": ["prefect-agent"]}}
    ) == [queued["id"]]
    assert names({"name": {"any_": ["gpu-pool"]}}, "/api/deployments/filter") == []
    assert (
        client.post(
            "/api/flow_runs/count", json={"work_pools": {"name": {"any_": ["default-agent-pool"]}}}
        ).get_json()
        == 1
    )
    assert_422(
        client.post(
            "/api/task_runs/filter", json={"work_pools": {"name": {"any_": ["default-agent-pool"]}}}
        ),
        "body",
        "work_pools",
    )


@pytest.mark.parametrize(
    "path, body, loc",
    [
        ("/api/flow_runs/filter", {"artifacts": {"key": {"exists_": True}}}, ("artifacts",)),
        (
            "/api/flow_runs/filter",
            {"flow_runs": {"state": {"type": {"regex_": "F.*"}}}},
            ("flow_runs", "state", "type", "regex_"),
        ),
        (
            "/api/deployments/count",
            {"workers": {"last_heartbeat_time": {"after_": "2026-01-01"}}},
            ("workers",),
        ),
        ("/api/flows/filter", {"work_queues": {"name": {"any_": ["q"]}}}, ("work_queues",)),
        ("/api/task_runs/count", {"work_pool_queues": {"id": {"any_": []}}}, ("work_pool_queues",)),
        ("/api/logs/filter", {"logs": {"name": {"any_": ["prefect.flow_runs"]}}}, ("logs", "name")),
    ],
)
def test_non_empty_filters_on_missing_features_are_422(client, path, body, loc):
    detail = assert_422(client.post(path, json=body), "body", *loc)["exception_detail"]
    assert UNSUPPORTED_FILTER in [d["msg"] for d in detail]


@pytest.mark.parametrize(
    "path, body, loc",
    [
        ("/api/flow_runs/count", {"limit": "ten"}, ("limit",)),
        ("/api/flows/count", {"sort": 3}, ("sort",)),
        (
            "/api/flow_runs/filter",
            {"flow_runs": {"id": {"any_": ["nope"]}}},
            ("flow_runs", "id", "any_"),
        ),
        (
            "/api/flow_runs/filter",
            {"work_pool_queues": {"name": {"any_": "q"}}},
            ("work_pool_queues", "name", "any_"),
        ),
        (
            "/api/task_runs/filter",
            {"task_runs": {"flow_run_id": {"is_null_": "sometimes"}}},
            ("task_runs", "flow_run_id", "is_null_"),
        ),
        ("/api/work_queues/", {"name": "q", "priority": "high"}, ("priority",)),
        ("/api/flows/", {"name": "f", "tags": "not-a-list"}, ("tags",)),
    ],
)
def test_known_fields_of_the_wrong_type_are_422(client, path, body, loc):
    assert_422(client.post(path, json=body), "body", *loc)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/flows/", {"name": "f", "colour": "red"}),
        ("/api/flow_runs/", {"flow_id": "FLOW", "surprise": True, "pull_steps": []}),
        ("/api/concurrency_limits/", {"tag": "db", "concurrency_limit": 1, "active_slots": []}),
        ("/api/work_queues/", {"name": "q", "is_default": False}),
    ],
)
def test_unknown_fields_of_action_bodies_are_ignored(client, flow, path, body):
    body = json.loads(json.dumps(body).replace("FLOW", flow["id"]))
    response = client.post(path, json=body)
    assert 200 <= response.status_code < 300, response.get_json()
    unknown = set(body) - {"name", "flow_id", "tag", "concurrency_limit", "active_slots"}
    assert not unknown & set(response.get_json())
