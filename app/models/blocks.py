"""Blocks: block types, their schemas (by checksum), documents, nested-document references,
and the fingerprint of the key that encrypts document data.

Reading one document with its schema and type (by id, or by type slug and name: what every
``Block.load`` sends) runs pre-built SQL, as :mod:`app.models.statements` does for runs:
peewee compiling the 24-column join on every call cost more than the rest of the request.
"""

import functools

from peewee import BooleanField, CharField, ForeignKeyField, JSONField, TextField

from app.db import database
from app.models.base import BaseModel


class BlockType(BaseModel):
    """A kind of block (``s3``, ``secret``...); protected types are Orion's own."""

    name = CharField(unique=True)
    slug = CharField(unique=True)
    logo_url = TextField(null=True)
    documentation_url = TextField(null=True)
    description = TextField(null=True)
    code_example = TextField(null=True)
    is_protected = BooleanField(default=False)

    class Meta:
        table_name = "block_type"


class BlockSchema(BaseModel):
    """One version of a block type's fields (a JSON schema), known by its checksum."""

    checksum = CharField()
    version = CharField(default="non-versioned")
    fields = JSONField(default=dict)
    capabilities = JSONField(default=list)
    block_type = ForeignKeyField(BlockType, on_delete="CASCADE")

    class Meta:
        table_name = "block_schema"
        indexes = ((("checksum", "version"), True),)


class BlockDocument(BaseModel):
    """A saved block: its data (a Fernet token of the JSON, see app.services.block_crypto)."""

    name = CharField()
    data = TextField()
    is_anonymous = BooleanField(default=False, index=True)
    block_schema = ForeignKeyField(BlockSchema, on_delete="CASCADE")
    block_type = ForeignKeyField(BlockType, on_delete="CASCADE", index=False)

    class Meta:
        table_name = "block_document"
        # Names are unique per type; the index also serves reads by (type, name).
        indexes = ((("block_type", "name"), True),)


class BlockDocumentReference(BaseModel):
    """Field ``name`` of document ``parent`` holds document ``reference`` (nested block)."""

    name = CharField()
    parent = ForeignKeyField(BlockDocument, on_delete="CASCADE", index=False)
    reference = ForeignKeyField(BlockDocument, on_delete="CASCADE")

    class Meta:
        table_name = "block_document_reference"
        indexes = ((("parent", "name"), True),)

    @classmethod
    def links_of(cls, parent_ids):
        """``[(parent id, field name, referenced id)]`` of these parent documents."""
        if len(parent_ids) == 1:
            sql = _links_sql(type(database.obj))
            return list(
                database.execute_prepared(
                    sql, (cls.parent.db_value(next(iter(parent_ids))),)
                ).fetchall()
            )
        return list(
            cls.select(cls.parent, cls.name, cls.reference)
            .where(cls.parent.in_(list(parent_ids)))
            .tuples()
        )


@functools.cache
def _links_sql(database_type):
    """SQL of :meth:`BlockDocumentReference.links_of` for one parent."""
    model = BlockDocumentReference
    query = model.select(model.parent, model.name, model.reference).where(
        model.parent == model.parent.db_value("0" * 32)
    )
    return database.get_sql_context().sql(query).query()[0]


def _instance(model, fields, values):
    """A clean model instance from raw column values, as peewee builds one."""
    instance = model(__no_default__=1)
    instance.__data__ = {f.name: f.python_value(v) for f, v in zip(fields, values)}
    return instance


def documents_with_schemas():
    """A query of block documents joined to their schema and type (all columns)."""
    return (
        BlockDocument.select(BlockDocument, BlockSchema, BlockType)
        .join(BlockSchema, on=(BlockDocument.block_schema == BlockSchema.id))
        .switch(BlockDocument)
        .join(BlockType, on=(BlockDocument.block_type == BlockType.id))
    )


@functools.cache
def _document_sql(by, database_type):
    """SQL reading one document with schema and type, by "id" or by "name" (slug, name)."""
    if by == "id":
        where = BlockDocument.id == BlockDocument.id.db_value("0" * 32)
    else:
        where = (BlockType.slug == "") & (BlockDocument.name == "")
    return database.get_sql_context().sql(documents_with_schemas().where(where)).query()[0]


def _read_document(by, params):
    row = database.execute_prepared(_document_sql(by, type(database.obj)), params).fetchone()
    if row is None:
        return None
    fields = [
        BlockDocument._meta.sorted_fields,
        BlockSchema._meta.sorted_fields,
        BlockType._meta.sorted_fields,
    ]
    document = _instance(BlockDocument, fields[0], row[: len(fields[0])])
    schema = _instance(BlockSchema, fields[1], row[len(fields[0]) : -len(fields[2])])
    block_type = _instance(BlockType, fields[2], row[-len(fields[2]) :])
    document.__rel__ = {"block_schema": schema, "block_type": block_type}
    schema.__rel__ = {"block_type": block_type}
    return document


def read_document_by_id(document_id):
    """The document with this id, its ``block_schema`` and ``block_type`` loaded; or None."""
    return _read_document("id", (BlockDocument.id.db_value(document_id),))


def read_document_by_name(slug, name):
    """The document of type ``slug`` named ``name``, with schema and type; or None."""
    return _read_document("name", (slug, name))


class EncryptionKey(BaseModel):
    """The fingerprint of the key block document data is encrypted with (never the key)."""

    purpose = CharField(unique=True)
    fingerprint = CharField()

    class Meta:
        table_name = "encryption_key"
