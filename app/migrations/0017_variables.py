"""Variables (Prefect 2.20): ``variable``, a named text value with tags, unique by name.
Frozen model, as in ``0001_initial``.
"""

from peewee import CharField, DateTimeField, JSONField, Model, TextField, UUIDField


class Variable(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)
    name = CharField(unique=True)
    value = TextField()
    tags = JSONField(default=list)

    class Meta:
        legacy_table_names = False
        table_name = "variable"


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (Variable,)


def up(migrator, db):
    """Create the table with its indexes; fails if it already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop the table."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
