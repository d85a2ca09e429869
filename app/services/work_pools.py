"""Work pools (Prefect 2.20): pools, their queues, their workers, and handing a pool's
scheduled flow runs to its workers.

A pool is addressed by name. Creating one creates its ``default`` queue (priority 1), the
queue a deployment naming the pool but no queue goes to. The agents' pool,
``default-agent-pool``, holds the queues of Prefect 2.7's agents (``/api/work_queues``); it is
created when first needed, with its ``default`` queue, and cannot be deleted.

A pool's ``base_job_template`` is ``{}`` or ``{"job_configuration": {...}, "variables": <JSON
schema>}`` whose ``{{ placeholders }}`` all name a variable; a deployment's job variables
must match that schema (required variables may be left out: the worker fills them from their
defaults). Workers claim runs as agents do (:func:`app.services.work_queues.claim_due_runs`):
the run is theirs once their SCHEDULED -> PENDING proposal is accepted, which also enforces
the queue's and the pool's concurrency limits.
"""

import datetime
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from peewee import IntegrityError, fn

from app.db import database
from app.exceptions import Conflict, InvalidData, ObjectAlreadyExists, ObjectNotFound
from app.models import (
    AGENT_POOL,
    AGENT_POOL_TYPE,
    DEFAULT_QUEUE,
    Deployment,
    Flow,
    FlowRun,
    Worker,
    WorkPool,
    WorkQueue,
    utcnow,
)
from app.services import filters, work_queues
from app.services.common import Body, get_or_raise
from app.states import StateType

# A worker that gave its heartbeat interval is online for this many intervals after a
# heartbeat (Prefect's rule), and never for less than the agents' timeout.
MISSED_HEARTBEATS = 3
# A standard placeholder of a job configuration: "{{ name }}" (Prefect's
# "{{ prefect.variables.x }}" and block references have dots and are not variables).
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def check_base_job_template(template: Mapping[str, Any]) -> None:
    """InvalidData (at ``body.base_job_template``) unless ``template`` is ``{}`` or has a
    ``job_configuration`` object and a ``variables`` JSON schema declaring every variable the
    configuration's placeholders use."""
    loc = ["body", "base_job_template"]
    if not template:
        return
    missing = [key for key in ("job_configuration", "variables") if key not in template]
    if missing:
        raise InvalidData(
            f"The base job template must have {' and '.join(repr(k) for k in missing)}.", loc
        )
    configuration, variables = template["job_configuration"], template["variables"]
    if not isinstance(configuration, dict):
        raise InvalidData("job_configuration must be an object.", [*loc, "job_configuration"])
    if not isinstance(variables, dict):
        raise InvalidData("variables must be a JSON schema (an object).", [*loc, "variables"])
    import jsonschema  # on first use: app/services/__init__.py says why

    try:
        jsonschema.Draft202012Validator.check_schema(variables)
    except jsonschema.SchemaError as error:
        raise InvalidData(
            f"variables is not a valid JSON schema: {error.message}", [*loc, "variables"]
        ) from None
    declared = set((variables.get("properties") or {}).keys())
    used = set(_PLACEHOLDER.findall(json.dumps(configuration)))
    undeclared = sorted(used - declared)
    if undeclared:
        raise InvalidData(
            "The job configuration uses variables the variables schema does not declare: "
            + ", ".join(undeclared),
            [*loc, "job_configuration"],
        )


def check_job_variables(pool: WorkPool, job_variables: Mapping[str, Any] | None) -> None:
    """InvalidData naming the first variable (by name) that ``pool``'s template variables
    schema refuses. Unknown variables pass when the schema allows them (Prefect's templates
    do not forbid extra keys); missing required ones pass (the worker uses defaults)."""
    schema = (pool.base_job_template or {}).get("variables")
    if not schema or not job_variables:
        return
    import jsonschema  # on first use: app/services/__init__.py says why

    validator = jsonschema.Draft202012Validator(schema)
    problems = sorted(
        (e for e in validator.iter_errors(dict(job_variables)) if e.validator != "required"),
        key=lambda e: [str(p) for p in e.path],
    )
    if problems:
        problem = problems[0]
        path = [str(p) for p in problem.path]
        name = path[0] if path else "job_variables"
        raise InvalidData(
            f"Job variable {name!r} does not match work pool {pool.name!r}'s template: "
            f"{problem.message}",
            ["body", "job_variables", *path],
        )


