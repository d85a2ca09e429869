"""Endpoints Prefect's web UI calls: ``/api/ui/flow_runs/history``, ``/api/ui/task_runs/...``
and ``/api/ui/schemas/validate`` (see ``app.schemas.ui`` for the Prefect version of each)."""

from app.blueprints.api.common import Blueprint, json_response
from app.schemas.ui import (
    CountByStateSchema,
    FlowRunHistoryBody,
    SchemaErrorsSchema,
    SchemaValidateBody,
    SimpleFlowRunSchema,
    TaskRunCountsByStateBody,
    TaskRunCountSchema,
    TaskRunDashboardCountsBody,
    dump_simple_flow_run,
)
from app.services import ui_queries

blp = Blueprint(
    "ui_api", __name__, url_prefix="/api/ui", description="Queries shaped for Prefect's web UI."
)


@blp.post("/flow_runs/history")
@blp.arguments(FlowRunHistoryBody)
@blp.response(200, SimpleFlowRunSchema(many=True))
def flow_run_history(body):
    """Light flow run rows for the history chart (at most 1000)."""
    runs, now = ui_queries.read_flow_run_history(body)
    return json_response([dump_simple_flow_run(run, now) for run in runs])


@blp.post("/task_runs/dashboard/counts")
@blp.arguments(TaskRunDashboardCountsBody)
@blp.response(200, TaskRunCountSchema(many=True))
def task_run_dashboard_counts(body):
    """Finished task runs in 20 time buckets of the window, completed and failed."""
    return json_response(ui_queries.task_run_dashboard_counts(body))


@blp.post("/task_runs/count")
@blp.arguments(TaskRunCountsByStateBody)
@blp.response(200, CountByStateSchema)
def task_run_counts_by_state(body):
    """How many task runs match, per state type."""
    return json_response(ui_queries.count_task_runs_by_state(body))


@blp.post("/schemas/validate")
@blp.arguments(SchemaValidateBody)
@blp.response(200, SchemaErrorsSchema)
def validate_schema_values(body):
    """Check values against a JSON schema; 422 if the schema itself is invalid."""
    return json_response(ui_queries.validate_values(body["schema"], body["values"]))
