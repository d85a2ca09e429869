"""Variables (Prefect 2.20): request bodies and the response shape (filters are in
``app.schemas.filters``).

Prefect's rules: a name of at most 255 lowercase letters, numbers and underscores; a text
value of at most 5,000 characters; a list of tags.
"""

from marshmallow import fields, validate

from app.schemas.base import ActionSchema, Tags
from app.schemas.core import ORMSchema

NAME_LENGTH = 255
VALUE_LENGTH = 5000

_name_rule = validate.And(
    validate.Length(min=1, max=NAME_LENGTH),
    validate.Regexp(
        r"^[a-z0-9_]+$",
        error="Variable name must only contain lowercase letters, numbers, and underscores.",
    ),
)
_value_rule = validate.Length(max=VALUE_LENGTH)


class VariableCreateSchema(ActionSchema):
    """Body of ``POST /api/variables/``."""

    name = fields.String(required=True, validate=_name_rule)
    value = fields.String(required=True, validate=_value_rule)
    tags = Tags()


class VariableUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/variables/{id}`` and ``/name/{name}``: what is given changes."""

    name = fields.String(allow_none=True, validate=_name_rule)
    value = fields.String(allow_none=True, validate=_value_rule)
    tags = fields.List(fields.String(), allow_none=True)


class VariableSchema(ORMSchema):
    name = fields.String(required=True)
    value = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)


def dump_variable(variable):
    return {
        "id": str(variable.id),
        "created": variable.created.isoformat(),
        "updated": variable.updated.isoformat(),
        "name": variable.name,
        "value": variable.value,
        "tags": variable.tags or [],
    }
