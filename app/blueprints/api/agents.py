"""Agents: ``/api/agents`` (rows are written by the agents' ``get_runs`` polls and their
heartbeats)."""

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.clock import utcnow
from app.schemas.actions import AgentHeartbeatSchema
from app.schemas.core import AgentSchema, dump_agent
from app.schemas.filters import AgentFilterBody
from app.services import agents

blp = Blueprint(
    "agents",
    __name__,
    url_prefix="/api/agents",
    description="Agents, as recorded from their work queue polls and heartbeats.",
)


@blp.post("/<uuid:agent_id>/heartbeat")
@blp.arguments(AgentHeartbeatSchema)
@blp.response(204, description="The heartbeat was recorded.")
def agent_heartbeat(body, agent_id):
    """Record that an agent is alive (Orion extension).

    Sets the agent's `last_heartbeat` to now, creating the agent (named `name`, or
    `agent-<id>`) if it is unknown; a known agent is renamed only when `name` is given.
    `orion agent start` sends this every `ORION_AGENT_HEARTBEAT_SECONDS`; the dashboard shows
    an agent offline once it has neither heartbeated nor polled for
    `ORION_AGENT_HEARTBEAT_TIMEOUT` seconds. 409 if another agent has that name.
    """
    agents.record_agent_heartbeat(agent_id, utcnow(), body["name"])
    return no_content()


@blp.get("/<uuid:agent_id>")
@blp.response(200, AgentSchema)
def read_agent(agent_id):
    """Read an agent: its name, the work queue it last polled and when."""
    return json_response(dump_agent(agents.read_agent(agent_id)))


@blp.post("/filter")
@blp.arguments(AgentFilterBody)
@blp.response(200, AgentSchema(many=True))
def filter_agents(body):
    """List agents matching filters, by name, paged."""
    return json_response([dump_agent(agent) for agent in agents.read_agents(body)])
