"""Global concurrency limits (Prefect 2.20's ``/api/v2/concurrency_limits``): request bodies
and the response shapes.

Prefect's rules: a name without ``/ % & > <``; ``limit``, ``active_slots`` and
``denied_slots`` non-negative integers; ``slot_decay_per_second`` a non-negative number;
an increment or decrement takes at least one name and at least one slot, and ``mode`` is
``concurrency`` (the default) or ``rate_limit``.

Orion extension (the Orion SDK's leases, see ``app.services.concurrency_limits_v2``): an
increment may carry ``holder`` (a UUID naming the taker) and ``lease_seconds``; the matching
decrement carries the same ``holder``. Prefect clients send neither and get Prefect's
behaviour.
"""

from marshmallow import ValidationError, fields, validate, validates_schema

from app.schemas import limits
from app.schemas.base import (
    ActionSchema,
    Float,
    InputSchema,
    Integer,
    Name,
    OrionSchema,
)
from app.schemas.core import ORMSchema
from app.schemas.filters import PagedBody

MODES = ("concurrency", "rate_limit")
# The longest lease a holder may ask for.
MAX_LEASE_SECONDS = 24 * 3600.0


def _count(**kwargs):
    return Integer(minimum=0, **kwargs)


def _decay(**kwargs):
    return Float(minimum=0.0, maximum=limits.SECONDS_MAX, **kwargs)


class GlobalConcurrencyLimitCreateSchema(ActionSchema):
    """Body of ``POST /api/v2/concurrency_limits/``."""

    active = fields.Boolean(load_default=True)
    name = Name()
    limit = _count(required=True)
    active_slots = _count(load_default=0)
    denied_slots = _count(load_default=0)
    slot_decay_per_second = _decay(load_default=0.0)


class GlobalConcurrencyLimitUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/v2/concurrency_limits/{id_or_name}``: what is given changes."""

    active = fields.Boolean(allow_none=True)
    name = Name(required=False, allow_none=True)
    limit = _count(allow_none=True)
    active_slots = _count(allow_none=True)
    denied_slots = _count(allow_none=True)
    slot_decay_per_second = _decay(allow_none=True)


def _lease_seconds(**kwargs):
    return fields.Float(
        validate=validate.Range(min=0.0, max=MAX_LEASE_SECONDS, min_inclusive=False), **kwargs
    )


class _SlotsBody(InputSchema):
    slots = Integer(minimum=1, required=True)
    names = fields.List(
        Name(), required=True, validate=validate.Length(min=1, max=limits.FILTER_LIST_MAX_ITEMS)
    )
    holder = fields.UUID(load_default=None)


class IncrementBody(_SlotsBody):
    """Body of ``POST /api/v2/concurrency_limits/increment``."""

    mode = fields.String(load_default="concurrency", validate=validate.OneOf(MODES))
    lease_seconds = _lease_seconds(load_default=None)

    @validates_schema
    def _lease_needs_holder(self, data, **kwargs):
        if data.get("lease_seconds") is not None and data.get("holder") is None:
            raise ValidationError("A lease needs a holder.", "lease_seconds")


class DecrementBody(_SlotsBody):
    """Body of ``POST /api/v2/concurrency_limits/decrement``."""

    occupancy_seconds = fields.Float(
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0.0, max=limits.SECONDS_MAX, min_inclusive=False),
    )


class RenewBody(InputSchema):
    """Body of ``POST /api/v2/concurrency_limits/leases/renew`` (Orion extension)."""

    holder = fields.UUID(required=True)
    lease_seconds = _lease_seconds(required=True)


class GlobalConcurrencyLimitFilterBody(PagedBody):
    """Body of ``POST /api/v2/concurrency_limits/filter``: ``limit`` and ``offset``."""


class GlobalConcurrencyLimitSchema(ORMSchema):
    active = fields.Boolean(required=True)
    name = fields.String(required=True)
    limit = fields.Integer(required=True)
    active_slots = fields.Integer(required=True)
    denied_slots = fields.Integer(required=True)
    slot_decay_per_second = fields.Float(required=True)
    avg_slot_occupancy_seconds = fields.Float(required=True)


class MinimalLimitSchema(OrionSchema):
    """An item of an increment's or decrement's answer."""

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    limit = fields.Integer(required=True)


def dump_limit(row):
    """The full shape (Prefect's ``GlobalConcurrencyLimitResponse`` plus ``denied_slots``)."""
    return {
        "id": str(row.id),
        "created": row.created.isoformat(),
        "updated": row.updated.isoformat(),
        "active": row.active,
        "name": row.name,
        "limit": row.limit,
        "active_slots": row.active_slots,
        "denied_slots": row.denied_slots,
        "slot_decay_per_second": row.slot_decay_per_second,
        "avg_slot_occupancy_seconds": row.avg_slot_occupancy_seconds,
    }


def dump_minimal(row):
    return {"id": str(row.id), "name": row.name, "limit": row.limit}
