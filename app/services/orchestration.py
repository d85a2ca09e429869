"""set_state: one proposed transition of one run, in one transaction.

The run row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's transactions hold the
write lock from BEGIN IMMEDIATE), its current state read, the policy applied, and the state row
and the run's columns written, all committed together. Two agents proposing PENDING for one
SCHEDULED run therefore get one ACCEPT and one ABORT.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from peewee import InterfaceError, OperationalError

from app import metrics
from app.db import database
from app.exceptions import ObjectNotFound
from app.models import FlowRun, FlowRunState, TaskRun, TaskRunState, utcnow
from app.models.statements import select_run_with_state, update_dirty
from app.orchestration.core_policy import (
    CoreFlowPolicy,
    CoreTaskPolicy,
    MinimalFlowPolicy,
    MinimalTaskPolicy,
)
from app.orchestration.engine import orchestrate
from app.orchestration.global_policy import GlobalFlowPolicy, GlobalTaskPolicy
from app.orchestration.rules import OrchestrationContext, ProposedState, SetStateStatus
from app.services.common import Id
from app.states import TERMINAL_STATES, StateType

log = logging.getLogger(__name__)


@dataclass
class OrchestrationResult:
    """What became of a proposal: status, the state to adopt (or None), details, whether a
    state row was written (HTTP 201 rather than 200), and the run row as the transaction left
    it, with its current state row as ``run.state`` (None if the proposal failed in a rule)."""

    status: SetStateStatus
    state: Any
    details: dict[str, Any]
    written: bool
    run: Any = None


@dataclass(frozen=True)
class _RunKind:
    model: object
    state_model: object
    run_field: str
    label: str
    is_task: bool
    policy: object
    forced_policy: object
    global_policy: object


FLOW_RUNS = _RunKind(
    FlowRun,
    FlowRunState,
    "flow_run",
    "Flow run",
    False,
    CoreFlowPolicy,
    MinimalFlowPolicy,
    GlobalFlowPolicy,
)
TASK_RUNS = _RunKind(
    TaskRun,
    TaskRunState,
    "task_run",
    "Task run",
    True,
    CoreTaskPolicy,
    MinimalTaskPolicy,
    GlobalTaskPolicy,
)


def set_flow_run_state(
    flow_run_id: Id,
    state: Mapping[str, Any],
    force: bool = False,
    api_version: tuple[int, ...] | None = None,
) -> OrchestrationResult:
    """Propose ``state`` (a loaded state payload) for a flow run; see :func:`_set_state`.

    ``api_version`` is the proposing client's declared API version as a tuple of ints (None:
    the latest); rules keep older clients' behaviour (ORION-REFERENCE §3).
    """
    return _set_state(FLOW_RUNS, flow_run_id, state, force, {"api-version": api_version})


def set_task_run_state(
    task_run_id: Id,
    state: Mapping[str, Any],
    force: bool = False,
    slot_settings: Mapping[str, int] | None = None,
    api_version: tuple[int, ...] | None = None,
) -> OrchestrationResult:
    """Propose ``state`` (a loaded state payload) for a task run; see :func:`_set_state`.

    ``slot_settings`` (``{"slot_wait_seconds": int, "slot_lease_seconds": int}``, either
    optional) tunes the concurrency slot rule; missing values take the rule's defaults.
    ``api_version`` is as for :func:`set_flow_run_state`.
    """
    return _set_state(
        TASK_RUNS, task_run_id, state, force, {**(slot_settings or {}), "api-version": api_version}
    )


def set_new_task_run_state(
    run: Any,
    state: Mapping[str, Any],
    slot_settings: Mapping[str, int] | None = None,
    api_version: tuple[int, ...] | None = None,
    parent_flow_run: Any = None,
) -> OrchestrationResult:
    """Propose ``state`` for ``run``, a task run with no state yet that the caller's open
    transaction inserted (so no one else can see or lock it), without reading it back.

    Unlike :func:`set_task_run_state` this neither opens a transaction nor turns an error into
    ABORT: it raises, and the caller's transaction must be rolled back. ``parent_flow_run``:
    the flow run's ``{"state_type", "run_count"}`` if the caller has just read them (the
    rules read them otherwise). Other arguments as for :func:`set_task_run_state`.
    """
    return _orchestrate(
        TASK_RUNS,
        run,
        None,
        state,
        False,
        {**(slot_settings or {}), "api-version": api_version},
        parent_flow_run=parent_flow_run,
    )


def transition_task_run(
    task_run_id: Id,
    state: Mapping[str, Any],
    force: bool = False,
    slot_settings: Mapping[str, int] | None = None,
    api_version: tuple[int, ...] | None = None,
) -> OrchestrationResult:
    """:func:`set_task_run_state` inside the caller's open transaction: locks and reads the
    run, then proposes. Raises as :func:`set_new_task_run_state` does."""
    return _transition(
        TASK_RUNS, task_run_id, state, force, {**(slot_settings or {}), "api-version": api_version}
    )


# Errors that mean the database could not be reached (a restart, a dropped connection, a
# lock held past the busy timeout), not that the proposal is wrong: they propagate (the API
# answers 503 and clients retry) instead of becoming an ABORT, which would end the client's run.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def abort_result(error: Exception) -> OrchestrationResult:
    """The answer to a proposal whose orchestration raised ``error``: ABORT, nothing written."""
    return OrchestrationResult(
        SetStateStatus.ABORT,
        None,
        {"type": "abort_details", "reason": f"Orchestration failed: {error!r}"},
        False,
    )


def _set_state(
    kind: _RunKind,
    run_id: Id,
    state: Mapping[str, Any],
    force: bool,
    parameters: dict[str, Any] | None = None,
) -> OrchestrationResult:
    """Run the policy over the proposal in one transaction; return an OrchestrationResult.

    ``parameters`` become the orchestration context's parameters, read by the rules.
    A proposal whose ``state_details.transition_id`` equals the current state's is a client
    retrying after a lost response: it gets the current state back and nothing is written.
    An error inside a rule rolls everything back and answers ABORT with the error; a
    database that cannot be reached (:data:`DATABASE_UNAVAILABLE`) is raised instead.
    """
    try:
        with database.atomic():
            return _transition(kind, run_id, state, force, parameters)
    except (ObjectNotFound, *DATABASE_UNAVAILABLE):
        raise
    except Exception as error:  # a failing rule must answer ABORT, never leave half a write
        log.exception("set_state of %s %s failed", kind.label, run_id)
        _count(kind, state, SetStateStatus.ABORT)
        return abort_result(error)


def _transition(
    kind: _RunKind,
    run_id: Id,
    state: Mapping[str, Any],
    force: bool,
    parameters: dict[str, Any] | None = None,
) -> OrchestrationResult:
    run, initial = select_run_with_state(kind.model, kind.state_model, run_id, lock=True)
    if run is None:
        raise ObjectNotFound(f"{kind.label} {run_id} not found.")
    return _orchestrate(kind, run, initial, state, force, parameters)


def _orchestrate(
    kind: _RunKind,
    run: Any,
    initial: Any,
    state: Mapping[str, Any],
    force: bool,
    parameters: dict[str, Any] | None,
    parent_flow_run: Any = None,
) -> OrchestrationResult:
    """Apply the policy to a run its caller holds locked, with ``initial`` its current state
    row (None: no state yet); writes the new state and the run's columns (deferred)."""
    transition_id = (state.get("state_details") or {}).get("transition_id")
    if (
        transition_id is not None
        and initial is not None
        and (initial.state_details or {}).get("transition_id") == transition_id
    ):
        run.state = initial
        replayed = _replayed(initial, state, run)
        _count(kind, state, replayed.status)
        return replayed
    context = OrchestrationContext(
        run=run,
        initial_state=initial,
        is_task=kind.is_task,
        now=utcnow(),
        parameters=parameters,
        proposed_state=ProposedState(
            type=state["type"],
            name=state["name"],
            message=state.get("message"),
            data=state.get("data"),
            state_details=dict(state.get("state_details") or {}),
        ),
    )
    context.parent_flow_run = parent_flow_run
    policy = kind.forced_policy if force else kind.policy
    orchestrate(context, policy, kind.global_policy, kind.state_model, kind.run_field)
    validated = context.validated_state
    if validated is not None:
        update_dirty(run, deferred=True)
        if not kind.is_task and run.parent_task_run_id is not None:
            _mirror_onto_parent_task(run, validated)
        if not kind.is_task and validated.type == StateType.CANCELLED.value:
            _cascade_cancellation(run)
    result_state = validated
    if validated is None and context.response_status is SetStateStatus.REJECT:
        result_state = initial
    run.state = validated if validated is not None else initial
    _count(kind, state, context.response_status)
    return OrchestrationResult(
        context.response_status, result_state, context.response_details, validated is not None, run
    )


