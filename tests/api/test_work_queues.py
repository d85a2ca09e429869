"""Work queues: CRUD, filters, status, get_runs, and the enforced concurrency limit."""

import datetime
import sqlite3
import threading
import uuid

import psycopg2
import pytest
from prometheus_client import REGISTRY

from app.db import is_sqlite
from app.models import FlowRunState, WorkQueue
from tests.conftest import assert_422
from tests.support import POSTGRES_URL

UTC = datetime.UTC


def iso(delta_seconds):
    return (datetime.datetime.now(UTC) + datetime.timedelta(seconds=delta_seconds)).isoformat()


def make_queue(client, name="default", **fields):
    response = client.post("/api/work_queues/", json={"name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def make_run(client, flow, queue="default", due_in=-10, name="Scheduled", tags=()):
    state = {"type": "SCHEDULED", "name": name, "state_details": {"scheduled_time": iso(due_in)}}
    response = client.post(
        "/api/flow_runs/",
        json={"flow_id": flow["id"], "work_queue_name": queue, "state": state, "tags": list(tags)},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def propose(client, run_id, state_type):
    return client.post(
        f"/api/flow_runs/{run_id}/set_state",
        json={"state": {"type": state_type, "name": state_type.title()}},
    )


def _hold_a_claim(db, run_id):
    """Another connection holding what an agent's claim of ``run_id`` holds, until rolled back:
    the run's row lock on PostgreSQL, the database's write lock on SQLite."""
    if is_sqlite():
        agent = sqlite3.connect(db.database, isolation_level=None)
        agent.execute("BEGIN IMMEDIATE")
        return agent
    agent = psycopg2.connect(POSTGRES_URL)
    with agent.cursor() as cursor:
        cursor.execute("SELECT id FROM flow_run WHERE id = %s FOR UPDATE", (run_id,))
    return agent


def get_runs(client, queue, **body):
    response = client.post(f"/api/work_queues/{queue['id']}/get_runs", json=body)
    assert response.status_code == 200, response.get_json()
    return [run["id"] for run in response.get_json()]


class TestCrud:
    def test_create_returns_the_queue(self, client):
        queue = make_queue(client, "etl", description="nightly", concurrency_limit=3)
        assert queue["name"] == "etl"
        assert queue["description"] == "nightly"
        assert queue["concurrency_limit"] == 3
        assert queue["is_paused"] is False
        assert queue["filter"] is None
        assert queue["last_polled"] is None

    def test_duplicate_name_is_409(self, client):
        make_queue(client, "etl")
        response = client.post("/api/work_queues/", json={"name": "etl"})
        assert response.status_code == 409
        assert "etl" in response.get_json()["detail"]

    @pytest.mark.parametrize(
        "body, loc",
        [
            ({"name": "a/b"}, ("body", "name")),
            ({"name": ""}, ("body", "name")),
            ({"name": "q", "concurrency_limit": -1}, ("body", "concurrency_limit")),
            ({"name": "q", "concurrency_limit": "3"}, ("body", "concurrency_limit")),
            ({"name": "q", "priority": 0}, ("body", "priority")),
            ({"name": "q", "priority": "1"}, ("body", "priority")),
            ({}, ("body", "name")),
        ],
    )
    def test_bad_bodies_are_422(self, client, body, loc):
        assert_422(client.post("/api/work_queues/", json=body), *loc)

    def test_unknown_fields_are_ignored(self, client):
        # Prefect 2.20 sends work_pool_id and the like; they describe nothing we store.
        response = client.post("/api/work_queues/", json={"name": "q", "colour": "red"})
        assert response.status_code == 201
        assert "colour" not in response.get_json()

    def test_priority_defaults_to_the_first_free_rank(self, client):
        # The first queue creates the agents' pool, whose "default" queue holds rank 1.
        assert make_queue(client, "a")["priority"] == 2
        assert make_queue(client, "b", priority=4)["priority"] == 4
        assert make_queue(client, "c")["priority"] == 3
        assert make_queue(client, "d", priority=None)["priority"] == 5

    def test_priority_is_updated_and_null_leaves_it(self, client):
        queue = make_queue(client, "a", priority=2)
        path = f"/api/work_queues/{queue['id']}"
        assert client.patch(path, json={"priority": 5}).status_code == 204
        assert client.get(path).get_json()["priority"] == 5
        assert client.patch(path, json={"priority": None}).status_code == 204
        assert client.get(path).get_json()["priority"] == 5
        assert_422(client.patch(path, json={"priority": -1}), "body", "priority")

    def test_read_by_id_and_name(self, client):
        queue = make_queue(client, "etl")
        assert client.get(f"/api/work_queues/{queue['id']}").get_json() == queue
        assert client.get("/api/work_queues/name/etl").get_json() == queue

    def test_missing_queue_is_404(self, client):
        missing = "00000000-0000-0000-0000-000000000000"
        assert client.get(f"/api/work_queues/{missing}").status_code == 404
        assert client.get("/api/work_queues/name/nope").status_code == 404
        assert client.patch(f"/api/work_queues/{missing}", json={}).status_code == 404
        assert client.delete(f"/api/work_queues/{missing}").status_code == 404
        assert client.post(f"/api/work_queues/{missing}/get_runs", json={}).status_code == 404
        assert client.get(f"/api/work_queues/{missing}/status").status_code == 404

    def test_patch_changes_only_given_fields(self, client):
        queue = make_queue(client, "etl", description="keep", concurrency_limit=2)
        response = client.patch(
            f"/api/work_queues/{queue['id']}", json={"is_paused": True, "concurrency_limit": None}
        )
        assert response.status_code == 204
        read = client.get(f"/api/work_queues/{queue['id']}").get_json()
        assert (read["is_paused"], read["concurrency_limit"], read["description"]) == (
            True,
            None,
            "keep",
        )

    def test_patch_to_a_taken_name_is_409(self, client):
        make_queue(client, "a")
        b = make_queue(client, "b")
        assert client.patch(f"/api/work_queues/{b['id']}", json={"name": "a"}).status_code == 409

    def test_delete(self, client):
        queue = make_queue(client, "etl")
        assert client.delete(f"/api/work_queues/{queue['id']}").status_code == 204
        assert client.get(f"/api/work_queues/{queue['id']}").status_code == 404

    def test_filter_by_name_sorted_and_paged(self, client):
        for name in ("prod-b", "dev", "prod-a"):
            make_queue(client, name)
        body = {"work_queues": {"name": {"startswith_": ["prod"]}}}
        names = [q["name"] for q in client.post("/api/work_queues/filter", json=body).get_json()]
        assert names == ["prod-a", "prod-b"]
        # After the agents' pool's "default" queue and "dev".
        page = client.post("/api/work_queues/filter", json={"limit": 1, "offset": 2}).get_json()
        assert [q["name"] for q in page] == ["prod-a"]

    def test_names_sent_as_ids_by_prefects_ui_select_by_name(self, client):
        """Prefect 2.20's UI looks queues up by name in batches, sending the names as ids too."""
        for name in ("etl", "ml", "other"):
            make_queue(client, name)
        body = {"work_queues": {"id": {"any_": ["etl", "ml"]}, "name": {"any_": ["etl", "ml"]}}}
        response = client.post("/api/work_queues/filter", json=body)
        assert response.status_code == 200, response.get_json()
        assert [q["name"] for q in response.get_json()] == ["etl", "ml"]
        body["work_queues"]["id"]["any_"] = ["etl"]
        assert client.post("/api/work_queues/filter", json=body).status_code == 422


class TestGetRuns:
    def test_due_scheduled_runs_of_the_queue_earliest_first(self, client, flow):
        queue = make_queue(client)
        later = make_run(client, flow, due_in=-5)
        earlier = make_run(client, flow, due_in=-60)
        make_run(client, flow, due_in=3600)  # not due yet
        make_run(client, flow, queue="other")
        pending = make_run(client, flow)
        assert propose(client, pending["id"], "PENDING").status_code == 201
        assert get_runs(client, queue) == [earlier["id"], later["id"]]

    def test_scheduled_before_and_limit(self, client, flow):
        queue = make_queue(client)
        soon = make_run(client, flow, due_in=30)
        make_run(client, flow, due_in=3600)
        assert get_runs(client, queue, scheduled_before=iso(60)) == [soon["id"]]
        assert len(get_runs(client, queue, scheduled_before=iso(7200), limit=1)) == 1

    def test_late_runs_are_handed_out(self, client, flow):
        queue = make_queue(client)
        late = make_run(client, flow, name="Late")
        assert get_runs(client, queue) == [late["id"]]

    def test_paused_queue_hands_out_nothing(self, client, flow):
        queue = make_queue(client, is_paused=True)
        make_run(client, flow)
        assert get_runs(client, queue) == []

    def test_free_concurrency_bounds_the_runs(self, client, flow):
        queue = make_queue(client, concurrency_limit=2)
        running = make_run(client, flow, due_in=-100)
        propose(client, running["id"], "PENDING")
        for _ in range(3):
            make_run(client, flow)
        assert len(get_runs(client, queue)) == 1
        assert len(get_runs(client, queue, limit=5)) == 1

    def test_poll_is_recorded_unless_the_ui_asks(self, client):
        queue = make_queue(client)
        client.post(
            f"/api/work_queues/{queue['id']}/get_runs", json={}, headers={"x-prefect-ui": "true"}
        )
        assert client.get(f"/api/work_queues/{queue['id']}").get_json()["last_polled"] is None
        get_runs(client, queue)
        assert client.get(f"/api/work_queues/{queue['id']}").get_json()["last_polled"]

    def test_status_follows_polls_and_pauses(self, client, db):
        """Prefect 2.20's ``status``: NOT_READY until polled, READY for 60 s after a poll,
        PAUSED while paused."""
        queue = make_queue(client)
        read = lambda: client.get(f"/api/work_queues/{queue['id']}").get_json()["status"]  # noqa: E731
        assert queue["status"] == read() == "NOT_READY"
        get_runs(client, queue)
        assert read() == "READY"
        client.patch(f"/api/work_queues/{queue['id']}", json={"is_paused": True})
        assert read() == "PAUSED"
        client.patch(f"/api/work_queues/{queue['id']}", json={"is_paused": False})
        stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=61)
        WorkQueue.update(last_polled=stale).where(WorkQueue.id == queue["id"]).execute()
        assert read() == "NOT_READY"

    def test_the_ui_listing_is_no_poll(self, client, flow):
        """``x-prefect-ui: true`` (the UI's list of a queue's runs): the runs, and nothing of a
        poll: no last_polled, no agent (even given one), no claim counted."""
        queue = make_queue(client)
        run = make_run(client, flow)
        claims = REGISTRY.get_sample_value("orion_agent_claimed_runs_total")
        listed = client.post(
            f"/api/work_queues/{queue['id']}/get_runs",
            json={"agent_id": str(uuid.uuid4()), "agent_name": "ui"},
            headers={"X-PREFECT-UI": "true"},
        )
        assert [r["id"] for r in listed.get_json()] == [run["id"]]
        assert client.get(f"/api/work_queues/{queue['id']}").get_json()["last_polled"] is None
        assert client.post("/api/agents/filter", json={}).get_json() == []
        assert REGISTRY.get_sample_value("orion_agent_claimed_runs_total") == claims

    def test_the_ui_listing_locks_nothing_and_waits_for_no_lock(self, app, client, flow, db):
        """While an agent holds what it is claiming (PostgreSQL: the run's row, locked FOR
        UPDATE; SQLite: the database's write lock), the UI's listing answers at once and shows
        the run: it neither skips locked runs nor takes a lock itself."""
        queue = make_queue(client)
        run = make_run(client, flow)
        agent = _hold_a_claim(db, run["id"])
        answers = []
        listing = threading.Thread(
            target=lambda: answers.append(
                app.test_client().post(
                    f"/api/work_queues/{queue['id']}/get_runs",
                    json={},
                    headers={"x-prefect-ui": "true"},
                )
            )
        )
        try:
            listing.start()
            listing.join(timeout=10)
            assert answers, "the UI's listing waited for the agent's lock"
        finally:
            agent.rollback()
            agent.close()
            listing.join()
        assert [r["id"] for r in answers[0].get_json()] == [run["id"]]

    def test_legacy_filter_queue_matches_tags(self, client, flow):
        queue = make_queue(client, "legacy", filter={"tags": ["prod"]})
        tagged = make_run(client, flow, queue=None, tags=["prod", "x"])
        make_run(client, flow, queue=None, tags=["dev"])
        assert get_runs(client, queue) == [tagged["id"]]

    def test_bad_body_is_422(self, client):
        queue = make_queue(client)
        assert_422(
            client.post(f"/api/work_queues/{queue['id']}/get_runs", json={"limit": -1}),
            "body",
            "limit",
        )
        assert_422(
            client.post(
                f"/api/work_queues/{queue['id']}/get_runs", json={"scheduled_before": "soon"}
            ),
            "body",
            "scheduled_before",
        )


class TestStatus:
    def status(self, client, queue):
        return client.get(f"/api/work_queues/{queue['id']}/status").get_json()

    def test_never_polled_is_unhealthy(self, client):
        status = self.status(client, make_queue(client))
        assert status["healthy"] is False
        assert status["last_polled"] is None
        assert status["health_check_policy"] == {
            "maximum_late_runs": 0,
            "maximum_seconds_since_last_polled": 60,
        }

    def test_polled_without_late_runs_is_healthy(self, client, flow):
        queue = make_queue(client)
        make_run(client, flow, due_in=600)
        get_runs(client, queue)
        assert self.status(client, queue)["healthy"] is True

    def test_a_late_run_makes_it_unhealthy(self, client, flow):
        queue = make_queue(client)
        make_run(client, flow, due_in=600, name="Late")
        get_runs(client, queue, scheduled_before=iso(-3600))
        status = self.status(client, queue)
        assert (status["healthy"], status["late_runs_count"]) == (False, 1)


class TestEnforcedConcurrency:
    def test_a_claim_beyond_the_limit_aborts_with_a_reason(self, client, flow):
        make_queue(client, concurrency_limit=1)
        first, second = make_run(client, flow), make_run(client, flow)
        assert propose(client, first["id"], "PENDING").get_json()["status"] == "ACCEPT"
        refused = propose(client, second["id"], "PENDING")
        assert refused.status_code == 200
        body = refused.get_json()
        assert body["status"] == "ABORT"
        assert "concurrency limit" in body["details"]["reason"]
        assert client.get(f"/api/flow_runs/{second['id']}").get_json()["state_type"] == (
            "SCHEDULED"
        )
        propose(client, first["id"], "RUNNING")
        propose(client, first["id"], "COMPLETED")
        assert propose(client, second["id"], "PENDING").get_json()["status"] == "ACCEPT"

    def test_unlimited_and_unknown_queues_are_not_limited(self, client, flow):
        make_queue(client)
        for queue in ("default", "no-such-queue"):
            runs = [make_run(client, flow, queue=queue) for _ in range(3)]
            assert all(
                propose(client, r["id"], "PENDING").get_json()["status"] == "ACCEPT" for r in runs
            )

    def test_forced_transitions_are_not_limited(self, client, flow):
        make_queue(client, concurrency_limit=0)
        run = make_run(client, flow)
        forced = client.post(
            f"/api/flow_runs/{run['id']}/set_state",
            json={"state": {"type": "PENDING", "name": "Pending"}, "force": True},
        )
        assert forced.get_json()["status"] == "ACCEPT"

    def test_racing_agents_never_exceed_the_limit(self, app, client, flow):
        make_queue(client, concurrency_limit=3)
        runs = [make_run(client, flow) for _ in range(12)]
        barrier = threading.Barrier(6)
        accepted = []

        def agent(batch):
            http = app.test_client()
            barrier.wait()
            for run in batch:
                if propose(http, run["id"], "PENDING").get_json()["status"] == "ACCEPT":
                    accepted.append(run["id"])

        threads = [threading.Thread(target=agent, args=(runs[i::6],)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(accepted) == 3
        pending = FlowRunState.select().where(FlowRunState.type == "PENDING").count()
        assert pending == 3


def test_a_deployment_names_its_work_queue_into_existence(client, flow):
    for _ in range(2):
        response = client.post(
            "/api/deployments/",
            json={"name": "nightly", "flow_id": flow["id"], "work_queue_name": "from-deployment"},
        )
        assert response.status_code in (200, 201)
    queue = client.get("/api/work_queues/name/from-deployment").get_json()
    assert (queue["is_paused"], queue["concurrency_limit"]) == (False, None)
    names = [q["name"] for q in client.post("/api/work_queues/filter", json={}).get_json()]
    assert names == ["default", "from-deployment"]
