"""Deployments: ``/api/deployments``."""

import datetime

from flask import current_app, request
from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.core import FlowRunSchema, WorkQueueSchema, dump_flow_run, dump_work_queue
from app.schemas.deployments import (
    DeploymentCreateSchema,
    DeploymentFlowRunCreateSchema,
    DeploymentScheduleCreateSchema,
    DeploymentScheduledRunsSchema,
    DeploymentScheduleReadSchema,
    DeploymentScheduleSchema,
    DeploymentScheduleUpdateSchema,
    DeploymentSchema,
    DeploymentUpdateSchema,
    ScheduleResultSchema,
    dump_deployment,
    dump_deployment_schedule,
    dump_schedule_result,
)
from app.schemas.filters import DeploymentCountBody, DeploymentFilterBody
from app.services import deployments, flow_runs, work_queues
from app.services.scheduler import SchedulerSettings

blp = Blueprint(
    "deployments",
    __name__,
    url_prefix="/api/deployments",
    description="Deployments: flows packaged to run on a schedule or on demand.",
)


def _settings():
    return SchedulerSettings.from_config(current_app.config)


@blp.route("/")
class Deployments(MethodView):
    @blp.arguments(DeploymentCreateSchema)
    @blp.response(201, DeploymentSchema)
    @blp.alt_response(
        200,
        schema=DeploymentSchema,
        success=True,
        description="A deployment of this flow with this name existed; the "
        "fields given were updated.",
    )
    def post(self, data):
        """Create a deployment, or update the one with the same flow and name.

        A scheduled deployment's first runs exist when this answers.
        """
        deployment, created = deployments.create_deployment(data, _settings())
        return json_response(dump_deployment(deployment), 201 if created else 200)


@blp.route("/<uuid:deployment_id>")
class DeploymentById(MethodView):
    @blp.response(200, DeploymentSchema)
    def get(self, deployment_id):
        """Read a deployment by id."""
        return json_response(dump_deployment(deployments.read_deployment(deployment_id)))

    @blp.arguments(DeploymentUpdateSchema)
    @blp.response(204)
    def patch(self, changes, deployment_id):
        """Update a deployment; a change its scheduled runs depend on replaces them."""
        deployments.update_deployment(deployment_id, changes, _settings())
        return no_content()

    @blp.response(204)
    def delete(self, deployment_id):
        """Delete a deployment and its future scheduled runs."""
        deployments.delete_deployment(deployment_id)
        return no_content()


@blp.get("/name/<flow_name>/<deployment_name>")
@blp.response(200, DeploymentSchema)
def read_deployment_by_name(flow_name, deployment_name):
    """Read a deployment by its flow's name and its own."""
    return json_response(
        dump_deployment(deployments.read_deployment_by_name(flow_name, deployment_name))
    )


@blp.post("/filter")
@blp.arguments(DeploymentFilterBody)
@blp.response(200, DeploymentSchema(many=True))
def filter_deployments(body):
    """List deployments matching filters, sorted and paged."""
    return json_response([dump_deployment(d) for d in deployments.read_deployments(body)])


@blp.post("/count")
@blp.arguments(DeploymentCountBody)
@blp.response(200, description="The number of matching deployments.")
def count_deployments(body):
    """Count deployments matching filters."""
    return json_response(deployments.count_deployments(body))


@blp.post("/<uuid:deployment_id>/resume_deployment")
@blp.response(204)
def resume_deployment(deployment_id):
    """Resume a paused deployment (its runs are scheduled at once); its one schedule, if it
    has exactly one, becomes active."""
    deployments.set_paused(deployment_id, False, _settings())
    return no_content()


@blp.post("/<uuid:deployment_id>/pause_deployment")
@blp.response(204)
def pause_deployment(deployment_id):
    """Pause a deployment (its future auto-scheduled runs are deleted); its one schedule, if
    it has exactly one, becomes inactive."""
    deployments.set_paused(deployment_id, True, _settings())
    return no_content()


@blp.post("/<uuid:deployment_id>/set_schedule_active")
@blp.response(204)
def set_schedule_active(deployment_id):
    """0.8.4's name of resume_deployment."""
    deployments.set_paused(deployment_id, False, _settings())
    return no_content()


@blp.post("/<uuid:deployment_id>/set_schedule_inactive")
@blp.response(204)
def set_schedule_inactive(deployment_id):
    """0.8.4's name of pause_deployment."""
    deployments.set_paused(deployment_id, True, _settings())
    return no_content()


