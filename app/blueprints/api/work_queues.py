"""Work queues: ``/api/work_queues`` (agents poll ``get_runs``)."""

from flask import request
from flask.views import MethodView

from app import metrics
from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.actions import (
    WorkQueueCreateSchema,
    WorkQueueGetRunsSchema,
    WorkQueueUpdateSchema,
)
from app.schemas.core import (
    FlowRunSchema,
    WorkQueueSchema,
    WorkQueueStatusSchema,
    dump_flow_run,
    dump_work_queue,
)
from app.schemas.filters import WorkQueueFilterBody
from app.services import flow_runs, work_queues

blp = Blueprint(
    "work_queues",
    __name__,
    url_prefix="/api/work_queues",
    description="Work queues that agents poll for scheduled flow runs.",
)


@blp.post("/")
@blp.arguments(WorkQueueCreateSchema)
@blp.response(201, WorkQueueSchema)
def create_work_queue(data):
    """Create a work queue (409 if the name is taken)."""
    return json_response(dump_work_queue(work_queues.create_work_queue(data)), 201)


@blp.route("/<uuid:queue_id>")
class WorkQueueById(MethodView):
    @blp.response(200, WorkQueueSchema)
    def get(self, queue_id):
        """Read a work queue by id."""
        return json_response(dump_work_queue(work_queues.read_work_queue(queue_id)))

    @blp.arguments(WorkQueueUpdateSchema)
    @blp.response(204)
    def patch(self, changes, queue_id):
        """Change a work queue's name, description, pause, concurrency limit or filter."""
        work_queues.update_work_queue(queue_id, changes)
        return no_content()

    @blp.response(204)
    def delete(self, queue_id):
        """Delete a work queue (its flow runs are kept)."""
        work_queues.delete_work_queue(queue_id)
        return no_content()


@blp.get("/name/<path:name>")
@blp.response(200, WorkQueueSchema)
def read_work_queue_by_name(name):
    """Read a work queue by name."""
    return json_response(dump_work_queue(work_queues.read_work_queue_by_name(name)))


@blp.post("/<uuid:queue_id>/get_runs")
@blp.arguments(WorkQueueGetRunsSchema)
@blp.response(200, FlowRunSchema(many=True))
def get_runs(body, queue_id):
    """The queue's scheduled flow runs due by ``scheduled_before``, earliest first, within the
    queue's free concurrency; nothing while the queue is paused.

    Records the poll in ``last_polled``; with ``agent_id`` it also creates or updates that
    agent (409 if ``agent_name`` is another agent's). A request carrying ``x-prefect-ui: true``
    (Prefect's UI listing a queue's runs) is no poll: a read-only listing that records nothing,
    creates no agent and locks no run, so it never hides a run from a polling agent.
    A run is claimed by proposing PENDING for it (``set_state``), which enforces the limit.
    """
    polled = request.headers.get("x-prefect-ui", "").lower() != "true"
    runs = work_queues.get_runs(
        queue_id,
        scheduled_before=body["scheduled_before"],
        limit=body["limit"],
        record_poll=polled,
        agent_id=body["agent_id"],
        agent_name=body["agent_name"],
        claim=polled,
    )
    if polled:
        metrics.AGENT_CLAIMS.inc(len(runs))
    pools = flow_runs.pools_of(runs)
    return json_response([dump_flow_run(run, pools=pools) for run in runs])


@blp.get("/<uuid:queue_id>/status")
@blp.response(200, WorkQueueStatusSchema)
def work_queue_status(queue_id):
    """Whether the queue is healthy: polled in the last 60 s and no Late runs."""
    status = work_queues.work_queue_status(queue_id)
    last_polled = status["last_polled"]
    status["last_polled"] = last_polled.isoformat() if last_polled else None
    return json_response(status)


@blp.post("/filter")
@blp.arguments(WorkQueueFilterBody)
@blp.response(200, WorkQueueSchema(many=True))
def filter_work_queues(body):
    """List work queues matching filters, by name, paged."""
    return json_response([dump_work_queue(q) for q in work_queues.read_work_queues(body)])
