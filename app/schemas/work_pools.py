"""Work pools and workers (Prefect 2.20): request bodies, responses and their dumpers."""

from marshmallow import fields, validate

from app.schemas import limits
from app.schemas.base import ActionSchema, DateTime, List, Name, OrionSchema, String, Text
from app.schemas.core import FlowRunSchema, ORMSchema, _iso, _str, dump_flow_run


def _pool_limit(**kwargs):
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=limits.INT32_MAX),
        metadata={
            "description": "Most of the pool's flow runs PENDING or RUNNING at once; null: no "
            "limit. Enforced when a worker claims a run."
        },
        **kwargs,
    )


def _template(**kwargs):
    return fields.Dict(
        metadata={
            "description": '{} or {"job_configuration": {...}, "variables": <JSON schema>}; '
            "every {{ placeholder }} of the configuration must be a declared variable."
        },
        **kwargs,
    )


class WorkPoolCreateSchema(ActionSchema):
    """Body of ``POST /api/work_pools/``."""

    name = Name()
    description = Text(allow_none=True, load_default=None)
    type = String(min_length=1, load_default="prefect-agent")
    base_job_template = _template(load_default=dict)
    is_paused = fields.Boolean(load_default=False)
    concurrency_limit = _pool_limit(load_default=None)


class WorkPoolUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/work_pools/{name}``: only the fields given change (pause with
    ``is_paused``)."""

    description = Text(allow_none=True)
    is_paused = fields.Boolean()
    base_job_template = _template()
    concurrency_limit = _pool_limit()


class WorkPoolSchema(ORMSchema):
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    type = fields.String(required=True)
    base_job_template = fields.Dict(required=True)
    is_paused = fields.Boolean(required=True)
    concurrency_limit = fields.Integer(allow_none=True)
    default_queue_id = fields.UUID(allow_none=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(("READY", "NOT_READY", "PAUSED")),
        metadata={"description": "PAUSED; READY when a worker is online; else NOT_READY."},
    )


def dump_work_pool(pool, status):
    return {
        "id": str(pool.id),
        "created": pool.created.isoformat(),
        "updated": pool.updated.isoformat(),
        "name": pool.name,
        "description": pool.description,
        "type": pool.type,
        "base_job_template": pool.base_job_template,
        "is_paused": pool.is_paused,
        "concurrency_limit": pool.concurrency_limit,
        "default_queue_id": _str(pool.default_queue_id),
        "status": status,
    }


class PoolScheduledRunsSchema(ActionSchema):
    """Body of ``POST /api/work_pools/{name}/get_scheduled_flow_runs``."""

    work_queue_names = List(
        String(),
        allow_none=True,
        load_default=None,
        metadata={"description": "Only these queues of the pool (null or []: all of them)."},
    )
    scheduled_before = DateTime(
        allow_none=True,
        load_default=None,
        metadata={"description": "Only runs scheduled up to this time (default: now)."},
    )
    scheduled_after = DateTime(
        allow_none=True,
        load_default=None,
        metadata={"description": "Only runs scheduled from this time."},
    )
    limit = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=limits.LIMIT_MAX),
        metadata={"description": "Most runs returned (default: every due run)."},
    )


class WorkerFlowRunSchema(OrionSchema):
    work_pool_id = fields.UUID(required=True)
    work_queue_id = fields.UUID(required=True)
    flow_run = fields.Nested(FlowRunSchema, required=True)


def dump_worker_flow_run(pool, queue, run):
    return {
        "work_pool_id": str(pool.id),
        "work_queue_id": str(queue.id),
        "flow_run": dump_flow_run(run, pools={str(queue.id): (pool.id, pool.name)}),
    }


class WorkerHeartbeatSchema(ActionSchema):
    """Body of ``POST /api/work_pools/{name}/workers/heartbeat``."""

    name = String(min_length=1, required=True)
    heartbeat_interval_seconds = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=limits.INT32_MAX),
        metadata={"description": "How often the worker heartbeats; sets when it is offline."},
    )


class WorkerSchema(ORMSchema):
    name = fields.String(required=True)
    work_pool_id = fields.UUID(required=True)
    last_heartbeat_time = DateTime(allow_none=True)
    heartbeat_interval_seconds = fields.Integer(allow_none=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(("ONLINE", "OFFLINE")),
        metadata={
            "description": "ONLINE while it heartbeated within ORION_AGENT_HEARTBEAT_TIMEOUT "
            "(or three of its intervals, if longer)."
        },
    )


def dump_worker(worker, online):
    return {
        "id": str(worker.id),
        "created": worker.created.isoformat(),
        "updated": worker.updated.isoformat(),
        "name": worker.name,
        "work_pool_id": str(worker.work_pool_id),
        "last_heartbeat_time": _iso(worker.last_heartbeat_time),
        "heartbeat_interval_seconds": worker.heartbeat_interval_seconds,
        "status": "ONLINE" if online else "OFFLINE",
    }
