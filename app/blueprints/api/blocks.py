"""Blocks: ``/api/block_types``, ``/api/block_schemas``, ``/api/block_documents`` and
``/api/block_capabilities`` (the Orion API of Prefect 2.7).

Block document data carries secrets: its responses obfuscate them unless
``include_secrets=true``, and a 422 about it never echoes the request body
(``app.extensions.SENSITIVE_BODY_PREFIXES``).
"""

from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.blocks import (
    BlockDocumentCountBody,
    BlockDocumentCreateSchema,
    BlockDocumentFilterBody,
    BlockDocumentSchema,
    BlockDocumentUpdateSchema,
    BlockSchemaCreateSchema,
    BlockSchemaFilterBody,
    BlockSchemaSchema,
    BlockTypeCreateSchema,
    BlockTypeFilterBody,
    BlockTypeSchema,
    BlockTypeUpdateSchema,
    ChecksumQuery,
    IncludeSecretsQuery,
    dump_block_document,
    dump_block_schema,
    dump_block_type,
)
from app.services import blocks

block_types = Blueprint(
    "block_types",
    __name__,
    url_prefix="/api/block_types",
    description="Kinds of blocks: storage, infrastructure, secrets...",
)
block_schemas = Blueprint(
    "block_schemas",
    __name__,
    url_prefix="/api/block_schemas",
    description="Versions of a block type's fields, by checksum.",
)
block_documents = Blueprint(
    "block_documents",
    __name__,
    url_prefix="/api/block_documents",
    description="Saved blocks: configuration and secrets.",
)
block_capabilities = Blueprint(
    "block_capabilities",
    __name__,
    url_prefix="/api/block_capabilities",
    description="What block schemas can do.",
)


# ---------------------------------------------------------------- block types
@block_types.post("/")
@block_types.arguments(BlockTypeCreateSchema)
@block_types.response(201, BlockTypeSchema)
def create_block_type(data):
    """Create a block type (409 if the name or slug is taken)."""
    return json_response(dump_block_type(blocks.create_block_type(data)), 201)


@block_types.route("/<uuid:block_type_id>")
class BlockTypeById(MethodView):
    @block_types.response(200, BlockTypeSchema)
    def get(self, block_type_id):
        """Read a block type by id."""
        return json_response(dump_block_type(blocks.read_block_type(block_type_id)))

    @block_types.arguments(BlockTypeUpdateSchema)
    @block_types.response(204)
    def patch(self, changes, block_type_id):
        """Change a block type's logo, documentation URL, description or code example."""
        blocks.update_block_type(block_type_id, changes)
        return no_content()

    @block_types.response(204)
    def delete(self, block_type_id):
        """Delete a block type, its schemas and documents (403 if protected, 409 if a
        deployment uses one of its documents)."""
        blocks.delete_block_type(block_type_id)
        return no_content()


@block_types.get("/slug/<slug>")
@block_types.response(200, BlockTypeSchema)
def read_block_type_by_slug(slug):
    """Read a block type by slug."""
    return json_response(dump_block_type(blocks.read_block_type_by_slug(slug)))


@block_types.get("/slug/<slug>/block_documents")
@block_types.arguments(IncludeSecretsQuery, location="query")
@block_types.response(200, BlockDocumentSchema(many=True))
def read_block_documents_of_type(query, slug):
    """The named (not anonymous) block documents of a block type."""
    block_type = blocks.read_block_type_by_slug(slug)
    body = {
        "block_documents": {"block_type_id": {"any_": [block_type.id]}},
        "limit": None,
        "offset": 0,
    }
    documents = blocks.read_block_documents(body, query["include_secrets"])
    return json_response([dump_block_document(d) for d in documents])


@block_types.get("/slug/<slug>/block_documents/name/<name>")
@block_types.arguments(IncludeSecretsQuery, location="query")
@block_types.response(200, BlockDocumentSchema)
def read_block_document_by_name(query, slug, name):
    """Read a block document by block type slug and name."""
    document = blocks.read_block_document_by_name(slug, name, query["include_secrets"])
    return json_response(dump_block_document(document))


@block_types.post("/filter")
@block_types.arguments(BlockTypeFilterBody)
@block_types.response(200, BlockTypeSchema(many=True))
def filter_block_types(body):
    """Block types matching filters, by name."""
    return json_response([dump_block_type(t) for t in blocks.read_block_types(body)])


