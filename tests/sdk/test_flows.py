"""Flows and tasks through the real client against the real app in-process (both backends).

Every transition here goes through the server's orchestration: retries are AwaitingRetry
states the server wrote, cache hits are Cached states it returned, and so on.
"""

import builtins
import contextlib
import datetime
import io
import threading
import time

import pytest

from client import (
    OrionClient,
    ParameterTypeError,
    ThreadPoolTaskRunner,
    UpstreamTaskError,
    flow,
    get_run_context,
    get_run_logger,
    tags,
    task,
    task_input_hash,
    unmapped,
    using_client,
)
from client.api.settings import Settings
from client.api.states import StateType
from client.sdk import engine
from client.sdk.results import is_reference, load_result


@task
def add(x, y):
    return x + y


def _task_runs(orion, flow_run_id=None):
    runs = orion.read_task_runs(sort="EXPECTED_START_TIME_ASC")
    return [r for r in runs if flow_run_id is None or r["flow_run_id"] == flow_run_id]


def _state_names(orion, task_run_id):
    return [s.name for s in orion.read_task_run_states(task_run_id)]


def test_flow_with_tasks_completes_with_its_result(orion):
    @flow(name="sums", version="1.2", flow_run_name="sums-{n}")
    def sums(n: int):
        get_run_logger().info("summing %d", n)
        return [add(i, i) for i in range(n)]

    assert sums(3) == [0, 2, 4]
    [run] = orion.read_flow_runs()
    assert run.state.is_completed() and run.parameters == {"n": 3}
    assert run["name"] == "sums-3" and run.flow_version == "1.2" and run.run_count == 1
    task_runs = _task_runs(orion)
    assert [t["name"] for t in task_runs] == ["add-0", "add-1", "add-2"]
    assert all(t.state.is_completed() for t in task_runs)
    # A task run's first state is the Running it was created with (create_and_set_state).
    assert all(_state_names(orion, t["id"]) == ["Running", "Completed"] for t in task_runs)


def test_task_inputs_record_upstream_runs_parameters_and_constants(orion):
    @task
    def extend(items, extra):
        return items + [extra]

    @flow
    def pipeline(base: list = [10]):  # noqa: B006 (a parameter default, never mutated)
        first = extend.submit(base, 1)
        second = extend(first, 2)
        third = extend.submit(second, 3, wait_for=[first])
        return third

    assert pipeline() == [10, 1, 2, 3]
    first, second, third = _task_runs(orion)
    assert first.task_inputs == {
        "items": [{"input_type": "parameter", "name": "base"}],
        "extra": [{"input_type": "constant", "type": "int"}],
    }
    assert second.task_inputs["items"] == [{"input_type": "task_run", "id": first["id"]}]
    assert third.task_inputs["items"] == [{"input_type": "task_run", "id": second["id"]}]
    assert third.task_inputs["wait_for"] == [{"input_type": "task_run", "id": first["id"]}]
    graph = {node["id"]: node for node in orion.read_flow_run_graph(first["flow_run_id"])}
    assert graph[third["id"]]["upstream_dependencies"] and {
        d["id"] for d in graph[third["id"]]["upstream_dependencies"]
    } == {first["id"], second["id"]}


def test_failed_task_and_flow_carry_message_and_traceback(orion):
    @task
    def explode():
        raise ValueError("boom")

    @flow
    def doomed():
        explode()

    with pytest.raises(ValueError, match="boom"):
        doomed()
    [run] = orion.read_flow_runs()
    [task_run] = _task_runs(orion)
    for st in (run.state, task_run.state):
        assert st.type is StateType.FAILED
        assert "ValueError: boom" in st.message
        assert st.data["exception_type"] == "builtins.ValueError"
        assert 'raise ValueError("boom")' in st.data["traceback"]
    state = doomed(return_state=True)
    assert state.is_failed()


