"""Task concurrency limits by tag: ``/api/concurrency_limits``.

Tags are matched with a ``path`` converter, so a tag holding ``/`` can be addressed too.
Deletes answer 200 with ``null``, as Orion does.
"""

from flask import current_app
from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response
from app.schemas.actions import ConcurrencyLimitCreateSchema, ConcurrencyLimitResetSchema
from app.schemas.core import ConcurrencyLimitSchema, dump_concurrency_limit
from app.schemas.filters import PagedBody
from app.services import concurrency_limits

blp = Blueprint(
    "concurrency_limits",
    __name__,
    url_prefix="/api/concurrency_limits",
    description="Task run concurrency limits by tag.",
)


def _dump(limits):
    """The limits as the API shows them, with their active slots read in one query."""
    holders = concurrency_limits.active_slots(limits)
    return [dump_concurrency_limit(limit, holders[limit.id]) for limit in limits]


@blp.post("/")
@blp.arguments(ConcurrencyLimitCreateSchema)
@blp.response(201, ConcurrencyLimitSchema)
@blp.alt_response(
    200,
    schema=ConcurrencyLimitSchema,
    success=True,
    description="A limit on this tag existed; its limit was updated.",
)
def create_concurrency_limit(data):
    """Create the limit on a tag, or update the existing one's limit."""
    limit, created = concurrency_limits.upsert_limit(data["tag"], data["concurrency_limit"])
    return json_response(_dump([limit])[0], 201 if created else 200)


@blp.route("/<uuid:limit_id>")
class ConcurrencyLimitById(MethodView):
    @blp.response(200, ConcurrencyLimitSchema)
    def get(self, limit_id):
        """Read a concurrency limit by id."""
        return json_response(_dump([concurrency_limits.read_limit(limit_id)])[0])

    @blp.response(200, description="The limit and its leases were deleted (body: null).")
    def delete(self, limit_id):
        """Delete a concurrency limit by id."""
        concurrency_limits.delete_limit(limit_id)
        return json_response(None)


@blp.route("/tag/<path:tag>")
class ConcurrencyLimitByTag(MethodView):
    @blp.response(200, ConcurrencyLimitSchema)
    def get(self, tag):
        """Read the concurrency limit on a tag."""
        return json_response(_dump([concurrency_limits.read_limit_by_tag(tag)])[0])

    @blp.response(200, description="The limit and its leases were deleted (body: null).")
    def delete(self, tag):
        """Delete the concurrency limit on a tag."""
        concurrency_limits.delete_limit_by_tag(tag)
        return json_response(None)


@blp.post("/tag/<path:tag>/reset")
@blp.arguments(ConcurrencyLimitResetSchema)
@blp.response(200, ConcurrencyLimitSchema)
def reset_concurrency_limit(body, tag):
    """Free every slot of a tag's limit, optionally giving them to the listed task runs."""
    limit = concurrency_limits.reset_limit(
        tag, body["slot_override"], current_app.config["TASK_CONCURRENCY_LEASE_SECONDS"]
    )
    return json_response(_dump([limit])[0])


@blp.post("/filter")
@blp.arguments(PagedBody)
@blp.response(200, ConcurrencyLimitSchema(many=True))
def filter_concurrency_limits(body):
    """List concurrency limits ordered by tag, paged."""
    return json_response(_dump(concurrency_limits.read_limits(body["limit"], body["offset"])))
