"""Task runs: idempotent creation with an initial state (optionally followed by a proposed
state in the same call), reads, updates, filters."""

import datetime
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from peewee import IntegrityError

from app.db import database
from app.exceptions import ObjectNotFound
from app.models import FlowRun, TaskRun, TaskRunState, statements, utcnow
from app.services import filters, orchestration
from app.services.common import Body, Id, require_exists, update_or_raise
from app.services.names import generate_run_name
from app.services.runs import initial_state, read_page, read_run, read_run_history, with_state
from app.states import StateType

log = logging.getLogger(__name__)

_CREATE_FIELDS = (
    "task_key",
    "dynamic_key",
    "cache_key",
    "cache_expiration",
    "task_version",
    "empirical_policy",
    "tags",
    "task_inputs",
)


def create_task_run(data: Mapping[str, Any]) -> tuple[Any, bool]:
    """Create a task run, or return the existing one with the same flow run, task key and
    dynamic key. ``data`` is a loaded TaskRunCreate body; the first state is its ``state``,
    else Pending. Returns ``(run, created)`` with ``run.state`` loaded."""
    with _unknown_flow_run_is_not_found(data):
        with database.atomic():
            run, created, _ = _insert_task_run(data, first_state=data.get("state") or _PENDING)
            return run, created


def create_task_run_and_set_state(
    data: Mapping[str, Any],
    proposed: Mapping[str, Any],
    slot_settings: Mapping[str, int] | None = None,
) -> tuple[Any, orchestration.OrchestrationResult, bool]:
    """Create a task run as :func:`create_task_run` does and propose ``proposed`` (a loaded
    state payload) through the core task policy, as ``set_state`` would, in one transaction.

    Without ``data["state"]``, the proposal is the new run's first state (orchestrated from no
    state: Pending, or Running straight away with every rule applied). If the policy writes
    nothing (WAIT, ABORT, REJECT keeping no state), the run is given Pending, as
    ``POST /task_runs/`` would have, so no run is ever without a state. With ``data["state"]``,
    the run starts in it and the proposal follows. An existing run (same flow run, task key,
    dynamic key) gets the proposal from its current state, under its lock.

    If a rule raises, the transaction is rolled back; the run is then created in Pending on
    its own and the answer is ABORT with the error. Retrying the whole call is safe: the run
    is found again, and a proposal carrying the ``transition_id`` of the state it led to
    writes nothing. Returns ``(run, result, created)`` with ``run`` (and ``run.state``) as
    they are after the proposal.
    """
    with _unknown_flow_run_is_not_found(data):
        try:
            with database.atomic():
                run, created, flow_run = _insert_task_run(data, first_state=data.get("state"))
                if created and run.state is None:
                    result = orchestration.set_new_task_run_state(
                        run, proposed, slot_settings, parent_flow_run=flow_run
                    )
                else:
                    result = orchestration.transition_task_run(
                        run.id, proposed, slot_settings=slot_settings
                    )
                if result.run.state is None:
                    result.run = orchestration.transition_task_run(run.id, _PENDING, force=True).run
                return result.run, result, created
        except (ObjectNotFound, IntegrityError, *orchestration.DATABASE_UNAVAILABLE):
            raise
        except Exception as error:  # a failing rule: ABORT, as set_state answers
            log.exception("create_and_set_state of a task run failed")
            run, created = create_task_run(data)
            return run, orchestration.abort_result(error), created


_PENDING = {"type": StateType.PENDING.value, "name": "Pending", "state_details": {}}


def _insert_task_run(
    data: Mapping[str, Any], first_state: Mapping[str, Any] | None
) -> tuple[Any, bool, Any]:
    """Insert the task run ``data`` describes in the open transaction, with ``first_state``
    (a loaded state payload; None: no state yet, the caller gives it one before committing),
    or find the existing run with its flow run, task key and dynamic key: ``(run, created,
    flow_run)``, ``run.state`` loaded, ``flow_run`` what the task rules read of the flow run
    (see ``statements.find_task_run``)."""
    now = utcnow()
    # Its id is the model's default, a new uuid4 (given here too, it was drawn twice).
    run = TaskRun(
        flow_run=data["flow_run_id"],
        name=data.get("name") or f"{data['task_key']}-{generate_run_name()}",
        created=now,
        updated=now,
        **{key: data[key] for key in _CREATE_FIELDS if key in data},
    )
    state = None
    if first_state is not None:
        state = initial_state(run, TaskRunState, first_state, is_task=True)
    statements.insert_row(TaskRun, run.__data__, ignore_conflict=True, deferred=True)
    found_id, flow_run = statements.find_task_run(run.flow_run_id, run.task_key, run.dynamic_key)
    if found_id != run.id:
        existing = with_state(TaskRun, TaskRunState).where(TaskRun.id == found_id).first()
        return existing, False, flow_run
    run._dirty.clear()  # as written: a transition updates only the columns it changes
    if state is not None:
        state.task_run = run.id
        statements.insert_row(TaskRunState, state.__data__, deferred=True)
    run.state = state
    return run, True, flow_run


@contextmanager
def _unknown_flow_run_is_not_found(data: Mapping[str, Any]) -> Iterator[None]:
    """A task run whose flow run does not exist breaks a foreign key when it is written:
    answer ObjectNotFound naming the flow run (checked only then, not on every create)."""
    try:
        yield
    except IntegrityError:
        require_exists(FlowRun, data["flow_run_id"], "Flow run")
        raise


def read_task_run(task_run_id: Id) -> Any:
    """The task run with this id as a read row (see ``fetch_runs``); ObjectNotFound if none."""
    return read_run(TaskRun, TaskRunState, task_run_id, "Task run")


def update_task_run(task_run_id: Id, changes: Mapping[str, Any]) -> None:
    """Apply a TaskRunUpdate (the name)."""
    update_or_raise(TaskRun, task_run_id, changes, "Task run")


def delete_task_run(task_run_id: Id) -> None:
    """Delete a task run and its states; a subflow it stood for is detached, not deleted."""
    with database.atomic():
        (
            FlowRun.update(parent_task_run_id=None)
            .where(FlowRun.parent_task_run_id == task_run_id)
            .execute()
        )
        deleted = TaskRun.delete().where(TaskRun.id == task_run_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Task run {task_run_id} not found.")


def read_task_runs(body: Body) -> list[Any]:
    """Task runs (with states) matching a filter body, sorted and paged."""
    return read_page(TaskRun, TaskRunState, body)


def count_task_runs(body: Body) -> int:
    """How many task runs match a filter body."""
    return filters.apply_filters(TaskRun.select(), TaskRun, body).count()


def read_task_run_history(
    start: datetime.datetime,
    end: datetime.datetime,
    interval_seconds: float,
    body: Body,
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """Counts of task runs per state in time buckets (``runs.read_run_history``)."""
    return read_run_history(TaskRun, start, end, interval_seconds, body, now)
