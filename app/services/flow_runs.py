"""Flow runs: idempotent creation with an initial state, reads, updates, filters, history."""

import datetime
import json
from collections.abc import Mapping
from typing import Any

from peewee import Case, IntegrityError, fn

from app.db import database
from app.exceptions import Conflict, ObjectNotFound
from app.models import (
    Deployment,
    Flow,
    FlowRun,
    FlowRunState,
    TaskRun,
    TaskRunState,
    WorkQueue,
    statements,
    utcnow,
)
from app.models.notifications import queue_notifications
from app.models.rollups import mark_deleted_runs_stale
from app.orchestration.rules import SetStateStatus
from app.services import filters, hydration, work_pools
from app.services.common import Body, Id, require_exists, update_or_raise
from app.services.concurrency_limits import renew_flow_run_leases
from app.services.flow_run_input import create_flow_run_input, find_flow_run_input
from app.services.names import generate_run_name
from app.services.orchestration import OrchestrationResult, set_flow_run_state
from app.services.runs import (
    fetch_runs,
    initial_state,
    read_page,
    read_run,
    read_run_history,
    seconds_between,
    with_state,
)
from app.states import TERMINAL_STATES, StateType

_CREATE_FIELDS = (
    "flow_version",
    "parameters",
    "context",
    "parent_task_run_id",
    "infrastructure_document_id",
    "empirical_policy",
    "tags",
    "idempotency_key",
    "work_queue_name",
    "work_queue_id",
    "created_by",
    "job_variables",
    "deployment_version",
)


def create_flow_run(data: Mapping[str, Any]) -> tuple[Any, bool]:
    """Create a flow run, or return the existing one with the same flow and idempotency key.

    ``data`` is a loaded FlowRunCreate body. The run and its first state (``data["state"]``,
    default Pending) are written in one transaction. Returns ``(run, created)`` with
    ``run.state`` loaded.
    """
    now = utcnow()
    # Its id is the model's default, a new uuid4 (given here too, it was drawn twice).
    run = FlowRun(
        flow=data["flow_id"],
        deployment=data.get("deployment_id"),
        name=data.get("name") or generate_run_name(),
        created=now,
        updated=now,
        **{key: data[key] for key in _CREATE_FIELDS if key in data},
    )
    state = initial_state(run, FlowRunState, data.get("state"), is_task=False)
    state.flow_run = run.id
    try:
        with database.atomic():
            if run.idempotency_key is None:
                # Nothing to find again: both rows travel with the commit, one round trip.
                statements.insert_row(FlowRun, run.__data__, deferred=True)
            elif not statements.insert_row(FlowRun, run.__data__, ignore_conflict=True):
                return read_flow_run_where(
                    (FlowRun.flow == run.flow_id) & (FlowRun.idempotency_key == run.idempotency_key)
                ), False
            statements.insert_row(FlowRunState, state.__data__, deferred=True)
            # The first state is a forced transition from none: it notifies like any other.
            queue_notifications(state.id, state.name, run.tags, now)
    except IntegrityError:
        # A foreign key: name the missing flow or deployment (checked only on failure).
        require_exists(Flow, data["flow_id"], "Flow")
        if data.get("deployment_id") is not None:
            require_exists(Deployment, data["deployment_id"], "Deployment")
        raise
    run.state = state
    return run, True


def read_flow_run_where(condition: Any) -> Any:
    """The one flow run matching ``condition``, with its state, or None."""
    return with_state(FlowRun, FlowRunState).where(condition).first()


def read_flow_run(flow_run_id: Id) -> Any:
    """The flow run with this id as a read row (see ``fetch_runs``); ObjectNotFound if none."""
    return read_run(FlowRun, FlowRunState, flow_run_id, "Flow run")


