"""Bodies and responses of the endpoints Prefect's web UI calls under ``/api/ui``.

``/ui/flow_runs/history`` follows Prefect 2.7's router; ``/ui/task_runs/dashboard/counts``,
``/ui/task_runs/count`` and ``/ui/schemas/validate`` follow Prefect 2.20's (later 2.x UIs
call them).
"""

from marshmallow import ValidationError, fields, validate, validates_schema

from app.schemas import limits
from app.schemas.base import DateTime, InputSchema, OrionSchema
from app.schemas.core import estimated_run_time, estimated_start_time_delta
from app.schemas.filters import (
    FLOW_RUN_SORTS,
    CountBody,
    ObjectFilters,
    QueuedObjectFilters,
    WorkQueuesFilters,
)
from app.states import STATE_TYPE_VALUES

HISTORY_MAX_LIMIT = 1000


class FlowRunHistoryBody(QueuedObjectFilters):
    """Body of ``POST /api/ui/flow_runs/history``: the flow run filters, a sort (default
    EXPECTED_START_TIME_DESC) and paging with a limit of at most 1000 (the default)."""

    sort = fields.String(
        load_default="EXPECTED_START_TIME_DESC", validate=validate.OneOf(FLOW_RUN_SORTS)
    )
    limit = fields.Integer(
        load_default=HISTORY_MAX_LIMIT, validate=validate.Range(min=0, max=HISTORY_MAX_LIMIT)
    )
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=limits.OFFSET_MAX))


class SimpleFlowRunSchema(OrionSchema):
    id = fields.UUID(required=True)
    state_type = fields.String(required=True)
    timestamp = DateTime(
        required=True,
        metadata={
            "description": "The start time, or the expected start time if it has not started."
        },
    )
    duration = fields.Float(required=True, metadata={"description": "Seconds run."})
    lateness = fields.Float(
        required=True,
        metadata={"description": "Seconds between the expected and the actual start."},
    )


def dump_simple_flow_run(run, now):
    timestamp = run.start_time or run.expected_start_time
    return {
        "id": str(run.id),
        "state_type": run.state_type,
        "timestamp": timestamp.isoformat() if timestamp else None,
        "duration": estimated_run_time(run, now),
        "lateness": estimated_start_time_delta(run, now),
    }


class TaskRunDashboardCountsBody(WorkQueuesFilters):
    """Body of ``POST /api/ui/task_runs/dashboard/counts``: the object filters, where
    ``task_runs.start_time.after_`` is required (the window's start), and the work pool and
    queue filters of the task runs' flow runs."""

    @validates_schema
    def require_window(self, data, **kwargs):
        start = (data.get("task_runs") or {}).get("start_time") or {}
        if start.get("after_") is None:
            raise ValidationError("task_runs.start_time.after_ is required.", "task_runs")


class TaskRunCountSchema(OrionSchema):
    completed = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class TaskRunCountsByStateBody(ObjectFilters, CountBody):
    """Body of ``POST /api/ui/task_runs/count``."""


CountByStateSchema = OrionSchema.from_dict(
    {value: fields.Integer(required=True) for value in STATE_TYPE_VALUES}, name="CountByStateSchema"
)


class SchemaValidateBody(InputSchema):
    """Body of ``POST /api/ui/schemas/validate``: a JSON schema and values to check."""

    schema = fields.Dict(required=True, metadata={"description": "A JSON schema (2020-12)."})
    values = fields.Dict(required=True)


class SchemaErrorsSchema(OrionSchema):
    valid = fields.Boolean(required=True)
    errors = fields.List(
        fields.Raw(),
        required=True,
        metadata={"description": "Messages at the root; {property|index, errors} for nested ones."},
    )
