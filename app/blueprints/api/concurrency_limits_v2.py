"""Global concurrency limits (Prefect 2.20): ``/api/v2/concurrency_limits``, each limit by
id or by name, and the slot calls ``increment`` (423 Locked with ``Retry-After`` when not
granted), ``decrement`` and, for the Orion SDK's leases, ``leases/renew``."""

import uuid

from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.concurrency_limits_v2 import (
    DecrementBody,
    GlobalConcurrencyLimitCreateSchema,
    GlobalConcurrencyLimitFilterBody,
    GlobalConcurrencyLimitSchema,
    GlobalConcurrencyLimitUpdateSchema,
    IncrementBody,
    MinimalLimitSchema,
    RenewBody,
    dump_limit,
    dump_minimal,
)
from app.services import concurrency_limits_v2 as limits

blp = Blueprint(
    "concurrency_limits_v2",
    __name__,
    url_prefix="/api/v2/concurrency_limits",
    description="Global concurrency and rate limits: named pools of slots.",
)


def _id_or_name(value: str) -> uuid.UUID | str:
    """A path segment that parses as a UUID is an id; anything else a name."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


@blp.post("/")
@blp.arguments(GlobalConcurrencyLimitCreateSchema)
@blp.response(201, GlobalConcurrencyLimitSchema)
@blp.alt_response(409, description="A limit of this name exists.")
def create_limit(data):
    """Create a global concurrency limit."""
    return json_response(dump_limit(limits.create_limit(data)), 201)


@blp.route("/<string:id_or_name>")
class LimitByIdOrName(MethodView):
    @blp.response(200, GlobalConcurrencyLimitSchema)
    def get(self, id_or_name):
        """Read a limit by id or name (slots after decay)."""
        return json_response(dump_limit(limits.read_limit(_id_or_name(id_or_name))))

    @blp.arguments(GlobalConcurrencyLimitUpdateSchema)
    @blp.response(204)
    def patch(self, changes, id_or_name):
        """Change the fields sent."""
        limits.update_limit(_id_or_name(id_or_name), changes)
        return no_content()

    @blp.response(204)
    def delete(self, id_or_name):
        """Delete a limit (its leases go with it)."""
        limits.delete_limit(_id_or_name(id_or_name))
        return no_content()


@blp.post("/filter")
@blp.arguments(GlobalConcurrencyLimitFilterBody)
@blp.response(200, GlobalConcurrencyLimitSchema(many=True))
def filter_limits(body):
    """List limits sorted by name, paged by ``limit`` and ``offset``."""
    rows = limits.read_limits(body["limit"], body["offset"])
    return json_response([dump_limit(row) for row in rows])


@blp.post("/increment")
@blp.arguments(IncrementBody)
@blp.response(200, MinimalLimitSchema(many=True))
@blp.alt_response(423, description="Not granted; wait ``Retry-After`` seconds.")
def increment(body):
    """Take ``slots`` of every active named limit, or none (423 Locked)."""
    result = limits.increment(
        body["names"], body["slots"], body["mode"], body["holder"], body["lease_seconds"]
    )
    if not result.granted:
        detail = {"detail": "Concurrency limit reached.", "retry_after": result.retry_after}
        response = json_response(detail, 423)
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    return json_response([dump_minimal(row) for row in result.limits])


@blp.post("/decrement")
@blp.arguments(DecrementBody)
@blp.response(200, MinimalLimitSchema(many=True))
def decrement(body):
    """Give back ``slots`` of every active named limit (with ``holder``, from its lease)."""
    rows = limits.decrement(body["names"], body["slots"], body["occupancy_seconds"], body["holder"])
    return json_response([dump_minimal(row) for row in rows])


@blp.post("/leases/renew")
@blp.arguments(RenewBody)
@blp.response(200, description="How many leases were renewed.")
@blp.alt_response(404, description="The holder has no lease left.")
def renew_leases(body):
    """Extend every lease of ``holder`` by ``lease_seconds`` from now (Orion extension)."""
    return json_response(limits.renew_leases(body["holder"], body["lease_seconds"]))
