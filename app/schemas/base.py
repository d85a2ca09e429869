"""Base schema and field helpers shared by every request and response schema."""

import datetime

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from app.schemas import limits

UTC = datetime.UTC

# Characters Orion forbids in flow, deployment, work queue and block names.
INVALID_NAME_CHARACTERS = frozenset("/%&><")


class OrionSchema(Schema):
    """Unknown keys are errors (422 naming the field), as in Orion's request models."""

    class Meta:
        unknown = RAISE


def _has(field, kind):
    return any(isinstance(v, kind) for v in field.validators)


def bound_field(field):
    """Give ``field`` (and the fields inside a list or dict) the default bound of its kind from
    :mod:`app.schemas.limits`, unless it has one of that kind already: an integer the 32-bit
    column range, a float ±:data:`~app.schemas.limits.SECONDS_MAX`, a string
    :data:`~app.schemas.limits.TEXT_MAX_LENGTH`, a list
    :data:`~app.schemas.limits.FILTER_LIST_MAX_ITEMS` items. Returns ``field``."""
    if isinstance(field, fields.Integer) and not _has(field, validate.Range):
        field.validators.append(validate.Range(min=limits.INT32_MIN, max=limits.INT32_MAX))
    elif isinstance(field, fields.Float) and not _has(field, validate.Range):
        field.validators.append(validate.Range(min=-limits.SECONDS_MAX, max=limits.SECONDS_MAX))
    elif (
        isinstance(field, fields.String)
        and not isinstance(field, CutText)
        and not _has(field, validate.Length)
    ):
        field.validators.append(validate.Length(max=limits.TEXT_MAX_LENGTH))
    elif isinstance(field, fields.List):
        if not _has(field, validate.Length):
            field.validators.append(validate.Length(max=limits.FILTER_LIST_MAX_ITEMS))
        bound_field(field.inner)
    elif isinstance(field, fields.Dict) and field.value_field is not None:
        bound_field(field.value_field)
    return field


class InputSchema(OrionSchema):
    """A request body or query: every field gets its kind's default bound (:func:`bound_field`)
    when the schema is built, so a field declared without one is still bounded, and the bound
    is in the OpenAPI document (apispec reads the same validators)."""

    def on_bind_field(self, field_name, field_obj):
        if not field_obj.dump_only:
            bound_field(field_obj)


class ActionSchema(InputSchema):
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


DATETIME_RANGE_MESSAGE = (
    f"Must be from {limits.DATETIME_MIN.isoformat()} up to (not including) "
    f"{limits.DATETIME_MAX.isoformat()}."
)


class BoundedDateTime(fields.AwareDateTime):
    """An aware datetime within ``limits.DATETIME_MIN`` (inclusive) and ``DATETIME_MAX``
    (exclusive), compared in UTC; a time whose conversion to UTC overflows is out of range."""

    def _deserialize(self, value, attr, data, **kwargs):
        loaded = super()._deserialize(value, attr, data, **kwargs)
        try:
            in_utc = loaded.astimezone(UTC)
        except OverflowError:
            raise ValidationError(DATETIME_RANGE_MESSAGE) from None
        if not limits.DATETIME_MIN <= in_utc < limits.DATETIME_MAX:
            raise ValidationError(DATETIME_RANGE_MESSAGE)
        return loaded


def DateTime(**kwargs):
    """A timezone-aware ISO-8601 datetime (a value without an offset is taken as UTC), within
    the range of :mod:`app.schemas.limits`; the OpenAPI document gives the range's years as a
    ``pattern``."""
    metadata = {"pattern": limits.DATETIME_PATTERN, **kwargs.pop("metadata", {})}
    return BoundedDateTime(default_timezone=UTC, metadata=metadata, **kwargs)


def String(max_length=limits.NAME_MAX_LENGTH, min_length=None, **kwargs):
    """A string stored in a ``varchar`` column (``max_length``, by default the column size);
    ``validate`` runs after the length check."""
    validators = [validate.Length(min=min_length, max=max_length)]
    extra = kwargs.pop("validate", None)
    if extra is not None:
        validators.extend(extra if isinstance(extra, list) else [extra])
    return fields.String(validate=validators, **kwargs)


def RunName(**kwargs):
    """A flow or task run's name: at most ``limits.RUN_NAME_MAX_BYTES`` bytes of UTF-8 (the
    OpenAPI document's ``maxLength``, in characters, is the same number: never less)."""
    most = limits.RUN_NAME_MAX_BYTES

    def fits(value):
        if len(value.encode("utf-8")) > most:
            raise ValidationError(f"Longer than {most} bytes in UTF-8.")

    return String(max_length=most, validate=fits, **kwargs)


def Text(**kwargs):
    """A string stored in a ``text`` column or in JSON: at most ``limits.TEXT_MAX_LENGTH``."""
    return String(max_length=limits.TEXT_MAX_LENGTH, **kwargs)


class CutText(fields.String):
    """A string stored in a ``text`` column: past ``limits.TEXT_MAX_LENGTH`` characters it is
    cut to that length (:func:`~app.schemas.limits.cut`) instead of refused. Only for text
    that describes and whose refusal would cost more than its tail: a state's message."""

    def __init__(self, **kwargs):
        description = (
            f"Past {limits.TEXT_MAX_LENGTH:,} characters, stored cut to that length, "
            "ending in a note of the full length."
        )
        metadata = {"description": description, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return limits.cut(super()._deserialize(value, attr, data, **kwargs))


def Integer(minimum=limits.INT32_MIN, maximum=limits.INT32_MAX, **kwargs):
    """An integer within ``minimum``..``maximum`` (by default a 32-bit column's range)."""
    return fields.Integer(validate=validate.Range(min=minimum, max=maximum), **kwargs)


def Float(minimum=-limits.SECONDS_MAX, maximum=limits.SECONDS_MAX, **kwargs):
    """A finite number within ``minimum``..``maximum``."""
    return fields.Float(validate=validate.Range(min=minimum, max=maximum), **kwargs)


def List(inner, max_items=limits.FILTER_LIST_MAX_ITEMS, **kwargs):
    """A list of at most ``max_items`` values of ``inner``."""
    return fields.List(inner, validate=validate.Length(max=max_items), **kwargs)


def validate_name(value):
    """Reject names containing characters Orion forbids in object names."""
    bad = sorted(INVALID_NAME_CHARACTERS.intersection(value))
    if bad:
        raise ValidationError(
            f"Name {limits.excerpt(value)!r} contains invalid characters: {' '.join(bad)}"
        )
    if not value.strip():
        raise ValidationError("Name must not be empty.")


def Name(**kwargs):
    """An object name (required unless told otherwise): at most the column's 255 characters,
    validated with :func:`validate_name`."""
    kwargs.setdefault("required", True)
    return String(validate=validate_name, **kwargs)


def Tags(**kwargs):
    """A list of tag strings (each at most 255 characters, as a concurrency limit's tag),
    empty by default."""
    kwargs.setdefault("load_default", list)
    return List(String(), **kwargs)