def is_agent_pool(pool: WorkPool) -> bool:
    """Whether ``pool`` is the agents' pool (``default-agent-pool``), whose queues Prefect
    2.7's agents poll by name."""
    return bool(pool.name == AGENT_POOL)


def read_work_pool(name: str) -> WorkPool:
    """The pool called ``name`` (the agents' pool is created if missing); ObjectNotFound."""
    if name == AGENT_POOL:
        return work_queues.agent_pool()
    return get_or_raise(WorkPool.select().where(WorkPool.name == name), "Work pool", repr(name))


def create_work_pool(data: Mapping[str, Any]) -> WorkPool:
    """Create a pool and its ``default`` queue from a loaded WorkPoolCreate body;
    ObjectAlreadyExists if the name is taken, InvalidData for a bad template."""
    check_base_job_template(data["base_job_template"])
    now = utcnow()
    pool_id, queue_id = uuid.uuid4(), uuid.uuid4()
    try:
        with database.atomic():
            pool = WorkPool.create(
                id=pool_id,
                name=data["name"],
                description=data.get("description"),
                type=data["type"],
                base_job_template=data["base_job_template"],
                is_paused=data["is_paused"],
                concurrency_limit=data["concurrency_limit"],
                default_queue_id=queue_id,
                created=now,
                updated=now,
            )
            WorkQueue.create(
                id=queue_id,
                work_pool=pool_id,
                name=DEFAULT_QUEUE,
                description="The work pool's default queue.",
                priority=1,
                created=now,
                updated=now,
            )
    except IntegrityError as error:
        raise ObjectAlreadyExists(f"A work pool named {data['name']!r} already exists.") from error
    return pool


def update_work_pool(name: str, changes: Mapping[str, Any]) -> None:
    """Apply a loaded WorkPoolUpdate body (description, pause, template, concurrency limit);
    ObjectNotFound, InvalidData for a bad template."""
    if "base_job_template" in changes:
        check_base_job_template(changes["base_job_template"])
    pool = read_work_pool(name)
    if changes:
        with database.atomic():
            WorkPool.update(updated=utcnow(), **changes).where(WorkPool.id == pool.id).execute()


def pool_deployments(pool: WorkPool) -> list[str]:
    """``flow/deployment`` names of the deployments whose queue is in ``pool``, sorted."""
    rows = (
        Deployment.select(Flow.name, Deployment.name)
        .join(Flow)
        .switch(Deployment)
        .join(WorkQueue)
        .where(WorkQueue.work_pool == pool.id)
        .tuples()
    )
    return sorted(f"{flow}/{deployment}" for flow, deployment in rows)


def delete_work_pool(name: str) -> None:
    """Delete a pool with its queues and workers; ObjectNotFound; Conflict for the agents'
    pool and for a pool that deployments use (naming them: delete or move them first)."""
    if name == AGENT_POOL:
        raise Conflict(f"{AGENT_POOL!r} holds the agents' work queues; it cannot be deleted.")
    with database.atomic():
        pool = read_work_pool(name)
        used_by = pool_deployments(pool)
        if used_by:
            raise Conflict(
                f"Work pool {name!r} has deployments: {', '.join(used_by)}. Delete them or "
                "move them to another pool first."
            )
        WorkPool.delete().where(WorkPool.id == pool.id).execute()


def read_work_pools(body: Body) -> list[WorkPool]:
    """Pools matching a WorkPoolFilterBody, by name, paged."""
    query = filters.apply_filters(WorkPool.select(), WorkPool, body)
    return list(filters.sort_and_page(query, WorkPool, body))


def count_work_pools(body: Body) -> int:
    """How many pools match a filter body."""
    return filters.apply_filters(WorkPool.select(), WorkPool, body).count()


def pool_status(pool: WorkPool, now: datetime.datetime, agent_timeout: datetime.timedelta) -> str:
    """Prefect 2.20's pool status: PAUSED; READY when a worker is online (see
    :func:`worker_is_online`) or for the agents' pool, which agents serve; else NOT_READY."""
    if pool.is_paused or pool.type == AGENT_POOL_TYPE:
        return _status(pool, False)
    workers = Worker.select().where(Worker.work_pool == pool.id)
    return _status(pool, any(worker_is_online(worker, now, agent_timeout) for worker in workers))


