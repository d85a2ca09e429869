"""CoreFlowPolicy / CoreTaskPolicy rules, the global bookkeeping, force, transition_id retries
and the "written" flag, driven through app.services.orchestration on real databases.

One class per rule (ORION-REFERENCE §3); each is parametrised over the transitions it governs
and checks the status, the resulting state, the reason and the side effects on the run.
"""

import datetime
import uuid

import pytest

from app.models import (
    Deployment,
    FlowRun,
    FlowRunState,
    TaskRun,
    TaskRunState,
    TaskRunStateCache,
    utcnow,
)
from app.orchestration.rules import SetStateStatus
from app.schemas.states import StateCreateSchema
from app.services.orchestration import set_flow_run_state, set_task_run_state

ACCEPT, REJECT, WAIT, ABORT = (
    SetStateStatus.ACCEPT,
    SetStateStatus.REJECT,
    SetStateStatus.WAIT,
    SetStateStatus.ABORT,
)
TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]
ALL_TYPES = ["SCHEDULED", "PENDING", "RUNNING", *TERMINAL, "PAUSED", "CANCELLING"]
SECOND = datetime.timedelta(seconds=1)


# --- helpers -------------------------------------------------------------------------------


def iso(when):
    return when.isoformat()


def parse(value):
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


def state(type_, name=None, message=None, data=None, **details):
    """A proposed state, normalised exactly like API input."""
    body = {"type": type_, "message": message, "data": data, "state_details": details}
    if name:
        body["name"] = name
    return StateCreateSchema().load(body)


def flow_set(run_id, type_, name=None, force=False, **kwargs):
    return set_flow_run_state(run_id, state(type_, name, **kwargs), force=force)


def task_set(run_id, type_, name=None, force=False, **kwargs):
    return set_task_run_state(run_id, state(type_, name, **kwargs), force=force)


def flow_row(run_id):
    return FlowRun.get_by_id(run_id)


def task_row(run_id):
    return TaskRun.get_by_id(run_id)


def flow_states(run_id):
    return FlowRunState.select().where(FlowRunState.flow_run == run_id).count()


def task_states(run_id):
    return TaskRunState.select().where(TaskRunState.task_run == run_id).count()


def assert_result(result, status, type_=None, name=None, reason=True):
    """Status, resulting state type/name (None: no state) and presence of a reason."""
    assert result.status is status, result.details
    if type_ is None:
        assert result.state is None
    else:
        assert (result.state.type, result.state.name) == (type_, name or type_.capitalize())
    assert result.details["type"] == f"{status.value.lower()}_details"
    assert bool(result.details.get("reason")) is reason, result.details


@pytest.fixture(autouse=True)
def app_ctx(app, db):
    with app.app_context():
        yield


@pytest.fixture
def new_flow_run(client, flow):
    """Create a flow run through the API, optionally in a given state; returns its UUID."""

    def make(state_=None, **fields):
        body = {"flow_id": flow["id"], **fields}
        if state_ is not None:
            body["state"] = state_ if isinstance(state_, dict) else {"type": state_}
        response = client.post("/api/flow_runs/", json=body)
        assert response.status_code == 201, response.get_json()
        return uuid.UUID(response.get_json()["id"])

    return make


@pytest.fixture
def deployment(flow):
    return str(Deployment.create(flow=flow["id"], name=f"dep-{uuid.uuid4().hex[:8]}").id)


@pytest.fixture
def running_flow(new_flow_run):
    return new_flow_run("RUNNING")


@pytest.fixture
def new_task_run(client, running_flow):
    """Create a task run (in ``running_flow`` unless told) through the API; returns its UUID.

    ``tracker`` sets flow_run_run_count directly (the flow attempt the task belongs to).
    """

    def make(state_=None, flow_run_id=None, tracker=None, **fields):
        body = {
            "flow_run_id": str(flow_run_id or running_flow),
            "task_key": "t",
            "dynamic_key": uuid.uuid4().hex,
            **fields,
        }
        if state_ is not None:
            body["state"] = state_ if isinstance(state_, dict) else {"type": state_}
        response = client.post("/api/task_runs/", json=body)
        assert response.status_code == 201, response.get_json()
        run_id = uuid.UUID(response.get_json()["id"])
        if tracker is not None:
            TaskRun.update(flow_run_run_count=tracker).where(TaskRun.id == run_id).execute()
        return run_id

    return make


# --- CoreFlowPolicy --------------------------------------------------------------------------


class TestHandleFlowTerminalStateTransitions:
    @pytest.mark.parametrize("initial", TERMINAL)
    @pytest.mark.parametrize("proposed", ALL_TYPES)
    def test_leaving_a_terminal_state_aborts(self, new_flow_run, deployment, initial, proposed):
        run_id = new_flow_run(initial, deployment_id=deployment)
        before = flow_states(run_id)
        result = flow_set(run_id, proposed)
        assert_result(result, ABORT)
        assert flow_states(run_id) == before
        assert flow_row(run_id).state_type == initial

    @pytest.mark.parametrize("initial", ["COMPLETED", "FAILED", "CRASHED"])
    def test_manual_retry_of_a_deployment_run_is_allowed(self, new_flow_run, deployment, initial):
        run_id = new_flow_run(
            initial,
            deployment_id=deployment,
            empirical_policy={"pause_keys": ["k"], "resuming": True},
        )
        result = flow_set(run_id, "SCHEDULED", "AwaitingRetry")
        assert_result(result, ACCEPT, "SCHEDULED", "AwaitingRetry", reason=False)
        run = flow_row(run_id)
        assert run.state_name == "AwaitingRetry"
        assert run.empirical_policy["pause_keys"] == []
        assert run.empirical_policy["resuming"] is False

    def test_cancelled_run_is_not_retried_but_stays_put(self, new_flow_run, deployment):
        # The terminal rule lets the retry through; HandleCancellingStateTransitions rejects it.
        run_id = new_flow_run("CANCELLED", deployment_id=deployment)
        result = flow_set(run_id, "SCHEDULED", "AwaitingRetry")
        assert_result(result, REJECT, "CANCELLED")
        assert not result.written and flow_states(run_id) == 1

    @pytest.mark.parametrize("initial", TERMINAL)
    def test_manual_retry_without_deployment_aborts(self, new_flow_run, initial):
        run_id = new_flow_run(initial)
        assert_result(flow_set(run_id, "SCHEDULED", "AwaitingRetry"), ABORT)
        assert flow_row(run_id).state_type == initial


