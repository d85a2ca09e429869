"""Work pools (Prefect 2.20): ``/api/work_pools``, their queues and workers, and the runs
workers claim. Prefect 2.7's ``/api/experimental/work_pools`` paths are served by the same
views (:data:`experimental_blp`)."""

import datetime

from flask import current_app, request
from flask.views import MethodView

from app import metrics
from app.blueprints.api.common import Blueprint, json_response, no_content
from app.clock import utcnow
from app.schemas.actions import WorkQueueCreateSchema, WorkQueueUpdateSchema
from app.schemas.core import WorkQueueSchema, dump_work_queue
from app.schemas.filters import (
    WorkerFilterBody,
    WorkPoolCountBody,
    WorkPoolFilterBody,
    WorkQueueFilterBody,
)
from app.schemas.work_pools import (
    PoolScheduledRunsSchema,
    WorkerFlowRunSchema,
    WorkerHeartbeatSchema,
    WorkerSchema,
    WorkPoolCreateSchema,
    WorkPoolSchema,
    WorkPoolUpdateSchema,
    dump_work_pool,
    dump_worker,
    dump_worker_flow_run,
)
from app.services import work_pools

blp = Blueprint(
    "work_pools",
    __name__,
    url_prefix="/api/work_pools",
    description="Work pools, their queues and workers (Prefect 2.20).",
)
experimental_blp = Blueprint(
    "experimental_work_pools",
    __name__,
    url_prefix="/api/experimental/work_pools",
    description="Prefect 2.7's experimental work pool paths: the same as /api/work_pools.",
)


def _agent_timeout():
    return datetime.timedelta(seconds=current_app.config["AGENT_HEARTBEAT_TIMEOUT"])


def _pool(pool, now=None):
    status = work_pools.pool_status(pool, now or utcnow(), _agent_timeout())
    return dump_work_pool(pool, status)


