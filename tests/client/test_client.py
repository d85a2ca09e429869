"""Every OrionClient method against the real app in-process (WSGITransport), both backends."""

import datetime
import uuid

import pytest

from client import OrionClient, get_client
from client.api.exceptions import (
    BadRequest,
    ObjectNotFound,
    OrionHTTPError,
    Unauthorized,
    ValidationError,
)
from client.api.objects import APIObject, OrchestrationResult
from client.api.settings import Settings
from client.api.states import (
    AwaitingRetry,
    Completed,
    Failed,
    Paused,
    Pending,
    Running,
    Scheduled,
    SetStateStatus,
    State,
    StateType,
)
from tests.client.conftest import make_task

UTC = datetime.UTC


@pytest.fixture
def flow_id(orion):
    return orion.create_flow_from_name("etl")


@pytest.fixture
def running_flow_run(orion, flow_id):
    run = orion.create_flow_run(flow_id)
    assert orion.set_flow_run_state(run.id, Running()).status is SetStateStatus.ACCEPT
    return orion.read_flow_run(run.id)


def test_server_endpoints(orion):
    assert orion.api_healthcheck() is None
    assert orion.hello() == "👋"
    assert orion.read_server_version() == "0.1.0"


def test_flows(orion):
    flow_id = orion.create_flow_from_name("etl", tags=["a"])
    assert isinstance(flow_id, uuid.UUID)
    assert orion.create_flow(make_task(name="etl")) == flow_id
    flow = orion.read_flow(flow_id)
    assert isinstance(flow, APIObject) and flow.name == "etl" and flow["tags"] == ["a"]
    assert isinstance(flow.created, datetime.datetime) and flow.created.tzinfo is not None
    assert orion.read_flow_by_name("etl").id == str(flow_id)
    orion.create_flow_from_name("a b#c")
    assert orion.read_flow_by_name("a b#c").name == "a b#c"
    assert [f.name for f in orion.read_flows(sort="NAME_DESC")] == ["etl", "a b#c"]
    assert [f.name for f in orion.read_flows(flow_filter={"name": {"like_": "et"}})] == ["etl"]
    assert [f.name for f in orion.read_flows(limit=1, offset=1)] == ["etl"]
    assert orion.count_flows() == 2
    assert orion.count_flows(flow_filter={"tags": {"all_": ["a"]}}) == 1
    orion.update_flow(flow_id, tags=["b"])
    assert orion.read_flow(flow_id).tags == ["b"]
    orion.delete_flow(flow_id)
    with pytest.raises(ObjectNotFound, match=f"Flow {flow_id} not found"):
        orion.read_flow(flow_id)


def test_create_flow_run_from_a_flow_object_and_idempotency(orion):
    flow = make_task(name="etl", version="1.2", retries=2, retry_delay_seconds=5)
    run = orion.create_flow_run(
        flow, name="first", parameters={"x": 1}, tags={"t"}, context={"c": 1}
    )
    assert (run.name, run.flow_version, run.parameters, run.tags) == (
        "first",
        "1.2",
        {"x": 1},
        ["t"],
    )
    assert run.empirical_policy["retries"] == 2 and run.empirical_policy["retry_delay"] == 5
    assert run.state.is_pending() and run.state.type is StateType.PENDING
    assert run.idempotency_key
    again = orion.create_flow_run(run.flow_id, idempotency_key=run.idempotency_key)
    assert again.id == run.id
    other = orion.create_flow_run(run.flow_id)
    assert other.id != run.id and other.idempotency_key != run.idempotency_key
    at = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    scheduled = orion.create_flow_run(run.flow_id, state=Scheduled(scheduled_time=at))
    assert scheduled.state.is_scheduled()
    assert scheduled.state.state_details.scheduled_time == at
    assert scheduled.next_scheduled_start_time == at and scheduled.expected_start_time == at


def test_a_run_from_a_deployment_is_scheduled_for_now_unless_a_state_is_given(orion, flow_id):
    deployment = orion.create_deployment(flow_id, "nightly", work_queue_name="q")
    run = orion.create_flow_run_from_deployment(deployment.id)
    assert run.state.type == StateType.SCHEDULED
    assert run.work_queue_name == "q"
    pending = orion.create_flow_run_from_deployment(deployment.id, state=Pending())
    assert pending.state.type == StateType.PENDING


