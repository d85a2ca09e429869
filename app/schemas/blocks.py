"""Block types, block schemas and block documents: request bodies and response dumps.

Shapes follow the Orion API of Prefect 2.7 (``schemas/core.py`` and ``schemas/actions.py``
there). Slugs and block document names follow Prefect's character rules: lowercase letters,
digits and dashes only; a value outside them is a 422 saying which rule. Response dumps are
plain functions over what the services return (``dump_*``), built for speed.
"""

import re

from marshmallow import ValidationError, fields, validate, validates_schema

from app.schemas import limits
from app.schemas.base import (
    INVALID_NAME_CHARACTERS,
    InputSchema,
    List,
    OrionSchema,
    String,
    Text,
    validate_name,
)
from app.schemas.filters import FilterSchema, OperatorSchema, PagedBody, UUIDAnyFilter

_SLUG_RE = re.compile(r"^[a-z0-9-]*$")
SLUG_RULE = "must only contain lowercase letters, numbers, and dashes"


def validate_slug(value):
    """A block type slug: Prefect's rule, lowercase letters, numbers and dashes."""
    if not _SLUG_RE.match(value):
        raise ValidationError(f"slug {SLUG_RULE} (got {limits.excerpt(value)!r}).")


def validate_document_name(value):
    """A block document name: Prefect's rule, lowercase letters, numbers and dashes."""
    if not _SLUG_RE.match(value):
        raise ValidationError(f"name {SLUG_RULE} (got {limits.excerpt(value)!r}).")
    if not value:
        raise ValidationError("name must not be empty.")


def _url(**kwargs):
    return Text(allow_none=True, validate=validate.URL(schemes={"http", "https"}), **kwargs)


class BlockTypeUpdateSchema(InputSchema):
    """Body of ``PATCH /api/block_types/{id}``: the descriptive fields only."""

    logo_url = _url()
    documentation_url = _url()
    description = Text(allow_none=True)
    code_example = Text(allow_none=True)


class BlockTypeCreateSchema(BlockTypeUpdateSchema):
    """Body of ``POST /api/block_types/``."""

    name = String(
        required=True,
        validate=validate_name,
        metadata={"description": f"May not contain {' '.join(sorted(INVALID_NAME_CHARACTERS))}."},
    )
    slug = String(required=True, validate=validate_slug)


class BlockSchemaCreateSchema(InputSchema):
    """Body of ``POST /api/block_schemas/``: the fields are a JSON schema, stored as given."""

    block_type_id = fields.UUID(required=True)
    capabilities = List(Text(), load_default=list)
    version = String(load_default="non-versioned")
    # Last: from here on, ``fields`` in this class body is this field, not the module.
    fields = fields.Dict(load_default=dict)


class BlockDocumentCreateSchema(InputSchema):
    """Body of ``POST /api/block_documents/``; a name is required unless anonymous."""

    name = String(allow_none=True, load_default=None, validate=validate_document_name)
    data = fields.Dict(load_default=dict)
    block_schema_id = fields.UUID(required=True)
    block_type_id = fields.UUID(required=True)
    is_anonymous = fields.Boolean(load_default=False)

    @validates_schema
    def name_unless_anonymous(self, data, **kwargs):
        if not data.get("is_anonymous") and not data.get("name"):
            raise ValidationError("Names must be provided for block documents.", "name")


class BlockDocumentUpdateSchema(InputSchema):
    """Body of ``PATCH /api/block_documents/{id}``."""

    block_schema_id = fields.UUID(allow_none=True, load_default=None)
    # Absent: the data stays as it is (only the schema may change).
    data = fields.Dict()
    merge_existing_data = fields.Boolean(load_default=True)


class IncludeSecretsQuery(InputSchema):
    include_secrets = fields.Boolean(load_default=False)


class ChecksumQuery(InputSchema):
    version = String(load_default=None, allow_none=True)


class _LikeFilter(FilterSchema):
    like_ = String(
        limits.FILTER_STRING_MAX_LENGTH,
        metadata={"description": "Case-insensitive substring match."},
    )


class _StringAny(FilterSchema):
    any_ = List(String(limits.FILTER_STRING_MAX_LENGTH))


class _StringAnyLike(_StringAny, _LikeFilter):
    """``any_`` and ``like_`` (Prefect 2.20's ``BlockDocumentFilterName``)."""


class _StringAll(FilterSchema):
    all_ = List(String(limits.FILTER_STRING_MAX_LENGTH))


class _BoolEq(FilterSchema):
    eq_ = fields.Boolean()


class BlockTypeFilter(FilterSchema):
    name = fields.Nested(_LikeFilter)
    slug = fields.Nested(_StringAny)


class BlockSchemaFilter(OperatorSchema):
    block_type_id = fields.Nested(UUIDAnyFilter)
    block_capabilities = fields.Nested(_StringAll)
    id = fields.Nested(UUIDAnyFilter)
    version = fields.Nested(_StringAny)


class BlockDocumentFilter(OperatorSchema):
    id = fields.Nested(UUIDAnyFilter)
    is_anonymous = fields.Nested(_BoolEq)
    block_type_id = fields.Nested(UUIDAnyFilter)
    name = fields.Nested(_StringAnyLike)


class BlockTypeFilterBody(PagedBody):
    """Body of ``POST /api/block_types/filter`` (sorted by name)."""

    block_types = fields.Nested(BlockTypeFilter)
    block_schemas = fields.Nested(BlockSchemaFilter)