class TestHandleCancellingStateTransitions:
    @pytest.mark.parametrize("proposed", [t for t in ALL_TYPES if t != "CANCELLED"])
    def test_cancelling_run_only_becomes_cancelled(self, new_flow_run, proposed):
        run_id = new_flow_run("CANCELLING")
        current = flow_row(run_id).state_id
        result = flow_set(run_id, proposed)
        assert_result(result, REJECT, "CANCELLING")
        assert result.state.id == current and not result.written
        assert flow_states(run_id) == 1
        assert flow_row(run_id).state_type == "CANCELLING"

    def test_cancelling_to_cancelled_is_accepted(self, new_flow_run):
        run_id = new_flow_run("CANCELLING")
        assert_result(flow_set(run_id, "CANCELLED"), ACCEPT, "CANCELLED", reason=False)
        assert flow_row(run_id).state_type == "CANCELLED"

    @pytest.mark.parametrize("proposed", ["RUNNING", "SCHEDULED", "CANCELLING"])
    def test_cancelled_is_aborted_by_the_terminal_rule_first(self, new_flow_run, proposed):
        run_id = new_flow_run("CANCELLED")
        assert_result(flow_set(run_id, proposed), ABORT)
        assert flow_states(run_id) == 1


def with_pid(run_id, pid):
    """Record an agent's process id on a flow run; returns the run id."""
    FlowRun.update(infrastructure_pid=pid).where(FlowRun.id == run_id).execute()
    return run_id


class TestCancelRunsWithoutInfrastructure:
    @pytest.mark.parametrize(
        "initial, pid", [("SCHEDULED", None), ("SCHEDULED", "7"), ("PENDING", None)]
    )
    def test_cancelling_without_a_process_is_cancelled(self, new_flow_run, initial, pid):
        run_id = with_pid(new_flow_run(initial), pid)
        result = flow_set(run_id, "CANCELLING", message="stop")
        assert_result(result, REJECT, "CANCELLED", "Cancelled")
        assert result.written and result.state.message == "stop"
        assert flow_row(run_id).state_type == "CANCELLED"

    @pytest.mark.parametrize("initial", ["PENDING", "RUNNING"])
    def test_a_run_with_a_process_is_cancelling(self, new_flow_run, initial):
        run_id = with_pid(new_flow_run(initial), "7")
        assert_result(flow_set(run_id, "CANCELLING"), ACCEPT, "CANCELLING", reason=False)

    def test_task_runs_are_not_concerned(self, new_task_run):
        run_id = new_task_run("SCHEDULED")
        assert_result(task_set(run_id, "CANCELLING"), ACCEPT, "CANCELLING", reason=False)


REDUNDANT = [
    ("SCHEDULED", "SCHEDULED"),
    ("PENDING", "SCHEDULED"),
    ("PENDING", "PENDING"),
    ("RUNNING", "SCHEDULED"),
    ("RUNNING", "PENDING"),
    ("RUNNING", "RUNNING"),
]
FORWARD = [
    ("SCHEDULED", "PENDING"),
    ("SCHEDULED", "RUNNING"),
    ("PENDING", "RUNNING"),
    ("SCHEDULED", "CANCELLING"),
    ("PENDING", "CANCELLING"),
    ("RUNNING", "CANCELLING"),
]


class TestPreventRedundantTransitions:
    @pytest.mark.parametrize("initial, proposed", REDUNDANT)
    def test_flow_standing_still_or_moving_back_aborts(self, new_flow_run, initial, proposed):
        run_id = new_flow_run(initial)
        assert_result(flow_set(run_id, proposed), ABORT)
        assert flow_states(run_id) == 1 and flow_row(run_id).state_type == initial

    # A scheduled run, or one with no process to stop, is cancelled at once
    # (CancelRunsWithoutInfrastructure), so flows carry a pid and skip SCHEDULED -> CANCELLING.
    @pytest.mark.parametrize(
        "initial, proposed", [p for p in FORWARD if p != ("SCHEDULED", "CANCELLING")]
    )
    def test_flow_moving_forward_is_accepted(self, new_flow_run, initial, proposed):
        run_id = with_pid(new_flow_run(initial), "1")
        assert_result(flow_set(run_id, proposed), ACCEPT, proposed, reason=False)
        assert flow_states(run_id) == 2

    @pytest.mark.parametrize("initial, proposed", REDUNDANT)
    def test_task_standing_still_or_moving_back_aborts(self, new_task_run, initial, proposed):
        run_id = new_task_run(initial)
        assert_result(task_set(run_id, proposed), ABORT)
        assert task_states(run_id) == 1

    @pytest.mark.parametrize("initial, proposed", FORWARD)
    def test_task_moving_forward_is_accepted(self, new_task_run, initial, proposed):
        run_id = new_task_run(initial)
        assert_result(task_set(run_id, proposed), ACCEPT, proposed, reason=False)

    def test_run_without_state_may_enter_any_lifecycle_state(self, flow):
        run = FlowRun.create(flow=flow["id"], name="bare")
        assert_result(flow_set(run.id, "SCHEDULED"), ACCEPT, "SCHEDULED", reason=False)

    def test_second_agent_cannot_also_submit(self, new_flow_run):
        run_id = new_flow_run("SCHEDULED")
        assert flow_set(run_id, "PENDING").status is ACCEPT
        assert_result(flow_set(run_id, "PENDING"), ABORT)
        assert flow_states(run_id) == 2