def test_flow_run_reads_updates_and_deletes(orion, flow_id):
    runs = [
        orion.create_flow_run(flow_id, name=f"r{i}", tags=["even"] if i % 2 == 0 else [])
        for i in range(3)
    ]
    run = orion.read_flow_run(runs[0].id)
    assert run.id == runs[0].id and isinstance(run.state, State)
    found = orion.read_flow_runs(flow_run_filter={"tags": {"all_": ["even"]}}, sort="NAME_ASC")
    assert [r.name for r in found] == ["r0", "r2"]
    assert [r.name for r in orion.read_flow_runs(sort="NAME_DESC", limit=2)] == ["r2", "r1"]
    assert orion.count_flow_runs(flow_filter={"name": {"any_": ["etl"]}}) == 3
    assert orion.count_flow_runs(flow_run_filter={"id": {"any_": [uuid.UUID(run.id)]}}) == 1
    orion.update_flow_run(
        run.id,
        name="renamed",
        tags=["x"],
        parameters={"p": 1},
        flow_version="v2",
        infrastructure_pid="123",
        infrastructure_exit_code=0,
    )
    run = orion.read_flow_run(run.id)
    assert (
        run.name,
        run.tags,
        run.parameters,
        run.flow_version,
        run.infrastructure_pid,
        run.infrastructure_exit_code,
    ) == ("renamed", ["x"], {"p": 1}, "v2", "123", 0)
    orion.delete_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        orion.read_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        orion.delete_flow_run(run.id)


def test_flow_run_states_and_orchestration(orion, flow_id):
    run = orion.create_flow_run(flow_id)
    result = orion.set_flow_run_state(run.id, Running())
    assert isinstance(result, OrchestrationResult)
    assert result.status is SetStateStatus.ACCEPT and result.state.is_running()
    assert result.details.type == "accept_details"
    assert result.state.timestamp.tzinfo is not None
    assert result.state.state_details.flow_run_id == run.id
    # Pending after Running is not a forward move: ABORT, nothing written.
    aborted = orion.set_flow_run_state(run.id, Pending())
    assert aborted.status is SetStateStatus.ABORT and aborted.state is None
    assert "reason" in aborted.details
    forced = orion.set_flow_run_state(run.id, Pending(), force=True)
    assert forced.status is SetStateStatus.ACCEPT
    states = orion.read_flow_run_states(run.id)
    assert [s.type.value for s in states] == ["PENDING", "RUNNING", "PENDING"]
    assert orion.read_flow_run_state(states[1].id).id == states[1].id
    with pytest.raises(ObjectNotFound):
        orion.read_flow_run_state(uuid.uuid4())


def test_a_repeated_proposal_is_a_no_op(orion, flow_id):
    run = orion.create_flow_run(flow_id)
    running = Running()
    first = orion.set_flow_run_state(run.id, running)
    second = orion.set_flow_run_state(run.id, running)
    assert first.status is second.status is SetStateStatus.ACCEPT
    assert first.state.id == second.state.id
    assert len(orion.read_flow_run_states(run.id)) == 2


def test_flow_retries_come_back_as_awaiting_retry(orion):
    flow = make_task(name="etl", retries=1, retry_delay_seconds=0)
    run = orion.create_flow_run(flow)
    orion.set_flow_run_state(run.id, Running())
    result = orion.set_flow_run_state(run.id, Failed(message="boom"))
    assert result.status is SetStateStatus.REJECT
    assert result.state.is_scheduled() and result.state.name == "AwaitingRetry"


def test_pause_and_resume(orion, running_flow_run):
    timeout = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
    paused = orion.set_flow_run_state(running_flow_run.id, Paused(pause_expiration_time=timeout))
    assert paused.status is SetStateStatus.ACCEPT and paused.state.is_paused()
    assert abs(paused.state.state_details.pause_timeout - timeout) < datetime.timedelta(seconds=1)
    resumed = orion.resume_flow_run(running_flow_run.id)
    assert resumed.status is SetStateStatus.ACCEPT and resumed.state.is_running()
    again = orion.resume_flow_run(running_flow_run.id)
    assert again.status is SetStateStatus.ABORT


