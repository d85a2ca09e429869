"""Base schema and field helpers shared by every request and response schema."""
import datetime

from marshmallow import RAISE, Schema, ValidationError, fields

UTC = datetime.UTC

# Characters Orion forbids in flow, deployment, work queue and block names.
INVALID_NAME_CHARACTERS = frozenset("/%&><")


class OrionSchema(Schema):
    """Unknown keys are errors (422 naming the field), as in Orion's request models."""

    class Meta:
        unknown = RAISE


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