class TestHandlePausingFlows:
    def test_running_flow_pauses_and_records_the_key(self, running_flow):
        result = flow_set(running_flow, "PAUSED", pause_key="k1")
        assert_result(result, ACCEPT, "PAUSED", reason=False)
        assert flow_row(running_flow).empirical_policy["pause_keys"] == ["k1"]

    def test_key_defaults_to_a_random_uuid(self, running_flow):
        assert flow_set(running_flow, "PAUSED").status is ACCEPT
        (key,) = flow_row(running_flow).empirical_policy["pause_keys"]
        uuid.UUID(key)

    def test_a_pause_key_fires_once(self, running_flow):
        assert flow_set(running_flow, "PAUSED", pause_key="k").status is ACCEPT
        assert flow_set(running_flow, "RUNNING").status is ACCEPT
        before = flow_states(running_flow)
        result = flow_set(running_flow, "PAUSED", pause_key="k")
        assert_result(result, REJECT, "RUNNING")
        assert not result.written and flow_states(running_flow) == before
        assert flow_row(running_flow).empirical_policy["pause_keys"] == ["k"]

    @pytest.mark.parametrize("initial", ["SCHEDULED", "PENDING", "PAUSED"])
    def test_only_running_flows_pause(self, new_flow_run, initial):
        run_id = new_flow_run(initial)
        result = flow_set(run_id, "PAUSED", pause_key="k")
        assert_result(result, REJECT, initial)
        assert not result.written and flow_states(run_id) == 1
        assert "k" not in (flow_row(run_id).empirical_policy.get("pause_keys") or [])

    def test_flow_without_state_cannot_pause(self, flow):
        run = FlowRun.create(flow=flow["id"], name="bare")
        assert_result(flow_set(run.id, "PAUSED"), ABORT)

    def test_reschedule_needs_a_deployment(self, running_flow):
        assert_result(flow_set(running_flow, "PAUSED", pause_reschedule=True), ABORT)
        assert flow_row(running_flow).state_type == "RUNNING"

    def test_reschedule_is_refused_to_subflows(self, new_flow_run, new_task_run, deployment):
        parent_task = new_task_run("RUNNING")
        run_id = new_flow_run(
            "RUNNING", deployment_id=deployment, parent_task_run_id=str(parent_task)
        )
        assert_result(flow_set(run_id, "PAUSED", pause_reschedule=True), ABORT)

    def test_reschedule_with_a_deployment_pauses(self, new_flow_run, deployment):
        run_id = new_flow_run("RUNNING", deployment_id=deployment)
        result = flow_set(run_id, "PAUSED", pause_reschedule=True, pause_key="r")
        assert_result(result, ACCEPT, "PAUSED", reason=False)
        assert result.state.state_details["pause_reschedule"] is True
        assert flow_row(run_id).empirical_policy["pause_keys"] == ["r"]


class TestHandleResumingPausedFlows:
    @pytest.mark.parametrize("proposed", ["PENDING", "CANCELLING"])
    def test_paused_flow_cannot_move_elsewhere(self, new_flow_run, proposed):
        run_id = new_flow_run("PAUSED")
        result = flow_set(run_id, proposed)
        assert_result(result, REJECT, "PAUSED")
        assert not result.written and flow_states(run_id) == 1

    def test_resume_by_rescheduling_marks_the_run_resuming(self, running_flow):
        assert flow_set(running_flow, "PAUSED").status is ACCEPT
        assert_result(flow_set(running_flow, "SCHEDULED"), ACCEPT, "SCHEDULED", reason=False)
        assert flow_row(running_flow).empirical_policy["resuming"] is True

    def test_resume_to_running_is_not_a_new_attempt(self, running_flow):
        assert flow_set(running_flow, "PAUSED").status is ACCEPT
        assert_result(flow_set(running_flow, "RUNNING"), ACCEPT, "RUNNING", reason=False)
        run = flow_row(running_flow)
        assert run.run_count == 1
        assert run.empirical_policy["resuming"] is False

    @pytest.mark.parametrize("proposed", TERMINAL)
    def test_paused_flow_may_end(self, new_flow_run, proposed):
        run_id = new_flow_run("PAUSED")
        assert_result(flow_set(run_id, proposed), ACCEPT, proposed, reason=False)

    def test_reschedule_pause_needs_a_deployment_to_resume(self, new_flow_run):
        run_id = new_flow_run({"type": "PAUSED", "state_details": {"pause_reschedule": True}})
        result = flow_set(run_id, "SCHEDULED", "Resuming")
        assert_result(result, REJECT, "PAUSED")
        assert flow_states(run_id) == 1

    @pytest.mark.parametrize("proposed", ["RUNNING", "SCHEDULED", "COMPLETED", "CANCELLED"])
    def test_expired_pause_fails_the_run(self, new_flow_run, proposed):
        expired = iso(utcnow() - datetime.timedelta(minutes=5))
        run_id = new_flow_run({"type": "PAUSED", "state_details": {"pause_timeout": expired}})
        result = flow_set(run_id, proposed)
        assert_result(result, REJECT, "FAILED", "Failed")
        assert result.written and flow_states(run_id) == 2
        assert flow_row(run_id).state_type == "FAILED"

    def test_unexpired_pause_resumes(self, new_flow_run):
        later = iso(utcnow() + datetime.timedelta(minutes=5))
        run_id = new_flow_run({"type": "PAUSED", "state_details": {"pause_timeout": later}})
        assert_result(flow_set(run_id, "RUNNING"), ACCEPT, "RUNNING", reason=False)

    def test_rescheduled_resume_is_not_a_new_attempt(self, new_flow_run, deployment):
        run_id = new_flow_run("RUNNING", deployment_id=deployment)
        assert flow_set(run_id, "PAUSED", pause_reschedule=True).status is ACCEPT
        result = flow_set(run_id, "SCHEDULED", "Resuming")
        assert_result(result, ACCEPT, "SCHEDULED", "Resuming", reason=False)
        assert flow_row(run_id).empirical_policy["resuming"] is True
        assert flow_set(run_id, "PENDING").status is ACCEPT
        assert flow_set(run_id, "RUNNING").status is ACCEPT
        run = flow_row(run_id)
        assert run.run_count == 1
        assert run.empirical_policy["resuming"] is False


