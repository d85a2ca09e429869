"""``/api/v2/concurrency_limits`` (Prefect 2.20 shapes): create, read, update and delete by
id and by name, filter, increment/decrement with decay, leases and their release, bad input,
and 50 racing increments against a limit of 1, on both backends."""

import datetime
import threading
import time
import uuid

import pytest

from app.models import utcnow
from app.services import concurrency_limits_v2
from tests.conftest import assert_422

BASE = "/api/v2/concurrency_limits"


def make(client, name, limit=1, **fields):
    response = client.post(f"{BASE}/", json={"name": name, "limit": limit, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def increment(client, names, slots=1, **extra):
    return client.post(f"{BASE}/increment", json={"names": names, "slots": slots, **extra})


def decrement(client, names, slots=1, **extra):
    return client.post(f"{BASE}/decrement", json={"names": names, "slots": slots, **extra})


def active_slots(client, name):
    return client.get(f"{BASE}/{name}").get_json()["active_slots"]


def test_create_read_update_delete_by_id_and_by_name(client):
    created = make(client, "db-pool", 5, slot_decay_per_second=0.5)
    assert set(created) == {
        "id",
        "created",
        "updated",
        "active",
        "name",
        "limit",
        "active_slots",
        "denied_slots",
        "slot_decay_per_second",
        "avg_slot_occupancy_seconds",
    }
    assert (created["active"], created["limit"], created["active_slots"]) == (True, 5, 0)
    assert created["avg_slot_occupancy_seconds"] == 2.0
    assert client.get(f"{BASE}/{created['id']}").get_json()["name"] == "db-pool"
    assert client.get(f"{BASE}/db-pool").get_json()["id"] == created["id"]

    assert client.patch(f"{BASE}/{created['id']}", json={"limit": 7}).status_code == 204
    response = client.patch(f"{BASE}/db-pool", json={"name": "pool", "active": False})
    assert response.status_code == 204
    changed = client.get(f"{BASE}/{created['id']}").get_json()
    assert (changed["name"], changed["limit"], changed["active"]) == ("pool", 7, False)
    assert client.get(f"{BASE}/db-pool").status_code == 404

    assert client.post(f"{BASE}/", json={"name": "pool", "limit": 1}).status_code == 409
    assert client.delete(f"{BASE}/pool").status_code == 204
    assert client.delete(f"{BASE}/{created['id']}").status_code == 404
    other = make(client, "other")
    assert client.delete(f"{BASE}/{other['id']}").status_code == 204
    assert client.get(f"{BASE}/other").status_code == 404
    assert client.patch(f"{BASE}/{uuid.uuid4()}", json={"limit": 1}).status_code == 404


def test_filter_pages_by_name(client):
    for name in ("gamma", "alpha", "beta"):
        make(client, name)
    listed = client.post(f"{BASE}/filter", json={}).get_json()
    assert [row["name"] for row in listed] == ["alpha", "beta", "gamma"]
    page = client.post(f"{BASE}/filter", json={"limit": 1, "offset": 1}).get_json()
    assert [row["name"] for row in page] == ["beta"]


def test_increment_decrement_and_423_with_retry_after(client):
    make(client, "a", 2)
    make(client, "b", 1)
    granted = increment(client, ["a", "b"])
    assert granted.status_code == 200
    assert sorted(row["name"] for row in granted.get_json()) == ["a", "b"]
    assert set(granted.get_json()[0]) == {"id", "name", "limit"}
    # b is full: nothing is taken from a either.
    refused = increment(client, ["a", "b"])
    assert refused.status_code == 423
    assert float(refused.headers["Retry-After"]) > 0
    assert (active_slots(client, "a"), active_slots(client, "b")) == (1, 1)
    assert client.get(f"{BASE}/b").get_json()["denied_slots"] == 1
    assert decrement(client, ["a", "b"], occupancy_seconds=4.0).status_code == 200
    assert (active_slots(client, "a"), active_slots(client, "b")) == (0, 0)
    # The average occupancy moves halfway to 4 s (it averages 2 samples per slot of the limit).
    assert client.get(f"{BASE}/b").get_json()["avg_slot_occupancy_seconds"] == pytest.approx(3.0)
    # Never below zero.
    assert decrement(client, ["a"], 5).status_code == 200
    assert active_slots(client, "a") == 0
    # An unknown name becomes an inactive limit, which limits nothing.
    assert increment(client, ["fresh"], 1).status_code == 200
    assert increment(client, ["fresh"], 1).status_code == 200
    fresh = client.get(f"{BASE}/fresh").get_json()
    assert (fresh["active"], fresh["limit"], fresh["active_slots"]) == (False, 1, 0)


def test_rate_limit_slots_decay(client):
    make(client, "api", 2, slot_decay_per_second=4.0)
    make(client, "plain", 2)
    assert increment(client, ["api"], 2, mode="rate_limit").status_code == 200
    refused = increment(client, ["api"], 1, mode="rate_limit")
    assert refused.status_code == 423
    # Prefect's estimate: (1 asked + the slots denied before) at 1/4 s each.
    assert float(refused.headers["Retry-After"]) == pytest.approx(0.25)
    refused = increment(client, ["api"], 1, mode="rate_limit")
    assert float(refused.headers["Retry-After"]) == pytest.approx(0.5)
    deadline = time.monotonic() + 5
    while increment(client, ["api"], 1, mode="rate_limit").status_code == 423:
        assert time.monotonic() < deadline, "the rate limit's slots never decayed"
        time.sleep(0.05)
    body = assert_422(increment(client, ["plain"], 1, mode="rate_limit"), "body", "names")
    assert "do not have a decay configured" in str(body)


def test_decay_keeps_the_fraction_of_a_slot():
    limit = concurrency_limits_v2.Limit(
        active_slots=3, denied_slots=0, slot_decay_per_second=1.0, decayed_at=utcnow()
    )
    later = limit.decayed_at + datetime.timedelta(seconds=1.5)
    slots = concurrency_limits_v2.decayed(limit, later)
    assert slots.active == 2
    assert slots.clock == limit.decayed_at + datetime.timedelta(seconds=1)


def test_leases_are_released_once_when_they_expire(client):
    make(client, "gpu", 1)
    holder, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert increment(client, ["gpu"], holder=holder, lease_seconds=30).status_code == 200
    renew = client.post(f"{BASE}/leases/renew", json={"holder": holder, "lease_seconds": 30})
    assert (renew.status_code, renew.get_json()) == (200, 1)
    assert concurrency_limits_v2.release_expired_leases() == 0
    assert active_slots(client, "gpu") == 1
    # Past the expiry the slot comes back, and a late decrement gives back nothing more.
    later = utcnow() + datetime.timedelta(seconds=31)
    assert concurrency_limits_v2.release_expired_leases(now=later) == 1
    assert active_slots(client, "gpu") == 0
    assert increment(client, ["gpu"], holder=other, lease_seconds=30).status_code == 200
    assert decrement(client, ["gpu"], holder=holder).status_code == 200
    assert active_slots(client, "gpu") == 1
    lost = client.post(f"{BASE}/leases/renew", json={"holder": holder, "lease_seconds": 5})
    assert lost.status_code == 404
    assert decrement(client, ["gpu"], holder=other).status_code == 200
    assert active_slots(client, "gpu") == 0


def test_setting_active_slots_shrinks_the_leases_to_them(client):
    make(client, "gpu", 4)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert increment(client, ["gpu"], 2, holder=first, lease_seconds=10).status_code == 200
    assert increment(client, ["gpu"], 2, holder=second, lease_seconds=30).status_code == 200
    # An operator says one slot is in use: the lease that expires first loses its slots
    # first, so only the other holder's lease holds one.
    assert client.patch(f"{BASE}/gpu", json={"active_slots": 1}).status_code == 204
    assert (
        client.post(f"{BASE}/leases/renew", json={"holder": first, "lease_seconds": 5}).status_code
        == 404
    )
    # A newcomer takes the freed slots; the first holder's late decrement frees none of them.
    newcomer = str(uuid.uuid4())
    assert increment(client, ["gpu"], 3, holder=newcomer, lease_seconds=30).status_code == 200
    assert decrement(client, ["gpu"], 2, holder=first).status_code == 200
    assert active_slots(client, "gpu") == 4
    assert decrement(client, ["gpu"], 2, holder=second).status_code == 200
    assert active_slots(client, "gpu") == 3
    # Raising the count or changing anything else keeps the leases whole.
    assert client.patch(f"{BASE}/gpu", json={"active_slots": 4, "limit": 5}).status_code == 204
    assert decrement(client, ["gpu"], 3, holder=newcomer).status_code == 200
    assert active_slots(client, "gpu") == 1
    later = utcnow() + datetime.timedelta(seconds=60)
    assert concurrency_limits_v2.release_expired_leases(now=later) == 0


def test_fifty_racing_increments_grant_exactly_one(app, client):
    make(client, "one", 1)
    barrier = threading.Barrier(50)
    statuses = []

    def race():
        http = app.test_client()
        barrier.wait()
        statuses.append(increment(http, ["one"]).status_code)

    threads = [threading.Thread(target=race) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] + [423] * 49
    limit = client.get(f"{BASE}/one").get_json()
    assert (limit["active_slots"], limit["denied_slots"]) == (1, 49)


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"limit": 1}, ("body", "name")),
        ({"name": "a/b", "limit": 1}, ("body", "name")),
        ({"name": "ok"}, ("body", "limit")),
        ({"name": "ok", "limit": -1}, ("body", "limit")),
        ({"name": "ok", "limit": "many"}, ("body", "limit")),
        ({"name": "ok", "limit": 1, "active_slots": -2}, ("body", "active_slots")),
        (
            {"name": "ok", "limit": 1, "slot_decay_per_second": -1},
            ("body", "slot_decay_per_second"),
        ),
        ({"name": "ok", "limit": 1, "active": "maybe"}, ("body", "active")),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, body, loc):
    assert_422(client.post(f"{BASE}/", json=body), *loc)
    assert client.post(f"{BASE}/filter", json={}).get_json() == []


def test_bad_slot_calls_are_422_naming_the_field(client):
    make(client, "small", 2)
    assert_422(increment(client, ["small"], 0), "body", "slots")
    assert_422(increment(client, [], 1), "body", "names")
    assert_422(client.post(f"{BASE}/increment", json={"slots": 1}), "body", "names")
    assert_422(increment(client, ["small"], 1, mode="queue"), "body", "mode")
    assert_422(increment(client, ["small"], 3), "body", "slots")
    assert_422(increment(client, ["small"], 1, lease_seconds=5), "body", "lease_seconds")
    assert_422(increment(client, ["small"], 1, holder="me"), "body", "holder")
    assert_422(decrement(client, ["small"], 1, occupancy_seconds=0), "body", "occupancy_seconds")
    assert_422(client.post(f"{BASE}/leases/renew", json={"holder": str(uuid.uuid4())}), "body")
    assert_422(client.patch(f"{BASE}/small", json={"limit": -5}), "body", "limit")
    assert_422(client.post(f"{BASE}/filter", json={"offset": -1}), "body", "offset")
    assert active_slots(client, "small") == 0
