"""Flow run input (Prefect 2.20): request bodies of ``/api/flow_runs/{id}/input`` and the
response shape.

Prefect's rules: a key of lowercase letters, numbers and dashes; the value is text (the
clients send JSON text, the server stores and returns it as sent). Bounds from
:mod:`app.schemas.limits`: the key and sender are ``varchar`` columns, the value a ``text`` one.
"""

from marshmallow import fields, validate

from app.schemas.base import ActionSchema, List, String, Text
from app.schemas.core import ORMSchema
from app.schemas.filters import PageLimit

KEY_RULE = validate.Regexp(
    r"^[a-z0-9-]+$", error="key must only contain lowercase letters, numbers, and dashes."
)


class FlowRunInputCreateSchema(ActionSchema):
    """Body of ``POST /api/flow_runs/{id}/input``."""

    key = String(required=True, validate=KEY_RULE)
    value = Text(required=True)
    sender = String(load_default=None, allow_none=True)


class FlowRunInputFilterSchema(ActionSchema):
    """Body of ``POST /api/flow_runs/{id}/input/filter``: the run's inputs whose key starts
    with ``prefix``, oldest first, at most ``limit`` (default 1), none of ``exclude_keys``."""

    prefix = String(required=True)
    limit = fields.Integer(load_default=1, validate=PageLimit())
    exclude_keys = List(String(), load_default=list)


class FlowRunInputSchema(ORMSchema):
    flow_run_id = fields.UUID(required=True)
    key = fields.String(required=True)
    value = fields.String(required=True)
    sender = fields.String(allow_none=True)


def dump_flow_run_input(row):
    return {
        "id": str(row.id),
        "created": row.created.isoformat(),
        "updated": row.updated.isoformat(),
        "flow_run_id": str(row.flow_run_id),
        "key": row.key,
        "value": row.value,
        "sender": row.sender,
    }