def pool_statuses(
    pools: list[WorkPool], now: datetime.datetime, agent_timeout: datetime.timedelta
) -> dict[str, str]:
    """``{pool id: status}``: :func:`pool_status` of each pool, with one query for the
    workers of all of them (none when no pool needs its workers)."""
    asking = [p.id for p in pools if not p.is_paused and p.type != AGENT_POOL_TYPE]
    online: set[str] = set()
    if asking:
        workers = Worker.select(
            Worker.work_pool, Worker.last_heartbeat_time, Worker.heartbeat_interval_seconds
        ).where(Worker.work_pool.in_(asking))
        online = {str(w.work_pool_id) for w in workers if worker_is_online(w, now, agent_timeout)}
    return {str(pool.id): _status(pool, str(pool.id) in online) for pool in pools}


def _status(pool: WorkPool, worker_online: bool) -> str:
    if pool.is_paused:
        return "PAUSED"
    return "READY" if pool.type == AGENT_POOL_TYPE or worker_online else "NOT_READY"


def pool_overview(
    pools: list[WorkPool], now: datetime.datetime, agent_timeout: datetime.timedelta
) -> dict[str, dict[str, Any]]:
    """``{pool id: {"status", "queues", "workers_online", "workers_offline",
    "upcoming_runs"}}`` for the dashboard's list of pools.

    ``status`` is :func:`pool_status`'s; ``queues`` counts the pool's queues; a worker is
    online as :func:`worker_is_online` says, offline otherwise (every worker row the pool
    has); ``upcoming_runs`` counts the SCHEDULED flow runs (Late ones included) of the
    pool's queues, summed over its queues
    (:func:`app.services.work_queues.scheduled_run_counts`: a run that a queue selecting by
    the deprecated filter selects too counts for each of its queues). Three queries (four
    with a deprecated-filter queue), whatever the number of pools.
    """
    by_id = {str(pool.id): pool for pool in pools}
    overview: dict[str, dict[str, Any]] = {
        key: {"queues": 0, "workers_online": 0, "workers_offline": 0, "upcoming_runs": 0}
        for key in by_id
    }
    if not pools:
        return overview
    ids = [pool.id for pool in pools]
    queues = list(
        WorkQueue.select(WorkQueue.id, WorkQueue.name, WorkQueue.filter, WorkQueue.work_pool).where(
            WorkQueue.work_pool.in_(ids)
        )
    )
    for queue in queues:
        queue.work_pool = by_id[str(queue.work_pool_id)]
        overview[str(queue.work_pool_id)]["queues"] += 1
    scheduled = work_queues.scheduled_run_counts(queues)
    for queue in queues:
        overview[str(queue.work_pool_id)]["upcoming_runs"] += scheduled[str(queue.id)]
    workers = Worker.select(
        Worker.work_pool, Worker.last_heartbeat_time, Worker.heartbeat_interval_seconds
    ).where(Worker.work_pool.in_(ids))
    for worker in workers:
        online = worker_is_online(worker, now, agent_timeout)
        overview[str(worker.work_pool_id)]["workers_online" if online else "workers_offline"] += 1
    for key, pool in by_id.items():
        overview[key]["status"] = _status(pool, overview[key]["workers_online"] > 0)
    return overview


def pool_runs_condition(pool: WorkPool, queues: list[WorkQueue] | None = None) -> Any:
    """The condition selecting the flow runs of ``pool``'s queues (the runs
    :func:`app.services.work_queues.queue_runs_condition` gives each of them), or None when
    the pool has no queue. ``queues``: the pool's queues if already read.

    A subquery stands for the queues selecting runs by id (by name in the agents' pool), so
    the condition stays the same size however many queues the pool has; each queue selecting
    by the deprecated filter adds its own condition.
    """
    if queues is None:
        queues = list(_queue_query(pool))
    if not queues:
        return None
    if pool.name == AGENT_POOL:
        # FlowRun.of_queue for each queue: its name, and its id or none (a correlated
        # subquery, served by the queues' (pool, name) unique index).
        queue = WorkQueue.alias()
        named = queue.select(queue.id).where(
            (queue.work_pool == pool.id)
            & queue.filter.is_null()
            & (queue.name == FlowRun.work_queue_name)
            & (FlowRun.work_queue_id.is_null() | (FlowRun.work_queue_id == queue.id))
        )
        condition = fn.EXISTS(named)
    else:
        condition = FlowRun.work_queue_id.in_(
            WorkQueue.select(WorkQueue.id).where(
                (WorkQueue.work_pool == pool.id) & WorkQueue.filter.is_null()
            )
        )
    for legacy in queues:
        if legacy.filter is not None:
            legacy.work_pool = pool
            condition |= work_queues.queue_runs_condition(legacy)
    return condition


