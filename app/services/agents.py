"""Agents: rows recorded from their polls and heartbeats, and reads.

An agent has no create call: each ``get_runs`` poll that carries an ``agent_id`` upserts the
agent's row with the queue it polled and the time (:func:`record_agent_activity`), and each
heartbeat upserts it with the time (:func:`record_agent_heartbeat`), so the API shows which
agents are alive and what they serve. An agent is *online* while it was seen (heartbeat or
poll) within ``ORION_AGENT_HEARTBEAT_TIMEOUT`` seconds (:func:`is_online`).
"""

import datetime
from typing import Any

from peewee import IntegrityError

from app.db import database
from app.exceptions import ObjectAlreadyExists
from app.models import Agent
from app.services import filters
from app.services.common import Body, Id, get_or_raise


def default_agent_name(agent_id: Id) -> str:
    """The name of an agent that did not give one."""
    return f"agent-{agent_id}"


def record_agent_activity(
    agent_id: Id, work_queue_id: Id, now: datetime.datetime, name: str | None = None
) -> None:
    """Create or update the agent ``agent_id``: it polled ``work_queue_id`` at ``now``.

    A new agent is called ``name`` or :func:`default_agent_name`; a known one is renamed only
    when ``name`` is given. One ``INSERT ... ON CONFLICT (id) DO UPDATE`` (in a savepoint, so
    it may run inside the caller's transaction), safe under concurrent polls.
    ObjectAlreadyExists if another agent already has that name.
    """
    changes = {Agent.work_queue: work_queue_id, Agent.last_activity_time: now, Agent.updated: now}
    if name is not None:
        changes[Agent.name] = name
    name = name or default_agent_name(agent_id)
    try:
        with database.atomic():
            (
                Agent.insert(
                    id=agent_id,
                    name=name,
                    work_queue=work_queue_id,
                    last_activity_time=now,
                    created=now,
                    updated=now,
                )
                .on_conflict(conflict_target=[Agent.id], update=changes)
                .execute()
            )
    except IntegrityError as error:
        raise ObjectAlreadyExists(f"Another agent is already named {name!r}.") from error


def record_agent_heartbeat(agent_id: Id, now: datetime.datetime, name: str | None = None) -> None:
    """The agent ``agent_id`` is alive at ``now``: set its ``last_heartbeat``, creating it
    (named ``name`` or :func:`default_agent_name`, no queue yet) if it is unknown.

    A known agent is renamed only when ``name`` is given. One upsert in a savepoint, safe
    under concurrent calls; ObjectAlreadyExists if another agent already has that name.
    """
    changes: dict[Any, Any] = {Agent.last_heartbeat: now, Agent.updated: now}
    if name is not None:
        changes[Agent.name] = name
    name = name or default_agent_name(agent_id)
    try:
        with database.atomic():
            (
                Agent.insert(id=agent_id, name=name, last_heartbeat=now, created=now, updated=now)
                .on_conflict(conflict_target=[Agent.id], update=changes)
                .execute()
            )
    except IntegrityError as error:
        raise ObjectAlreadyExists(f"Another agent is already named {name!r}.") from error


def last_seen(agent: Any) -> datetime.datetime | None:
    """The later of the agent's last heartbeat and last poll (None if neither)."""
    times = [t for t in (agent.last_heartbeat, agent.last_activity_time) if t is not None]
    return max(times) if times else None


def is_online(agent: Any, now: datetime.datetime, timeout: datetime.timedelta) -> bool:
    """Whether the agent heartbeated or polled within ``timeout`` before ``now``."""
    seen = last_seen(agent)
    return seen is not None and now - seen <= timeout


def read_agent(agent_id: Id) -> Agent:
    """The agent with this id; ObjectNotFound if there is none."""
    return get_or_raise(Agent.select().where(Agent.id == agent_id), "Agent", agent_id)


def read_agents(body: Body) -> list[Agent]:
    """Agents matching an AgentFilterBody, by name, paged."""
    query = filters.apply_filters(Agent.select(), Agent, body)
    return list(filters.sort_and_page(query, Agent, body))
