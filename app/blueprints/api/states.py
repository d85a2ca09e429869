"""State histories: ``/api/flow_run_states`` and ``/api/task_run_states``."""

from marshmallow import fields

from app.blueprints.api.common import Blueprint, json_response
from app.schemas.base import OrionSchema
from app.schemas.core import dump_state
from app.schemas.states import StateSchema
from app.services import states

flow_run_states = Blueprint(
    "flow_run_states",
    __name__,
    url_prefix="/api/flow_run_states",
    description="The states flow runs have been in.",
)
task_run_states = Blueprint(
    "task_run_states",
    __name__,
    url_prefix="/api/task_run_states",
    description="The states task runs have been in.",
)


class FlowRunStatesQuery(OrionSchema):
    flow_run_id = fields.UUID(required=True)


class TaskRunStatesQuery(OrionSchema):
    task_run_id = fields.UUID(required=True)


@flow_run_states.get("/")
@flow_run_states.arguments(FlowRunStatesQuery, location="query")
@flow_run_states.response(200, StateSchema(many=True))
def list_flow_run_states(query):
    """List every state of a flow run, oldest first."""
    return json_response([dump_state(s) for s in states.read_flow_run_states(query["flow_run_id"])])


@flow_run_states.get("/<uuid:state_id>")
@flow_run_states.response(200, StateSchema)
def read_flow_run_state(state_id):
    """Read one flow run state."""
    return json_response(dump_state(states.read_flow_run_state(state_id)))


@task_run_states.get("/")
@task_run_states.arguments(TaskRunStatesQuery, location="query")
@task_run_states.response(200, StateSchema(many=True))
def list_task_run_states(query):
    """List every state of a task run, oldest first."""
    return json_response([dump_state(s) for s in states.read_task_run_states(query["task_run_id"])])


@task_run_states.get("/<uuid:state_id>")
@task_run_states.response(200, StateSchema)
def read_task_run_state(state_id):
    """Read one task run state."""
    return json_response(dump_state(states.read_task_run_state(state_id)))
