"""The REST API under ``/api``: one flask-smorest blueprint per resource."""

from app.blueprints.api import (
    admin,
    agents,
    artifacts,
    blocks,
    collections,
    concurrency_limits,
    concurrency_limits_v2,
    deployments,
    flow_runs,
    flows,
    logs,
    notification_policies,
    root,
    saved_searches,
    states,
    task_runs,
    ui,
    variables,
    work_pools,
    work_queues,
)
from app.blueprints.api.common import StrictUUIDConverter
from app.schemas.actions import TaskRunCreateSchema
from app.schemas.deployments import DeploymentScheduleSchema
from app.schemas.filters import PagedBody

API_BLUEPRINTS = (
    root.blp,
    flows.blp,
    flow_runs.blp,
    task_runs.blp,
    states.flow_run_states,
    states.task_run_states,
    logs.blp,
    concurrency_limits.blp,
    concurrency_limits_v2.blp,
    work_queues.blp,
    agents.blp,
    deployments.blp,
    saved_searches.blp,
    blocks.block_types,
    blocks.block_schemas,
    blocks.block_documents,
    blocks.block_capabilities,
    notification_policies.blp,
    variables.blp,
    artifacts.blp,
    ui.blp,
    admin.blp,
    collections.blp,
    work_pools.blp,
    work_pools.experimental_blp,
)


def apply_schema_limits(config):
    """Set the limits request schemas enforce from the app's settings.

    Schemas cannot read Flask settings, so these are class attributes: process-wide, like the
    database binding (one app per process).
    """
    PagedBody.max_limit = config["API_DEFAULT_LIMIT"]
    TaskRunCreateSchema.cache_key_max_length = config["API_TASK_CACHE_KEY_MAX_LENGTH"]
    DeploymentScheduleSchema.max_backfill_runs = config["SCHEDULER_MAX_BACKFILL_RUNS"]


def register_api(app, api):
    """Register the strict UUID path converter and every API blueprint."""
    app.url_map.converters["uuid"] = StrictUUIDConverter
    api.register_converter(
        StrictUUIDConverter, lambda converter: {"type": "string", "format": "uuid"}
    )
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
