"""Artifacts (Prefect 2.20): ``/api/artifacts``, and each key's latest under ``/latest``."""

from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.artifacts import (
    ArtifactCollectionSchema,
    ArtifactCreateSchema,
    ArtifactSchema,
    ArtifactUpdateSchema,
    dump_artifact,
    dump_artifact_collection,
)
from app.schemas.filters import (
    ArtifactCollectionCountBody,
    ArtifactCollectionFilterBody,
    ArtifactCountBody,
    ArtifactFilterBody,
)
from app.services import artifacts

blp = Blueprint(
    "artifacts",
    __name__,
    url_prefix="/api/artifacts",
    description="What flow and task runs make for people to see: markdown, tables, links.",
)


@blp.post("/")
@blp.arguments(ArtifactCreateSchema)
@blp.response(201, ArtifactSchema)
def create_artifact(data):
    """Create an artifact (a new version of its key, if it has one)."""
    return json_response(dump_artifact(artifacts.create_artifact(data)), 201)


@blp.route("/<uuid:artifact_id>")
class ArtifactById(MethodView):
    @blp.response(200, ArtifactSchema)
    def get(self, artifact_id):
        """Read an artifact by id."""
        return json_response(dump_artifact(artifacts.read_artifact(artifact_id)))

    @blp.arguments(ArtifactUpdateSchema)
    @blp.response(204)
    def patch(self, changes, artifact_id):
        """Change an artifact's data, description or metadata."""
        artifacts.update_artifact(artifact_id, changes)
        return no_content()

    @blp.response(204)
    def delete(self, artifact_id):
        """Delete an artifact."""
        artifacts.delete_artifact(artifact_id)
        return no_content()


@blp.get("/<string:key>/latest")
@blp.response(200, ArtifactSchema)
def read_latest_artifact(key):
    """The newest artifact of a key."""
    return json_response(dump_artifact(artifacts.read_latest_artifact(key)))


@blp.post("/filter")
@blp.arguments(ArtifactFilterBody)
@blp.response(200, ArtifactSchema(many=True))
def filter_artifacts(body):
    """Artifacts matching the filters, sorted (``ID_DESC`` by default) and paged."""
    return json_response([dump_artifact(a) for a in artifacts.read_artifacts(body)])


@blp.post("/count")
@blp.arguments(ArtifactCountBody)
@blp.response(200, description="The number of matching artifacts.")
def count_artifacts(body):
    """Count artifacts matching the filters."""
    return json_response(artifacts.count_artifacts(body))


@blp.post("/latest/filter")
@blp.arguments(ArtifactCollectionFilterBody)
@blp.response(200, ArtifactCollectionSchema(many=True))
def filter_latest_artifacts(body):
    """The latest artifact of each key matching the filters, sorted and paged."""
    return json_response(
        [dump_artifact_collection(a) for a in artifacts.read_artifacts(body, latest=True)]
    )


@blp.post("/latest/count")
@blp.arguments(ArtifactCollectionCountBody)
@blp.response(200, description="The number of matching keys.")
def count_latest_artifacts(body):
    """Count the keys whose latest artifact matches the filters."""
    return json_response(artifacts.count_artifacts(body, latest=True))