@blp.route("/<uuid:deployment_id>/schedules")
class DeploymentSchedules(MethodView):
    @blp.response(200, DeploymentScheduleReadSchema(many=True))
    def get(self, deployment_id):
        """A deployment's schedules, in the order they were added."""
        rows = deployments.read_deployment_schedules(deployment_id)
        return json_response([dump_deployment_schedule(row) for row in rows])

    @blp.arguments(DeploymentScheduleCreateSchema(many=True))
    @blp.response(201, DeploymentScheduleReadSchema(many=True))
    def post(self, schedules, deployment_id):
        """Add schedules to a deployment (a list, as Prefect 2.20); its runs are rescheduled."""
        rows = deployments.create_deployment_schedules(deployment_id, schedules, _settings())
        return json_response([dump_deployment_schedule(row) for row in rows], 201)


@blp.route("/<uuid:deployment_id>/schedules/<uuid:schedule_id>")
class DeploymentScheduleById(MethodView):
    @blp.arguments(DeploymentScheduleUpdateSchema)
    @blp.response(204)
    def patch(self, changes, deployment_id, schedule_id):
        """Change one of a deployment's schedules; its future auto-scheduled runs are
        replaced."""
        deployments.update_deployment_schedule(deployment_id, schedule_id, changes, _settings())
        return no_content()

    @blp.response(204)
    def delete(self, deployment_id, schedule_id):
        """Delete one of a deployment's schedules and the future auto-scheduled runs it
        gave."""
        deployments.delete_deployment_schedule(deployment_id, schedule_id, _settings())
        return no_content()


@blp.post("/get_scheduled_flow_runs")
@blp.arguments(DeploymentScheduledRunsSchema)
@blp.response(200, FlowRunSchema(many=True))
def get_scheduled_flow_runs(body):
    """Scheduled runs of these deployments due by scheduled_before, earliest first: what
    Prefect 2.20's flow.serve() polls. Each run is claimed once, as agents' runs are.

    Records the poll in the deployments' ``last_polled`` (their status is READY for a
    minute), unless the request carries ``x-prefect-ui: true``: a read-only listing."""
    runs = deployments.get_scheduled_flow_runs(
        body["deployment_ids"],
        body.get("scheduled_before"),
        body["limit"],
        record_poll=request.headers.get("x-prefect-ui", "").lower() != "true",
    )
    pools = flow_runs.pools_of(runs)
    return json_response([dump_flow_run(run, pools=pools) for run in runs])


@blp.post("/<uuid:deployment_id>/create_flow_run")
@blp.arguments(DeploymentFlowRunCreateSchema)
@blp.response(201, FlowRunSchema)
@blp.alt_response(
    200,
    schema=FlowRunSchema,
    success=True,
    description="A run with this idempotency key already existed.",
)
def create_flow_run(data, deployment_id):
    """Create a flow run of a deployment (parameters merged over its own, tags added)."""
    run, created = deployments.create_flow_run_from_deployment(deployment_id, data)
    return json_response(
        dump_flow_run(run, pools=flow_runs.pools_of([run])), 201 if created else 200
    )


@blp.post("/<uuid:deployment_id>/schedule")
@blp.arguments(DeploymentScheduleSchema)
@blp.response(201, ScheduleResultSchema, description="Runs were written.")
@blp.alt_response(
    200,
    schema=ScheduleResultSchema,
    success=True,
    description="dry_run: what would be scheduled; nothing was written.",
)
def schedule_deployment(body, deployment_id):
    """Schedule runs for an explicit range: a backfill of every slot, past or future."""
    min_time = body.get("min_time")
    result = deployments.schedule_range(
        deployment_id,
        _settings(),
        start_time=body.get("start_time"),
        end_time=body.get("end_time"),
        min_time=datetime.timedelta(seconds=min_time) if min_time is not None else None,
        min_runs=body.get("min_runs"),
        max_runs=body.get("max_runs"),
        dry_run=body["dry_run"],
    )
    return json_response(dump_schedule_result(result), 200 if result.dry_run else 201)


@blp.get("/<uuid:deployment_id>/work_queue_check")
@blp.response(200, WorkQueueSchema(many=True))
@blp.doc(deprecated=True)
def work_queue_check(deployment_id):
    """The work queues that pick up this deployment's runs (deprecated in Prefect 2.7: the
    queue it names, and Orion 2.0 queues whose tag/deployment filter matches it)."""
    deployment = deployments.read_deployment(deployment_id)
    return json_response(
        [dump_work_queue(q) for q in work_queues.queues_for_deployment(deployment)]
    )