def test_task_runs(orion, running_flow_run):
    task = make_task(
        name="extract",
        tags=["io"],
        version="3",
        retries=2,
        retry_delay_seconds=[1, 2],
        retry_jitter_factor=0.5,
    )
    inputs = {"x": [{"input_type": "parameter", "name": "x"}]}
    run = orion.create_task_run(
        task, running_flow_run.id, 0, extra_tags=["more"], task_inputs=inputs
    )
    assert (run.name, run.tags, run.task_version, run.task_inputs) == (
        "extract-0",
        ["io", "more"],
        "3",
        inputs,
    )
    assert run.empirical_policy["retry_delay"] == [1, 2]
    assert run.empirical_policy["retry_jitter_factor"] == 0.5
    assert run.state.is_pending()
    assert orion.create_task_run(task, running_flow_run.id, 0).id == run.id
    upstream = orion.create_task_run(
        make_task("etl.load"),
        running_flow_run.id,
        "a",
        name="load",
        state=Scheduled(),
        task_inputs={"x": [{"input_type": "task_run", "id": run.id}]},
    )
    assert upstream.name == "load" and upstream.state.is_scheduled()

    result = orion.set_task_run_state(run.id, Running())
    assert result.status is SetStateStatus.ACCEPT
    assert orion.set_task_run_state(run.id, Completed(data={"v": 1})).state.is_completed()
    assert orion.read_task_run(run.id).state.data == {"v": 1}
    assert [s.name for s in orion.read_task_run_states(run.id)] == [
        "Pending",
        "Running",
        "Completed",
    ]
    first = orion.read_task_run_states(run.id)[0]
    assert orion.read_task_run_state(first.id).name == "Pending"

    assert [t.name for t in orion.read_task_runs(sort="NAME_ASC")] == ["extract-0", "load"]
    completed = {"state": {"type": {"any_": ["COMPLETED"]}}}
    assert [t.id for t in orion.read_task_runs(task_run_filter=completed)] == [run.id]
    assert orion.count_task_runs(task_run_filter=completed) == 1
    assert orion.count_task_runs(flow_run_filter={"id": {"any_": [running_flow_run.id]}}) == 2
    assert [r.id for r in orion.read_flow_runs(task_run_filter=completed)] == [running_flow_run.id]

    graph = orion.read_flow_run_graph(running_flow_run.id)
    node = next(n for n in graph if n.id == upstream.id)
    assert node.upstream_dependencies == [{"input_type": "task_run", "id": run.id}]

    orion.update_task_run(run.id, name="renamed")
    assert orion.read_task_run(run.id).name == "renamed"
    orion.delete_task_run(run.id)
    with pytest.raises(ObjectNotFound, match="Task run"):
        orion.read_task_run(run.id)


def test_create_task_run_and_set_state(orion, running_flow_run, flow_id):
    orion.create_concurrency_limit("db", 1)
    task = make_task(name="load", tags=["db"])
    run, result = orion.create_task_run_and_set_state(task, running_flow_run.id, 0, Running())
    assert result.status is SetStateStatus.ACCEPT and result.state.is_running()
    assert run.state.is_running() and run.run_count == 1 and run.name == "load-0"

    waited, result = orion.create_task_run_and_set_state(task, running_flow_run.id, 1, Running())
    assert result.status is SetStateStatus.WAIT and result.details.delay_seconds > 0
    assert waited.state.is_pending()
    orion.set_task_run_state(run.id, Completed())
    assert orion.set_task_run_state(waited.id, Running()).status is SetStateStatus.ACCEPT

    orion.create_concurrency_limit("off", 0)
    _, result = orion.create_task_run_and_set_state(
        make_task(tags=["off"]), running_flow_run.id, 2, Running()
    )
    assert result.status is SetStateStatus.ABORT

    cached = Running(cache_key="key", cache_expiration=datetime.datetime(2999, 1, 1, tzinfo=UTC))
    first, _ = orion.create_task_run_and_set_state(make_task("c"), running_flow_run.id, 0, cached)
    orion.set_task_run_state(first.id, Completed(data=7, cache_key="key"))
    _, result = orion.create_task_run_and_set_state(
        make_task("c"), running_flow_run.id, 1, Running(cache_key="key")
    )
    assert result.status is SetStateStatus.REJECT and result.state.name == "Cached"
    assert result.state.is_completed() and result.state.data == 7

    stopped = orion.create_flow_run(flow_id)
    _, result = orion.create_task_run_and_set_state(task, stopped.id, 0, Running())
    assert result.status is SetStateStatus.ABORT


