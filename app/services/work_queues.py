"""Work queues: CRUD, health, and handing scheduled flow runs to agents and workers.

These functions address queues by id, or by name in the agents' pool (``default-agent-pool``,
the queues of Prefect 2.7's ``/api/work_queues``); :mod:`app.services.work_pools` addresses
the queues of every pool. A queue is linked to flow runs by id (``FlowRun.work_queue_id``,
copied from the deployment) or, in the agents' pool, by name (``FlowRun.work_queue_name``;
see ``FlowRun.of_queue``), or, for queues of Orion 2.0, by its deprecated ``filter`` (run tags
and deployment ids). Agents poll :func:`get_runs`, workers a pool's queues (both through
:func:`claim_due_runs`); the run is theirs only once their SCHEDULED -> PENDING proposal is
accepted, and that transition enforces the queue's and its pool's ``concurrency_limit`` (see
``app.orchestration.core_policy.EnforceWorkQueueConcurrency``), so the limits hold however
many pollers there are. The limits :func:`claim_due_runs` applies only save futile claims.
"""

import contextlib
import datetime
import operator
import uuid
from collections.abc import Iterable, Mapping
from functools import reduce
from typing import Any

from peewee import SQL, Case, IntegrityError, fn

from app.db import database, is_sqlite
from app.exceptions import Conflict, ObjectAlreadyExists, ObjectNotFound
from app.models import (
    AGENT_POOL,
    AGENT_POOL_TYPE,
    DEFAULT_QUEUE,
    Agent,
    FlowRun,
    FlowRunState,
    WorkPool,
    WorkQueue,
    utcnow,
)
from app.services import filters
from app.services.agents import is_online, record_agent_activity
from app.services.common import Body, Id, get_or_raise, insert_or_get
from app.services.runs import fetch_runs, with_state
from app.states import StateType

# A queue is healthy when an agent polled it this recently and none of its runs is Late.
HEALTHY_POLL_SECONDS = 60
HEALTHY_LATE_RUNS = 0
ACTIVE_STATES = (StateType.PENDING.value, StateType.RUNNING.value)
# Queue health lists an agent offline while it was last seen within this window; an agent
# silent for longer (stopped for good, or replaced: each start is a new agent) is left out.
AGENT_OFFLINE_WINDOW = datetime.timedelta(hours=24)
# ORION_AGENT_HEARTBEAT_TIMEOUT's default: an agent silent this long is offline.
AGENT_HEARTBEAT_TIMEOUT = datetime.timedelta(seconds=20)


