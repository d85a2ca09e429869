"""Work queue priority: ``work_queue.priority``, Prefect's rank of a queue (1 is the highest).

Agents that poll several queues serve them in priority order. Existing queues get 1, so they
keep being served in the order the agent names them (ties keep that order).
"""

from peewee import IntegerField

MODELS = ()


def up(migrator, db):
    """Add ``priority`` (NOT NULL, default 1)."""
    migrator.migrate(migrator.add_column("work_queue", "priority", IntegerField(default=1)))


def down(migrator, db):
    """Drop ``priority``."""
    migrator.migrate(migrator.drop_column("work_queue", "priority"))
