"""Idempotent creates raced by 16 threads: exactly one row per key, every response 2xx."""

import threading

import pytest

from app.models import Flow, FlowRun, TaskRun

THREADS = 16


def race(app, path, body):
    """POST ``body`` to ``path`` from THREADS threads released together; return responses."""
    barrier = threading.Barrier(THREADS)
    responses = [None] * THREADS

    def worker(index):
        client = app.test_client()
        barrier.wait()
        responses[index] = client.post(path, json=body)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def check(responses):
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (THREADS - 1) + [201], codes
    assert len({r.get_json()["id"] for r in responses}) == 1


@pytest.mark.parametrize("attempt", range(2))
def test_flow_create_race(app, client, attempt):
    check(race(app, "/api/flows/", {"name": "raced"}))
    assert Flow.select().where(Flow.name == "raced").count() == 1


def test_flow_run_create_race(app, client, flow):
    body = {"flow_id": flow["id"], "idempotency_key": "once"}
    check(race(app, "/api/flow_runs/", body))
    assert FlowRun.select().where(FlowRun.idempotency_key == "once").count() == 1


def test_task_run_create_race(app, client, flow_run):
    body = {"flow_run_id": flow_run["id"], "task_key": "t", "dynamic_key": "7"}
    check(race(app, "/api/task_runs/", body))
    assert TaskRun.select().where(TaskRun.dynamic_key == "7").count() == 1