def update_flow_run(flow_run_id: Id, changes: Mapping[str, Any]) -> None:
    """Apply a FlowRunUpdate (name, version, parameters, policy, tags, infrastructure pid
    and exit code, job variables).

    As Prefect 2.20, job variables change only while the run is Scheduled (Conflict
    otherwise: its job may have been made from them), and must suit its work pool's
    template (InvalidData naming the variable).
    """
    if "job_variables" not in changes:
        update_or_raise(FlowRun, flow_run_id, changes, "Flow run")
        return
    with database.atomic():
        run = statements.select_by_id(FlowRun, flow_run_id, lock=True)
        if run is None:
            raise ObjectNotFound(f"Flow run {flow_run_id} not found.")
        if run.state_type != StateType.SCHEDULED.value:
            raise Conflict(
                f"Flow run {flow_run_id} is {run.state_name or 'without a state'}: its job "
                "variables can only change while it is Scheduled."
            )
        work_pools.check_queue_job_variables(run.work_queue_id, changes["job_variables"])
        update_or_raise(FlowRun, flow_run_id, changes, "Flow run")


def pools_of(runs: Any) -> dict[str, tuple[Any, str]]:
    """``{queue id as a string: (pool id, pool name)}`` for the pool queues ``runs`` (model
    instances or read rows) were sent to (one query, none when no run has one), for
    ``dump_flow_run``."""
    facts = WorkQueue.pool_facts({run.work_queue_id for run in runs} - {None})
    return {queue_id: (pool_id, name) for queue_id, (pool_id, name, _) in facts.items()}


