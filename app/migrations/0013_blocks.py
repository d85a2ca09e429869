"""Blocks: ``block_type``, ``block_schema``, ``block_document``, ``block_document_reference``
and ``encryption_key`` (the fingerprint of the key that encrypts block document data).

System block types are not rows of this migration: the server registers them from
``app/data/system_blocks.json`` at every start (app.services.blocks), so a new Orion with
newer schemas adds them without a migration. Frozen models, as in ``0001_initial``.
"""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    JSONField,
    Model,
    TextField,
    UUIDField,
)


class _Base(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)

    class Meta:
        legacy_table_names = False


class BlockType(_Base):
    name = CharField(unique=True)
    slug = CharField(unique=True)
    logo_url = TextField(null=True)
    documentation_url = TextField(null=True)
    description = TextField(null=True)
    code_example = TextField(null=True)
    is_protected = BooleanField(default=False)

    class Meta:
        table_name = "block_type"


class BlockSchema(_Base):
    checksum = CharField()
    version = CharField(default="non-versioned")
    fields = JSONField(default=dict)
    capabilities = JSONField(default=list)
    block_type = ForeignKeyField(BlockType, on_delete="CASCADE")

    class Meta:
        table_name = "block_schema"
        indexes = ((("checksum", "version"), True),)


class BlockDocument(_Base):
    name = CharField()
    data = TextField()
    is_anonymous = BooleanField(default=False, index=True)
    block_schema = ForeignKeyField(BlockSchema, on_delete="CASCADE")
    block_type = ForeignKeyField(BlockType, on_delete="CASCADE", index=False)

    class Meta:
        table_name = "block_document"
        indexes = ((("block_type", "name"), True),)


class BlockDocumentReference(_Base):
    name = CharField()
    parent = ForeignKeyField(BlockDocument, on_delete="CASCADE", index=False)
    reference = ForeignKeyField(BlockDocument, on_delete="CASCADE")

    class Meta:
        table_name = "block_document_reference"
        indexes = ((("parent", "name"), True),)


class EncryptionKey(_Base):
    purpose = CharField(unique=True)
    fingerprint = CharField()

    class Meta:
        table_name = "encryption_key"


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (BlockType, BlockSchema, BlockDocument, BlockDocumentReference, EncryptionKey)


def up(migrator, db):
    """Create the block tables with their indexes; fails if one already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop the block tables."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
