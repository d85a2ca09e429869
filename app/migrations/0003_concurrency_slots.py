"""Task concurrency slots as leases: the ``concurrency_slot`` table.

One row per (concurrency limit, task run) holding a slot, with the time its lease ``expires``.
The models below are frozen copies (see ``0001_initial``): the two referenced tables carry only
their primary keys, which is all a foreign key's DDL needs.
"""

from peewee import DateTimeField, ForeignKeyField, Model, UUIDField


class _Base(Model):
    id = UUIDField(primary_key=True)

    class Meta:
        legacy_table_names = False


class ConcurrencyLimit(_Base):
    class Meta:
        table_name = "concurrency_limit"


class TaskRun(_Base):
    class Meta:
        table_name = "task_run"


class ConcurrencySlot(_Base):
    created = DateTimeField()
    updated = DateTimeField(index=True)
    limit = ForeignKeyField(ConcurrencyLimit, on_delete="CASCADE", index=False)
    task_run = ForeignKeyField(TaskRun, on_delete="CASCADE")
    expires = DateTimeField(index=True)

    class Meta:
        table_name = "concurrency_slot"
        indexes = ((("limit", "task_run"), True),)


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (ConcurrencySlot,)


def up(migrator, db):
    """Create ``concurrency_slot`` with its indexes; fails if it already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop ``concurrency_slot`` with every lease in it."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