def upcoming_pool_runs(
    pool: WorkPool, queues: list[WorkQueue], limit: int, offset: int = 0
) -> list[Any]:
    """The SCHEDULED flow runs (Late ones included) of ``pool``'s queues (``queues``: all of
    them), the earliest scheduled first: ``limit`` of them after the first ``offset``. A
    read-only listing: no poll recorded, nothing locked."""
    condition = pool_runs_condition(pool, queues)
    if condition is None:
        return []
    ids = (
        FlowRun.select(FlowRun.id)
        .where(condition & (FlowRun.state_type == StateType.SCHEDULED.value))
        .order_by(FlowRun.next_scheduled_start_time, FlowRun.id)
        .limit(limit)
        .offset(offset)
    )
    return work_queues.runs_in_order([row.id for row in ids])


def pool_queues(pool: WorkPool) -> list[WorkQueue]:
    """All of ``pool``'s queues, by priority then name, each with ``work_pool`` set."""
    queues = list(
        WorkQueue.select()
        .where(WorkQueue.work_pool == pool.id)
        .order_by(WorkQueue.priority, WorkQueue.name, WorkQueue.id)
    )
    for queue in queues:
        queue.work_pool = pool
    return queues


def pool_workers(pool: WorkPool, limit: int) -> list[Worker]:
    """``pool``'s workers, the most recently heard from first (never heard from last), at
    most ``limit``."""
    return list(
        Worker.select()
        .where(Worker.work_pool == pool.id)
        .order_by(Worker.last_heartbeat_time.desc(nulls="LAST"), Worker.name)
        .limit(limit)
    )


# Queues of a pool.
def _queue_query(pool: WorkPool) -> Any:
    return (
        WorkQueue.select(WorkQueue, WorkPool).join(WorkPool).where(WorkQueue.work_pool == pool.id)
    )


def create_pool_queue(pool_name: str, data: Mapping[str, Any]) -> WorkQueue:
    """Create a queue in a pool from a loaded WorkQueueCreate body; ObjectNotFound (pool),
    ObjectAlreadyExists (name taken in the pool). Without a priority it comes last; with one
    that another queue holds, that queue and those after it move down one (Prefect's
    renumbering)."""
    pool = read_work_pool(pool_name)
    now = utcnow()
    try:
        with database.atomic():
            priority = data.get("priority")
            if priority is None:
                highest = _queue_query(pool).select(fn.MAX(WorkQueue.priority)).scalar()
                priority = (highest or 0) + 1
            else:
                _make_room(pool, priority)
            return WorkQueue.create(
                id=uuid.uuid4(),
                work_pool=pool.id,
                name=data["name"],
                description=data.get("description") or "",
                is_paused=data["is_paused"],
                concurrency_limit=data["concurrency_limit"],
                priority=priority,
                created=now,
                updated=now,
            )
    except IntegrityError as error:
        raise ObjectAlreadyExists(
            f"Work pool {pool_name!r} already has a queue named {data['name']!r}."
        ) from error


def _make_room(pool: WorkPool, priority: int, exclude: Any = None) -> None:
    """Move the pool's queues at ``priority`` and after down one, if one holds it."""
    taken = _queue_query(pool).where(WorkQueue.priority == priority)
    if exclude is not None:
        taken = taken.where(WorkQueue.id != exclude)
    if taken.exists():
        shift = WorkQueue.update(priority=WorkQueue.priority + 1).where(
            (WorkQueue.work_pool == pool.id) & (WorkQueue.priority >= priority)
        )
        if exclude is not None:
            shift = shift.where(WorkQueue.id != exclude)
        shift.execute()


