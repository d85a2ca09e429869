"""Agents: the ``agent`` table (name, the work queue last polled, last activity time).

Rows are created and updated by ``POST /api/work_queues/{id}/get_runs`` calls that carry an
``agent_id``. The models below are frozen copies (see ``0001_initial``); ``work_queue`` carries
only its primary key, which is all a foreign key's DDL needs.
"""

from peewee import CharField, DateTimeField, ForeignKeyField, Model, UUIDField


class _Base(Model):
    id = UUIDField(primary_key=True)

    class Meta:
        legacy_table_names = False


class WorkQueue(_Base):
    class Meta:
        table_name = "work_queue"


class Agent(_Base):
    created = DateTimeField()
    updated = DateTimeField(index=True)
    name = CharField(unique=True)
    work_queue = ForeignKeyField(WorkQueue, null=True, on_delete="SET NULL")
    last_activity_time = DateTimeField(null=True, index=True)

    class Meta:
        table_name = "agent"


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (Agent,)


def up(migrator, db):
    """Create ``agent`` with its indexes; fails if it already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop ``agent``."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
