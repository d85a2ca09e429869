"""/api/concurrency_limits: upsert by tag, reads, deletes, filter, reset, active_slots, races."""

import datetime
import threading
import uuid

import pytest
from playhouse.test_utils import count_queries

from app.models import ConcurrencyLimit, ConcurrencySlot, utcnow
from app.schemas.core import ConcurrencyLimitSchema
from tests.conftest import assert_422

BASE = "/api/concurrency_limits"
THREADS = 16


def create(client, tag, limit):
    response = client.post(f"{BASE}/", json={"tag": tag, "concurrency_limit": limit})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


@pytest.fixture
def running_task(client, flow_run):
    """Make task runs of a RUNNING flow run and propose RUNNING for them; returns a factory
    ``make(tags) -> (task run id, set_state status)``."""
    client.post(f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}})

    def make(tags):
        task = client.post(
            "/api/task_runs/",
            json={
                "flow_run_id": flow_run["id"],
                "task_key": "t",
                "dynamic_key": str(uuid.uuid4()),
                "tags": tags,
            },
        ).get_json()
        result = client.post(
            f"/api/task_runs/{task['id']}/set_state", json={"state": {"type": "RUNNING"}}
        ).get_json()
        return task["id"], result["status"]

    return make


def test_create_is_an_upsert_by_tag(client):
    response = client.post(f"{BASE}/", json={"tag": "db", "concurrency_limit": 2})
    assert response.status_code == 201
    created = response.get_json()
    assert ConcurrencyLimitSchema().load(created)
    assert (created["tag"], created["concurrency_limit"], created["active_slots"]) == ("db", 2, [])

    response = client.post(f"{BASE}/", json={"tag": "db", "concurrency_limit": 0})
    assert response.status_code == 200
    updated = response.get_json()
    assert (updated["id"], updated["concurrency_limit"]) == (created["id"], 0)
    assert updated["created"] == created["created"] and updated["updated"] >= created["updated"]
    assert ConcurrencyLimit.select().count() == 1


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"concurrency_limit": 1}, ("body", "tag")),
        ({"tag": "", "concurrency_limit": 1}, ("body", "tag")),
        ({"tag": "   ", "concurrency_limit": 1}, ("body", "tag")),
        ({"tag": "x" * 256, "concurrency_limit": 1}, ("body", "tag")),
        ({"tag": None, "concurrency_limit": 1}, ("body", "tag")),
        ({"tag": "db"}, ("body", "concurrency_limit")),
        ({"tag": "db", "concurrency_limit": -1}, ("body", "concurrency_limit")),
        ({"tag": "db", "concurrency_limit": "5"}, ("body", "concurrency_limit")),
        ({"tag": "db", "concurrency_limit": 1.5}, ("body", "concurrency_limit")),
        ({"tag": "db", "concurrency_limit": True}, ("body", "concurrency_limit")),
    ],
)
def test_create_rejects_bad_bodies(client, body, loc):
    assert_422(client.post(f"{BASE}/", json=body), *loc)
    assert ConcurrencyLimit.select().count() == 0


def test_create_rejects_a_body_that_is_not_an_object(client):
    assert_422(client.post(f"{BASE}/", json=["db", 1]), "body")


@pytest.mark.parametrize(
    "tag, path",
    [
        ("db", "db"),
        ("team/db", "team/db"),
        ("a b%", "a%20b%25"),
        ("reset", "reset"),
    ],
)
def test_read_by_id_and_by_tag(client, tag, path):
    created = create(client, tag, 3)
    by_id = client.get(f"{BASE}/{created['id']}")
    by_tag = client.get(f"{BASE}/tag/{path}")
    assert by_id.status_code == by_tag.status_code == 200
    assert by_id.get_json() == by_tag.get_json() == created


def test_reads_of_missing_or_malformed_ids_and_tags(client):
    create(client, "db", 1)
    missing = str(uuid.uuid4())
    response = client.get(f"{BASE}/{missing}")
    assert response.status_code == 404 and missing in response.get_json()["detail"]
    response = client.get(f"{BASE}/tag/nope")
    assert response.status_code == 404 and "'nope'" in response.get_json()["detail"]
    assert_422(client.get(f"{BASE}/not-a-uuid"), "path")
    assert_422(client.delete(f"{BASE}/not-a-uuid"), "path")


def test_delete_by_id_and_by_tag_answer_null_and_drop_leases(client, running_task):
    by_id = create(client, "a", 5)
    create(client, "team/b", 5)
    run_id, status = running_task(["a", "team/b"])
    assert status == "ACCEPT" and ConcurrencySlot.select().count() == 2

    response = client.delete(f"{BASE}/{by_id['id']}")
    assert (response.status_code, response.get_json()) == (200, None)
    assert client.get(f"{BASE}/{by_id['id']}").status_code == 404
    response = client.delete(f"{BASE}/tag/team/b")
    assert (response.status_code, response.get_json()) == (200, None)
    assert client.get(f"{BASE}/tag/team/b").status_code == 404
    assert ConcurrencySlot.select().count() == 0
    assert client.get(f"/api/task_runs/{run_id}").status_code == 200

    assert client.delete(f"{BASE}/{by_id['id']}").status_code == 404
    response = client.delete(f"{BASE}/tag/team/b")
    assert response.status_code == 404 and "'team/b'" in response.get_json()["detail"]