def _routes(blp):
    """Register every work pool view on ``blp`` (called once per URL prefix)."""

    @blp.post("/")
    @blp.arguments(WorkPoolCreateSchema)
    @blp.response(201, WorkPoolSchema)
    def create_work_pool(data):
        """Create a work pool and its default queue (409 if the name is taken, 422 for a bad
        base job template)."""
        return json_response(_pool(work_pools.create_work_pool(data)), 201)

    @blp.route("/<name>")
    class WorkPoolByName(MethodView):
        @blp.response(200, WorkPoolSchema)
        def get(self, name):
            """Read a work pool by name."""
            return json_response(_pool(work_pools.read_work_pool(name)))

        @blp.arguments(WorkPoolUpdateSchema)
        @blp.response(204)
        def patch(self, changes, name):
            """Change a work pool's description, pause, base job template or concurrency
            limit."""
            work_pools.update_work_pool(name, changes)
            return no_content()

        @blp.response(204)
        def delete(self, name):
            """Delete a work pool with its queues and workers (409 naming its deployments if
            it has any)."""
            work_pools.delete_work_pool(name)
            return no_content()

    @blp.post("/filter")
    @blp.arguments(WorkPoolFilterBody)
    @blp.response(200, WorkPoolSchema(many=True))
    def filter_work_pools(body):
        """List work pools matching filters, by name, paged (their statuses read at once)."""
        pools = work_pools.read_work_pools(body)
        statuses = work_pools.pool_statuses(pools, utcnow(), _agent_timeout())
        return json_response([dump_work_pool(p, statuses[str(p.id)]) for p in pools])

    @blp.post("/count")
    @blp.arguments(WorkPoolCountBody)
    @blp.response(200, description="The number of matching work pools.")
    def count_work_pools(body):
        """Count work pools matching filters."""
        return json_response(work_pools.count_work_pools(body))

    @blp.post("/<name>/get_scheduled_flow_runs")
    @blp.arguments(PoolScheduledRunsSchema)
    @blp.response(200, WorkerFlowRunSchema(many=True))
    def get_scheduled_flow_runs(body, name):
        """The pool's scheduled flow runs due by ``scheduled_before`` for a worker: queues by
        priority, each queue's runs earliest first, within the pool's and queues' free
        concurrency; nothing from a paused pool or queue. A run is claimed by proposing
        PENDING for it, which enforces the limits and accepts one claim only.

        Records the poll in the queues' ``last_polled``. A request carrying ``x-prefect-ui:
        true`` (Prefect's UI) is no poll: a read-only listing that records nothing and locks
        no run, so it never hides a run from a polling worker or agent."""
        polled = request.headers.get("x-prefect-ui", "").lower() != "true"
        pool = work_pools.read_work_pool(name)
        pairs = work_pools.get_scheduled_flow_runs(
            name,
            queue_names=body["work_queue_names"],
            scheduled_before=body["scheduled_before"],
            scheduled_after=body["scheduled_after"],
            limit=body["limit"],
            poll=polled,
        )
        if polled:
            metrics.AGENT_CLAIMS.inc(len(pairs))
        return json_response([dump_worker_flow_run(pool, q, run) for q, run in pairs])

    @blp.post("/<name>/queues")
    @blp.arguments(WorkQueueCreateSchema)
    @blp.response(201, WorkQueueSchema)
    def create_pool_queue(data, name):
        """Create a queue in a pool (409 if the pool has a queue of that name)."""
        return json_response(dump_work_queue(work_pools.create_pool_queue(name, data)), 201)

    @blp.route("/<name>/queues/<queue_name>")
    class PoolQueueByName(MethodView):
        @blp.response(200, WorkQueueSchema)
        def get(self, name, queue_name):
            """Read a pool's queue by name."""
            return json_response(dump_work_queue(work_pools.read_pool_queue(name, queue_name)))

        @blp.arguments(WorkQueueUpdateSchema)
        @blp.response(204)
        def patch(self, changes, name, queue_name):
            """Change a pool's queue: name, description, pause, concurrency limit, priority."""
            work_pools.update_pool_queue(name, queue_name, changes)
            return no_content()

        @blp.response(204)
        def delete(self, name, queue_name):
            """Delete a pool's queue (not its default queue: 409); its runs are kept."""
            work_pools.delete_pool_queue(name, queue_name)
            return no_content()

    @blp.post("/<name>/queues/filter")
    @blp.arguments(WorkQueueFilterBody)
    @blp.response(200, WorkQueueSchema(many=True))
    def filter_pool_queues(body, name):
        """List a pool's queues matching filters, by priority, paged."""
        queues = work_pools.read_pool_queues(name, body)
        return json_response([dump_work_queue(q) for q in queues])

    @blp.post("/<name>/workers/heartbeat")
    @blp.arguments(WorkerHeartbeatSchema)
    @blp.response(204)
    def worker_heartbeat(body, name):
        """A worker of the pool is alive: creates or updates it."""
        work_pools.worker_heartbeat(name, body["name"], body["heartbeat_interval_seconds"])
        return no_content()

    @blp.post("/<name>/workers/filter")
    @blp.arguments(WorkerFilterBody)
    @blp.response(200, WorkerSchema(many=True))
    def filter_workers(body, name):
        """List a pool's workers, most recently seen first, ONLINE or OFFLINE by their last
        heartbeat."""
        now, timeout = utcnow(), _agent_timeout()
        workers = work_pools.read_workers(name, body)
        return json_response(
            [dump_worker(w, work_pools.worker_is_online(w, now, timeout)) for w in workers]
        )

    @blp.delete("/<name>/workers/<path:worker_name>")
    @blp.response(204)
    def delete_worker(name, worker_name):
        """Forget a pool's worker (it comes back with its next heartbeat)."""
        work_pools.delete_worker(name, worker_name)
        return no_content()


_routes(blp)
_routes(experimental_blp)