class TestCopyScheduledTime:
    @pytest.mark.parametrize("task", [False, True])
    def test_pending_inherits_the_scheduled_time(self, new_flow_run, new_task_run, task):
        when = iso(utcnow() + datetime.timedelta(hours=1))
        initial = {"type": "SCHEDULED", "state_details": {"scheduled_time": when}}
        run_id = new_task_run(initial) if task else new_flow_run(initial)
        result = (task_set if task else flow_set)(run_id, "PENDING")
        assert_result(result, ACCEPT, "PENDING", reason=False)
        assert parse(result.state.state_details["scheduled_time"]) == parse(when)

    def test_pending_keeps_its_own_scheduled_time(self, new_flow_run):
        when = utcnow() + datetime.timedelta(hours=1)
        run_id = new_flow_run({"type": "SCHEDULED", "state_details": {"scheduled_time": iso(when)}})
        own = when + datetime.timedelta(hours=1)
        result = flow_set(run_id, "PENDING", scheduled_time=iso(own))
        assert parse(result.state.state_details["scheduled_time"]) == own


class TestWaitForScheduledTime:
    @pytest.mark.parametrize("task", [False, True])
    @pytest.mark.parametrize("via_pending", [False, True])
    def test_future_scheduled_time_waits(self, new_flow_run, new_task_run, task, via_pending):
        when = iso(utcnow() + datetime.timedelta(seconds=60))
        initial = {"type": "SCHEDULED", "state_details": {"scheduled_time": when}}
        run_id = new_task_run(initial) if task else new_flow_run(initial)
        propose, count = (task_set, task_states) if task else (flow_set, flow_states)
        if via_pending:
            assert propose(run_id, "PENDING").status is ACCEPT
        before = count(run_id)
        result = propose(run_id, "RUNNING")
        assert_result(result, WAIT)
        assert 59 <= result.details["delay_seconds"] <= 60
        assert isinstance(result.details["delay_seconds"], int)
        assert not result.written and count(run_id) == before
        row = (task_row if task else flow_row)(run_id)
        assert row.state_type == ("PENDING" if via_pending else "SCHEDULED")
        assert row.run_count == 0 and row.start_time is None

    def test_past_scheduled_time_runs(self, new_flow_run):
        when = iso(utcnow() - datetime.timedelta(seconds=5))
        run_id = new_flow_run({"type": "SCHEDULED", "state_details": {"scheduled_time": when}})
        assert_result(flow_set(run_id, "RUNNING"), ACCEPT, "RUNNING", reason=False)


class TestRetryFailedFlows:
    def test_failure_with_retries_left_is_rescheduled(self, new_flow_run):
        run_id = new_flow_run(
            "RUNNING", empirical_policy={"retries": 2, "retry_delay": 30, "pause_keys": ["k"]}
        )
        result = flow_set(run_id, "FAILED", message="boom", data={"x": 1})
        assert_result(result, REJECT, "SCHEDULED", "AwaitingRetry")
        assert result.written and flow_states(run_id) == 2
        assert (result.state.message, result.state.data) == ("boom", {"x": 1})
        delay = parse(result.state.state_details["scheduled_time"]) - result.state.timestamp
        assert abs(delay.total_seconds() - 30) < 1
        run = flow_row(run_id)
        assert run.state_name == "AwaitingRetry"
        assert run.empirical_policy["pause_keys"] == []
        assert run.next_scheduled_start_time == parse(result.state.state_details["scheduled_time"])

    def test_retries_are_counted_by_run_count(self, new_flow_run):
        run_id = new_flow_run("RUNNING", empirical_policy={"retries": 2, "retry_delay": 0})
        for attempt in (1, 2):
            assert flow_row(run_id).run_count == attempt
            assert flow_set(run_id, "FAILED").status is REJECT
            assert flow_set(run_id, "PENDING").status is ACCEPT
            assert flow_set(run_id, "RUNNING").status is ACCEPT
        assert flow_row(run_id).run_count == 3
        assert_result(flow_set(run_id, "FAILED"), ACCEPT, "FAILED", reason=False)

    def test_no_retries_fails(self, running_flow):
        assert_result(flow_set(running_flow, "FAILED"), ACCEPT, "FAILED", reason=False)
        assert flow_row(running_flow).state_type == "FAILED"


