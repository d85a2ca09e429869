"""Artifacts (Prefect 2.20): ``artifact``, what a flow or task run made for people to see,
versioned by ``key``. Frozen model, as in ``0001_initial``.
"""

from peewee import CharField, DateTimeField, JSONField, Model, TextField, UUIDField


class Artifact(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)
    key = CharField(null=True)
    type = CharField(null=True)
    description = TextField(null=True)
    data = JSONField(null=True)
    metadata_ = JSONField(null=True, column_name="metadata_")
    flow_run_id = UUIDField(null=True, index=True)
    task_run_id = UUIDField(null=True, index=True)

    class Meta:
        legacy_table_names = False
        table_name = "artifact"
        indexes = ((("key", "created"), False),)


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (Artifact,)


def up(migrator, db):
    """Create the table with its indexes; fails if it already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop the table."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
