"""Task concurrency slots as leases: SecureTaskConcurrencySlots and ReleaseTaskConcurrencySlots.

Driven through app.services.orchestration (and the API where settings matter) on SQLite and
PostgreSQL, ending with task runs racing for the slots of one tag from several threads.
"""

import datetime
import threading
import time
import uuid

import pytest

from app.db import database
from app.models import ConcurrencyLimit, ConcurrencySlot, TaskRun, TaskRunState, utcnow
from app.orchestration.core_policy import SecureTaskConcurrencySlots
from app.orchestration.rules import SetStateStatus
from app.schemas.states import StateCreateSchema
from app.services import concurrency_limits
from app.services.orchestration import set_task_run_state

ACCEPT, REJECT, WAIT, ABORT = (
    SetStateStatus.ACCEPT,
    SetStateStatus.REJECT,
    SetStateStatus.WAIT,
    SetStateStatus.ABORT,
)


def propose(run_id, type_, force=False, slot_settings=None, name=None, **details):
    body = {"type": type_, "state_details": details}
    if name:
        body["name"] = name
    return set_task_run_state(
        run_id, StateCreateSchema().load(body), force=force, slot_settings=slot_settings
    )


def leases(run_id=None):
    """``{(tag, task run id): expires}`` of every lease (of one run if given)."""
    query = ConcurrencySlot.select(
        ConcurrencyLimit.tag, ConcurrencySlot.task_run, ConcurrencySlot.expires
    ).join(ConcurrencyLimit)
    if run_id is not None:
        query = query.where(ConcurrencySlot.task_run == run_id)
    return {(tag, str(run)): expires for tag, run, expires in query.tuples()}


def limit(tag, value):
    return concurrency_limits.upsert_limit(tag, value)[0]


@pytest.fixture(autouse=True)
def app_ctx(app, db):
    with app.app_context():
        yield


