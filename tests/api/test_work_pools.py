"""Work pools (Prefect 2.20): pools, their queues and workers, get_scheduled_flow_runs, job
variables checked against the pool's template, and bad input."""

import datetime
import threading

import pytest
from prometheus_client import REGISTRY

from app.schemas.core import WorkQueueSchema
from app.schemas.work_pools import WorkerFlowRunSchema, WorkerSchema, WorkPoolSchema
from tests.api.test_work_queues import _hold_a_claim
from tests.conftest import assert_422

UTC = datetime.UTC

TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "env": "{{ env }}"},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}


def iso(delta_seconds):
    return (datetime.datetime.now(UTC) + datetime.timedelta(seconds=delta_seconds)).isoformat()


def make_pool(client, name="P", **fields):
    body = {"name": name, "type": "process", "base_job_template": TEMPLATE, **fields}
    response = client.post("/api/work_pools/", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_queue(client, pool, name, **fields):
    response = client.post(f"/api/work_pools/{pool}/queues", json={"name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_deployment(client, flow, name="d", **fields):
    response = client.post(
        "/api/deployments/", json={"name": name, "flow_id": flow["id"], **fields}
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def scheduled_run(client, deployment, due_in=-10):
    state = {"type": "SCHEDULED", "state_details": {"scheduled_time": iso(due_in)}}
    response = client.post(
        f"/api/deployments/{deployment['id']}/create_flow_run", json={"state": state}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def scheduled(client, pool="P", **body):
    response = client.post(f"/api/work_pools/{pool}/get_scheduled_flow_runs", json=body)
    assert response.status_code == 200, response.get_json()
    WorkerFlowRunSchema(many=True).load(response.get_json())
    return response.get_json()


def propose_pending(client, run_id):
    return client.post(
        f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": "PENDING"}}
    ).get_json()["status"]


class TestPools:
    def test_create_makes_the_default_queue(self, client):
        pool = make_pool(client, description="local")
        WorkPoolSchema().load(pool)
        assert (pool["type"], pool["description"], pool["status"]) == (
            "process",
            "local",
            "NOT_READY",
        )
        assert pool["base_job_template"] == TEMPLATE
        queues = client.post("/api/work_pools/P/queues/filter", json={}).get_json()
        assert [(q["name"], q["priority"], q["id"]) for q in queues] == [
            ("default", 1, pool["default_queue_id"])
        ]
        assert queues[0]["work_pool_name"] == "P"

    def test_duplicate_name_is_409(self, client):
        make_pool(client)
        assert client.post("/api/work_pools/", json={"name": "P"}).status_code == 409

    def test_read_patch_pause_and_delete(self, client):
        make_pool(client)
        assert client.get("/api/work_pools/P").get_json()["name"] == "P"
        assert client.get("/api/work_pools/nope").status_code == 404
        changes = {"is_paused": True, "concurrency_limit": 2, "description": "x"}
        assert client.patch("/api/work_pools/P", json=changes).status_code == 204
        pool = client.get("/api/work_pools/P").get_json()
        assert (pool["status"], pool["concurrency_limit"], pool["description"]) == (
            "PAUSED",
            2,
            "x",
        )
        assert client.delete("/api/work_pools/P").status_code == 204
        assert client.get("/api/work_pools/P").status_code == 404
        assert client.delete("/api/work_pools/P").status_code == 404

    def test_filter_and_count(self, client):
        make_pool(client, "a")
        make_pool(client, "b", base_job_template={})
        client.post("/api/work_pools/", json={"name": "c", "type": "docker"})
        names = lambda body: [  # noqa: E731
            p["name"] for p in client.post("/api/work_pools/filter", json=body).get_json()
        ]
        assert names({}) == ["a", "b", "c"]
        assert names({"work_pools": {"type": {"any_": ["docker"]}}}) == ["c"]
        assert names({"work_pools": {"name": {"any_": ["b", "z"]}}, "limit": 5}) == ["b"]
        assert names({"offset": 1, "limit": 1}) == ["b"]
        count = client.post(
            "/api/work_pools/count", json={"work_pools": {"type": {"any_": ["process"]}}}
        )
        assert count.get_json() == 2

    def test_experimental_paths_are_the_same(self, client):
        make_pool(client)
        listed = client.post("/api/experimental/work_pools/filter", json={}).get_json()
        assert [p["name"] for p in listed] == ["P"]
        assert client.get("/api/experimental/work_pools/P").status_code == 200

    def test_the_agents_pool_holds_the_old_queues(self, client):
        client.post("/api/work_queues/", json={"name": "etl"})
        pool = client.get("/api/work_pools/default-agent-pool").get_json()
        assert (pool["type"], pool["status"]) == ("prefect-agent", "READY")
        queues = client.post("/api/work_pools/default-agent-pool/queues/filter", json={}).get_json()
        assert [q["name"] for q in queues] == ["default", "etl"]
        assert pool["default_queue_id"] == queues[0]["id"]
        refused = client.delete(f"/api/work_queues/{pool['default_queue_id']}")
        assert refused.status_code == 409 and "default queue" in refused.get_json()["detail"]
        response = client.delete("/api/work_pools/default-agent-pool")
        assert response.status_code == 409

    def test_queue_names_are_unique_per_pool(self, client):
        make_pool(client, "a")
        make_pool(client, "b")
        client.post("/api/work_queues/", json={"name": "default"})
        ids = {client.get(f"/api/work_pools/{p}/queues/default").get_json()["id"] for p in "ab"}
        assert len(ids) == 2
        assert client.get("/api/work_queues/name/default").get_json()["work_pool_name"] == (
            "default-agent-pool"
        )


class TestBadInput:
    @pytest.mark.parametrize(
        ("template", "named"),
        [
            ({"variables": {"type": "object"}}, "job_configuration"),
            ({"job_configuration": {}}, "variables"),
            ({"job_configuration": {}, "variables": {"type": 12}}, "variables"),
            ({"job_configuration": {"c": "{{ nope }}"}, "variables": {"properties": {}}}, "nope"),
        ],
    )
    def test_a_bad_template_is_a_422_naming_what_is_wrong(self, client, template, named):
        response = client.post(
            "/api/work_pools/", json={"name": "P", "base_job_template": template}
        )
        body = assert_422(response, "body", "base_job_template")
        assert named in str(body["exception_detail"])
        make_pool(client)
        response = client.patch("/api/work_pools/P", json={"base_job_template": template})
        assert_422(response, "body", "base_job_template")

    def test_a_bad_job_variable_is_a_422_naming_it(self, client, flow):
        make_pool(client)
        response = client.post(
            "/api/deployments/",
            json={
                "name": "d",
                "flow_id": flow["id"],
                "work_pool_name": "P",
                "job_variables": {"command": 12},
            },
        )
        body = assert_422(response, "body", "job_variables", "command")
        assert "'command'" in str(body["exception_detail"])
        deployment = make_deployment(client, flow, work_pool_name="P", job_variables={"env": {}})
        response = client.patch(
            f"/api/deployments/{deployment['id']}", json={"job_variables": {"env": {"A": 1}}}
        )
        assert_422(response, "body", "job_variables", "env", "A")

    def test_deleting_a_pool_with_deployments_is_a_409_naming_them(self, client, flow):
        make_pool(client)
        make_deployment(client, flow, name="nightly", work_pool_name="P")
        response = client.delete("/api/work_pools/P")
        assert response.status_code == 409
        assert f"{flow['name']}/nightly" in response.get_json()["detail"]

    def test_an_unknown_pool_is_a_404(self, client, flow):
        response = client.post(
            "/api/deployments/", json={"name": "d", "flow_id": flow["id"], "work_pool_name": "x"}
        )
        assert response.status_code == 404
        assert client.post("/api/work_pools/x/get_scheduled_flow_runs", json={}).status_code == 404

    def test_the_default_queue_cannot_be_deleted(self, client):
        make_pool(client)
        assert client.delete("/api/work_pools/P/queues/default").status_code == 409


class TestQueues:
    def test_crud_and_priorities(self, client):
        make_pool(client)
        make_queue(client, "P", "high", priority=1)
        low = make_queue(client, "P", "low")
        WorkQueueSchema().load(low)
        queues = client.post("/api/work_pools/P/queues/filter", json={}).get_json()
        assert [(q["name"], q["priority"]) for q in queues] == [
            ("high", 1),
            ("default", 2),
            ("low", 3),
        ]
        assert client.post("/api/work_pools/P/queues", json={"name": "low"}).status_code == 409
        path = "/api/work_pools/P/queues/low"
        assert (
            client.patch(path, json={"is_paused": True, "concurrency_limit": 1}).status_code == 204
        )
        assert client.get(path).get_json()["is_paused"] is True
        assert client.delete(path).status_code == 204
        assert client.get(path).status_code == 404


class TestScheduledRuns:
    def test_runs_of_the_pool_by_queue_priority(self, client, flow):
        pool = make_pool(client)
        make_queue(client, "P", "urgent", priority=1)
        slow = make_deployment(client, flow, "slow", work_pool_name="P")
        fast = make_deployment(client, flow, "fast", work_pool_name="P", work_queue_name="urgent")
        assert (slow["work_pool_name"], slow["work_queue_name"]) == ("P", "default")
        queue_ids = {
            q["name"]: q["id"] for q in client.post("/api/work_pools/P/queues/filter").get_json()
        }
        assert (slow["work_queue_id"], fast["work_queue_id"]) == (
            queue_ids["default"],
            queue_ids["urgent"],
        )
        early = scheduled_run(client, slow, due_in=-60)
        late = scheduled_run(client, fast, due_in=-5)
        scheduled_run(client, fast, due_in=3600)
        got = scheduled(client)
        assert [r["flow_run"]["id"] for r in got] == [late["id"], early["id"]]
        assert {r["work_pool_id"] for r in got} == {pool["id"]}
        assert [r["flow_run"]["id"] for r in scheduled(client, work_queue_names=["default"])] == [
            early["id"]
        ]
        assert len(scheduled(client, work_queue_names=[])) == 2
        assert len(scheduled(client, limit=1)) == 1
        assert len(scheduled(client, scheduled_before=iso(7200))) == 3
        assert (
            scheduled(client, scheduled_after=iso(60), scheduled_before=iso(7200))[0]["flow_run"][
                "id"
            ]
            != early["id"]
        )
        response = client.post(
            "/api/work_pools/P/get_scheduled_flow_runs", json={"work_queue_names": ["nope"]}
        )
        assert response.status_code == 404

    def test_a_pool_run_is_not_an_agent_queue_run(self, client, flow):
        make_pool(client)
        agent_queue = client.post("/api/work_queues/", json={"name": "default"}).get_json()
        scheduled_run(client, make_deployment(client, flow, "pooled", work_pool_name="P"))
        runs = client.post(f"/api/work_queues/{agent_queue['id']}/get_runs", json={}).get_json()
        assert runs == []
        assert len(scheduled(client)) == 1

    def test_pause_and_limits(self, client, flow):
        make_pool(client)
        deployment = make_deployment(client, flow, work_pool_name="P")
        first, second = scheduled_run(client, deployment), scheduled_run(client, deployment)
        client.patch("/api/work_pools/P", json={"is_paused": True})
        assert scheduled(client) == []
        client.patch("/api/work_pools/P", json={"is_paused": False})
        client.patch("/api/work_pools/P/queues/default", json={"is_paused": True})
        assert scheduled(client) == []
        client.patch("/api/work_pools/P/queues/default", json={"is_paused": False})
        client.patch("/api/work_pools/P", json={"concurrency_limit": 1})
        assert [r["flow_run"]["id"] for r in scheduled(client)] == [first["id"]]
        assert propose_pending(client, first["id"]) == "ACCEPT"
        assert scheduled(client) == []
        # The pool's limit holds even for a claim of a run it did not hand out.
        assert propose_pending(client, second["id"]) == "ABORT"

    def test_each_run_is_claimed_once_by_concurrent_workers(self, app, flow, client):
        make_pool(client)
        deployment = make_deployment(client, flow, work_pool_name="P")
        runs = {scheduled_run(client, deployment)["id"] for _ in range(40)}
        claimed, errors = [], []

        def worker():
            worker_client = app.test_client()
            try:
                for _ in range(20):
                    got = worker_client.post(
                        "/api/work_pools/P/get_scheduled_flow_runs", json={"limit": 5}
                    ).get_json()
                    for item in got:
                        if propose_pending(worker_client, item["flow_run"]["id"]) == "ACCEPT":
                            claimed.append(item["flow_run"]["id"])
                    if not got:
                        return
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(claimed) == sorted(runs)

    def test_the_ui_listing_is_no_poll_and_locks_nothing(self, app, client, flow, db):
        """``x-prefect-ui: true`` (Prefect's UI): the pool's due runs, and nothing of a poll:
        no queue's last_polled, no claim counted; while a worker holds what it is claiming
        (PostgreSQL: the run's row; SQLite: the write lock) the listing answers at once and
        shows the run. A worker's poll after it still gets the run."""
        make_pool(client)
        run = scheduled_run(client, make_deployment(client, flow, work_pool_name="P"))
        claims = REGISTRY.get_sample_value("orion_agent_claimed_runs_total")
        holder = _hold_a_claim(db, run["id"])
        answers = []
        listing = threading.Thread(
            target=lambda: answers.append(
                app.test_client().post(
                    "/api/work_pools/P/get_scheduled_flow_runs",
                    json={},
                    headers={"X-PREFECT-UI": "true"},
                )
            )
        )
        try:
            listing.start()
            listing.join(timeout=10)
            assert answers, "the UI's listing waited for the worker's lock"
        finally:
            holder.rollback()
            holder.close()
            listing.join()
        assert [r["flow_run"]["id"] for r in answers[0].get_json()] == [run["id"]]
        default = client.get("/api/work_pools/P/queues/default").get_json()
        assert default["last_polled"] is None
        assert REGISTRY.get_sample_value("orion_agent_claimed_runs_total") == claims
        assert [r["flow_run"]["id"] for r in scheduled(client)] == [run["id"]]
        assert client.get("/api/work_pools/P/queues/default").get_json()["last_polled"]
        assert REGISTRY.get_sample_value("orion_agent_claimed_runs_total") == claims + 1


class TestWorkers:
    def test_heartbeat_filter_status_and_delete(self, client, app):
        make_pool(client)
        for name in ("w1", "w2"):
            body = {"name": name, "heartbeat_interval_seconds": 30}
            assert client.post("/api/work_pools/P/workers/heartbeat", json=body).status_code == 204
        client.post("/api/work_pools/P/workers/heartbeat", json={"name": "w2"})
        workers = client.post("/api/work_pools/P/workers/filter", json={}).get_json()
        WorkerSchema(many=True).load(workers)
        assert [w["name"] for w in workers] == ["w2", "w1"]
        assert {w["status"] for w in workers} == {"ONLINE"}
        assert workers[0]["heartbeat_interval_seconds"] == 30
        assert client.get("/api/work_pools/P").get_json()["status"] == "READY"
        since = {"workers": {"last_heartbeat_time": {"after_": iso(60)}}}
        assert client.post("/api/work_pools/P/workers/filter", json=since).get_json() == []
        assert client.delete("/api/work_pools/P/workers/w1").status_code == 204
        assert client.delete("/api/work_pools/P/workers/w1").status_code == 404
        assert (
            client.post("/api/work_pools/x/workers/heartbeat", json={"name": "w"}).status_code
            == 404
        )
        assert_422(client.post("/api/work_pools/P/workers/heartbeat", json={}), "body", "name")

    def test_a_silent_worker_is_offline(self, db):
        from app.models import Worker, utcnow
        from app.services import work_pools

        now = utcnow()
        timeout = datetime.timedelta(seconds=20)
        worker = Worker(last_heartbeat_time=now - datetime.timedelta(seconds=25))
        assert not work_pools.worker_is_online(worker, now, timeout)
        worker.heartbeat_interval_seconds = 10
        assert work_pools.worker_is_online(worker, now, timeout)
        worker.last_heartbeat_time = now - datetime.timedelta(seconds=31)
        assert not work_pools.worker_is_online(worker, now, timeout)


class TestFlowRunJobVariables:
    """Prefect 2.20: a run's own job variables (``run_deployment(job_variables=...)``,
    ``prefect deployment run --job-variable``), which its worker merges over the
    deployment's; and the pool, queue and deployment version each run names."""

    def test_a_run_of_a_deployment_keeps_its_own_job_variables(self, client, flow):
        pool = make_pool(client)
        deployment = make_deployment(
            client, flow, work_pool_name="P", version="v7", job_variables={"env": {"A": "1"}}
        )
        response = client.post(
            f"/api/deployments/{deployment['id']}/create_flow_run",
            json={"job_variables": {"env": {"B": "2"}}},
        )
        assert response.status_code == 201, response.get_json()
        run = response.get_json()
        assert run["job_variables"] == {"env": {"B": "2"}}
        assert run["deployment_version"] == "v7"
        assert (run["work_pool_id"], run["work_pool_name"]) == (pool["id"], "P")
        assert run["work_queue_id"] == deployment["work_queue_id"]
        read = client.get(f"/api/flow_runs/{run['id']}").get_json()
        assert {k: read[k] for k in run if k not in ("estimated_start_time_delta",)} == {
            k: run[k] for k in run if k not in ("estimated_start_time_delta",)
        }
        (listed,) = client.post(
            "/api/flow_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}}
        ).get_json()
        assert (listed["work_pool_name"], listed["job_variables"]) == ("P", {"env": {"B": "2"}})
        plain = client.post(f"/api/deployments/{deployment['id']}/create_flow_run", json={})
        assert plain.get_json()["job_variables"] is None

    def test_runs_outside_pools_name_none(self, client, flow):
        run = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
        assert [run[k] for k in ("work_pool_id", "work_pool_name", "work_queue_id")] == [None] * 3
        assert (run["job_variables"], run["deployment_version"]) == (None, None)

    def test_job_variables_the_pool_refuses_are_422(self, client, flow):
        make_pool(client)
        deployment = make_deployment(client, flow, work_pool_name="P")
        response = client.post(
            f"/api/deployments/{deployment['id']}/create_flow_run",
            json={"job_variables": {"command": ["not", "a", "string"]}},
        )
        assert_422(response, "body", "job_variables", "command")
        response = client.post(
            f"/api/deployments/{deployment['id']}/create_flow_run", json={"job_variables": [1]}
        )
        assert_422(response, "body", "job_variables")

    def test_job_variables_change_only_while_scheduled(self, client, flow):
        make_pool(client)
        deployment = make_deployment(client, flow, work_pool_name="P")
        run = scheduled_run(client, deployment, due_in=3600)
        path = f"/api/flow_runs/{run['id']}"
        assert client.patch(path, json={"job_variables": {"command": "go"}}).status_code == 204
        assert client.get(path).get_json()["job_variables"] == {"command": "go"}
        assert_422(client.patch(path, json={"job_variables": {"command": 1}}), "body")
        assert propose_pending(client, run["id"]) == "ACCEPT"
        response = client.patch(path, json={"job_variables": {"command": "late"}})
        assert response.status_code == 409
        assert "Scheduled" in response.get_json()["detail"]
        assert client.get(path).get_json()["job_variables"] == {"command": "go"}
        missing = client.patch(
            "/api/flow_runs/00000000-0000-4000-8000-000000000000", json={"job_variables": {}}
        )
        assert missing.status_code == 404

    def test_a_worker_poll_makes_the_deployments_of_the_pool_ready(self, client, flow):
        make_pool(client)
        make_queue(client, "P", "other")
        here = make_deployment(client, flow, "here", work_pool_name="P")
        there = make_deployment(client, flow, "there", work_pool_name="P", work_queue_name="other")
        scheduled(client, work_queue_names=["default"])
        ready = {
            d["name"]: d["status"]
            for d in client.post("/api/deployments/filter", json={}).get_json()
        }
        assert ready == {"here": "READY", "there": "NOT_READY"}
        queue = client.get("/api/work_pools/P/queues/default").get_json()
        read = client.get(f"/api/deployments/{here['id']}").get_json()
        assert read["last_polled"] == queue["last_polled"] is not None
        assert client.get(f"/api/deployments/{there['id']}").get_json()["last_polled"] is None

    def test_a_worker_poll_names_the_pool_of_each_run(self, client, flow):
        pool = make_pool(client)
        run = scheduled_run(client, make_deployment(client, flow, work_pool_name="P"))
        (got,) = scheduled(client)
        assert got["flow_run"]["id"] == run["id"]
        assert got["flow_run"]["work_pool_id"] == got["work_pool_id"] == pool["id"]
        assert got["flow_run"]["work_pool_name"] == "P"


class TestFiltersByPool:
    """Prefect 2.20's bodies that filter flows, task runs and run history by work pool or
    queue: flows through their deployments, task runs through their flow runs."""

    def setup_runs(self, client, flow):
        """A run with a completed task run of ``flow``, deployed in pool P's queue
        ``urgent``, and one of another flow deployed without a pool."""
        make_pool(client)
        make_queue(client, "P", "urgent")
        other_flow = client.post("/api/flows/", json={"name": "elsewhere"}).get_json()
        pooled = make_deployment(
            client, flow, "pooled", work_pool_name="P", work_queue_name="urgent"
        )
        for deployment in (pooled, make_deployment(client, other_flow, "loose")):
            run = client.post(f"/api/deployments/{deployment['id']}/create_flow_run", json={})
            task = client.post(
                "/api/task_runs/",
                json={
                    "flow_run_id": run.get_json()["id"],
                    "task_key": "t",
                    "dynamic_key": "0",
                    "state": {"type": "RUNNING"},
                },
            ).get_json()
            client.post(
                f"/api/task_runs/{task['id']}/set_state", json={"state": {"type": "COMPLETED"}}
            )

    def test_flows_by_the_pool_of_their_deployments(self, client, flow):
        self.setup_runs(client, flow)
        body = {"work_pools": {"name": {"any_": ["P"]}}}
        assert [f["id"] for f in client.post("/api/flows/filter", json=body).get_json()] == [
            flow["id"]
        ]
        assert client.post("/api/flows/count", json=body).get_json() == 1
        none = {"work_pools": {"name": {"any_": ["nope"]}}}
        assert client.post("/api/flows/filter", json=none).get_json() == []
        both = {**body, "deployments": {"name": {"any_": ["loose"]}}}
        assert client.post("/api/flows/count", json=both).get_json() == 0
        assert client.post("/api/flows/count", json={}).get_json() == 2

    def test_task_run_counts_by_pool_and_queue(self, client, flow):
        self.setup_runs(client, flow)
        after = iso(-600)
        url = "/api/ui/task_runs/dashboard/counts"

        def completed(**filters):
            body = {"task_runs": {"start_time": {"after_": after}}, **filters}
            response = client.post(url, json=body)
            assert response.status_code == 200, response.get_json()
            return sum(bucket["completed"] for bucket in response.get_json())

        assert completed() == 2
        assert completed(work_pools={"name": {"any_": ["P"]}}) == 1
        assert completed(work_queues={"name": {"any_": ["urgent"]}}) == 1
        assert completed(work_queues={"name": {"any_": ["default"]}}) == 0

    def test_flow_run_history_by_work_queues(self, client, flow):
        self.setup_runs(client, flow)
        body = {
            "history_start": iso(-3600),
            "history_end": iso(3600),
            "history_interval_seconds": 7200,
        }

        def counted(**filters):
            response = client.post("/api/flow_runs/history", json={**body, **filters})
            assert response.status_code == 200, response.get_json()
            return sum(s["count_runs"] for entry in response.get_json() for s in entry["states"])

        assert counted() == 2
        assert counted(work_queues={"name": {"any_": ["urgent"]}}) == 1
        assert counted(work_pool_queues={"name": {"any_": ["urgent"]}}) == 1
        assert counted(work_pools={"name": {"any_": ["P"]}}) == 1
