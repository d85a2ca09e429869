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

_CREATE_FIELDS = (
    "task_key", "dynamic_key", "cache_key", "cache_expiration", "task_version",
    "empirical_policy", "tags", "task_inputs",
)


def create_task_run(data):
    """Create a task run, or return the existing one with the same flow run, task key and
    dynamic key. ``data`` is a loaded TaskRunCreate body; the first state defaults to
    Pending. Returns ``(run, created)`` with ``run.state`` loaded."""
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
        state = initial_state(run, TaskRunState, data.get("state"), is_task=True)
        TaskRun.insert(**run.__data__).on_conflict_ignore().execute()
        existing = with_state(TaskRun, TaskRunState).where(
            (TaskRun.flow_run == run.flow_run_id)
            & (TaskRun.task_key == run.task_key)
            & (TaskRun.dynamic_key == run.dynamic_key)
        ).first()
        if existing.id != run.id:
            return existing, False
        state.task_run = run.id
        state.save(force_insert=True)
    run.state = state
    return run, True


def create_task_run_and_set_state(data, proposed, slot_settings=None):
    """:func:`create_task_run`, then propose ``proposed`` (a loaded state payload) through the
    core task policy: the same as the two API calls, in one.

    The creation commits first; the proposal is its own transaction (see
    ``app.services.orchestration``), so every rule applies as for ``set_state`` and a WAIT or
    ABORT leaves the run in its initial state. Retrying the whole call is safe: the run is
    found again, and a proposal carrying the current state's ``transition_id`` writes
    nothing. Returns ``(run, result, created)`` with ``run`` read after the proposal.
    """
    run, created = create_task_run(data)
    result = set_task_run_state(run.id, proposed, slot_settings=slot_settings)
    return read_task_run(run.id), result, created


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