def read_pool_queue(pool_name: str, name: str) -> WorkQueue:
    """The queue ``name`` of the pool ``pool_name``; ObjectNotFound for either."""
    pool = read_work_pool(pool_name)
    return get_or_raise(
        _queue_query(pool).where(WorkQueue.name == name),
        "Work queue",
        repr(f"{pool_name}/{name}"),
    )


def update_pool_queue(pool_name: str, name: str, changes: Mapping[str, Any]) -> None:
    """Apply a loaded WorkQueueUpdate body to a pool's queue (a priority another queue holds
    moves that queue and those after it down one); ObjectNotFound, ObjectAlreadyExists."""
    queue = read_pool_queue(pool_name, name)
    with database.atomic():
        if changes.get("priority") is not None:
            _make_room(queue.work_pool, changes["priority"], exclude=queue.id)
        work_queues.update_work_queue(queue.id, changes)


def delete_pool_queue(pool_name: str, name: str) -> None:
    """Delete a pool's queue (its runs are kept); ObjectNotFound; Conflict for the pool's
    default queue."""
    work_queues.delete_work_queue(read_pool_queue(pool_name, name).id)


def read_pool_queues(pool_name: str, body: Body) -> list[WorkQueue]:
    """A pool's queues matching a WorkQueueFilterBody, by priority then name, paged."""
    pool = read_work_pool(pool_name)
    query = filters.apply_filters(_queue_query(pool), WorkQueue, body)
    query = query.order_by(WorkQueue.priority, WorkQueue.name, WorkQueue.id)
    return list(filters.apply_pagination(query, body.get("limit"), body.get("offset", 0)))