def _count(kind: _RunKind, state: Mapping[str, Any], status: SetStateStatus) -> None:
    """Count an answer in ``orion_transitions_total`` (see :mod:`app.metrics`)."""
    proposed = state["type"]
    metrics.record_transition(
        kind.run_field, getattr(proposed, "value", proposed), getattr(status, "value", status)
    )


def _replayed(current: Any, proposed: Mapping[str, Any], run: Any) -> OrchestrationResult:
    """The answer to a proposal the run's current state already resulted from: ACCEPT if it
    was written as proposed, REJECT if a rule put another kind of state in its place (a
    Cached or AwaitingRetry state carries the rejected proposal's transition id)."""
    if current.type == proposed["type"]:
        return OrchestrationResult(
            SetStateStatus.ACCEPT, current, {"type": "accept_details"}, False, run
        )
    return OrchestrationResult(
        SetStateStatus.REJECT,
        current,
        {
            "type": "reject_details",
            "reason": f"This proposal was already answered with the state {current.name!r}.",
        },
        False,
        run,
    )


def _mirror_onto_parent_task(run: Any, state: Any) -> None:
    """A subflow's new state is forced onto the parent task run that stands for it (if that
    task run still exists)."""
    if not TaskRun.select().where(TaskRun.id == run.parent_task_run_id).exists():
        return
    details = dict(state.state_details or {}, child_flow_run_id=str(run.id))
    details.pop("task_run_id", None)
    details.pop("flow_run_id", None)
    _transition(
        TASK_RUNS,
        run.parent_task_run_id,
        {
            "type": state.type,
            "name": state.name,
            "message": state.message,
            "data": state.data,
            "state_details": details,
        },
        True,
    )