def test_heartbeat(orion, running_flow_run):
    assert running_flow_run.last_heartbeat is None
    orion.send_flow_run_heartbeat(running_flow_run.id)
    beat = orion.read_flow_run(running_flow_run.id).last_heartbeat
    assert isinstance(beat, datetime.datetime)
    with pytest.raises(ObjectNotFound):
        orion.send_flow_run_heartbeat(uuid.uuid4())


def test_history(orion, flow_id):
    orion.create_flow_run(flow_id)
    now = datetime.datetime.now(UTC)
    history = orion.read_flow_run_history(
        now - datetime.timedelta(hours=1),
        now + datetime.timedelta(hours=1),
        3600,
        flow_filter={"name": {"any_": ["etl"]}},
    )
    assert len(history) == 2
    assert isinstance(history[0].interval_start, datetime.datetime)
    assert sum(s.count_runs for bucket in history for s in bucket.states) == 1


def test_logs(orion, running_flow_run):
    now = datetime.datetime.now(UTC)
    records = [
        {
            "name": "etl",
            "level": 20,
            "message": f"line {i}",
            "timestamp": now + datetime.timedelta(microseconds=i),
            "flow_run_id": running_flow_run.id,
        }
        for i in range(2500)
    ]
    orion.create_logs(records)
    assert all("id" not in r for r in records)
    logs = orion.read_logs({"flow_run_id": {"any_": [running_flow_run.id]}}, limit=200, offset=2400)
    assert [log.message for log in logs] == [f"line {i}" for i in range(2400, 2500)]
    assert isinstance(logs[0].timestamp, datetime.datetime)
    newest = orion.read_logs(sort="TIMESTAMP_DESC", limit=1)
    assert newest[0].message == "line 2499"
    assert orion.read_logs({"level": {"ge_": 30}}) == []
    # A batch sent again with its ids is stored once.
    fixed = [dict(records[0], id=str(uuid.uuid4()), message="once")]
    orion.create_logs(fixed)
    orion.create_logs(fixed)
    assert len(orion.read_logs({"timestamp": {"before_": now}}, limit=5)) == 2


def test_concurrency_limits(orion, running_flow_run):
    limit_id = orion.create_concurrency_limit("db", 2)
    assert isinstance(limit_id, uuid.UUID)
    assert orion.create_concurrency_limit("db", 1) == limit_id
    limit = orion.read_concurrency_limit(limit_id)
    assert (limit.tag, limit.concurrency_limit, limit.active_slots) == ("db", 1, [])
    assert orion.read_concurrency_limit_by_tag("db").id == str(limit_id)
    orion.create_concurrency_limit("a/b", 3)
    assert orion.read_concurrency_limit_by_tag("a/b").concurrency_limit == 3
    assert [c.tag for c in orion.read_concurrency_limits()] == ["a/b", "db"]
    assert [c.tag for c in orion.read_concurrency_limits(limit=1, offset=1)] == ["db"]
    task = orion.create_task_run(make_task(), running_flow_run.id, 0)
    reset = orion.reset_concurrency_limit_by_tag("db", slot_override=[task.id])
    assert reset.active_slots == [task.id]
    assert orion.reset_concurrency_limit_by_tag("db").active_slots == []
    orion.delete_concurrency_limit_by_tag("a/b")
    orion.delete_concurrency_limit(limit_id)
    assert orion.read_concurrency_limits() == []
    with pytest.raises(ObjectNotFound, match="db"):
        orion.read_concurrency_limit_by_tag("db")