class BlockSchemaFilterBody(PagedBody):
    """Body of ``POST /api/block_schemas/filter`` (newest first)."""

    block_schemas = fields.Nested(BlockSchemaFilter)


class BlockDocumentCriteria(FilterSchema):
    """What a block document count or filter body selects by."""

    block_documents = fields.Nested(BlockDocumentFilter)
    block_types = fields.Nested(BlockTypeFilter)
    block_schemas = fields.Nested(BlockSchemaFilter)
    # Sent (as null) by Prefect 2.7 clients; Prefect's server never applied it.
    block_schema_type = fields.Raw(metadata={"description": "Accepted only as null."})

    @validates_schema
    def no_schema_type(self, data, **kwargs):
        if data.get("block_schema_type") is not None:
            raise ValidationError(
                "block_schema_type is not supported; filter with block_types.slug instead.",
                "block_schema_type",
            )


class BlockDocumentCountBody(BlockDocumentCriteria):
    """Body of ``POST /api/block_documents/count``.

    Prefect 2.20's UI counts with its page size (``{"limit": 50}``); Prefect's server ignores
    paging in a count, and so does this one: a count is of every match."""

    limit = fields.Integer(allow_none=True, metadata={"description": "Ignored."})
    offset = fields.Integer(allow_none=True, metadata={"description": "Ignored."})


# Prefect 2.20's BlockDocumentSort.
BLOCK_DOCUMENT_SORTS = ("NAME_ASC", "NAME_DESC", "BLOCK_TYPE_AND_NAME_ASC")


class BlockDocumentFilterBody(BlockDocumentCriteria, PagedBody):
    """Body of ``POST /api/block_documents/filter`` (sorted by name unless ``sort`` says)."""

    include_secrets = fields.Boolean(load_default=False)
    sort = fields.String(
        load_default="NAME_ASC",
        validate=validate.OneOf(BLOCK_DOCUMENT_SORTS),
        metadata={"description": "Prefect 2.20: " + ", ".join(BLOCK_DOCUMENT_SORTS)},
    )


# Response shapes (for the OpenAPI document); the dump functions below build the bodies.
class BlockTypeSchema(OrionSchema):
    id = fields.UUID()
    created = fields.DateTime()
    updated = fields.DateTime()
    name = fields.String()
    slug = fields.String()
    logo_url = fields.String(allow_none=True)
    documentation_url = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    code_example = fields.String(allow_none=True)
    is_protected = fields.Boolean()


class BlockSchemaSchema(OrionSchema):
    id = fields.UUID()
    created = fields.DateTime()
    updated = fields.DateTime()
    checksum = fields.String()
    block_type_id = fields.UUID()
    block_type = fields.Nested(BlockTypeSchema)
    capabilities = fields.List(fields.String())
    version = fields.String()
    # Last: from here on, ``fields`` in this class body is this field, not the module.
    fields = fields.Dict()


class BlockDocumentSchema(OrionSchema):
    id = fields.UUID()
    created = fields.DateTime()
    updated = fields.DateTime()
    name = fields.String(allow_none=True)
    data = fields.Dict(
        metadata={"description": "Secret fields read '**********' unless include_secrets=true."}
    )
    block_schema_id = fields.UUID()
    block_schema = fields.Nested(BlockSchemaSchema)
    block_type_id = fields.UUID()
    block_type = fields.Nested(BlockTypeSchema)
    block_type_name = fields.String(metadata={"description": "Prefect 2.20: its type's name."})
    block_document_references = fields.Dict()
    is_anonymous = fields.Boolean()


def _time(value):
    return value.isoformat()


def dump_block_type(block_type):
    """A block type row as the API returns it."""
    return {
        "id": str(block_type.id),
        "created": _time(block_type.created),
        "updated": _time(block_type.updated),
        "name": block_type.name,
        "slug": block_type.slug,
        "logo_url": block_type.logo_url,
        "documentation_url": block_type.documentation_url,
        "description": block_type.description,
        "code_example": block_type.code_example,
        "is_protected": block_type.is_protected,
    }


def dump_block_schema(block_schema, block_type):
    """A block schema row (with its type) as the API returns it."""
    return {
        "id": str(block_schema.id),
        "created": _time(block_schema.created),
        "updated": _time(block_schema.updated),
        "checksum": block_schema.checksum,
        "fields": block_schema.fields,
        "block_type_id": str(block_type.id),
        "block_type": dump_block_type(block_type),
        "capabilities": block_schema.capabilities,
        "version": block_schema.version,
    }


def _dump_references(references):
    return {
        field: {
            "block_document": {
                "id": str(ref.document.id),
                "name": ref.document.name,
                "block_type": dump_block_type(ref.block_type),
                "is_anonymous": ref.document.is_anonymous,
                "block_document_references": _dump_references(ref.references),
            }
        }
        for field, ref in references.items()
    }


def dump_block_document(resolved):
    """A resolved block document (``app.services.blocks.ResolvedDocument``) as the API
    returns it: data with nested documents in place, references, schema and type."""
    document = resolved.document
    return {
        "id": str(document.id),
        "created": _time(document.created),
        "updated": _time(document.updated),
        "name": document.name,
        "data": resolved.data,
        "block_schema_id": str(resolved.block_schema.id),
        "block_schema": dump_block_schema(resolved.block_schema, resolved.block_type),
        "block_type_id": str(resolved.block_type.id),
        "block_type": dump_block_type(resolved.block_type),
        "block_type_name": resolved.block_type.name,
        "block_document_references": _dump_references(resolved.references),
        "is_anonymous": document.is_anonymous,
    }
