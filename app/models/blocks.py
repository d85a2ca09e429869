"""Blocks: block types, their schemas (by checksum), documents, nested-document references,
and the fingerprint of the key that encrypts document data."""
from peewee import BooleanField, CharField, ForeignKeyField, JSONField, TextField

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


class EncryptionKey(BaseModel):
    """The fingerprint of the key block document data is encrypted with (never the key)."""

    purpose = CharField(unique=True)
    fingerprint = CharField()

    class Meta:
        table_name = "encryption_key"
