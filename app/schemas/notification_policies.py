"""Flow run notification policies: request bodies and the response dump (Prefect 2.7's
``FlowRunNotificationPolicy``, ``FlowRunNotificationPolicyCreate`` / ``Update`` and
``FlowRunNotificationPolicyFilter``)."""

from marshmallow import fields, pre_load

from app.schemas.base import ActionSchema, List, Text
from app.schemas.core import ORMSchema
from app.schemas.filters import FilterSchema, PagedBody


class FlowRunNotificationPolicySchema(ORMSchema):
    is_active = fields.Boolean(required=True)
    state_names = fields.List(fields.String(), required=True)
    tags = fields.List(fields.String(), required=True)
    block_document_id = fields.UUID(required=True)
    message_template = fields.String(allow_none=True)


def dump_policy(policy):
    """The response body of one policy row."""
    return {
        "id": str(policy.id),
        "created": policy.created.isoformat(),
        "updated": policy.updated.isoformat(),
        "is_active": policy.is_active,
        "state_names": policy.state_names,
        "tags": policy.tags,
        "block_document_id": str(policy.block_document_id),
        "message_template": policy.message_template,
    }


_TEMPLATE_DESCRIPTION = (
    "A str.format template; variables: flow_run_notification_policy_id, flow_id, flow_name, "
    "flow_run_url, flow_run_id, flow_run_name, flow_run_parameters, flow_run_state_type, "
    "flow_run_state_name, flow_run_state_timestamp, flow_run_state_message. Null: the "
    "default message."
)


class FlowRunNotificationPolicyCreateSchema(ActionSchema):
    """Body of ``POST /api/flow_run_notification_policies/``."""

    is_active = fields.Boolean(load_default=True)
    state_names = List(
        Text(),
        required=True,
        metadata={
            "description": "State names that notify (e.g. Failed, Crashed); [] means every state."
        },
    )
    tags = List(
        Text(),
        required=True,
        metadata={"description": "A run notifies if it has one of these tags; [] means every run."},
    )
    block_document_id = fields.UUID(
        required=True, metadata={"description": "A slack-webhook or webhook block document."}
    )
    message_template = Text(
        allow_none=True, load_default=None, metadata={"description": _TEMPLATE_DESCRIPTION}
    )


class FlowRunNotificationPolicyUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/flow_run_notification_policies/{id}``: the fields sent change;
    ``null`` leaves a field as it is, except ``message_template`` (null: the default)."""

    is_active = fields.Boolean()
    state_names = List(Text())
    tags = List(Text())
    block_document_id = fields.UUID()
    message_template = Text(allow_none=True, metadata={"description": _TEMPLATE_DESCRIPTION})

    @pre_load
    def drop_nulls(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        return {
            key: value
            for key, value in data.items()
            if value is not None or key == "message_template"
        }


class _IsActive(FilterSchema):
    eq_ = fields.Boolean()


class FlowRunNotificationPolicyFilter(FilterSchema):
    is_active = fields.Nested(
        _IsActive,
        metadata={
            "description": "As in Prefect: when the filter is sent without it, only inactive "
            "policies match (eq_ false)."
        },
    )


class FlowRunNotificationPolicyFilterBody(PagedBody):
    """Body of ``POST /api/flow_run_notification_policies/filter`` (ordered by id)."""

    flow_run_notification_policy_filter = fields.Nested(FlowRunNotificationPolicyFilter)

    @pre_load
    def default_is_active(self, data, **kwargs):
        """Prefect's default criterion: a filter without ``is_active`` keeps inactive ones."""
        criteria = (
            data.get("flow_run_notification_policy_filter") if isinstance(data, dict) else None
        )
        if isinstance(criteria, dict) and "is_active" not in criteria:
            data = dict(
                data, flow_run_notification_policy_filter=dict(criteria, is_active={"eq_": False})
            )
        return data