# --- CoreTaskPolicy --------------------------------------------------------------------------


def complete_cached(new_task_run, key, data, expiration=None):
    """A task run that completes with ``key`` (and ``expiration``); returns its state."""
    run_id = new_task_run("RUNNING")
    details = {"cache_key": key}
    if expiration is not None:
        details["cache_expiration"] = iso(expiration)
    result = task_set(run_id, "COMPLETED", data=data, **details)
    assert result.status is ACCEPT
    return result.state


class TestCacheRetrieval:
    @pytest.mark.parametrize("initial", ["PENDING", "SCHEDULED"])
    def test_cached_state_is_returned(self, new_task_run, initial):
        complete_cached(new_task_run, "k", {"v": 1}, utcnow() + datetime.timedelta(hours=1))
        run_id = new_task_run(initial)
        result = task_set(run_id, "RUNNING", cache_key="k")
        assert_result(result, REJECT, "COMPLETED", "Cached")
        assert result.state.data == {"v": 1} and result.written
        assert result.state.state_details["task_run_id"] == str(run_id)
        row = task_row(run_id)
        assert (row.state_type, row.state_name, row.run_count) == ("COMPLETED", "Cached", 0)

    def test_newest_cached_state_wins(self, new_task_run):
        complete_cached(new_task_run, "k", {"v": 1})
        complete_cached(new_task_run, "k", {"v": 2})
        result = task_set(new_task_run("PENDING"), "RUNNING", cache_key="k")
        assert result.state.data == {"v": 2}

    @pytest.mark.parametrize("case", ["expired", "refresh", "other_key", "no_key"])
    def test_cache_miss_runs(self, new_task_run, case):
        expires = utcnow() - SECOND if case == "expired" else None
        complete_cached(new_task_run, "k", {"v": 1}, expires)
        details = {"cache_key": "other" if case == "other_key" else "k"}
        if case == "refresh":
            details["refresh_cache"] = True
        if case == "no_key":
            details = {}
        result = task_set(new_task_run("PENDING"), "RUNNING", **details)
        assert_result(result, ACCEPT, "RUNNING", reason=False)


class TestHandleTaskTerminalStateTransitions:
    @pytest.mark.parametrize("initial", TERMINAL)
    @pytest.mark.parametrize(
        "proposed", ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLING"]
    )
    def test_leaving_a_terminal_state_aborts(self, new_task_run, initial, proposed):
        run_id = new_task_run(initial, tracker=1)
        assert_result(task_set(run_id, proposed), ABORT)
        assert task_states(run_id) == 1 and task_row(run_id).state_type == initial

    @pytest.mark.parametrize("initial", ["FAILED", "CRASHED", "CANCELLED"])
    def test_rerun_while_the_flow_retries(self, new_task_run, running_flow, initial):
        run_id = new_task_run(initial, tracker=1)
        TaskRun.update(run_count=3).where(TaskRun.id == run_id).execute()
        FlowRun.update(run_count=2).where(FlowRun.id == running_flow).execute()
        result = task_set(run_id, "RUNNING")
        assert_result(result, ACCEPT, "RUNNING", "Retrying", reason=False)
        row = task_row(run_id)
        assert (row.run_count, row.flow_run_run_count, row.state_name) == (1, 2, "Retrying")

    @pytest.mark.parametrize("proposed", ["RUNNING", "PENDING"])
    def test_completed_task_stays_completed_while_the_flow_retries(
        self, new_task_run, running_flow, proposed
    ):
        run_id = new_task_run("COMPLETED", tracker=1)
        FlowRun.update(run_count=2).where(FlowRun.id == running_flow).execute()
        assert_result(task_set(run_id, proposed), ABORT)

    def test_failed_task_stays_failed_to_non_running_proposals(self, new_task_run, running_flow):
        run_id = new_task_run("FAILED", tracker=1)
        FlowRun.update(run_count=2).where(FlowRun.id == running_flow).execute()
        assert_result(task_set(run_id, "PENDING"), ABORT)


class TestPreventRunningTasksFromStoppedFlows:
    @pytest.mark.parametrize("flow_state", ["SCHEDULED", "PENDING", "CANCELLING", *TERMINAL])
    def test_task_of_a_stopped_flow_aborts(self, new_flow_run, new_task_run, flow_state):
        run_id = new_task_run("PENDING", flow_run_id=new_flow_run(flow_state))
        assert_result(task_set(run_id, "RUNNING"), ABORT)
        assert task_row(run_id).state_type == "PENDING" and task_states(run_id) == 1

    def test_task_of_a_flow_without_state_aborts(self, flow, new_task_run):
        bare = FlowRun.create(flow=flow["id"], name="bare")
        run_id = new_task_run("PENDING", flow_run_id=bare.id)
        assert_result(task_set(run_id, "RUNNING"), ABORT)

    def test_task_of_a_paused_flow_is_not_ready(self, new_flow_run, new_task_run):
        run_id = new_task_run("PENDING", flow_run_id=new_flow_run("PAUSED"))
        result = task_set(run_id, "RUNNING")
        assert_result(result, REJECT, "PAUSED", "NotReady")
        assert result.written and task_row(run_id).state_name == "NotReady"
        assert task_row(run_id).run_count == 0

    def test_task_of_a_running_flow_runs(self, new_task_run):
        assert_result(task_set(new_task_run("PENDING"), "RUNNING"), ACCEPT, "RUNNING", reason=False)


def retry_delay_of(result):
    return (
        parse(result.state.state_details["scheduled_time"]) - result.state.timestamp
    ).total_seconds()


