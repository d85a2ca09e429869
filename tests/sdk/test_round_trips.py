"""A task's life in HTTP round trips (issue 21 part 5): two, without giving up a decision
the server makes.

The SDK creates a task run and proposes Running in one call
(``POST /api/task_runs/create_and_set_state``) and proposes the final state in the next; its
logs go in batches. Every request the flow's client sends is counted (an httpx request hook on
the real client, against the real app in-process, both backends); the server still decides
cache hits (Cached in the first answer), concurrency slots (a tag limit of 0 aborts in the
first answer) and retries (AwaitingRetry, then Running again).
"""

import datetime
import re
from collections import Counter

import pytest

from app.models import TaskRun, TaskRunState
from client import OrionClient, flow, task, using_client
from client.api.settings import Settings
from client.sdk.caching import task_input_hash
from client.sdk.engine import RunAborted

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def counted(app, db, tmp_path, monkeypatch):
    """The SDK's client for the test, and a Counter of ``"METHOD path"`` (ids as ``{id}``)
    of every request it sends."""
    monkeypatch.setenv("ORION_RESULTS_STORAGE", str(tmp_path / "results"))
    requests = Counter()

    def count(request):
        path = request.url.path.split("/api/", 1)[1]
        requests[f"{request.method} {UUID.sub('{id}', path)}"] += 1

    settings = Settings(api_retries=2, api_retry_delay_seconds=0.01, heartbeat_seconds=60)
    with (
        OrionClient(
            app, settings=settings, httpx_settings={"event_hooks": {"request": [count]}}
        ) as orion,
        using_client(orion),
    ):
        yield orion, requests


def task_requests(requests):
    return {key: n for key, n in requests.items() if "task_runs" in key}


def test_a_task_costs_two_round_trips_and_logs_go_in_batches(counted):
    _, requests = counted

    @task
    def double(x):
        return 2 * x

    @flow
    def many(n):
        return sum(double(i) for i in range(n))

    assert many(50) == 2 * sum(range(50))
    assert task_requests(requests) == {
        "POST task_runs/create_and_set_state": 50,
        "POST task_runs/{id}/set_state": 50,
    }
    # 50 tasks log "Finished in state Completed()" each, and the flow its own lines: sent
    # in a handful of batches, not one request a record.
    assert requests["POST logs/"] <= 3
    assert sum(requests.values()) <= 2 * 50 + 10, requests


def test_a_cache_hit_is_the_servers_answer_in_one_round_trip(counted):
    _, requests = counted
    calls = []

    @task(cache_key_fn=task_input_hash, cache_expiration=datetime.timedelta(hours=1))
    def fetch(x):
        calls.append(x)
        return x + 1

    @flow
    def twice():
        return fetch(1), fetch(1)

    assert twice() == (2, 2)
    assert calls == [1]  # the second call was Cached by the server
    assert task_requests(requests) == {
        "POST task_runs/create_and_set_state": 2,
        "POST task_runs/{id}/set_state": 1,
    }


def test_a_full_concurrency_slot_is_refused_in_the_first_round_trip(counted):
    orion, requests = counted
    orion.create_concurrency_limit("closed", 0)

    @task(tags=["closed"])
    def blocked():
        raise AssertionError("a task with no slot must not run")

    @flow
    def guarded():
        try:
            blocked()
        except RunAborted as error:
            return str(error)

    assert "was not started" in guarded()
    assert task_requests(requests) == {"POST task_runs/create_and_set_state": 1}


def test_a_retry_is_the_servers_decision_and_costs_one_round_trip_more(counted):
    _, requests = counted
    attempts = []

    @task(retries=1, retry_delay_seconds=0)
    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        return "ok"

    @flow
    def retried():
        return flaky()

    assert retried() == "ok"
    # Running (created), Failed -> AwaitingRetry, Running again (Retrying), Completed.
    assert task_requests(requests) == {
        "POST task_runs/create_and_set_state": 1,
        "POST task_runs/{id}/set_state": 3,
    }
    (task_run,) = TaskRun.select()
    states = TaskRunState.select().where(TaskRunState.task_run == task_run.id)
    names = [s.name for s in states.order_by(TaskRunState.timestamp)]
    assert names == ["Running", "AwaitingRetry", "Retrying", "Completed"]
