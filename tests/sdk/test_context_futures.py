"""Run contexts, tags, task runners and futures (no server involved)."""

import threading
import time

import pytest

from client.sdk.context import (
    FlowRunContext,
    current_tags,
    flow_run_scope,
    get_flow_run_context,
    get_run_context,
    tags,
)
from client.sdk.futures import (
    ConcurrentTaskRunner,
    OrionFuture,
    Outcome,
    SequentialTaskRunner,
    ThreadPoolTaskRunner,
)


def _flow_context():
    return FlowRunContext(
        flow=None,
        flow_run={"id": "f1", "name": "x"},
        client=None,
        task_runner=None,
        parameters={},
        result_storage=None,
        persist_result=None,
        result_serializer="pickle",
    )


def test_tags_nest_and_unwind():
    assert current_tags() == frozenset()
    with tags("a", "b") as outer:
        assert outer == {"a", "b"}
        with tags("c"):
            assert current_tags() == {"a", "b", "c"}
        assert current_tags() == {"a", "b"}
    assert current_tags() == frozenset()


def test_run_context_outside_runs_is_an_error_inside_it_is_the_run():
    with pytest.raises(RuntimeError, match="no active flow or task run"):
        get_run_context()
    context = _flow_context()
    with flow_run_scope(context):
        assert get_run_context() is context
    assert get_flow_run_context() is None


def test_dynamic_keys_count_per_task_key_across_threads():
    context = _flow_context()
    keys = []
    threads = [
        threading.Thread(target=lambda: keys.append(context.next_dynamic_key("t")))
        for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(keys, key=int) == [str(i) for i in range(20)]
    assert context.next_dynamic_key("other") == "0"


def test_sequential_runner_runs_at_submit_time():
    runner = SequentialTaskRunner().start()
    seen = []
    future = OrionFuture(None, runner.submit(lambda: seen.append(1) or Outcome("S", 5)))
    assert seen == [1] and future.done()
    assert future.result() == 5 and future.wait() == "S" and future.get_state() == "S"
    runner.shutdown()


def test_thread_pool_runs_concurrently_in_the_submitters_context():
    runner = ThreadPoolTaskRunner(max_workers=4).start()
    barrier = threading.Barrier(4, timeout=5)

    def work():
        barrier.wait()  # all four must be running at once to get past this
        return Outcome("S", sorted(current_tags()))

    with tags("t1"):
        futures = [OrionFuture(None, runner.submit(work)) for _ in range(4)]
    assert [f.result() for f in futures] == [["t1"]] * 4
    runner.shutdown()
    assert ConcurrentTaskRunner is ThreadPoolTaskRunner
    with pytest.raises(RuntimeError, match="outside a started session"):
        ThreadPoolTaskRunner().submit(work)


def test_future_failure_raises_or_returns_the_exception_and_wait_times_out():
    runner = ThreadPoolTaskRunner(1).start()
    error = ValueError("boom")
    failed = OrionFuture(None, runner.submit(lambda: Outcome("F", exception=error)))
    with pytest.raises(ValueError, match="boom"):
        failed.result()
    assert failed.result(raise_on_failure=False) is error
    slow = OrionFuture(None, runner.submit(lambda: time.sleep(0.3) or Outcome("S", 1)))
    assert slow.wait(timeout=0.01) is None and slow.get_state() is None
    with pytest.raises(TimeoutError):
        slow.result(timeout=0.01)
    assert slow.result() == 1
    runner.shutdown()


def test_heartbeats_warn_then_shout_when_the_api_stays_unreachable():
    import logging

    from client.sdk.engine import Heartbeats

    records = []
    handler = logging.Handler()
    handler.emit = records.append

    class Unreachable:
        calls = 0

        def send_flow_run_heartbeat(self, run_id):
            Unreachable.calls += 1
            raise ConnectionError("no route to host")

    beats = Heartbeats(interval=3600)
    beats.crash_after = 0.2
    logger = logging.getLogger("orion.engine")
    logger.addHandler(handler)
    try:
        beats.add("run-1", Unreachable())  # its thread beats for a new run at once
        deadline = time.monotonic() + 5
        while not records and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        beats.beat()
    finally:
        logger.removeHandler(handler)
    assert [r.levelname for r in records] == ["WARNING", "ERROR"]
    assert "may mark these flow runs Crashed" in records[-1].getMessage()
    beats.discard("run-1")
    beats.beat()
    assert Unreachable.calls == 2