class TestRetryFailedTasks:
    def test_failure_with_retries_left_is_rescheduled(self, new_task_run):
        run_id = new_task_run("RUNNING", empirical_policy={"retries": 1, "retry_delay": 10})
        result = task_set(run_id, "FAILED", message="boom", data={"e": 1})
        assert_result(result, REJECT, "SCHEDULED", "AwaitingRetry")
        assert (result.state.message, result.state.data) == ("boom", {"e": 1})
        assert abs(retry_delay_of(result) - 10) < 0.01
        assert result.written and task_states(run_id) == 2

    def test_list_delays_apply_per_attempt_then_the_last_repeats(self, new_task_run):
        run_id = new_task_run("RUNNING", empirical_policy={"retries": 3, "retry_delay": [10, 20]})
        delays = []
        for attempt in (1, 2, 3):
            assert task_row(run_id).run_count == attempt
            result = task_set(run_id, "FAILED")
            assert_result(result, REJECT, "SCHEDULED", "AwaitingRetry")
            delays.append(retry_delay_of(result))
            assert task_set(run_id, "RUNNING", force=True).status is ACCEPT
        assert [round(d, 2) for d in delays] == [10, 20, 20]
        assert_result(task_set(run_id, "FAILED"), ACCEPT, "FAILED", reason=False)

    def test_jitter_stays_within_bounds(self, new_task_run):
        delays = []
        for _ in range(5):
            run_id = new_task_run(
                "RUNNING",
                empirical_policy={"retries": 1, "retry_delay": 100, "retry_jitter_factor": 0.5},
            )
            delays.append(retry_delay_of(task_set(run_id, "FAILED")))
        assert all(0 <= d <= 150 + 0.01 for d in delays), delays
        assert any(abs(d - 100) > 0.01 for d in delays), delays

    def test_no_retries_left_fails(self, new_task_run):
        run_id = new_task_run("RUNNING", empirical_policy={"retries": 0})
        assert_result(task_set(run_id, "FAILED"), ACCEPT, "FAILED", reason=False)


class TestRenameReruns:
    def test_first_run_keeps_its_name(self, new_task_run):
        result = task_set(new_task_run("PENDING"), "RUNNING")
        assert_result(result, ACCEPT, "RUNNING", "Running", reason=False)

    def test_run_after_awaiting_retry_is_retrying(self, new_task_run):
        run_id = new_task_run("RUNNING", empirical_policy={"retries": 1, "retry_delay": 0})
        assert task_set(run_id, "FAILED").state.name == "AwaitingRetry"
        result = task_set(run_id, "RUNNING")
        assert_result(result, ACCEPT, "RUNNING", "Retrying", reason=False)
        assert task_row(run_id).run_count == 2

    @pytest.mark.parametrize("back_to", ["SCHEDULED", "PENDING"])
    def test_other_reruns_are_rerunning(self, new_task_run, back_to):
        run_id = new_task_run("RUNNING")
        assert task_set(run_id, back_to, force=True).status is ACCEPT
        result = task_set(run_id, "RUNNING")
        assert_result(result, ACCEPT, "RUNNING", "Rerunning", reason=False)
        assert task_row(run_id).state_name == "Rerunning"


class TestUpdateFlowRunTrackerOnTasks:
    def test_running_task_records_the_flow_attempt(self, new_task_run, running_flow):
        FlowRun.update(run_count=3).where(FlowRun.id == running_flow).execute()
        run_id = new_task_run("PENDING")
        assert task_set(run_id, "RUNNING").status is ACCEPT
        assert task_row(run_id).flow_run_run_count == 3

    def test_waiting_task_records_nothing(self, new_task_run, running_flow):
        FlowRun.update(run_count=3).where(FlowRun.id == running_flow).execute()
        when = iso(utcnow() + datetime.timedelta(minutes=5))
        run_id = new_task_run({"type": "SCHEDULED", "state_details": {"scheduled_time": when}})
        assert task_set(run_id, "RUNNING").status is WAIT
        assert task_row(run_id).flow_run_run_count == 0


class TestCacheInsertion:
    @pytest.mark.parametrize("expiration", [None, datetime.timedelta(hours=1)])
    def test_completed_state_with_a_key_is_cached(self, new_task_run, expiration):
        expires = utcnow() + expiration if expiration else None
        completed = complete_cached(new_task_run, "key-1", {"v": 1}, expires)
        (row,) = TaskRunStateCache.select()
        assert row.cache_key == "key-1"
        assert row.cache_expiration == expires
        assert row.task_run_state_id == completed.id

    def test_completed_state_without_a_key_is_not_cached(self, new_task_run):
        assert task_set(new_task_run("RUNNING"), "COMPLETED").status is ACCEPT
        assert TaskRunStateCache.select().count() == 0

    def test_cache_hit_adds_no_cache_row(self, new_task_run):
        complete_cached(new_task_run, "k", 1)
        assert task_set(new_task_run("PENDING"), "RUNNING", cache_key="k").state.name == "Cached"
        assert TaskRunStateCache.select().count() == 1

    def test_expired_entry_is_kept_but_refresh_writes_a_new_one(self, new_task_run):
        complete_cached(new_task_run, "k", {"v": 1}, utcnow() + datetime.timedelta(hours=1))
        run_id = new_task_run("PENDING")
        assert task_set(run_id, "RUNNING", cache_key="k", refresh_cache=True).status is ACCEPT
        assert task_set(run_id, "COMPLETED", data={"v": 2}, cache_key="k").status is ACCEPT
        assert TaskRunStateCache.select().count() == 2
        result = task_set(new_task_run("PENDING"), "RUNNING", cache_key="k")
        assert result.state.data == {"v": 2}


