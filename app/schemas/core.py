"""API response objects: marshmallow schemas that document them, and fast dumpers.

The schemas are the OpenAPI description of each response. Responses themselves are built by
the ``dump_*`` functions, plain dict construction that is about ten times faster than a
marshmallow dump (a filter call returns up to 200 runs with their states). Tests load every
dumper's output with the matching schema, so the two cannot drift apart.
"""

import datetime

from marshmallow import fields
from marshmallow.validate import OneOf

from app.clock import utcnow
from app.schemas.base import DateTime, OrionSchema
from app.schemas.states import STATE_DETAIL_DEFAULTS, StateSchema
from app.states import TERMINAL_STATES

UTC = datetime.UTC
_TERMINAL_VALUES = frozenset(t.value for t in TERMINAL_STATES)


class ORMSchema(OrionSchema):
    """Fields every stored object has."""

    id = fields.UUID(required=True)
    created = DateTime(required=True)
    updated = DateTime(required=True)


class FlowSchema(ORMSchema):
    name = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)


class RunSchema(ORMSchema):
    """Fields shared by flow runs and task runs."""

    name = fields.String(required=True)
    empirical_policy = fields.Dict(required=True)
    tags = fields.List(fields.String(), required=True)
    state_id = fields.UUID(allow_none=True)
    state_type = fields.String(allow_none=True)
    state_name = fields.String(allow_none=True)
    run_count = fields.Integer(required=True)
    expected_start_time = DateTime(allow_none=True)
    next_scheduled_start_time = DateTime(allow_none=True)
    start_time = DateTime(allow_none=True)
    end_time = DateTime(allow_none=True)
    total_run_time = fields.Float(required=True, metadata={"description": "Seconds."})
    estimated_run_time = fields.Float(
        required=True, metadata={"description": "Seconds, including the current RUNNING spell."}
    )
    estimated_start_time_delta = fields.Float(
        required=True, metadata={"description": "Seconds late (0 when on time)."}
    )
    state = fields.Nested(StateSchema, allow_none=True)


class FlowRunSchema(RunSchema):
    flow_id = fields.UUID(required=True)
    deployment_id = fields.UUID(allow_none=True)
    work_queue_name = fields.String(allow_none=True)
    flow_version = fields.String(allow_none=True)
    parameters = fields.Dict(required=True)
    idempotency_key = fields.String(allow_none=True)
    context = fields.Dict(required=True)
    parent_task_run_id = fields.UUID(allow_none=True)
    auto_scheduled = fields.Boolean(required=True)
    infrastructure_document_id = fields.UUID(allow_none=True)
    infrastructure_pid = fields.String(allow_none=True)
    infrastructure_exit_code = fields.Integer(
        allow_none=True,
        metadata={
            "description": "The code the run's infrastructure ended with, as its agent "
            "recorded it; null until then (Orion extension)."
        },
    )
    created_by = fields.Dict(allow_none=True)
    work_queue_id = fields.UUID(
        allow_none=True, metadata={"description": "Prefect 2.20: the pool queue it was sent to."}
    )
    work_pool_id = fields.UUID(
        allow_none=True, metadata={"description": "Prefect 2.20: the pool of that queue."}
    )
    work_pool_name = fields.String(allow_none=True)
    job_variables = fields.Dict(
        allow_none=True,
        metadata={
            "description": "Prefect 2.20: this run's job variables, which its worker merges "
            "over its deployment's."
        },
    )
    deployment_version = fields.String(
        allow_none=True,
        metadata={"description": "Prefect 2.20: its deployment's version when it was made."},
    )
    last_heartbeat = DateTime(
        allow_none=True,
        metadata={
            "description": "When the running flow last reported it is alive (Orion extension)."
        },
    )


class TaskRunSchema(RunSchema):
    flow_run_id = fields.UUID(required=True)
    task_key = fields.String(required=True)
    dynamic_key = fields.String(required=True)
    cache_key = fields.String(allow_none=True)
    cache_expiration = DateTime(allow_none=True)
    task_version = fields.String(allow_none=True)
    task_inputs = fields.Dict(required=True)
    flow_run_run_count = fields.Integer(required=True)