def test_errors_carry_the_server_message(orion, flow_id):
    with pytest.raises(ObjectNotFound) as missing:
        orion.read_flow_run(uuid.uuid4())
    assert missing.value.status_code == 404 and "Flow run" in str(missing.value)
    with pytest.raises(ValidationError) as invalid:
        orion.read_flow_runs(sort="SIDEWAYS")
    assert invalid.value.status_code == 422
    assert str(invalid.value).startswith("Invalid request received.")
    assert "body.sort:" in str(invalid.value)
    assert invalid.value.detail[0]["loc"] == ["body", "sort"]
    with pytest.raises(ValidationError, match=r"body\.concurrency_limit"):
        orion.create_concurrency_limit("db", -1)
    with pytest.raises(ValidationError, match=r"path\.id"):
        orion.read_flow("not-a-uuid")
    with pytest.raises(ObjectNotFound, match="Flow"):
        orion.create_flow_run(uuid.uuid4())
    with pytest.raises(OrionHTTPError):
        orion.request("GET", "no/such/route")


def test_api_version_header_and_api_key(app, db):
    settings = Settings(api_retries=0)
    old = {"headers": {"X-PREFECT-API-VERSION": "0.7.0"}}
    with OrionClient(app, settings=settings, httpx_settings=old) as outdated:
        with pytest.raises(BadRequest, match="too old"):
            outdated.hello()
    app.config["API_KEY"] = "sesame"
    try:
        with OrionClient(app, settings=settings) as anonymous:
            with pytest.raises(Unauthorized, match="API key"):
                anonymous.hello()
            assert isinstance(anonymous.api_healthcheck(), Unauthorized)
        with OrionClient(app, settings=settings, api_key="wrong") as wrong:
            with pytest.raises(Unauthorized):
                wrong.hello()
        with OrionClient(app, settings=Settings(api_key="sesame")) as keyed:
            assert keyed.hello() == "👋"
        with get_client(app, api_key="sesame", settings=settings) as keyed:
            assert keyed.api_healthcheck() is None
    finally:
        app.config["API_KEY"] = None


def test_states():
    running = Running(cache_key="k")
    assert running.state_details.transition_id != Running().state_details.transition_id
    body = running.to_json()
    assert body["type"] == "RUNNING" and body["state_details"]["cache_key"] == "k"
    at = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    retry = AwaitingRetry(scheduled_time=at)
    assert (retry.name, retry.type, retry.is_scheduled()) == (
        "AwaitingRetry",
        StateType.SCHEDULED,
        True,
    )
    assert retry.to_json()["state_details"]["scheduled_time"] == at.isoformat()
    assert retry.state_details.scheduled_time == at
    assert Completed().is_final() and Failed().is_final() and not Running().is_final()
    assert StateType.RUNNING == "RUNNING"
    copy = retry.copy(message="m")
    assert copy.message == "m" and copy.name == "AwaitingRetry"
    assert copy.state_details.transition_id != retry.state_details.transition_id
    soon = Paused(timeout_seconds=60, pause_key="p").state_details
    assert soon.pause_key == "p" and soon.pause_reschedule is False
    assert 50 < (soon.pause_timeout - datetime.datetime.now(UTC)).total_seconds() <= 60
    with pytest.raises(ValueError, match="not both"):
        Paused(timeout_seconds=1, pause_expiration_time=at)
    with pytest.raises(ValueError, match="time zone"):
        Scheduled(scheduled_time=datetime.datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        State("NOPE")
    assert repr(Failed(message="boom")) == "Failed(type=FAILED, message='boom')"


def test_one_client_serves_many_threads(orion, running_flow_run):
    """The SDK's thread-pool runner shares one client: calls from threads must not mix."""
    from concurrent.futures import ThreadPoolExecutor

    def run_task(i):
        task_run, result = orion.create_task_run_and_set_state(
            make_task(name="t"), running_flow_run.id, i, Running()
        )
        assert result.status is SetStateStatus.ACCEPT
        done = orion.set_task_run_state(task_run.id, Completed(data=i))
        return task_run.name, done.state.data

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run_task, range(40)))
    assert results == [(f"t-{i}", i) for i in range(40)]
    assert orion.count_task_runs() == 40