# --- global bookkeeping, force, transition ids, "written" ------------------------------------


class TestGlobalBookkeeping:
    def test_start_time_is_the_first_running(self, new_flow_run):
        run_id = new_flow_run("PENDING")
        first = flow_set(run_id, "RUNNING").state
        assert flow_row(run_id).start_time == first.timestamp
        flow_set(run_id, "PAUSED")
        flow_set(run_id, "RUNNING")
        assert flow_row(run_id).start_time == first.timestamp

    def test_end_time_set_on_terminal_and_cleared_on_leaving(self, new_flow_run, deployment):
        run_id = new_flow_run("RUNNING", deployment_id=deployment)
        failed = flow_set(run_id, "FAILED").state
        assert flow_row(run_id).end_time == failed.timestamp
        assert flow_set(run_id, "SCHEDULED", "AwaitingRetry").status is ACCEPT
        assert flow_row(run_id).end_time is None

    def test_terminal_without_start_has_no_end_time(self, new_flow_run):
        run_id = new_flow_run("PENDING")
        assert flow_set(run_id, "CANCELLED").status is ACCEPT
        assert flow_row(run_id).end_time is None

    def test_total_run_time_accrues_over_running_spells(self, new_flow_run):
        run_id = new_flow_run("PENDING")
        r1 = flow_set(run_id, "RUNNING").state
        p = flow_set(run_id, "PAUSED").state
        r2 = flow_set(run_id, "RUNNING").state
        c = flow_set(run_id, "COMPLETED").state
        expected = (p.timestamp - r1.timestamp) + (c.timestamp - r2.timestamp)
        assert flow_row(run_id).total_run_time == pytest.approx(expected.total_seconds())

    def test_run_count_counts_entries_into_running(self, new_flow_run):
        run_id = new_flow_run("PENDING", empirical_policy={"retries": 1, "retry_delay": 0})
        assert flow_row(run_id).run_count == 0
        flow_set(run_id, "RUNNING")
        assert flow_row(run_id).run_count == 1
        assert flow_set(run_id, "FAILED").status is REJECT
        assert flow_row(run_id).run_count == 1
        flow_set(run_id, "PENDING")
        flow_set(run_id, "RUNNING")
        assert flow_row(run_id).run_count == 2

    def test_expected_and_next_scheduled_start_times(self, new_flow_run):
        when = (utcnow() - SECOND).replace(microsecond=0)
        run_id = new_flow_run({"type": "SCHEDULED", "state_details": {"scheduled_time": iso(when)}})
        run = flow_row(run_id)
        assert run.expected_start_time == when and run.next_scheduled_start_time == when
        flow_set(run_id, "PENDING")
        run = flow_row(run_id)
        assert run.expected_start_time == when and run.next_scheduled_start_time is None
        flow_set(run_id, "RUNNING")
        assert flow_row(run_id).expected_start_time == when

    def test_expected_start_time_of_an_unscheduled_run_is_its_first_state(self, new_flow_run):
        run_id = new_flow_run("PENDING")
        first = flow_row(run_id)
        flow_set(run_id, "RUNNING")
        assert flow_row(run_id).expected_start_time == first.state_timestamp

    def test_state_timestamps_strictly_increase_and_run_columns_follow(self, new_flow_run):
        run_id = new_flow_run("SCHEDULED")
        results = [
            flow_set(run_id, t) for t in ("PENDING", "RUNNING", "PAUSED", "RUNNING", "COMPLETED")
        ]
        assert all(r.status is ACCEPT for r in results)
        stamps = [r.state.timestamp for r in results]
        assert stamps == sorted(set(stamps))
        run, last = flow_row(run_id), results[-1].state
        assert (run.state_id, run.state_type, run.state_name, run.state_timestamp) == (
            last.id,
            "COMPLETED",
            "Completed",
            last.timestamp,
        )
        assert last.state_details["flow_run_id"] == str(run_id)

    def test_task_states_carry_run_ids(self, new_task_run, running_flow):
        run_id = new_task_run("PENDING")
        details = task_set(run_id, "RUNNING").state.state_details
        assert (details["task_run_id"], details["flow_run_id"]) == (str(run_id), str(running_flow))

    def test_subflow_state_is_mirrored_onto_its_parent_task(self, new_flow_run, new_task_run):
        parent_task = new_task_run("PENDING")
        child = new_flow_run("PENDING", parent_task_run_id=str(parent_task))
        result = flow_set(child, "RUNNING")
        assert result.state.state_details["task_run_id"] == str(parent_task)
        task = task_row(parent_task)
        assert (task.state_type, task.state_name, task.run_count) == ("RUNNING", "Running", 1)
        mirrored = TaskRunState.get_by_id(task.state_id)
        assert mirrored.state_details["child_flow_run_id"] == str(child)
        assert mirrored.state_details["task_run_id"] == str(parent_task)
        flow_set(child, "COMPLETED")
        assert task_row(parent_task).state_type == "COMPLETED"