def test_filter_orders_by_tag_and_pages(client):
    for tag in ("c", "a", "b"):
        create(client, tag, 1)
    response = client.post(f"{BASE}/filter", json={})
    assert response.status_code == 200
    assert [limit["tag"] for limit in response.get_json()] == ["a", "b", "c"]
    assert ConcurrencyLimitSchema(many=True).load(response.get_json())
    page = client.post(f"{BASE}/filter", json={"limit": 1, "offset": 1}).get_json()
    assert [limit["tag"] for limit in page] == ["b"]
    nulls = client.post(f"{BASE}/filter", json={"limit": None, "offset": None}).get_json()
    assert len(nulls) == 3
    assert client.post(f"{BASE}/filter", json={"offset": 5}).get_json() == []
    assert len(client.post(f"{BASE}/filter").get_json()) == 3


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"limit": -1}, ("body", "limit")),
        ({"limit": 100000}, ("body", "limit")),
        ({"offset": -1}, ("body", "offset")),
        ({"limit": "many"}, ("body", "limit")),
        ({"tags": ["a"]}, ("body", "tags")),
    ],
)
def test_filter_rejects_bad_bodies(client, body, loc):
    assert_422(client.post(f"{BASE}/filter", json=body), *loc)


def test_active_slots_list_unexpired_holders_sorted(client, running_task):
    create(client, "db", 3)
    holders = sorted(running_task(["db", "other"])[0] for _ in range(2))
    expired, _ = running_task([])
    limit = ConcurrencyLimit.get(ConcurrencyLimit.tag == "db")
    ConcurrencySlot.create(
        limit=limit, task_run=expired, expires=utcnow() - datetime.timedelta(seconds=1)
    )

    assert client.get(f"{BASE}/tag/db").get_json()["active_slots"] == holders
    assert client.get(f"{BASE}/{limit.id}").get_json()["active_slots"] == holders
    assert client.post(f"{BASE}/filter", json={}).get_json()[0]["active_slots"] == holders


def test_filter_reads_active_slots_in_one_query_per_page(app, client, running_task):
    create(client, "t0", 5)
    running_task(["t0"])

    def queries():
        with app.app_context(), count_queries() as counter:
            response = client.post(f"{BASE}/filter", json={})
        return counter.count, response.get_json()

    few, page = queries()
    assert [len(limit["active_slots"]) for limit in page] == [1]
    for index in range(1, 6):
        create(client, f"t{index}", 5)
        running_task([f"t{index}"])
    many, page = queries()
    assert [len(limit["active_slots"]) for limit in page] == [1] * 6
    assert many == few


def test_reset_drops_leases_then_applies_the_override(client, running_task):
    created = create(client, "db", 1)
    holder, _ = running_task(["db"])
    waiting, status = running_task(["db"])
    assert status == "WAIT"

    response = client.post(f"{BASE}/tag/db/reset")
    assert response.status_code == 200
    assert response.get_json() == dict(
        created, active_slots=[], updated=response.get_json()["updated"]
    )
    assert ConcurrencySlot.select().count() == 0

    chosen = sorted([holder, waiting])
    response = client.post(f"{BASE}/tag/db/reset", json={"slot_override": chosen + [holder]})
    assert response.status_code == 200 and response.get_json()["active_slots"] == chosen
    assert client.get(f"{BASE}/tag/db").get_json()["active_slots"] == chosen

    response = client.post(f"{BASE}/tag/db/reset", json={"slot_override": None})
    assert (response.status_code, response.get_json()["active_slots"]) == (200, [])


def test_reset_errors_change_nothing(client, running_task):
    create(client, "db", 2)
    holder, _ = running_task(["db"])
    missing = str(uuid.uuid4())

    response = client.post(f"{BASE}/tag/db/reset", json={"slot_override": [holder, missing]})
    assert response.status_code == 404 and missing in response.get_json()["detail"]
    response = client.post(f"{BASE}/tag/nope/reset", json={"slot_override": [holder]})
    assert response.status_code == 404 and "'nope'" in response.get_json()["detail"]
    assert_422(
        client.post(f"{BASE}/tag/db/reset", json={"slot_override": ["x"]}), "body", "slot_override"
    )
    assert_422(
        client.post(f"{BASE}/tag/db/reset", json={"slot_override": holder}), "body", "slot_override"
    )
    assert client.get(f"{BASE}/tag/db").get_json()["active_slots"] == [holder]


@pytest.mark.parametrize("attempt", range(2))
def test_upsert_race(app, client, attempt):
    barrier = threading.Barrier(THREADS)
    responses = [None] * THREADS

    def worker(index):
        test_client = app.test_client()
        barrier.wait()
        responses[index] = test_client.post(
            f"{BASE}/", json={"tag": "raced", "concurrency_limit": index}
        )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (THREADS - 1) + [201], codes
    assert len({r.get_json()["id"] for r in responses}) == 1
    rows = list(ConcurrencyLimit.select())
    assert len(rows) == 1
    assert rows[0].concurrency_limit in {r.get_json()["concurrency_limit"] for r in responses}
