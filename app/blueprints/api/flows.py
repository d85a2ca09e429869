"""Flows: ``/api/flows``."""

from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.actions import FlowCreateSchema, FlowUpdateSchema
from app.schemas.core import FlowSchema, dump_flow
from app.schemas.filters import FlowCountBody, FlowFilterBody
from app.services import flows

blp = Blueprint("flows", __name__, url_prefix="/api/flows", description="Flows.")


@blp.route("/")
class Flows(MethodView):
    @blp.arguments(FlowCreateSchema)
    @blp.response(201, FlowSchema)
    @blp.alt_response(
        200, schema=FlowSchema, success=True, description="A flow with this name already existed."
    )
    def post(self, data):
        """Create a flow, or return the existing flow with the same name."""
        flow, created = flows.create_flow(data["name"], data["tags"])
        return json_response(dump_flow(flow), 201 if created else 200)


@blp.route("/<uuid:flow_id>")
class FlowById(MethodView):
    @blp.response(200, FlowSchema)
    def get(self, flow_id):
        """Read a flow by id."""
        return json_response(dump_flow(flows.read_flow(flow_id)))

    @blp.arguments(FlowUpdateSchema)
    @blp.response(204)
    def patch(self, changes, flow_id):
        """Update a flow's tags."""
        flows.update_flow(flow_id, changes)
        return no_content()

    @blp.response(204)
    def delete(self, flow_id):
        """Delete a flow, its deployments and its runs."""
        flows.delete_flow(flow_id)
        return no_content()


@blp.get("/name/<name>")
@blp.response(200, FlowSchema)
def read_flow_by_name(name):
    """Read a flow by name."""
    return json_response(dump_flow(flows.read_flow_by_name(name)))


@blp.post("/filter")
@blp.arguments(FlowFilterBody)
@blp.response(200, FlowSchema(many=True))
def filter_flows(body):
    """List flows matching filters, sorted and paged."""
    return json_response([dump_flow(f) for f in flows.read_flows(body)])


@blp.post("/count")
@blp.arguments(FlowCountBody)
@blp.response(200, description="The number of matching flows.")
def count_flows(body):
    """Count flows matching filters."""
    return json_response(flows.count_flows(body))
