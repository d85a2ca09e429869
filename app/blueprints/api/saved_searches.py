"""Saved searches (named filter presets of the dashboard): ``/api/saved_searches``."""

from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.actions import SavedSearchCreateSchema
from app.schemas.core import SavedSearchSchema, dump_saved_search
from app.schemas.filters import PagedBody
from app.services import saved_searches

blp = Blueprint(
    "saved_searches",
    __name__,
    url_prefix="/api/saved_searches",
    description="Named filter presets of the dashboard.",
)


@blp.put("/")
@blp.arguments(SavedSearchCreateSchema)
@blp.response(201, SavedSearchSchema)
@blp.alt_response(
    200,
    schema=SavedSearchSchema,
    success=True,
    description="A search of this name existed; its filters were replaced.",
)
def put_saved_search(data):
    """Save filters under a name (201), or replace the filters of the search of that name
    (200)."""
    search, created = saved_searches.upsert_saved_search(data["name"], data["filters"])
    return json_response(dump_saved_search(search), 201 if created else 200)


@blp.route("/<uuid:search_id>")
class SavedSearchById(MethodView):
    @blp.response(200, SavedSearchSchema)
    def get(self, search_id):
        """Read a saved search by id."""
        return json_response(dump_saved_search(saved_searches.read_saved_search(search_id)))

    @blp.response(204)
    def delete(self, search_id):
        """Delete a saved search."""
        saved_searches.delete_saved_search(search_id)
        return no_content()


@blp.post("/filter")
@blp.arguments(PagedBody)
@blp.response(200, SavedSearchSchema(many=True))
def filter_saved_searches(body):
    """List saved searches by name, paged."""
    return json_response(
        [
            dump_saved_search(s)
            for s in saved_searches.read_saved_searches(body["limit"], body["offset"])
        ]
    )
