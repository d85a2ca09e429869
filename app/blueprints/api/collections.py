"""Collection views: ``/api/collections/views/{view}`` (see ``app.services.collections``)."""

from app.blueprints.api.common import Blueprint, json_response
from app.services import collections

blp = Blueprint(
    "collections",
    __name__,
    url_prefix="/api/collections",
    description="Metadata of Prefect's integration collections, as shipped.",
)


@blp.get("/views/<view>")
@blp.response(200, description="The view's JSON content.")
@blp.alt_response(404, description="Unknown view, or a view this server has no content for.")
def read_view(view):
    """The content of a collection registry view."""
    return json_response(collections.read_view(view))
