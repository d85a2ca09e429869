"""Task runs: ``/api/task_runs``."""

from flask import current_app, g
from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.clock import utcnow
from app.schemas.actions import (
    SetStateSchema,
    TaskRunCreateAndSetStateSchema,
    TaskRunCreateSchema,
    TaskRunHistorySchema,
    TaskRunUpdateSchema,
)
from app.schemas.core import (
    HistoryIntervalSchema,
    OrchestrationResultSchema,
    TaskRunOrchestrationSchema,
    TaskRunSchema,
    dump_orchestration_result,
    dump_task_run,
)
from app.schemas.filters import TaskRunCountBody, TaskRunFilterBody
from app.services import orchestration, task_runs

blp = Blueprint("task_runs", __name__, url_prefix="/api/task_runs", description="Task runs.")


@blp.route("/")
class TaskRuns(MethodView):
    @blp.arguments(TaskRunCreateSchema)
    @blp.response(201, TaskRunSchema)
    @blp.alt_response(
        200,
        schema=TaskRunSchema,
        success=True,
        description="A run with this flow run, task key and dynamic key existed.",
    )
    def post(self, data):
        """Create a task run (default state Pending), idempotent on flow run + task key +
        dynamic key."""
        run, created = task_runs.create_task_run(data)
        return json_response(dump_task_run(run), 201 if created else 200)


@blp.post("/create_and_set_state")
@blp.arguments(TaskRunCreateAndSetStateSchema)
@blp.response(201, TaskRunOrchestrationSchema, description="The task run was created.")
@blp.alt_response(
    200,
    schema=TaskRunOrchestrationSchema,
    success=True,
    description="A run with this flow run, task key and dynamic key existed.",
)
def create_task_run_and_set_state(data):
    """Create a task run and propose its first state in one call (Orion extension).

    Creates the run like `POST /api/task_runs/` (idempotent on flow run + task key + dynamic
    key), then proposes `proposed_state` through the task orchestration rules exactly as
    `POST /api/task_runs/{id}/set_state` would, saving a round trip per task. Without
    `state`, the proposal is the new run's first state: Pending, or Running at once, with
    every rule applied (the flow run must be RUNNING, a cache hit answers REJECT into Cached,
    a full tag concurrency limit answers WAIT, a limit of 0 ABORT, ...); if the rules write
    nothing, the new run is given Pending so it never lacks a state. With `state`, the run
    starts in it (no rules) and the proposal follows; a run that already existed gets the
    proposal from its current state. The answer holds the task run as it is afterwards and
    the orchestration result (`status`, `state`, `details`) as set_state returns it. Give
    the proposed state a `state_details.transition_id`: a retried call then writes nothing
    twice.
    """
    proposed = data.pop("proposed_state")
    run, result, created = task_runs.create_task_run_and_set_state(
        data, proposed, slot_settings=_slot_settings()
    )
    body = {
        "task_run": dump_task_run(run),
        "orchestration_result": dump_orchestration_result(result),
    }
    return json_response(body, 201 if created else 200)


@blp.route("/<uuid:task_run_id>")
class TaskRunById(MethodView):
    @blp.response(200, TaskRunSchema)
    def get(self, task_run_id):
        """Read a task run with its current state."""
        return json_response(dump_task_run(task_runs.read_task_run(task_run_id)))

    @blp.arguments(TaskRunUpdateSchema)
    @blp.response(204)
    def patch(self, changes, task_run_id):
        """Rename a task run."""
        task_runs.update_task_run(task_run_id, changes)
        return no_content()

    @blp.response(204)
    def delete(self, task_run_id):
        """Delete a task run with its states."""
        task_runs.delete_task_run(task_run_id)
        return no_content()


@blp.post("/filter")
@blp.arguments(TaskRunFilterBody)
@blp.response(200, TaskRunSchema(many=True))
def filter_task_runs(body):
    """List task runs matching filters, sorted and paged."""
    now = utcnow()
    return json_response([dump_task_run(r, now) for r in task_runs.read_task_runs(body)])


@blp.post("/count")
@blp.arguments(TaskRunCountBody)
@blp.response(200, description="The number of matching task runs.")
def count_task_runs(body):
    """Count task runs matching filters."""
    return json_response(task_runs.count_task_runs(body))


@blp.post("/<uuid:task_run_id>/set_state")
@blp.arguments(SetStateSchema)
@blp.response(201, OrchestrationResultSchema, description="A new state was written.")
@blp.alt_response(
    200,
    schema=OrchestrationResultSchema,
    success=True,
    description="Nothing was written (WAIT, ABORT, REJECT keeping the state, or a "
    "retried transition).",
)
def set_task_run_state(body, task_run_id):
    """Propose a new state for a task run; the orchestration rules decide what happens."""
    result = orchestration.set_task_run_state(
        task_run_id,
        body["state"],
        force=body["force"],
        slot_settings=_slot_settings(),
        api_version=g.get("api_version"),
    )
    return json_response(dump_orchestration_result(result), 201 if result.written else 200)


def _slot_settings():
    """The concurrency slot rule's settings, from the app's configuration."""
    return {
        "slot_wait_seconds": current_app.config["TASK_CONCURRENCY_SLOT_WAIT_SECONDS"],
        "slot_lease_seconds": current_app.config["TASK_CONCURRENCY_LEASE_SECONDS"],
    }


@blp.post("/history")
@blp.arguments(TaskRunHistorySchema)
@blp.response(200, HistoryIntervalSchema(many=True))
def task_run_history(body):
    """Count matching task runs per state in time buckets of their expected start."""
    history = task_runs.read_task_run_history(
        body.pop("history_start"),
        body.pop("history_end"),
        body.pop("history_interval_seconds"),
        body,
    )
    for entry in history:
        entry["interval_start"] = entry["interval_start"].isoformat()
        entry["interval_end"] = entry["interval_end"].isoformat()
    return json_response(history)
