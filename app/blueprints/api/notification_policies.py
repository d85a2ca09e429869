"""Flow run notification policies: ``/api/flow_run_notification_policies``."""

from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.notification_policies import (
    FlowRunNotificationPolicyCreateSchema,
    FlowRunNotificationPolicyFilterBody,
    FlowRunNotificationPolicySchema,
    FlowRunNotificationPolicyUpdateSchema,
    dump_policy,
)
from app.services import notification_policies

blp = Blueprint(
    "flow_run_notification_policies",
    __name__,
    url_prefix="/api/flow_run_notification_policies",
    description="When a flow run enters a listed state, send a message through a "
    "block (Slack or generic webhook).",
)


@blp.post("/")
@blp.arguments(FlowRunNotificationPolicyCreateSchema)
@blp.response(201, FlowRunNotificationPolicySchema)
def create_policy(data):
    """Create a notification policy."""
    return json_response(dump_policy(notification_policies.create_policy(data)), 201)


@blp.route("/<uuid:policy_id>")
class PolicyById(MethodView):
    @blp.response(200, FlowRunNotificationPolicySchema)
    def get(self, policy_id):
        """Read a notification policy by id."""
        return json_response(dump_policy(notification_policies.read_policy(policy_id)))

    @blp.arguments(FlowRunNotificationPolicyUpdateSchema)
    @blp.response(204)
    def patch(self, changes, policy_id):
        """Change the fields sent."""
        notification_policies.update_policy(policy_id, changes)
        return no_content()

    @blp.response(204)
    def delete(self, policy_id):
        """Delete a notification policy."""
        notification_policies.delete_policy(policy_id)
        return no_content()


@blp.post("/filter")
@blp.arguments(FlowRunNotificationPolicyFilterBody)
@blp.response(200, FlowRunNotificationPolicySchema(many=True))
def filter_policies(body):
    """List notification policies, ordered by id, paged."""
    return json_response([dump_policy(p) for p in notification_policies.read_policies(body)])