class LogSchema(ORMSchema):
    name = fields.String(required=True)
    level = fields.Integer(required=True)
    message = fields.String(required=True)
    timestamp = DateTime(required=True)
    flow_run_id = fields.UUID(required=True)
    task_run_id = fields.UUID(allow_none=True)


class ConcurrencyLimitSchema(ORMSchema):
    tag = fields.String(required=True)
    concurrency_limit = fields.Integer(required=True)
    active_slots = fields.List(
        fields.UUID(),
        required=True,
        metadata={"description": "Task runs holding an unexpired lease of a slot, sorted."},
    )


class HistoryStateSchema(OrionSchema):
    state_type = fields.String(required=True)
    state_name = fields.String(required=True)
    count_runs = fields.Integer(required=True)
    sum_estimated_run_time = fields.Float(required=True)
    sum_estimated_lateness = fields.Float(required=True)


class HistoryIntervalSchema(OrionSchema):
    interval_start = DateTime(required=True)
    interval_end = DateTime(required=True)
    states = fields.List(fields.Nested(HistoryStateSchema), required=True)


class OrchestrationResultSchema(OrionSchema):
    """What became of a proposed state."""

    status = fields.String(required=True, metadata={"enum": ["ACCEPT", "REJECT", "WAIT", "ABORT"]})
    state = fields.Nested(StateSchema, allow_none=True, required=True)
    details = fields.Dict(
        required=True,
        metadata={
            "description": "type accept_details | reject_details {reason} | "
            "wait_details {delay_seconds, reason} | abort_details {reason}"
        },
    )


class TaskRunOrchestrationSchema(OrionSchema):
    """A task run created (or found) and what became of the state proposed for it."""

    task_run = fields.Nested(TaskRunSchema, required=True)
    orchestration_result = fields.Nested(OrchestrationResultSchema, required=True)


class GraphNodeSchema(OrionSchema):
    """A task run in a flow run's dependency graph."""

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    upstream_dependencies = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": 'Task runs this one consumed: [{"input_type": "task_run", "id": ...}]'
        },
    )
    state = fields.Nested(StateSchema, allow_none=True)
    expected_start_time = DateTime(allow_none=True)
    start_time = DateTime(allow_none=True)
    end_time = DateTime(allow_none=True)
    total_run_time = fields.Float(required=True)
    estimated_run_time = fields.Float(required=True)
    untrackable_result = fields.Boolean(required=True)


def upstream_task_runs(task_inputs):
    """The distinct upstream task runs named in ``task_inputs`` (wait_for included), in order."""
    seen = {}
    for references in (task_inputs or {}).values():
        for reference in references:
            if reference.get("input_type") == "task_run" and reference.get("id"):
                seen.setdefault(str(reference["id"]), None)
    return [{"input_type": "task_run", "id": run_id} for run_id in seen]


def dump_graph_node(run, now):
    """A task run (read row) as a node of its flow run's graph."""
    details = (run.state.state_details or {}) if run.state is not None else {}
    return {
        "id": str(run.id),
        "name": run.name,
        "upstream_dependencies": upstream_task_runs(run.task_inputs),
        "state": dump_state(run.state),
        "expected_start_time": _iso(run.expected_start_time),
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "total_run_time": run.total_run_time,
        "estimated_run_time": estimated_run_time(run, now),
        "untrackable_result": bool(details.get("untrackable_result")),
    }


def dump_orchestration_result(result):
    """An orchestration result as the API shows it."""
    return {
        "status": result.status.value,
        "state": dump_state(result.state),
        "details": result.details,
    }


def _iso(value):
    return value.isoformat() if value is not None else None


def _str(value):
    return str(value) if value is not None else None


def dump_state(state):
    """A state row as the API shows it, or None."""
    if state is None:
        return None
    return {
        "id": str(state.id),
        "type": state.type,
        "name": state.name,
        "timestamp": state.timestamp.isoformat(),
        "message": state.message,
        "data": state.data,
        "state_details": {**STATE_DETAIL_DEFAULTS, **(state.state_details or {})},
    }


