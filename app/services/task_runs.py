"""Task runs: idempotent creation with an initial state (optionally followed by a proposed
state in the same call), reads, updates, filters."""
import uuid

from app.db import database
from app.exceptions import ObjectNotFound
from app.models import FlowRun, TaskRun, TaskRunState, utcnow
from app.services import filters
from app.services.common import require_exists, update_or_raise
from app.services.names import generate_run_name
from app.services.orchestration import set_task_run_state
from app.services.runs import initial_state, read_page, read_run, with_state
from app.states import StateType

_CREATE_FIELDS = (
    "task_key", "dynamic_key", "cache_key", "cache_expiration", "task_version",
    "empirical_policy", "tags", "task_inputs",
)


def create_task_run(data, pending_by_default=True):
    """Create a task run, or return the existing one with the same flow run, task key and
    dynamic key. ``data`` is a loaded TaskRunCreate body; the first state is its ``state``,
    else Pending, else (``pending_by_default=False``) none. Returns ``(run, created)`` with
    ``run.state`` loaded (None for a run without a state)."""
    now = utcnow()
    run = TaskRun(
        id=uuid.uuid4(),
        flow_run=data["flow_run_id"],
        name=data.get("name") or f"{data['task_key']}-{generate_run_name()}",
        created=now,
        updated=now,
        **{key: data[key] for key in _CREATE_FIELDS if key in data},
    )
    with database.atomic():
        require_exists(FlowRun, data["flow_run_id"], "Flow run")
        state = None
        if pending_by_default or data.get("state"):
            state = initial_state(run, TaskRunState, data.get("state"), is_task=True)
        TaskRun.insert(**run.__data__).on_conflict_ignore().execute()
        existing = with_state(TaskRun, TaskRunState).where(
            (TaskRun.flow_run == run.flow_run_id)
            & (TaskRun.task_key == run.task_key)
            & (TaskRun.dynamic_key == run.dynamic_key)
        ).first()
        if existing.id != run.id:
            return existing, False
        if state is not None:
            state.task_run = run.id
            state.save(force_insert=True)
    run.state = state
    return run, True


def create_task_run_and_set_state(data, proposed, slot_settings=None):
    """Create a task run as :func:`create_task_run` does and propose ``proposed`` (a loaded
    state payload) through the core task policy, as ``set_state`` would, in one call.

    Without ``data["state"]``, the proposal is the new run's first state (orchestrated from no
    state: Pending, or Running straight away with every rule applied). If the policy writes
    nothing (WAIT, ABORT, REJECT keeping no state), the run is given Pending, as
    ``POST /task_runs/`` would have, so no run is left without a state (also when a retried
    call finds the run an earlier attempt created but could not orchestrate). With
    ``data["state"]``, the run starts in it and the proposal follows. An existing run (same
    flow run, task key, dynamic key) gets the proposal from its current state.

    The creation commits first; the proposal is its own transaction (see
    ``app.services.orchestration``). Retrying the whole call is safe: the run is found again,
    and a proposal carrying the ``transition_id`` of the state it led to writes nothing.
    Returns ``(run, result, created)`` with ``run`` (and ``run.state``) as they are after the
    proposal.
    """
    run, created = create_task_run(data, pending_by_default=False)
    result = after = set_task_run_state(run.id, proposed, slot_settings=slot_settings)
    if run.state is None and not result.written:
        after = set_task_run_state(run.id, {"type": StateType.PENDING.value, "name": "Pending",
                                            "state_details": {}}, force=True)
    if after.run is None:
        return read_task_run(run.id), result, created
    return after.run, result, created


def read_task_run(task_run_id):
    """The task run with this id as a read row (see ``fetch_runs``); ObjectNotFound if none."""
    return read_run(TaskRun, TaskRunState, task_run_id, "Task run")


def update_task_run(task_run_id, changes):
    """Apply a TaskRunUpdate (the name)."""
    update_or_raise(TaskRun, task_run_id, changes, "Task run")


def delete_task_run(task_run_id):
    """Delete a task run and its states; a subflow it stood for is detached, not deleted."""
    with database.atomic():
        (FlowRun.update(parent_task_run_id=None)
         .where(FlowRun.parent_task_run_id == task_run_id)
         .execute())
        deleted = TaskRun.delete().where(TaskRun.id == task_run_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Task run {task_run_id} not found.")


def read_task_runs(body):
    """Task runs (with states) matching a filter body, sorted and paged."""
    return read_page(TaskRun, TaskRunState, body)


def count_task_runs(body):
    """How many task runs match a filter body."""
    return filters.apply_filters(TaskRun.select(), TaskRun, body).count()