def delete_flow_run(flow_run_id: Id) -> None:
    """Delete a flow run with its states and task runs.

    Subflow runs whose parent task run is deleted with it keep existing, detached from the
    parent (their ``parent_task_run_id`` is cleared), as Orion's ``SET NULL`` does.
    """
    with database.atomic():
        parent_tasks = TaskRun.select(TaskRun.id).where(TaskRun.flow_run == flow_run_id)
        (
            FlowRun.update(parent_task_run_id=None)
            .where(FlowRun.parent_task_run_id.in_(parent_tasks))
            .execute()
        )
        mark_deleted_runs_stale(FlowRun.id == flow_run_id)
        deleted = FlowRun.delete().where(FlowRun.id == flow_run_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Flow run {flow_run_id} not found.")


def read_flow_runs(body: Body) -> list[Any]:
    """Flow runs (with states) matching a filter body, sorted and paged."""
    return read_page(FlowRun, FlowRunState, body)


def count_flow_runs(body: Body) -> int:
    """How many flow runs match a filter body."""
    return filters.apply_filters(FlowRun.select(), FlowRun, body).count()


def average_lateness(body: Body, now: datetime.datetime | None = None) -> float | None:
    """The mean lateness in seconds of the flow runs a filter body matches (None if none), as
    Prefect 2.20 counts it: a run that started counts how long after its expected start it
    did; one not started yet, not finished and already due counts how late it is ``now``;
    any other counts 0."""
    now = now or utcnow()
    parameter = FlowRun.expected_start_time.db_value(now)
    lateness = Case(
        None,
        [
            (
                FlowRun.start_time > FlowRun.expected_start_time,
                seconds_between(FlowRun.start_time, FlowRun.expected_start_time),
            ),
            (
                FlowRun.start_time.is_null()
                & FlowRun.state_type.not_in([s.value for s in TERMINAL_STATES])
                & (FlowRun.expected_start_time < parameter),
                seconds_between(parameter, FlowRun.expected_start_time),
            ),
        ],
        0,
    )
    query = filters.apply_filters(FlowRun.select(fn.AVG(lateness)), FlowRun, body)
    average = query.scalar()
    return None if average is None else float(average)


def read_flow_run_history(
    start: datetime.datetime,
    end: datetime.datetime,
    interval_seconds: float,
    body: Body,
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """Counts of flow runs per state in time buckets (``runs.read_run_history``)."""
    return read_run_history(FlowRun, start, end, interval_seconds, body, now)


def resume_flow_run(
    flow_run_id: Id,
    run_input: Mapping[str, Any] | None = None,
    api_version: tuple[int, ...] | None = None,
) -> OrchestrationResult:
    """Resume a PAUSED flow run: RUNNING, or Scheduled "Resuming" for a pause that asked to
    reschedule. Anything else is answered ABORT. Returns an OrchestrationResult.

    A pause that waits for input (its state's ``run_input_keyset``) is resumed only with input
    that, hydrated (:mod:`app.services.hydration`), is valid against the JSON schema the flow
    stored under the keyset's ``schema`` key; else REJECT, the run staying paused, with the
    reason. The input is stored under the ``response`` key in the transaction that resumes the
    run, so a flow that sees itself running finds its input.
    """
    with database.atomic():
        run = read_flow_run(flow_run_id)
        if run.state_type != StateType.PAUSED.value:
            return OrchestrationResult(
                SetStateStatus.ABORT,
                None,
                {"type": "abort_details", "reason": "Cannot resume a flow run that is not paused."},
                False,
            )
        details = run.state.state_details or {}
        keyset = details.get("run_input_keyset")
        if keyset:
            try:
                run_input = _checked_run_input(flow_run_id, keyset, run_input or {})
            except ValueError as refused:
                return OrchestrationResult(
                    SetStateStatus.REJECT,
                    run.state,
                    {"type": "reject_details", "reason": str(refused)},
                    False,
                )
        if details.get("pause_reschedule"):
            state = {
                "type": StateType.SCHEDULED.value,
                "name": "Resuming",
                "state_details": {"scheduled_time": utcnow().isoformat()},
            }
        else:
            state = {"type": StateType.RUNNING.value, "name": "Running", "state_details": {}}
        result = set_flow_run_state(flow_run_id, state, api_version=api_version)
        if keyset and run_input and result.status == SetStateStatus.ACCEPT:
            create_flow_run_input(flow_run_id, keyset["response"], json.dumps(run_input))
        return result


def _checked_run_input(flow_run_id: Id, keyset: Mapping[str, str], run_input: Any) -> Any:
    """``run_input`` hydrated and checked against the schema the paused flow stored under
    ``keyset["schema"]``; ValueError saying why it is refused."""
    try:
        run_input = hydration.hydrate(run_input)
    except hydration.HydrationError as error:
        raise ValueError(f"Error hydrating run input: {error}") from None
    stored = find_flow_run_input(flow_run_id, keyset.get("schema", ""))
    if stored is None:
        raise ValueError("Run input schema not found.")
    try:
        schema = json.loads(stored.value)
    except ValueError:
        raise ValueError("Run input schema is not valid JSON.") from None
    import jsonschema  # on first use: app/services/__init__.py says why

    validator = jsonschema.Draft202012Validator
    try:
        validator.check_schema(schema)
        problem = jsonschema.exceptions.best_match(validator(schema).iter_errors(run_input))
    except jsonschema.SchemaError as error:
        raise ValueError(f"Invalid schema: {error.message}") from None
    except (jsonschema.exceptions.RefResolutionError, RecursionError):
        raise ValueError(
            "Invalid schema: Unable to validate schema with circular references."
        ) from None
    if problem is not None:
        where = problem.json_path.removeprefix("$.")
        field = "" if problem.json_path == "$" else f" for field {where!r}"
        raise ValueError(f"Reason: Validation failed{field}. Failure reason: {problem.message}")
    return run_input


def record_heartbeat(
    flow_run_id: Id, lease_seconds: float, now: datetime.datetime | None = None
) -> None:
    """A flow run reports it is alive: set its ``last_heartbeat`` to ``now`` and renew the
    concurrency slot leases its task runs hold for ``lease_seconds`` (see
    :func:`app.services.concurrency_limits.renew_flow_run_leases`), in one transaction.

    Recorded whatever the run's state. ObjectNotFound if the flow run does not exist.
    """
    now = now or utcnow()
    with database.atomic():
        if not FlowRun.update(last_heartbeat=now).where(FlowRun.id == flow_run_id).execute():
            raise ObjectNotFound(f"Flow run {flow_run_id} not found.")
        renew_flow_run_leases(flow_run_id, lease_seconds, now)


def read_flow_run_graph(flow_run_id: Id) -> list[Any]:
    """The task runs of a flow run with their states, in expected start order, as read rows;
    ObjectNotFound if the flow run does not exist."""
    require_exists(FlowRun, flow_run_id, "Flow run")
    query = (
        with_state(TaskRun, TaskRunState)
        .where(TaskRun.flow_run == flow_run_id)
        .order_by(TaskRun.expected_start_time, TaskRun.id)
    )
    return fetch_runs(query, TaskRun, TaskRunState)