def dump_flow(flow):
    return {
        "id": str(flow.id),
        "created": flow.created.isoformat(),
        "updated": flow.updated.isoformat(),
        "name": flow.name,
        "tags": flow.tags,
    }


def estimated_run_time(run, now):
    """Seconds spent running so far: the stored total plus the current RUNNING spell."""
    if run.state_type == "RUNNING" and run.state_timestamp is not None:
        return run.total_run_time + max((now - run.state_timestamp).total_seconds(), 0.0)
    return run.total_run_time


def estimated_start_time_delta(run, now):
    """Seconds between the expected and the actual start; for a run that should have started
    and has not, the time it has waited so far. Zero when on time or early."""
    expected = run.expected_start_time
    if expected is None:
        return 0.0
    if run.start_time is not None:
        return max((run.start_time - expected).total_seconds(), 0.0)
    if run.state_type not in _TERMINAL_VALUES and expected < now:
        return (now - expected).total_seconds()
    return 0.0


def _dump_run(run, now):
    return {
        "id": str(run.id),
        "created": run.created.isoformat(),
        "updated": run.updated.isoformat(),
        "name": run.name,
        "empirical_policy": run.empirical_policy,
        "tags": run.tags,
        "state_id": _str(run.state_id),
        "state_type": run.state_type,
        "state_name": run.state_name,
        "run_count": run.run_count,
        "expected_start_time": _iso(run.expected_start_time),
        "next_scheduled_start_time": _iso(run.next_scheduled_start_time),
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "total_run_time": run.total_run_time,
        "estimated_run_time": estimated_run_time(run, now),
        "estimated_start_time_delta": estimated_start_time_delta(run, now),
        "state": dump_state(run.state),
    }


def dump_flow_run(run, now=None, pools=None):
    """A flow run (with ``run.state`` loaded, or None) as the API shows it; ``pools`` maps
    the ids of pool queues (as strings) to their pools' ``(id, name)`` (see
    ``app.services.flow_runs.pools_of``), for runs sent to one."""
    out = _dump_run(run, now or datetime.datetime.now(UTC))
    work_queue_id = _str(run.work_queue_id)
    pool_id, pool_name = (pools or _NO_POOLS).get(work_queue_id, _NO_POOL)
    out.update(
        flow_id=str(run.flow_id),
        deployment_id=_str(run.deployment_id),
        work_queue_name=run.work_queue_name,
        flow_version=run.flow_version,
        parameters=run.parameters,
        idempotency_key=run.idempotency_key,
        context=run.context,
        parent_task_run_id=_str(run.parent_task_run_id),
        auto_scheduled=run.auto_scheduled,
        infrastructure_document_id=_str(run.infrastructure_document_id),
        infrastructure_pid=run.infrastructure_pid,
        infrastructure_exit_code=run.infrastructure_exit_code,
        created_by=run.created_by,
        work_queue_id=work_queue_id,
        work_pool_id=_str(pool_id),
        work_pool_name=pool_name,
        job_variables=run.job_variables,
        deployment_version=run.deployment_version,
        last_heartbeat=_iso(run.last_heartbeat),
    )
    return out


_NO_POOLS: dict = {}
_NO_POOL = (None, None)


def dump_task_run(run, now=None):
    """A task run (with ``run.state`` loaded, or None) as the API shows it."""
    out = _dump_run(run, now or datetime.datetime.now(UTC))
    out.update(
        flow_run_id=str(run.flow_run_id),
        task_key=run.task_key,
        dynamic_key=run.dynamic_key,
        cache_key=run.cache_key,
        cache_expiration=_iso(run.cache_expiration),
        task_version=run.task_version,
        task_inputs=run.task_inputs,
        flow_run_run_count=run.flow_run_run_count,
    )
    return out


def dump_concurrency_limit(limit, active_slots):
    """A concurrency limit as the API shows it; ``active_slots`` are the ids of the task runs
    holding its unexpired leases (any order)."""
    return {
        "id": str(limit.id),
        "created": limit.created.isoformat(),
        "updated": limit.updated.isoformat(),
        "tag": limit.tag,
        "concurrency_limit": limit.concurrency_limit,
        "active_slots": sorted(str(run_id) for run_id in active_slots),
    }