class TestForce:
    def test_forced_flow_transition_skips_rules_but_keeps_bookkeeping(self, new_flow_run):
        run_id = new_flow_run("RUNNING")
        assert flow_set(run_id, "COMPLETED").status is ACCEPT
        assert flow_row(run_id).end_time is not None
        result = flow_set(run_id, "RUNNING", force=True)
        assert_result(result, ACCEPT, "RUNNING", reason=False)
        run = flow_row(run_id)
        assert (run.state_type, run.run_count, run.end_time) == ("RUNNING", 2, None)

    def test_forced_running_does_not_wait(self, new_flow_run):
        when = iso(utcnow() + datetime.timedelta(hours=1))
        run_id = new_flow_run({"type": "SCHEDULED", "state_details": {"scheduled_time": when}})
        assert_result(flow_set(run_id, "RUNNING", force=True), ACCEPT, "RUNNING", reason=False)
        assert flow_row(run_id).next_scheduled_start_time is None

    def test_forced_failure_is_not_retried(self, new_flow_run):
        run_id = new_flow_run("RUNNING", empirical_policy={"retries": 3})
        assert_result(flow_set(run_id, "FAILED", force=True), ACCEPT, "FAILED", reason=False)

    def test_forced_task_ignores_the_flow_and_the_cache(self, new_flow_run, new_task_run):
        run_id = new_task_run("PENDING", flow_run_id=new_flow_run("COMPLETED"))
        result = task_set(run_id, "RUNNING", force=True)
        assert_result(result, ACCEPT, "RUNNING", reason=False)
        assert task_row(run_id).run_count == 1
        assert task_set(run_id, "COMPLETED", force=True, cache_key="k").status is ACCEPT
        assert TaskRunStateCache.select().count() == 0


class TestTransitionId:
    @pytest.mark.parametrize("task", [False, True])
    def test_same_transition_twice_writes_once(self, new_flow_run, new_task_run, task):
        run_id = new_task_run("PENDING") if task else new_flow_run("PENDING")
        propose, count = (task_set, task_states) if task else (flow_set, flow_states)
        tid = str(uuid.uuid4())
        first = propose(run_id, "RUNNING", transition_id=tid)
        assert first.status is ACCEPT and first.written
        again = propose(run_id, "RUNNING", transition_id=tid)
        assert again.status is ACCEPT and not again.written
        assert again.state.id == first.state.id
        assert count(run_id) == 2
        assert (task_row if task else flow_row)(run_id).run_count == 1

    @pytest.mark.parametrize("case", ["task retry", "flow retry", "cache hit"])
    def test_a_rejected_proposal_retried_gets_the_same_state(
        self, new_flow_run, new_task_run, case
    ):
        """A lost answer to a proposal a rule replaced (AwaitingRetry, Cached): the retry is
        recognised by its transition id and answered REJECT with that state, not moved on."""
        tid = str(uuid.uuid4())
        if case == "cache hit":
            complete_cached(new_task_run, "k", {"v": 1})
            run_id, propose, count = new_task_run("PENDING"), task_set, task_states
            proposal, expected = {"type_": "RUNNING", "cache_key": "k"}, ("COMPLETED", "Cached")
        else:
            task = case == "task retry"
            make, propose, count = (
                (new_task_run, task_set, task_states)
                if task
                else (new_flow_run, flow_set, flow_states)
            )
            run_id = make("RUNNING", empirical_policy={"retries": 1, "retry_delay": 60})
            proposal, expected = {"type_": "FAILED"}, ("SCHEDULED", "AwaitingRetry")
        first = propose(run_id, transition_id=tid, **proposal)
        assert_result(first, REJECT, *expected)
        assert first.written and first.state.state_details["transition_id"] == tid
        states = count(run_id)
        again = propose(run_id, transition_id=tid, **proposal)
        assert_result(again, REJECT, *expected)
        assert again.state.id == first.state.id and not again.written
        assert count(run_id) == states

    def test_a_new_transition_id_is_orchestrated(self, new_flow_run):
        run_id = new_flow_run("PENDING")
        flow_set(run_id, "RUNNING", transition_id=str(uuid.uuid4()))
        assert_result(flow_set(run_id, "RUNNING", transition_id=str(uuid.uuid4())), ABORT)


class TestWritten:
    """``written`` (HTTP 201 vs 200) is true exactly when a state row was added."""

    @pytest.mark.parametrize(
        "initial, proposal, status, rows",
        [
            ("PENDING", {"type": "RUNNING"}, "ACCEPT", 1),
            ("CANCELLING", {"type": "RUNNING"}, "REJECT", 0),
            ("SCHEDULED+1h", {"type": "RUNNING"}, "WAIT", 0),
            ("COMPLETED", {"type": "RUNNING"}, "ABORT", 0),
            ("RUNNING+retry", {"type": "FAILED"}, "REJECT", 1),
            ("COMPLETED", {"type": "RUNNING", "force": True}, "ACCEPT", 1),
        ],
    )
    def test_flow_set_state_endpoint(self, client, new_flow_run, initial, proposal, status, rows):
        if initial == "SCHEDULED+1h":
            when = iso(utcnow() + datetime.timedelta(hours=1))
            run_id = new_flow_run({"type": "SCHEDULED", "state_details": {"scheduled_time": when}})
        elif initial == "RUNNING+retry":
            run_id = new_flow_run("RUNNING", empirical_policy={"retries": 1})
        else:
            run_id = new_flow_run(initial)
        proposal = dict(proposal)
        force = proposal.pop("force", False)
        before = flow_states(run_id)
        response = client.post(
            f"/api/flow_runs/{run_id}/set_state", json={"state": proposal, "force": force}
        )
        body = response.get_json()
        assert body["status"] == status
        assert flow_states(run_id) - before == rows
        assert response.status_code == (201 if rows else 200)

    def test_task_set_state_endpoint(self, client, new_task_run):
        run_id = new_task_run("PENDING")
        response = client.post(
            f"/api/task_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}}
        )
        assert response.status_code == 201 and response.get_json()["status"] == "ACCEPT"
        response = client.post(
            f"/api/task_runs/{run_id}/set_state", json={"state": {"type": "PENDING"}}
        )
        assert response.status_code == 200 and response.get_json()["status"] == "ABORT"
        assert task_states(run_id) == 2