def test_task_retries_wait_the_delays_the_server_sets(orion):
    attempts = []

    @task(retries=2, retry_delay_seconds=[0.3, 0.6])
    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError(f"attempt {len(attempts)}")
        return "ok"

    @flow
    def retrying():
        return flaky()

    assert retrying() == "ok"
    assert attempts[1] - attempts[0] >= 0.3 and attempts[2] - attempts[1] >= 0.6
    [task_run] = _task_runs(orion)
    assert _state_names(orion, task_run["id"]) == [
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    assert task_run.run_count == 3


def test_a_task_out_of_retries_fails_the_flow(orion):
    @task(retries=1, retry_delay_seconds=0)
    def always():
        raise RuntimeError("never")

    @flow
    def hopeless():
        return always()

    assert hopeless(return_state=True).is_failed()
    [task_run] = _task_runs(orion)
    assert task_run.state.is_failed() and task_run.run_count == 2


def test_flow_retry_reuses_the_task_runs_that_completed(orion):
    calls = {"add": 0, "flow": 0}

    @task
    def counted(x):
        calls["add"] += 1
        return x * 2

    @flow(retries=1, retry_delay_seconds=0)
    def second_time_lucky():
        calls["flow"] += 1
        value = counted(21)
        if calls["flow"] == 1:
            raise RuntimeError("first attempt fails")
        return value

    assert second_time_lucky() == 42
    assert calls == {"add": 1, "flow": 2}
    [run] = orion.read_flow_runs()
    assert run.state.is_completed() and run.run_count == 2
    [task_run] = _task_runs(orion)
    assert task_run.state.is_completed()


def test_cached_result_is_read_back_from_storage_by_the_next_flow_run(orion, tmp_path):
    calls = []

    @task(cache_key_fn=task_input_hash, cache_expiration=datetime.timedelta(hours=1))
    def expensive(x):
        calls.append(x)
        return {"value": x * 10}

    @flow
    def cached(x: int):
        return expensive(x)

    assert cached(4) == {"value": 40}
    assert cached(4) == {"value": 40}
    assert calls == [4]
    first, second = _task_runs(orion)
    assert second.state.name == "Cached" and second.state.is_completed()
    assert is_reference(second.state.data) and second.state.data == first.state.data
    assert (tmp_path / "results" / second.state.data["key"]).exists()
    assert load_result(second.state.data) == {"value": 40}
    assert cached(5) == {"value": 50} and calls == [4, 5]


def test_refresh_cache_runs_again(orion):
    calls = []

    @task(cache_key_fn=lambda context, parameters: "fixed", refresh_cache=True)
    def refreshed():
        calls.append(1)
        return len(calls)

    @flow
    def refresher():
        return refreshed()

    assert refresher() == 1 and refresher() == 2


def test_timeouts_fail_tasks_and_flows(orion):
    release = threading.Event()

    @task(timeout_seconds=0.2)
    def slow_task():
        release.wait(5)

    @flow
    def with_slow_task():
        return slow_task()

    @flow(timeout_seconds=0.2)
    def slow_flow():
        release.wait(5)

    with pytest.raises(TimeoutError, match=r"exceeded timeout of 0\.2 seconds"):
        with_slow_task()
    assert slow_flow(return_state=True).is_failed()
    release.set()
    [task_run] = _task_runs(orion)
    assert task_run.state.is_failed() and "TimeoutError" in task_run.state.message


def test_subflow_is_a_child_run_with_a_parent_task_run(orion):
    @flow
    def child(x: int):
        return add(x, 1)

    @flow
    def parent():
        return child(1) + child(2)

    assert parent() == 5
    runs = {r["name"]: r for r in orion.read_flow_runs()}
    parent_run = next(r for r in runs.values() if r.parent_task_run_id is None)
    children = [r for r in runs.values() if r.parent_task_run_id is not None]
    assert len(children) == 2 and all(r.state.is_completed() for r in children)
    stand_ins = list(_task_runs(orion, parent_run["id"]))
    assert sorted(t["name"] for t in stand_ins) == ["child-0", "child-1"]
    assert {t["id"] for t in stand_ins} == {r.parent_task_run_id for r in children}
    for stand_in in stand_ins:
        assert stand_in.state.is_completed()
        assert stand_in.state.state_details["child_flow_run_id"] in {r["id"] for r in children}
    assert stand_ins[0].task_inputs == {"x": [{"input_type": "constant", "type": "int"}]}


def test_mapped_tasks_and_unmapped_arguments(orion):
    @flow(task_runner=ThreadPoolTaskRunner(4))
    def mapper():
        futures = add.map([1, 2, 3], unmapped(10))
        return [f.result() for f in futures]

    assert mapper() == [11, 12, 13]
    assert sorted(t["name"] for t in _task_runs(orion)) == ["add-0", "add-1", "add-2"]


def test_upstream_failure_leaves_downstream_not_ready_and_fails_the_flow(orion):
    @task
    def broken():
        raise KeyError("missing")

    @flow
    def chain():
        upstream = broken.submit()
        downstream = add.submit(upstream, 1)
        assert downstream.wait().name == "NotReady"
        with pytest.raises(UpstreamTaskError, match="did not complete"):
            downstream.result()

    state = chain(return_state=True)
    assert state.is_failed() and "2 of 2 submitted task runs did not complete" in state.message
    names = {t["name"]: t for t in _task_runs(orion)}
    assert names["add-0"].state.name == "NotReady"


def test_parameters_are_validated_against_type_hints(orion):
    @flow
    def typed(n: int, ratio: float = 1.0):
        return n * ratio

    assert typed("3", 2) == 6.0
    with pytest.raises(ParameterTypeError, match="parameter 'n': expected int, got str"):
        typed("three")
    failed = [r for r in orion.read_flow_runs() if r.state.is_failed()]
    assert len(failed) == 1 and "Validation of flow parameters failed" in failed[0].state.message

    @flow(validate_parameters=False)
    def untyped(n: int):
        return n

    assert untyped("three") == "three"


def test_tags_reach_flow_and_task_runs(orion):
    @task(tags={"io"})
    def tagged():
        return 1

    @flow
    def tagging():
        with tags("inner"):
            return tagged()

    with tags("outer"):
        tagging()
    [run] = orion.read_flow_runs()
    assert run.tags == ["outer"]
    [task_run] = _task_runs(orion)
    assert task_run.tags == ["inner", "io", "outer"]


def test_flow_results_are_persisted_when_asked(orion, tmp_path):
    @flow(persist_result=True, result_serializer="json")
    def persisted():
        return {"answer": 42}

    assert persisted() == {"answer": 42}
    [run] = orion.read_flow_runs()
    ref = run.state.data
    assert ref["serializer"] == "json" and ref["storage"] == str(tmp_path / "results")
    assert load_result(ref) == {"answer": 42}


def test_thread_pool_respects_a_tag_concurrency_limit_of_one(make_app, tmp_path):
    from client import OrionClient, using_client
    from client.api.settings import Settings

    app = make_app(TASK_CONCURRENCY_SLOT_WAIT_SECONDS=0.2)
    spans = []

    @task(tags={"db"})
    def guarded(i):
        start = time.monotonic()
        time.sleep(0.1)
        spans.append((start, time.monotonic()))
        return i

    @flow(task_runner=ThreadPoolTaskRunner(4))
    def limited():
        return [f.result() for f in guarded.map(range(4))]

    with OrionClient(app, settings=Settings(api_retries=0)) as orion, using_client(orion):
        orion.create_concurrency_limit("db", 1)
        assert limited() == [0, 1, 2, 3]
        assert all(t.state.is_completed() for t in _task_runs(orion))
    spans.sort()
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_run_logger_lines_are_all_stored_in_order(orion):
    @task
    def chatty(n):
        logger = get_run_logger()
        for i in range(n):
            logger.info("task line %d", i)

    @flow
    def talkative():
        logger = get_run_logger()
        for i in range(10_000):
            logger.info("line %d", i)
        chatty(3)

    talkative()
    [run] = orion.read_flow_runs()
    messages, offset = [], 0
    while True:
        page = orion.read_logs({"flow_run_id": {"any_": [run["id"]]}}, limit=200, offset=offset)
        if not page:
            break
        messages.extend(r["message"] for r in page)
        offset += len(page)
    lines = [m for m in messages if m.startswith("line ")]
    assert lines == [f"line {i}" for i in range(10_000)]
    task_lines = [m for m in messages if m.startswith("task line")]
    assert task_lines == ["task line 0", "task line 1", "task line 2"]


def _run_until_heartbeat(orion):
    """Runs a flow until its heartbeat (every 0.2 s here) reaches the server, or 10 s;
    returns the run's id."""

    @flow
    def sleepy():
        run_id = get_run_context().flow_run_id
        deadline = time.monotonic() + 10
        while orion.read_flow_run(run_id).last_heartbeat is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return run_id

    return sleepy()


def test_running_flow_runs_heartbeat(orion):
    _run_until_heartbeat(orion)
    [run] = orion.read_flow_runs()
    assert run.last_heartbeat is not None


def test_each_run_heartbeats_at_its_own_clients_interval(app, orion, monkeypatch):
    """A process's first flow run with a slow-beating client (60 s) does not slow the runs
    of a client set to beat every 0.2 s (the heartbeat thread used to keep the first
    client's interval for the life of the process)."""
    monkeypatch.setattr(engine, "_heartbeats", {})  # as in a new process
    slow_settings = Settings(api_retries=2, api_retry_delay_seconds=0.01, heartbeat_seconds=60)
    with OrionClient(app, settings=slow_settings) as slow, using_client(slow):

        @flow
        def first():
            pass

        first()

    assert orion.read_flow_run(_run_until_heartbeat(orion)).last_heartbeat is not None
    assert sorted(engine._heartbeats) == [0.2, 60]


def test_a_run_heartbeats_as_soon_as_it_starts(app, orion, monkeypatch):
    """The first heartbeat does not wait an interval: the server watches a run for silence
    only once it has heartbeated, so a process killed in its first interval still crashes."""
    monkeypatch.setattr(engine, "_heartbeats", {})  # as in a new process
    settings = Settings(api_retries=2, api_retry_delay_seconds=0.01, heartbeat_seconds=3600)
    with OrionClient(app, settings=settings) as slow, using_client(slow):
        run_id = _run_until_heartbeat(slow)
        assert slow.read_flow_run(run_id).last_heartbeat is not None


def test_tasks_outside_flows_are_plain_calls():
    assert add(1, 2) == 3
    with pytest.raises(RuntimeError, match="only inside a flow run"):
        add.submit(1, 2)


class Interrupted(BaseException):
    """An unexpected BaseException, like KeyboardInterrupt or SystemExit."""


def test_an_interruption_reports_task_and_flow_crashed_then_goes_on(orion):
    @task
    def interrupted():
        raise Interrupted("stop now")

    @flow
    def crashing():
        interrupted()

    with pytest.raises(Interrupted):
        crashing()
    [run] = orion.read_flow_runs()
    [task_run] = _task_runs(orion)
    assert run.state.is_crashed() and task_run.state.is_crashed()
    assert "Interrupted: stop now" in run.state.message


@pytest.mark.parametrize(
    ("cancel", "message"),
    [
        # Cancelled outright: the run is over, the process only stops.
        ({"state": "Cancelled", "force": True}, None),
        # Cancelling, with no agent to stop the process: the process ends the cancel itself.
        ({"state": "Cancelling", "force": False}, "The flow run stopped after it was cancelled."),
    ],
    ids=["cancelled", "cancelling"],
)
def test_abort_stops_the_run(orion, cancel, message):
    from client import RunAborted
    from client.api import states
    from client.sdk.context import get_run_context

    ran = []

    @task
    def cancel_my_flow():
        state = getattr(states, cancel["state"])()
        orion.set_flow_run_state(get_run_context().flow_run_id, state, force=cancel["force"])

    @task
    def never():
        ran.append(1)

    @flow
    def cancelled():
        cancel_my_flow()
        never()

    with pytest.raises(RunAborted, match="Task run 'never-0' was not started"):
        cancelled()
    assert ran == []
    [run] = orion.read_flow_runs()
    assert run.state.is_cancelled()
    assert run.state.message == message


def test_per_task_storage_and_opting_out_of_persistence(orion):
    @task(persist_result=True, result_storage="memory://orion-sdk-tests/results")
    def stored():
        return [1, 2, 3]

    @task
    def unstored():
        return "x"

    @flow(retries=1, persist_result=False)
    def mixed():
        return stored(), unstored()

    assert mixed() == ([1, 2, 3], "x")
    by_name = {t["name"]: t for t in _task_runs(orion)}
    ref = by_name["stored-0"].state.data
    assert ref["storage"] == "memory://orion-sdk-tests/results"
    assert load_result(ref) == [1, 2, 3]
    # The flow said persist_result=False: its tasks do not persist even with flow retries.
    assert by_name["unstored-0"].state.data is None


def _messages(orion, flow_run_id=None):
    criteria = {"flow_run_id": {"any_": [flow_run_id]}} if flow_run_id else None
    return [(r["task_run_id"], r["message"]) for r in orion.read_logs(criteria, limit=200)]


def _stdout_of(call):
    """What ``call()`` printed to stdout (not capsys: the SDK's console handler, made once
    per process, must not keep a capture stream that closes with the test)."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        call()
    return out.getvalue()


def test_log_prints_sends_prints_to_the_run_logger_and_tasks_inherit_it(orion):
    @task
    def inherits():
        print("from the task")

    @task(log_prints=False)
    def opts_out():
        print("task keeps its print")

    @flow
    def child():
        print("from the subflow")

    @flow(log_prints=True)
    def noisy():
        print("hello", 42, sep=", ")
        print("to a file is left alone", file=io.StringIO())
        inherits()
        opts_out()
        child()

    # Whatever print was before the run (Ray, once started in this process, swaps in its
    # own) is what the run leaves behind.
    print_before = builtins.print
    out = _stdout_of(noisy)
    assert "task keeps its print" in out
    assert "hello" not in out and "from the task" not in out
    assert builtins.print is print_before
    parent = next(r for r in orion.read_flow_runs() if r["parent_task_run_id"] is None)
    logs = _messages(orion, parent["id"])
    assert (None, "hello, 42") in logs
    task_run = next(r for r in _task_runs(orion, parent["id"]) if r["name"] == "inherits-0")
    assert (task_run["id"], "from the task") in logs
    assert not any("task keeps its print" in m or "file" in m for _, m in logs)
    assert any(m == "from the subflow" for _, m in _messages(orion))


def test_task_log_prints_alone_and_the_setting_for_top_level_flows(orion, monkeypatch):
    @task(log_prints=True)
    def loud():
        print("logged by the task")

    @flow
    def quiet():
        print("printed by the flow")
        loud()

    assert "printed by the flow" in _stdout_of(quiet)
    assert [m for _, m in _messages(orion) if "by the" in m] == ["logged by the task"]

    monkeypatch.setenv("ORION_LOGGING_LOG_PRINTS", "true")
    assert "printed by the flow" not in _stdout_of(quiet.with_options(name="quiet-too"))
    assert sorted(m for _, m in _messages(orion) if "by the" in m) == [
        "logged by the task",
        "logged by the task",
        "printed by the flow",
    ]

    monkeypatch.setenv("ORION_LOGGING_LOG_PRINTS", "maybe")
    with pytest.raises(ValueError, match="ORION_LOGGING_LOG_PRINTS"):
        quiet()