def _cascade_cancellation(run: Any) -> None:
    """A flow run that became CANCELLED takes its children with it: each of its subflow runs
    (flow runs whose parent task run is one of its task runs) that is not final is forced to
    Cancelled, which cascades further down and mirrors onto the parent task run; then its
    remaining unfinished task runs are forced to Cancelled, freeing their slot leases.

    This is a step of the transition itself, in its transaction, rather than Orion's
    cancellation-cleanup service (which caught up every 20 s): no one ever reads a cancelled
    run with live children, and nothing has to be re-found later. It is not an orchestration
    rule or global transform because those act on the run being transitioned only; moving
    other runs means running their own (forced) transitions with their own locks and
    bookkeeping, which is this module's job, as for the subflow-to-parent-task mirroring. It
    applies to forced and unforced cancels alike. Locks are taken downwards (the run, then its
    subflow runs in id order, each subflow's parent task run, then the task runs in id
    order), the order a subflow's own transition takes them (subflow, then parent task).
    """
    final = [state.value for state in TERMINAL_STATES]
    message = f"The parent flow run {run.id} was cancelled."
    subflow_ids = [
        row.id
        for row in (
            FlowRun.select(FlowRun.id)
            .join(TaskRun, on=(FlowRun.parent_task_run_id == TaskRun.id))
            .where(
                (TaskRun.flow_run == run.id)
                & (FlowRun.state_type.is_null() | FlowRun.state_type.not_in(final))
            )
            .order_by(FlowRun.id)
        )
    ]
    for subflow_id in subflow_ids:
        _transition(
            FLOW_RUNS,
            subflow_id,
            {
                "type": StateType.CANCELLED.value,
                "name": "Cancelled",
                "message": message,
                "data": None,
                "state_details": {},
            },
            True,
        )
    finish_task_runs(
        run.id, StateType.CANCELLED.value, "Cancelled", f"The flow run {run.id} was cancelled."
    )


def finish_task_runs(flow_run_id: Id, state_type: str, name: str, message: str) -> int:
    """Force every task run of a flow run that is not in a final state (none included) into a
    new ``state_type`` state called ``name`` with ``message``; returns how many.

    Call inside the transaction that moved the flow run itself to a final state (and so holds
    its lock): forced task transitions run the global transforms, which give up the task
    runs' concurrency slot leases. Task runs are locked in id order, as anything locking
    several of them must.
    """
    final = [state.value for state in TERMINAL_STATES]
    task_run_ids = [
        row.id
        for row in (
            TaskRun.select(TaskRun.id)
            .where(
                (TaskRun.flow_run == flow_run_id)
                & (TaskRun.state_type.is_null() | TaskRun.state_type.not_in(final))
            )
            .order_by(TaskRun.id)
        )
    ]
    for task_run_id in task_run_ids:
        _transition(
            TASK_RUNS,
            task_run_id,
            {
                "type": state_type,
                "name": name,
                "message": message,
                "data": None,
                "state_details": {},
            },
            True,
        )
    return len(task_run_ids)
