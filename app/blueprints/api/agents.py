"""Agents: ``/api/agents`` (rows are written by the agents' ``get_runs`` polls)."""

from app.blueprints.api.common import Blueprint, json_response
from app.schemas.core import AgentSchema, dump_agent
from app.schemas.filters import AgentFilterBody
from app.services import agents

blp = Blueprint(
    "agents",
    __name__,
    url_prefix="/api/agents",
    description="Agents, as recorded from their work queue polls.",
)


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