def _stored_filter(criteria: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The deprecated filter as stored: JSON-safe, None when it selects nothing."""
    if criteria is None:
        return None
    return {
        "tags": criteria.get("tags"),
        "deployment_ids": (
            None
            if criteria.get("deployment_ids") is None
            else [str(i) for i in criteria["deployment_ids"]]
        ),
    }


def agent_pool() -> WorkPool:
    """The agents' pool: the queues of Prefect 2.7's agents are its queues. Created if it is
    missing (empty template) with its ``default`` queue as its default queue, as Prefect
    2.20 creates it: Prefect's clients refuse a pool without a default queue."""
    return _ensure_agent_pool()[0]


def _ensure_agent_pool() -> tuple[WorkPool, bool]:
    """:func:`agent_pool`, and whether this call created it."""
    now = utcnow()
    with database.atomic():
        pool, created = insert_or_get(
            WorkPool,
            {
                "name": AGENT_POOL,
                "type": AGENT_POOL_TYPE,
                "base_job_template": {},
                "created": now,
                "updated": now,
            },
            WorkPool.name == AGENT_POOL,
        )
        if created:
            queue, _ = ensure_work_queue(DEFAULT_QUEUE, pool)
            WorkPool.update(default_queue_id=queue.id).where(WorkPool.id == pool.id).execute()
            pool.default_queue_id = queue.id
    return pool, created


def _agent_pool_id() -> Any:
    return agent_pool().id


def first_free_priority(pool_id: Any) -> int:
    """The smallest priority (from 1) no queue of the pool holds: Prefect's default for a new
    queue."""
    taken = {
        p
        for (p,) in WorkQueue.select(WorkQueue.priority)
        .where(WorkQueue.work_pool == pool_id)
        .distinct()
        .tuples()
    }
    priority = 1
    while priority in taken:
        priority += 1
    return priority


def create_work_queue(data: Mapping[str, Any]) -> WorkQueue:
    """Create a queue of the agents' pool from a loaded WorkQueueCreate body;
    ObjectAlreadyExists if the name is taken there. Without a priority it takes
    :func:`first_free_priority`. Priorities need not be unique here (Prefect 2.7's agents name
    the queues they poll): ties are served in the order an agent names them.

    The first queue asked for creates the pool; when it is ``default``, it is the pool's
    default queue made with it, set as the body asks (Prefect 2.20 answers with that queue
    too)."""
    now = utcnow()
    settings = {
        "description": data.get("description") or "",
        "is_paused": data["is_paused"],
        "concurrency_limit": data["concurrency_limit"],
        "filter": _stored_filter(data.get("filter")),
    }
    try:
        with database.atomic():
            pool, created = _ensure_agent_pool()
            if created and data["name"] == DEFAULT_QUEUE:
                if data.get("priority"):
                    settings["priority"] = data["priority"]
                WorkQueue.update(**settings).where(WorkQueue.id == pool.default_queue_id).execute()
                return read_work_queue(pool.default_queue_id)
            return WorkQueue.create(
                id=uuid.uuid4(),
                work_pool=pool.id,
                name=data["name"],
                priority=data.get("priority") or first_free_priority(pool.id),
                created=now,
                updated=now,
                **settings,
            )
    except IntegrityError as error:
        raise ObjectAlreadyExists(f"A work queue named {data['name']!r} already exists.") from error


def ensure_work_queue(name: str, pool: WorkPool | None = None) -> tuple[WorkQueue, bool]:
    """The queue called ``name`` in ``pool`` (default: the agents' pool), created (unpaused,
    unlimited, the pool's first free priority) if it does not exist yet.

    Deployments and agents name queues into existence. Returns ``(queue, created)``; safe
    under concurrent callers.
    """
    now = utcnow()
    pool_id = _agent_pool_id() if pool is None else pool.id
    return insert_or_get(
        WorkQueue,
        {
            "work_pool": pool_id,
            "name": name,
            "description": "",
            "priority": first_free_priority(pool_id),
            "created": now,
            "updated": now,
        },
        (WorkQueue.work_pool == pool_id) & (WorkQueue.name == name),
    )


def read_work_queue(queue_id: Id) -> WorkQueue:
    """The queue with this id; ObjectNotFound if there is none."""
    return get_or_raise(
        WorkQueue.select(WorkQueue, WorkPool).join(WorkPool).where(WorkQueue.id == queue_id),
        "Work queue",
        queue_id,
    )


def read_work_queue_by_name(name: str) -> WorkQueue:
    """The agents' pool's queue with this name; ObjectNotFound if there is none."""
    return get_or_raise(
        WorkQueue.select(WorkQueue, WorkPool)
        .join(WorkPool)
        .where((WorkQueue.name == name) & (WorkPool.name == AGENT_POOL)),
        "Work queue",
        repr(name),
    )


def update_work_queue(queue_id: Id, changes: Mapping[str, Any]) -> None:
    """Apply a loaded WorkQueueUpdate body; ObjectNotFound / ObjectAlreadyExists (name)."""
    if "filter" in changes:
        changes = dict(changes, filter=_stored_filter(changes["filter"]))
    if "description" in changes and changes["description"] is None:
        changes = dict(changes, description="")
    try:
        with database.atomic():
            updated = (
                WorkQueue.update(updated=utcnow(), **changes)
                .where(WorkQueue.id == queue_id)
                .execute()
            )
    except IntegrityError as error:
        raise ObjectAlreadyExists(
            f"A work queue named {changes.get('name')!r} already exists."
        ) from error
    if not updated:
        raise ObjectNotFound(f"Work queue {queue_id} not found.")


def delete_work_queue(queue_id: Id) -> WorkQueue:
    """Delete a queue (its runs keep their queue name) and return it as it was;
    ObjectNotFound if there is none, Conflict for its pool's default queue."""
    queue = read_work_queue(queue_id)
    if queue.id == queue.work_pool.default_queue_id:
        raise Conflict(
            f"{queue.name!r} is work pool {queue.work_pool.name!r}'s default queue: deployments "
            "sent to the pool without a queue go there, so it cannot be deleted."
        )
    with database.atomic():
        deleted = WorkQueue.delete().where(WorkQueue.id == queue_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Work queue {queue_id} not found.")
    return queue


def read_work_queues(body: Body) -> list[WorkQueue]:
    """Queues matching a WorkQueueFilterBody, by name, paged."""
    query = WorkQueue.select(WorkQueue, WorkPool).join(WorkPool)
    query = filters.apply_filters(query, WorkQueue, body)
    return list(filters.sort_and_page(query, WorkQueue, body))


def queue_runs_condition(queue: WorkQueue) -> Any:
    """The condition selecting the flow runs that belong to ``queue``."""
    if queue.filter is None:
        return FlowRun.of_queue(queue)
    body = {
        "flow_runs": {
            "tags": {"all_": queue.filter.get("tags")},
            "deployment_id": {"any_": queue.filter.get("deployment_ids")},
        }
    }
    condition = filters.filter_condition(FlowRun, body)
    # A filter with neither tags nor deployments matches every run, as in Orion 2.0.
    return FlowRun.id.is_null(False) if condition is None else condition


def count_active_runs(queue: WorkQueue, exclude_run_id: Id | None = None) -> int:
    """How many of the queue's flow runs are PENDING or RUNNING (other than
    ``exclude_run_id``)."""
    query = FlowRun.select().where(
        queue_runs_condition(queue) & FlowRun.state_type.in_(ACTIVE_STATES)
    )
    if exclude_run_id is not None:
        query = query.where(FlowRun.id != exclude_run_id)
    return query.count()


def get_runs(
    queue_id: Id,
    scheduled_before: datetime.datetime | None = None,
    limit: int | None = None,
    record_poll: bool = True,
    now: datetime.datetime | None = None,
    agent_id: Id | None = None,
    agent_name: str | None = None,
    claim: bool = True,
) -> list[Any]:
    """The queue's SCHEDULED flow runs due by ``scheduled_before`` (default now), earliest
    first, for an agent to claim (see :func:`claim_due_runs`: pause, concurrency, locking).

    ``record_poll`` stamps ``last_polled`` (the dashboard's own reads pass False) and, given
    ``agent_id``, the agent's activity (see :func:`app.services.agents.record_agent_activity`;
    ObjectAlreadyExists if ``agent_name`` belongs to another agent). A preview (the
    dashboard, Prefect's UI) passes ``claim=False`` so it never hides runs from a polling
    agent. With neither ``record_poll`` nor ``claim`` it is a read-only listing: no
    transaction (on SQLite, none of the write lock a transaction takes), no row locked,
    nothing written.
    """
    now = now or utcnow()
    with database.atomic() if record_poll or claim else contextlib.nullcontext():
        queue = get_or_raise(
            WorkQueue.select(WorkQueue, WorkPool).join(WorkPool).where(WorkQueue.id == queue_id),
            "Work queue",
            queue_id,
        )
        if record_poll and agent_id is not None:
            record_agent_activity(agent_id, queue.id, now, agent_name)
        pairs = claim_due_runs(
            [queue],
            scheduled_before=scheduled_before or now,
            limit=limit,
            pool=queue.work_pool,
            record_poll=record_poll,
            claim=claim,
            now=now,
        )
    return [run for _, run in pairs]


def count_pool_active_runs(pool: WorkPool) -> int:
    """How many flow runs of the pool's queues are PENDING or RUNNING."""
    queues = list(WorkQueue.select().where(WorkQueue.work_pool == pool.id))
    for queue in queues:
        queue.work_pool = pool
    conditions = [queue_runs_condition(queue) for queue in queues]
    if not conditions:
        return 0
    return (
        FlowRun.select()
        .where(reduce(operator.or_, conditions) & FlowRun.state_type.in_(ACTIVE_STATES))
        .count()
    )


def claim_due_runs(
    queues: list[WorkQueue],
    scheduled_before: datetime.datetime,
    limit: int | None = None,
    scheduled_after: datetime.datetime | None = None,
    pool: WorkPool | None = None,
    record_poll: bool = True,
    claim: bool = True,
    now: datetime.datetime | None = None,
) -> list[tuple[WorkQueue, Any]]:
    """The SCHEDULED flow runs of ``queues`` (of one pool, in the order to serve them) due
    between ``scheduled_after`` and ``scheduled_before``, as ``(queue, run)`` pairs: each
    queue's runs earliest first, at most ``limit`` in all.

    A paused pool or queue hands out nothing; neither hands out more than its free
    concurrency (its limit minus its PENDING and RUNNING runs). ``record_poll`` stamps the
    queues' ``last_polled``. With ``claim`` the runs are locked as :func:`due_runs` says;
    with neither it is a read-only listing (no transaction).
    """
    now = now or utcnow()
    with database.atomic() if record_poll or claim else contextlib.nullcontext():
        if record_poll and queues:
            ids = [queue.id for queue in queues]
            WorkQueue.update(last_polled=now).where(WorkQueue.id.in_(ids)).execute()
            for queue in queues:
                queue.last_polled = now
        if pool is not None and pool.is_paused:
            return []
        if pool is not None and pool.concurrency_limit is not None:
            free = max(0, pool.concurrency_limit - count_pool_active_runs(pool))
            limit = free if limit is None else min(limit, free)
        picked: list[tuple[WorkQueue, Any]] = []
        for queue in queues:
            remaining = None if limit is None else limit - len(picked)
            if queue.is_paused or remaining == 0:
                continue
            if queue.concurrency_limit is not None:
                free = max(0, queue.concurrency_limit - count_active_runs(queue))
                remaining = free if remaining is None else min(remaining, free)
                if remaining == 0:
                    continue
            ids = _due_ids(
                queue_runs_condition(queue), scheduled_before, remaining, claim, scheduled_after
            )
            picked.extend((queue, run_id) for run_id in ids)
        runs = runs_in_order([run_id for _, run_id in picked])
    by_id = {run.id: run for run in runs}
    return [(queue, by_id[str(run_id)]) for queue, run_id in picked if str(run_id) in by_id]


def due_runs(
    condition: Any, scheduled_before: datetime.datetime, limit: int | None, claim: bool
) -> list[Any]:
    """The SCHEDULED flow runs matching ``condition`` due by ``scheduled_before``, earliest
    first, at most ``limit``: what a poller (an agent, a worker, a ``flow.serve()`` runner)
    is handed.

    Call inside the poll's transaction. With ``claim`` on PostgreSQL the runs are selected
    ``FOR UPDATE SKIP LOCKED``, so pollers at the same moment get different runs; the
    poller's SCHEDULED -> PENDING proposal is what makes a run its own (PENDING -> PENDING
    aborts), so each run is claimed once.
    """
    return runs_in_order(_due_ids(condition, scheduled_before, limit, claim))


def _due_ids(
    condition: Any,
    scheduled_before: datetime.datetime,
    limit: int | None,
    claim: bool,
    scheduled_after: datetime.datetime | None = None,
) -> list[Any]:
    """The ids of :func:`due_runs` (also not before ``scheduled_after``), earliest first."""
    due = FlowRun.select(FlowRun.id).where(
        condition
        & (FlowRun.state_type == StateType.SCHEDULED.value)
        & (FlowRun.next_scheduled_start_time <= scheduled_before)
    )
    if scheduled_after is not None:
        due = due.where(FlowRun.next_scheduled_start_time >= scheduled_after)
    due = due.order_by(FlowRun.next_scheduled_start_time, FlowRun.id)
    if limit is not None:
        due = due.limit(limit)
    if claim and not is_sqlite():
        due = due.for_update("FOR UPDATE SKIP LOCKED")
    return [row.id for row in due]


def runs_in_order(ids: list[Any]) -> list[Any]:
    """The flow runs of ``ids`` with their states, in the order of ``ids`` (one query)."""
    if not ids:
        return []
    runs = fetch_runs(
        with_state(FlowRun, FlowRunState).where(FlowRun.id.in_(ids)), FlowRun, FlowRunState
    )
    order = {str(run_id): index for index, run_id in enumerate(ids)}
    return sorted(runs, key=lambda run: order[run.id])


def work_queue_status(queue_id: Id, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Health of a queue: ``{healthy, late_runs_count, last_polled, health_check_policy}``.

    Healthy means an agent polled it in the last :data:`HEALTHY_POLL_SECONDS` and at most
    :data:`HEALTHY_LATE_RUNS` of its runs are Late.
    """
    now = now or utcnow()
    queue = read_work_queue(queue_id)
    late = (
        FlowRun.select()
        .where(
            queue_runs_condition(queue)
            & (FlowRun.state_type == StateType.SCHEDULED.value)
            & (FlowRun.state_name == "Late")
        )
        .count()
    )
    recently_polled = (
        queue.last_polled is not None
        and now - queue.last_polled <= datetime.timedelta(seconds=HEALTHY_POLL_SECONDS)
    )
    return {
        "healthy": recently_polled and late <= HEALTHY_LATE_RUNS,
        "late_runs_count": late,
        "last_polled": queue.last_polled,
        "health_check_policy": {
            "maximum_late_runs": HEALTHY_LATE_RUNS,
            "maximum_seconds_since_last_polled": HEALTHY_POLL_SECONDS,
        },
    }


def queue_health(
    queues: Iterable[WorkQueue],
    now: datetime.datetime | None = None,
    agent_timeout: datetime.timedelta = AGENT_HEARTBEAT_TIMEOUT,
) -> dict[Any, dict[str, Any]]:
    """``{queue id: {"healthy", "unused", "late_runs", "active_runs", "last_polled",
    "polled_recently", "agents_online", "agents_offline"}}`` for the given queues (healthy as
    in :func:`work_queue_status`; ``unused``: never polled and no run of it is Late, as a
    pool's default queue that nobody sends work to; ``active_runs`` counts PENDING and
    RUNNING runs).

    ``agents_online`` and ``agents_offline`` are the names, sorted, of the agents whose last
    poll was of this queue: online when seen (heartbeat or poll) within ``agent_timeout``
    (``ORION_AGENT_HEARTBEAT_TIMEOUT``), offline when seen only within
    :data:`AGENT_OFFLINE_WINDOW`.

    Two queries for all the queues. One reads only Late and active runs (through the state
    indexes) and counts each queue's with a ``SUM(CASE ...)`` column per queue, so queues
    selecting runs by the deprecated filter are counted in the same pass as those by name;
    the other reads the queues' recent agents.
    """
    now = now or utcnow()
    queues = list(queues)
    if not queues:
        return {}
    late = (FlowRun.state_type == StateType.SCHEDULED.value) & (FlowRun.state_name == "Late")
    active = FlowRun.state_type.in_(ACTIVE_STATES)
    columns = []
    for queue in queues:
        belongs = queue_runs_condition(queue)
        columns.append(fn.SUM(Case(None, [(belongs & late, 1)], 0)))
        columns.append(fn.SUM(Case(None, [(belongs & active, 1)], 0)))
    counts = FlowRun.select(*columns).where(late | active).tuples().get()
    health = {}
    for index, queue in enumerate(queues):
        late_count, active_count = (int(c or 0) for c in counts[2 * index : 2 * index + 2])
        polled = queue.last_polled is not None and now - queue.last_polled <= datetime.timedelta(
            seconds=HEALTHY_POLL_SECONDS
        )
        health[str(queue.id)] = {
            "healthy": polled and late_count <= HEALTHY_LATE_RUNS,
            "unused": queue.last_polled is None and late_count == 0,
            "late_runs": late_count,
            "active_runs": active_count,
            "last_polled": queue.last_polled,
            "polled_recently": polled,
            "agents_online": [],
            "agents_offline": [],
        }
    for agent in _recent_agents(queues, now):
        side = "agents_online" if is_online(agent, now, agent_timeout) else "agents_offline"
        health[str(agent.work_queue_id)][side].append(agent.name)
    return health


def scheduled_run_counts(queues: Iterable[WorkQueue]) -> dict[str, int]:
    """``{queue id: how many of its flow runs are SCHEDULED}`` (Late ones included), the runs
    of each queue being those :func:`queue_runs_condition` selects. Each queue's
    ``work_pool`` must be loaded (joined, or set).

    Counting reads an index alone: one query counts the SCHEDULED runs of the queues outside
    the agents' pool by queue id (the (queue id, state type, ...) index), another those of the
    agents' pool's queues by queue name, testing each run's queue id (the (queue name, state
    type, due time, queue id) index, migration 0031), each skipped when it has no queue; queues
    selecting runs by the deprecated filter cost one more query for all of them.
    """
    queues = list(queues)
    counts = {str(queue.id): 0 for queue in queues}
    scheduled = FlowRun.state_type == StateType.SCHEDULED.value
    by_name = [queue for queue in queues if queue.filter is None]
    legacy = [queue for queue in queues if queue.filter is not None]
    by_id = [queue for queue in by_name if queue.work_pool.name != AGENT_POOL]
    agents = [queue for queue in by_name if queue.work_pool.name == AGENT_POOL]
    if by_id:
        rows = (
            FlowRun.select(FlowRun.work_queue_id, fn.COUNT(SQL("*")))
            .where(scheduled & FlowRun.work_queue_id.in_([queue.id for queue in by_id]))
            .group_by(FlowRun.work_queue_id)
            .tuples()
        )
        for queue_id, count in rows:
            counts[str(queue_id)] = count
    if agents:
        # FlowRun.of_queue for each queue: its name, and its id or none. The queues of a pool
        # have distinct names, so the runs of each are counted under its name, in the index's
        # order (no sort step), each run's id tested against its name's queue's.
        own_id = reduce(
            operator.or_,
            [(FlowRun.work_queue_name == q.name) & (FlowRun.work_queue_id == q.id) for q in agents],
        )
        rows = (
            FlowRun.select(FlowRun.work_queue_name, fn.COUNT(SQL("*")))
            .where(
                scheduled
                & FlowRun.work_queue_name.in_([queue.name for queue in agents])
                & (FlowRun.work_queue_id.is_null() | own_id)
            )
            .group_by(FlowRun.work_queue_name)
            .tuples()
        )
        named = dict(rows)
        for queue in agents:
            counts[str(queue.id)] = named.get(queue.name, 0)
    if legacy:
        columns = [fn.SUM(Case(None, [(queue_runs_condition(q), 1)], 0)) for q in legacy]
        sums = FlowRun.select(*columns).where(scheduled).tuples().get()
        for queue, total in zip(legacy, sums, strict=True):
            counts[str(queue.id)] = int(total or 0)
    return counts


def _recent_agents(queues: list[WorkQueue], now: datetime.datetime) -> list[Any]:
    """The agents whose last poll was of one of ``queues`` and that were seen within
    :data:`AGENT_OFFLINE_WINDOW`, by name."""
    since = now - AGENT_OFFLINE_WINDOW
    agents = (
        Agent.select()
        .where(
            Agent.work_queue.in_([queue.id for queue in queues])
            & ((Agent.last_activity_time >= since) | (Agent.last_heartbeat >= since))
        )
        .order_by(Agent.name)
    )
    return list(agents)


def recent_runs(queue: WorkQueue, limit: int) -> list[Any]:
    """The queue's flow runs that are past SCHEDULED, latest (start, or expected start) first;
    at most ``limit``."""
    started = fn.COALESCE(FlowRun.start_time, FlowRun.expected_start_time)
    return fetch_runs(
        with_state(FlowRun, FlowRunState)
        .where(queue_runs_condition(queue) & (FlowRun.state_type != StateType.SCHEDULED.value))
        .order_by(started.desc(), FlowRun.id.desc())
        .limit(limit),
        FlowRun,
        FlowRunState,
    )


def queues_for_deployment(deployment: Any) -> list[WorkQueue]:
    """The work queues that pick up ``deployment``'s runs, by name (Prefect 2.7's deprecated
    ``work_queue_check``): its queue (the agents' pool's queue named by its
    ``work_queue_name`` when it names no queue id), and every queue with an Orion 2.0 filter
    whose tags the deployment all has and whose deployment ids are empty or include it.
    Sorted by name."""
    picked: list[WorkQueue] = []
    queues = WorkQueue.select(WorkQueue, WorkPool).join(WorkPool).order_by(WorkQueue.name)
    for queue in queues:
        if queue.filter is None:
            if deployment.work_queue_id is not None:
                if queue.id == deployment.work_queue_id:
                    picked.append(queue)
            elif queue.name == deployment.work_queue_name and queue.work_pool.name == AGENT_POOL:
                picked.append(queue)
            continue
        tags = queue.filter.get("tags") or []
        ids = [str(i) for i in queue.filter.get("deployment_ids") or []]
        if set(tags) <= set(deployment.tags or []) and (not ids or str(deployment.id) in ids):
            picked.append(queue)
    return picked
