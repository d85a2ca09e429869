"""Agents: rows recorded from their polls, and reads.

An agent has no create call: each ``get_runs`` poll that carries an ``agent_id`` upserts the
agent's row with the queue it polled and the time (:func:`record_agent_activity`), so the API
shows which agents are alive and what they serve.
"""

import datetime

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


def read_agent(agent_id: Id) -> Agent:
    """The agent with this id; ObjectNotFound if there is none."""
    return get_or_raise(Agent.select().where(Agent.id == agent_id), "Agent", agent_id)


def read_agents(body: Body) -> list[Agent]:
    """Agents matching an AgentFilterBody, by name, paged."""
    query = filters.apply_filters(Agent.select(), Agent, body)
    return list(filters.sort_and_page(query, Agent, body))
