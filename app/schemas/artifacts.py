"""Artifacts (Prefect 2.20): request bodies and the response shapes (filters are in
``app.schemas.filters``).

Prefect's rules: a key of lowercase letters, numbers and dashes; metadata of text values, each
cut to 500 characters (and "..." added), as Prefect's server does.
"""

from marshmallow import fields, post_load, validate

from app.schemas.base import ActionSchema
from app.schemas.core import ORMSchema

KEY_LENGTH = 255
TYPE_LENGTH = 255
METADATA_VALUE_LENGTH = 500

_key_rule = validate.And(
    validate.Length(min=1, max=KEY_LENGTH),
    validate.Regexp(
        r"^[a-z0-9-]+$",
        error="Artifact key must only contain lowercase letters, numbers, and dashes.",
    ),
)


class _Metadata(ActionSchema):
    metadata_ = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)

    @post_load
    def cut_metadata(self, data, **kwargs):
        metadata = data.get("metadata_")
        if metadata:
            data["metadata_"] = {
                key: value
                if len(value) <= METADATA_VALUE_LENGTH
                else value[:METADATA_VALUE_LENGTH] + "..."
                for key, value in metadata.items()
            }
        return data


class ArtifactCreateSchema(_Metadata):
    """Body of ``POST /api/artifacts/``."""

    key = fields.String(allow_none=True, validate=_key_rule)
    type = fields.String(allow_none=True, validate=validate.Length(max=TYPE_LENGTH))
    description = fields.String(allow_none=True)
    data = fields.Raw(allow_none=True)
    flow_run_id = fields.UUID(allow_none=True)
    task_run_id = fields.UUID(allow_none=True)


class ArtifactUpdateSchema(_Metadata):
    """Body of ``PATCH /api/artifacts/{id}``: what is given changes."""

    data = fields.Raw(allow_none=True)
    description = fields.String(allow_none=True)


class ArtifactSchema(ORMSchema):
    key = fields.String(allow_none=True)
    type = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    data = fields.Raw(allow_none=True)
    metadata_ = fields.Dict(allow_none=True)
    flow_run_id = fields.UUID(allow_none=True)
    task_run_id = fields.UUID(allow_none=True)


class ArtifactCollectionSchema(ArtifactSchema):
    latest_id = fields.UUID(required=True)


def dump_artifact(artifact):
    return {
        "id": str(artifact.id),
        "created": artifact.created.isoformat(),
        "updated": artifact.updated.isoformat(),
        "key": artifact.key,
        "type": artifact.type,
        "description": artifact.description,
        "data": artifact.data,
        "metadata_": artifact.metadata_,
        "flow_run_id": str(artifact.flow_run_id) if artifact.flow_run_id else None,
        "task_run_id": str(artifact.task_run_id) if artifact.task_run_id else None,
    }


def dump_artifact_collection(artifact):
    """A key's latest artifact as Prefect's ``ArtifactCollection`` (the key's id is its
    latest artifact's: the key's row, ``artifact_collection``, has no id of its own)."""
    return {**dump_artifact(artifact), "latest_id": str(artifact.id)}