@block_types.post("/install_system_block_types")
@block_types.response(200)
def install_system_block_types():
    """Register the system block types and schemas (done at every server start)."""
    blocks.install_system_block_types()
    return json_response(None)


# ---------------------------------------------------------------- block schemas
@block_schemas.post("/")
@block_schemas.arguments(BlockSchemaCreateSchema)
@block_schemas.response(201, BlockSchemaSchema)
@block_schemas.alt_response(
    200,
    schema=BlockSchemaSchema,
    success=True,
    description="A schema with this checksum and version existed.",
)
def create_block_schema(data):
    """Create a block schema (201), or return the one with the same checksum and
    version (200)."""
    schema, block_type, created = blocks.create_block_schema(data)
    return json_response(dump_block_schema(schema, block_type), 201 if created else 200)


@block_schemas.route("/<uuid:block_schema_id>")
class BlockSchemaById(MethodView):
    @block_schemas.response(200, BlockSchemaSchema)
    def get(self, block_schema_id):
        """Read a block schema by id."""
        return json_response(dump_block_schema(*blocks.read_block_schema(block_schema_id)))

    @block_schemas.response(204)
    def delete(self, block_schema_id):
        """Delete a block schema and its documents (403 for a protected type's schema)."""
        blocks.delete_block_schema(block_schema_id)
        return no_content()


@block_schemas.get("/checksum/<checksum>")
@block_schemas.arguments(ChecksumQuery, location="query")
@block_schemas.response(200, BlockSchemaSchema)
def read_block_schema_by_checksum(query, checksum):
    """Read a block schema by checksum (and version; the newest if not given)."""
    return json_response(
        dump_block_schema(*blocks.read_block_schema_by_checksum(checksum, query["version"]))
    )


@block_schemas.post("/filter")
@block_schemas.arguments(BlockSchemaFilterBody)
@block_schemas.response(200, BlockSchemaSchema(many=True))
def filter_block_schemas(body):
    """Block schemas matching filters (block type, capabilities, id, version), newest first."""
    return json_response([dump_block_schema(s, t) for s, t in blocks.read_block_schemas(body)])


# ---------------------------------------------------------------- block documents
@block_documents.post("/")
@block_documents.arguments(BlockDocumentCreateSchema)
@block_documents.response(201, BlockDocumentSchema)
def create_block_document(data):
    """Create a block document (409 if its type has one of that name; 422 naming the field
    if the data does not match the schema)."""
    return json_response(dump_block_document(blocks.create_block_document(data)), 201)


@block_documents.route("/<uuid:document_id>")
class BlockDocumentById(MethodView):
    @block_documents.arguments(IncludeSecretsQuery, location="query")
    @block_documents.response(200, BlockDocumentSchema)
    def get(self, query, document_id):
        """Read a block document by id, nested documents resolved."""
        return json_response(
            dump_block_document(blocks.read_block_document(document_id, query["include_secrets"]))
        )

    @block_documents.arguments(BlockDocumentUpdateSchema)
    @block_documents.response(204)
    def patch(self, values, document_id):
        """Update a block document's data (merged unless merge_existing_data is false)
        or schema."""
        blocks.update_block_document(document_id, values)
        return no_content()

    @block_documents.response(204)
    def delete(self, document_id):
        """Delete a block document (409 naming the deployments that use it)."""
        blocks.delete_block_document(document_id)
        return no_content()


@block_documents.post("/filter")
@block_documents.arguments(BlockDocumentFilterBody)
@block_documents.response(200, BlockDocumentSchema(many=True))
def filter_block_documents(body):
    """Block documents matching filters, by name (anonymous ones only when asked)."""
    documents = blocks.read_block_documents(body, body["include_secrets"])
    return json_response([dump_block_document(d) for d in documents])


@block_documents.post("/count")
@block_documents.arguments(BlockDocumentCountBody)
@block_documents.response(200)
def count_block_documents(body):
    """How many block documents match the filters."""
    return json_response(blocks.count_block_documents(body))


# ---------------------------------------------------------------- block capabilities
@block_capabilities.get("/")
@block_capabilities.response(200)
def read_block_capabilities():
    """Every capability of some block schema."""
    return json_response(blocks.read_block_capabilities())