def place_deployment(deployment: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` to a deployment (None: a new one; a loaded deployment body) with its pool
    and queue resolved: ``work_pool_name`` replaced by ``work_queue`` (the queue's id) and
    ``work_queue_name``, after checking the job variables (``infra_overrides``) against the
    pool's template.

    A body naming a pool sends the runs to its queue ``work_queue_name`` (created if missing)
    or its default queue; naming only a queue, to that queue of the deployment's pool, or of
    the agents' pool (created if missing). ObjectNotFound for an unknown pool, InvalidData
    naming a bad job variable.
    """
    changes = dict(changes)
    pool_name = changes.pop("work_pool_name", None)
    variables = changes.get("infra_overrides")
    if variables is None and deployment is not None:
        variables = deployment.infra_overrides
    if pool_name is None and "work_queue_name" not in changes:
        if deployment is not None and "infra_overrides" in changes:
            check_queue_job_variables(deployment.work_queue_id, variables)
        return changes
    if pool_name is None and deployment is not None:
        pool_name = deployment.work_pool_name
    # A body's work_queue_name, null included (no queue), wins over the deployment's.
    if "work_queue_name" in changes:
        queue_name = changes["work_queue_name"]
    else:
        queue_name = deployment.work_queue_name if deployment is not None else None
    if pool_name is None or pool_name == AGENT_POOL:
        if not queue_name:
            changes.update(work_queue_name=None, work_queue=None)
            return changes
        queue, _ = work_queues.ensure_work_queue(queue_name)
    else:
        pool = read_work_pool(pool_name)
        check_job_variables(pool, variables)
        if not queue_name:
            default = WorkQueue.get_or_none(WorkQueue.id == pool.default_queue_id)
            queue_name = default.name if default is not None else DEFAULT_QUEUE
        queue, _ = work_queues.ensure_work_queue(queue_name, pool)
    changes.update(work_queue_name=queue.name, work_queue=queue.id)
    return changes


def check_queue_job_variables(queue_id: Any, job_variables: Mapping[str, Any] | None) -> None:
    """Check the ``job_variables`` of a deployment or run sent to the pool queue ``queue_id``
    against its pool's template (no queue, or a queue since deleted: no check);
    InvalidData naming the variable."""
    if queue_id is None:
        return
    found = WorkPool.select().join(WorkQueue).where(WorkQueue.id == queue_id).first()
    if found is not None:
        check_job_variables(found, job_variables)


# Handing runs to workers.
def get_scheduled_flow_runs(
    pool_name: str,
    queue_names: list[str] | None = None,
    scheduled_before: datetime.datetime | None = None,
    scheduled_after: datetime.datetime | None = None,
    limit: int | None = None,
    now: datetime.datetime | None = None,
    poll: bool = True,
) -> list[tuple[WorkQueue, Any]]:
    """The pool's SCHEDULED flow runs due by ``scheduled_before`` for a worker to claim, as
    ``(queue, run)`` pairs: queues by priority, each queue's runs earliest first.

    Only the named queues (none named, or an empty list as Prefect's workers send: all of the
    pool's); a paused pool or queue hands out
    nothing, and neither hands out more than its free concurrency. Records the poll on the
    queues and locks the runs for the claim (see :func:`work_queues.claim_due_runs`); with
    ``poll=False`` (Prefect's UI looking) it is a read-only listing: nothing recorded, no
    transaction, no row locked. ObjectNotFound for an unknown pool or queue name.
    """
    now = now or utcnow()
    pool = read_work_pool(pool_name)
    queues = _queue_query(pool).order_by(WorkQueue.priority, WorkQueue.name)
    if queue_names:
        queues = queues.where(WorkQueue.name.in_(queue_names))
    queues = list(queues)
    unknown = sorted(set(queue_names or ()) - {queue.name for queue in queues})
    if unknown:
        raise ObjectNotFound(f"Work pool {pool_name!r} has no queue named {', '.join(unknown)}.")
    for queue in queues:
        queue.work_pool = pool
    return work_queues.claim_due_runs(
        queues,
        scheduled_before=scheduled_before or now,
        scheduled_after=scheduled_after,
        limit=limit,
        pool=pool,
        record_poll=poll,
        claim=poll,
        now=now,
    )


# Workers.
def worker_heartbeat(
    pool_name: str, name: str, interval_seconds: int | None, now: datetime.datetime | None = None
) -> None:
    """The worker ``name`` of the pool is alive at ``now``: upsert its row (one statement,
    safe under concurrent heartbeats); ObjectNotFound for an unknown pool."""
    now = now or utcnow()
    pool = read_work_pool(pool_name)
    changes: dict[Any, Any] = {Worker.last_heartbeat_time: now, Worker.updated: now}
    if interval_seconds is not None:
        changes[Worker.heartbeat_interval_seconds] = interval_seconds
    with database.atomic():
        (
            Worker.insert(
                id=uuid.uuid4(),
                work_pool=pool.id,
                name=name,
                last_heartbeat_time=now,
                heartbeat_interval_seconds=interval_seconds,
                created=now,
                updated=now,
            )
            .on_conflict(conflict_target=[Worker.work_pool, Worker.name], update=changes)
            .execute()
        )


def read_workers(pool_name: str, body: Body) -> list[Worker]:
    """A pool's workers matching a WorkerFilterBody, most recently seen first, paged."""
    pool = read_work_pool(pool_name)
    query = filters.apply_filters(Worker.select().where(Worker.work_pool == pool.id), Worker, body)
    return list(filters.sort_and_page(query, Worker, body))


def delete_worker(pool_name: str, name: str) -> None:
    """Forget a pool's worker (it comes back with its next heartbeat); ObjectNotFound."""
    pool = read_work_pool(pool_name)
    with database.atomic():
        deleted = (
            Worker.delete().where((Worker.work_pool == pool.id) & (Worker.name == name)).execute()
        )
    if not deleted:
        raise ObjectNotFound(f"Work pool {pool_name!r} has no worker named {name!r}.")


def worker_is_online(
    worker: Worker, now: datetime.datetime, agent_timeout: datetime.timedelta
) -> bool:
    """Online: heartbeated within the agents' timeout (``ORION_AGENT_HEARTBEAT_TIMEOUT``), or
    within :data:`MISSED_HEARTBEATS` of its own heartbeat intervals if that is longer."""
    if worker.last_heartbeat_time is None:
        return False
    timeout = agent_timeout
    if worker.heartbeat_interval_seconds:
        timeout = max(
            timeout,
            datetime.timedelta(seconds=MISSED_HEARTBEATS * worker.heartbeat_interval_seconds),
        )
    return now - worker.last_heartbeat_time <= timeout
