"""Base schema and field helpers shared by every request and response schema."""

import datetime

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields

UTC = datetime.UTC

# Characters Orion forbids in flow, deployment, work queue and block names.
INVALID_NAME_CHARACTERS = frozenset("/%&><")


class OrionSchema(Schema):
    """Unknown keys are errors (422 naming the field), as in Orion's request models."""

    class Meta:
        unknown = RAISE


class ActionSchema(OrionSchema):
    """A request body that creates or changes an object. Unknown keys are dropped: Prefect
    clients newer than the API this server follows send fields it has no use for (2.20's
    ``job_variables``, ``enforce_parameter_schema``...). Known keys of the wrong type are
    still errors."""

    class Meta:
        unknown = EXCLUDE


class Refused(fields.Field):
    """A key an :class:`ActionSchema` must not silently drop: any value is a 422 with
    ``message`` (e.g. a deployment's name, which a PATCH cannot change)."""

    def __init__(self, message, **kwargs):
        super().__init__(load_only=True, **kwargs)
        self.message = message

    def _deserialize(self, value, attr, data, **kwargs):
        raise ValidationError(self.message)


def DateTime(**kwargs):
    """A timezone-aware ISO-8601 datetime; a value without an offset is taken as UTC."""
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


def validate_name(value):
    """Reject names containing characters Orion forbids in object names."""
    bad = sorted(INVALID_NAME_CHARACTERS.intersection(value))
    if bad:
        raise ValidationError(f"Name {value!r} contains invalid characters: {' '.join(bad)}")
    if not value.strip():
        raise ValidationError("Name must not be empty.")


def Name(**kwargs):
    """An object name (required unless told otherwise), validated with :func:`validate_name`."""
    kwargs.setdefault("required", True)
    return fields.String(validate=validate_name, **kwargs)


def Tags(**kwargs):
    """A list of tag strings, empty by default."""
    return fields.List(fields.String(), load_default=list, **kwargs)