@pytest.fixture
def new_task(client, flow_run):
    """A factory of Pending task runs (of a RUNNING flow run) with the given tags and state."""
    response = client.post(
        f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert response.get_json()["status"] == "ACCEPT"

    def make(tags=(), state=None):
        body = {
            "flow_run_id": flow_run["id"],
            "task_key": "t",
            "dynamic_key": str(uuid.uuid4()),
            "tags": list(tags),
        }
        if state is not None:
            body["state"] = state
        response = client.post("/api/task_runs/", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    return make


def test_limit_zero_aborts(new_task):
    limit("gpu", 0)
    run = new_task(["cpu", "gpu"])
    result = propose(run, "RUNNING")
    assert result.status is ABORT and result.state is None
    assert "'gpu'" in result.details["reason"] and "deadlock" in result.details["reason"]
    assert TaskRun.get_by_id(run).state_type == "PENDING"
    assert leases() == {}


def test_full_limit_waits_with_the_configured_delay(new_task):
    limit("db", 1)
    holder, waiter = new_task(["db"]), new_task(["db"])
    assert propose(holder, "RUNNING").status is ACCEPT

    result = propose(waiter, "RUNNING")
    assert (result.status, result.state, result.details["delay_seconds"]) == (
        WAIT,
        None,
        SecureTaskConcurrencySlots.WAIT_SECONDS,
    )
    assert "'db'" in result.details["reason"]
    result = propose(waiter, "RUNNING", slot_settings={"slot_wait_seconds": 7})
    assert (result.status, result.details["delay_seconds"]) == (WAIT, 7)
    assert TaskRun.get_by_id(waiter).state_type == "PENDING"
    assert list(leases()) == [("db", holder)]


def test_the_api_passes_the_slot_settings(make_app, new_task):
    limit("db", 1)
    holder, waiter = new_task(["db"]), new_task(["db"])
    client = make_app(
        TASK_CONCURRENCY_SLOT_WAIT_SECONDS=11, TASK_CONCURRENCY_LEASE_SECONDS=60
    ).test_client()
    before = utcnow()
    body = client.post(
        f"/api/task_runs/{holder}/set_state", json={"state": {"type": "RUNNING"}}
    ).get_json()
    assert body["status"] == "ACCEPT"
    expires = leases(holder)[("db", holder)]
    assert before + datetime.timedelta(seconds=60) <= expires
    assert expires <= utcnow() + datetime.timedelta(seconds=60)
    body = client.post(
        f"/api/task_runs/{waiter}/set_state", json={"state": {"type": "RUNNING"}}
    ).get_json()
    assert (body["status"], body["details"]["delay_seconds"]) == ("WAIT", 11)


def test_a_run_leases_every_limited_tag_or_none(new_task):
    limit("a", 2)
    limit("b", 1)
    first, second = new_task(["a", "b", "unlimited"]), new_task(["b", "a"])
    result = propose(first, "RUNNING", slot_settings={"slot_lease_seconds": 120})
    assert result.status is ACCEPT
    held = leases(first)
    assert sorted(held) == [("a", first), ("b", first)]
    for expires in held.values():
        assert expires - result.state.timestamp <= datetime.timedelta(seconds=120)
        assert expires - result.state.timestamp > datetime.timedelta(seconds=119)

    result = propose(second, "RUNNING")
    assert result.status is WAIT and "'b'" in result.details["reason"]
    assert leases(second) == {}


def test_runs_without_limited_tags_take_no_lease(new_task):
    limit("db", 0)
    for tags in ([], ["web"]):
        assert propose(new_task(tags), "RUNNING").status is ACCEPT
    assert leases() == {}


@pytest.mark.parametrize(
    "type_, force, name",
    [
        ("COMPLETED", False, None),
        ("FAILED", False, None),
        ("CRASHED", False, None),
        ("CANCELLED", False, None),
        ("PENDING", True, None),
        ("SCHEDULED", True, None),
        ("COMPLETED", True, None),
        ("PAUSED", True, None),
    ],
)
def test_leaving_running_frees_the_slot(new_task, type_, force, name):
    limit("db", 1)
    holder, waiter = new_task(["db"]), new_task(["db"])
    assert propose(holder, "RUNNING").status is ACCEPT
    assert propose(waiter, "RUNNING").status is WAIT

    assert propose(holder, type_, force=force, name=name).status is ACCEPT
    assert leases(holder) == {}
    assert propose(waiter, "RUNNING").status is ACCEPT
    assert list(leases()) == [("db", waiter)]


def test_a_retry_frees_the_slot_and_cancelling_keeps_it(new_task):
    limit("db", 2)
    retried = new_task(["db"])
    TaskRun.update(empirical_policy={"retries": 1, "retry_delay": 0}).where(
        TaskRun.id == retried
    ).execute()
    cancelling = new_task(["db"])
    for run in (retried, cancelling):
        assert propose(run, "RUNNING").status is ACCEPT

    result = propose(retried, "FAILED")
    assert (result.status, result.state.name) == (REJECT, "AwaitingRetry")
    assert leases(retried) == {}
    assert propose(cancelling, "CANCELLING").status is ACCEPT
    assert list(leases(cancelling)) == [("db", cancelling)]
    assert propose(cancelling, "CANCELLED").status is ACCEPT
    assert leases() == {}


def test_an_expired_lease_frees_its_slot(new_task):
    db_limit = limit("db", 1)
    crashed, waiter = new_task(["db"]), new_task(["db"])
    assert propose(crashed, "RUNNING").status is ACCEPT
    ConcurrencySlot.update(expires=utcnow() - datetime.timedelta(seconds=1)).execute()
    assert concurrency_limits.active_slots([db_limit]) == {db_limit.id: []}

    assert propose(waiter, "RUNNING").status is ACCEPT
    holders = concurrency_limits.active_slots([db_limit])[db_limit.id]
    assert [str(run) for run in holders] == [waiter]


def test_a_held_lease_is_renewed_not_counted(new_task):
    db_limit = limit("db", 1)
    run = new_task(["db"])
    concurrency_limits.reset_limit("db", [uuid.UUID(run)], lease_seconds=5)
    old = leases(run)[("db", run)]
    assert propose(run, "RUNNING").status is ACCEPT
    assert leases(run)[("db", run)] > old + datetime.timedelta(seconds=200)
    assert ConcurrencySlot.select().where(ConcurrencySlot.limit == db_limit).count() == 1


def test_a_fizzled_rule_puts_the_leases_back(new_task):
    limit("a", 1)
    limit("b", 1)
    later = (utcnow() + datetime.timedelta(hours=1)).isoformat()
    run = new_task(
        ["a", "b"], state={"type": "SCHEDULED", "state_details": {"scheduled_time": later}}
    )
    concurrency_limits.reset_limit("a", [uuid.UUID(run)], lease_seconds=5)
    before = leases(run)

    result = propose(run, "RUNNING")
    assert result.status is WAIT and result.details["reason"] == "Scheduled time is in the future."
    assert leases(run) == before
    concurrency_limits.reset_limit("a", None, lease_seconds=5)
    assert propose(run, "RUNNING").status is WAIT
    assert leases() == {}


def test_active_slots_lists_the_holders(new_task):
    db_limit, web_limit = limit("db", 3), limit("web", 3)
    runs = sorted(new_task(["db"]) for _ in range(3))
    for run in runs:
        assert propose(run, "RUNNING").status is ACCEPT
    holders = concurrency_limits.active_slots([db_limit, web_limit])
    assert sorted(str(run) for run in holders[db_limit.id]) == runs
    assert holders[web_limit.id] == []


def test_deleting_a_task_run_drops_its_leases(client, new_task):
    limit("db", 1)
    run = new_task(["db"])
    assert propose(run, "RUNNING").status is ACCEPT
    assert client.delete(f"/api/task_runs/{run}").status_code == 204
    assert leases() == {}


def test_runs_racing_for_two_slots_never_exceed_them(app, new_task):
    """20 task runs in 4 threads under a limit of 2: each thread proposes RUNNING for its runs
    (again at once on WAIT), completes them, and never are more than 2 running (as the
    threads see it, and in the database: RUNNING runs and unexpired leases)."""
    limit("db", 2)
    runs = [new_task(["db"]) for _ in range(20)]
    guard = threading.Lock()
    running = []
    peaks = []
    errors = []

    def worker(mine):
        client = app.test_client()
        try:
            for run in mine:
                while True:
                    body = client.post(
                        f"/api/task_runs/{run}/set_state", json={"state": {"type": "RUNNING"}}
                    ).get_json()
                    if body["status"] == "ACCEPT":
                        break
                    assert body["status"] == "WAIT", body
                    time.sleep(0.001)
                with guard:
                    running.append(run)
                    peaks.append(len(running))
                in_db = (
                    TaskRun.select()
                    .where(TaskRun.id.in_(runs) & (TaskRun.state_type == "RUNNING"))
                    .count()
                )
                peaks.append(in_db)
                peaks.append(
                    ConcurrencySlot.select().where(ConcurrencySlot.expires > utcnow()).count()
                )
                with guard:
                    running.remove(run)
                body = client.post(
                    f"/api/task_runs/{run}/set_state", json={"state": {"type": "COMPLETED"}}
                ).get_json()
                assert body["status"] == "ACCEPT", body
        except Exception as error:  # reported by the main thread
            errors.append(error)
        finally:
            database.close()

    threads = [threading.Thread(target=worker, args=(runs[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert max(peaks) <= 2 and len(peaks) == 60
    assert TaskRun.select().where(TaskRun.state_type == "COMPLETED").count() == 20
    assert TaskRunState.select().where(TaskRunState.type == "RUNNING").count() == 20
    assert leases() == {}