def dump_log(log):
    return {
        "id": str(log.id),
        "created": log.created.isoformat(),
        "updated": log.updated.isoformat(),
        "name": log.name,
        "level": log.level,
        "message": log.message,
        "timestamp": log.timestamp.isoformat(),
        "flow_run_id": str(log.flow_run_id),
        "task_run_id": _str(log.task_run_id),
    }


class WorkQueueSchema(ORMSchema):
    name = fields.String(required=True)
    description = fields.String(allow_none=True)
    is_paused = fields.Boolean(required=True)
    concurrency_limit = fields.Integer(allow_none=True)
    priority = fields.Integer(required=True, metadata={"description": "1 is the highest."})
    filter = fields.Dict(allow_none=True)
    last_polled = DateTime(allow_none=True)
    work_pool_id = fields.UUID(required=True)
    work_pool_name = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=OneOf(["READY", "NOT_READY", "PAUSED"]),
        metadata={
            "description": "Prefect 2.20's queue status: PAUSED; READY when polled within "
            "the last 60 s; else NOT_READY."
        },
    )


class WorkQueueHealthPolicySchema(OrionSchema):
    maximum_late_runs = fields.Integer(allow_none=True)
    maximum_seconds_since_last_polled = fields.Integer(allow_none=True)


class WorkQueueStatusSchema(OrionSchema):
    healthy = fields.Boolean(required=True)
    late_runs_count = fields.Integer(required=True)
    last_polled = DateTime(allow_none=True)
    health_check_policy = fields.Nested(WorkQueueHealthPolicySchema, required=True)


class AgentSchema(ORMSchema):
    name = fields.String(required=True)
    work_queue_id = fields.UUID(allow_none=True)
    last_activity_time = DateTime(allow_none=True)
    last_heartbeat = DateTime(
        allow_none=True,
        metadata={"description": "When the agent last heartbeated (Orion extension)."},
    )


def dump_agent(agent):
    return {
        "id": str(agent.id),
        "created": agent.created.isoformat(),
        "updated": agent.updated.isoformat(),
        "name": agent.name,
        "work_queue_id": _str(agent.work_queue_id),
        "last_activity_time": _iso(agent.last_activity_time),
        "last_heartbeat": _iso(agent.last_heartbeat),
    }


#: A queue polled within this long is READY (Prefect 2.20's WORK_QUEUE_LAST_POLLED_TIMEOUT).
QUEUE_POLLED_TIMEOUT = datetime.timedelta(seconds=60)


def work_queue_status(queue, now=None):
    """PAUSED, READY (polled within :data:`QUEUE_POLLED_TIMEOUT` of ``now``) or NOT_READY."""
    if queue.is_paused:
        return "PAUSED"
    now = now or utcnow()
    if queue.last_polled is not None and now - queue.last_polled <= QUEUE_POLLED_TIMEOUT:
        return "READY"
    return "NOT_READY"


def dump_work_queue(queue):
    return {
        "id": str(queue.id),
        "created": queue.created.isoformat(),
        "updated": queue.updated.isoformat(),
        "name": queue.name,
        "description": queue.description,
        "is_paused": queue.is_paused,
        "concurrency_limit": queue.concurrency_limit,
        "priority": queue.priority,
        "filter": queue.filter,
        "last_polled": _iso(queue.last_polled),
        "work_pool_id": str(queue.work_pool_id),
        "work_pool_name": queue.work_pool.name,
        "status": work_queue_status(queue),
    }


class SavedSearchFilterDumpSchema(OrionSchema):
    object = fields.String(required=True)
    property = fields.String(required=True)
    type = fields.String(required=True)
    operation = fields.String(required=True)
    value = fields.Raw(allow_none=True)


class SavedSearchSchema(ORMSchema):
    name = fields.String(required=True)
    filters = fields.List(fields.Nested(SavedSearchFilterDumpSchema), required=True)


def dump_saved_search(search):
    return {
        "id": str(search.id),
        "created": search.created.isoformat(),
        "updated": search.updated.isoformat(),
        "name": search.name,
        "filters": search.filters,
    }
