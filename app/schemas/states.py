"""State payloads: what a client proposes and what the API returns."""

from marshmallow import EXCLUDE, fields, post_load, validate

from app.schemas.base import (
    ActionSchema,
    CutText,
    DateTime,
    InputSchema,
    OrionSchema,
    String,
    Text,
)
from app.states import STATE_TYPE_VALUES, StateType, default_state_name

STATE_DETAIL_DEFAULTS = {
    "flow_run_id": None,
    "task_run_id": None,
    "child_flow_run_id": None,
    "scheduled_time": None,
    "cache_key": None,
    "cache_expiration": None,
    "untrackable_result": False,
    "pause_timeout": None,
    "pause_reschedule": False,
    "pause_key": None,
    "refresh_cache": None,
    "transition_id": None,
}


class StateDetailsSchema(InputSchema):
    """Details attached to a state; every key is optional and defaults as in Orion 2.7."""

    flow_run_id = fields.UUID(allow_none=True)
    task_run_id = fields.UUID(allow_none=True)
    child_flow_run_id = fields.UUID(allow_none=True)
    scheduled_time = DateTime(allow_none=True)
    cache_key = Text(allow_none=True)
    cache_expiration = DateTime(allow_none=True)
    untrackable_result = fields.Boolean()
    pause_timeout = DateTime(allow_none=True)
    pause_reschedule = fields.Boolean()
    pause_key = Text(allow_none=True)
    refresh_cache = fields.Boolean(allow_none=True)
    # Orion goes beyond 2.7 here: a client-chosen id that makes a retried proposal a no-op.
    transition_id = fields.UUID(allow_none=True)
    # Also beyond 2.7: where a task run's attempt ran (the SDK's Running proposals carry
    # them): the task runner's class name and, for a remote runner (Dask, Ray), the address
    # of its worker. Stored only when sent, so other states' details are unchanged.
    task_runner = fields.String(allow_none=True)
    worker = fields.String(allow_none=True)
    # Prefect 2.20: the flow run input keys of a pause that waits for input (stored only when
    # sent): where the flow stored its input's schema and description, and where the resume
    # stores the input (app.services.flow_runs.resume_flow_run).
    run_input_keyset = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["description", "response", "schema"])),
        values=String(),
        allow_none=True,
    )

    class Meta:
        # Clients of later Prefect versions send details this server does not know; they
        # describe the state and cannot be acted on, so they are dropped rather than refused.
        unknown = EXCLUDE


def state_details_to_json(details):
    """Normalise loaded state details to the stored JSON form: every key, ISO strings."""
    out = dict(STATE_DETAIL_DEFAULTS)
    for key, value in details.items():
        out[key] = (
            value.isoformat()
            if hasattr(value, "isoformat")
            else (str(value) if value is not None and key.endswith("_id") else value)
        )
    return out


class StateCreateSchema(ActionSchema):
    """A proposed state. ``timestamp`` and ``id`` are accepted but the server sets its own."""

    type = fields.Enum(StateType, by_value=True, required=True)
    name = String(allow_none=True)
    message = CutText(allow_none=True)
    data = fields.Raw(allow_none=True)
    state_details = fields.Nested(StateDetailsSchema, load_default=dict)
    timestamp = DateTime(allow_none=True, load_only=True)
    id = fields.UUID(allow_none=True, load_only=True)

    @post_load
    def normalise(self, data, **kwargs):
        """Fill the name from the type, drop client id/timestamp, store details as JSON."""
        state_type = data["type"]
        return {
            "type": state_type.value,
            "name": data.get("name") or default_state_name(state_type),
            "message": data.get("message"),
            "data": data.get("data"),
            "state_details": state_details_to_json(data["state_details"]),
        }


class StateSchema(OrionSchema):
    """A state as returned by the API."""

    id = fields.UUID(required=True)
    type = fields.String(required=True, metadata={"enum": list(STATE_TYPE_VALUES)})
    name = fields.String(required=True)
    timestamp = DateTime(required=True)
    message = fields.String(allow_none=True)
    data = fields.Raw(allow_none=True)
    state_details = fields.Nested(StateDetailsSchema, required=True)
