"""Agent heartbeats: ``agent.last_heartbeat``, the time a running agent last reported in.

Set by ``POST /api/agents/{id}/heartbeat``, which ``orion agent start`` sends every few
seconds whatever its polls are doing; the dashboard's queue health reads it (with the last
poll) to show the queue's agents online or offline. Nullable: agents that never heartbeat
(older clients, Prefect's agents) keep NULL and are judged by their polls alone.
"""

from peewee import DateTimeField

MODELS = ()


def up(migrator, db):
    """Add the nullable ``last_heartbeat`` column."""
    migrator.migrate(migrator.add_column("agent", "last_heartbeat", DateTimeField(null=True)))


def down(migrator, db):
    """Drop ``last_heartbeat``."""
    migrator.migrate(migrator.drop_column("agent", "last_heartbeat"))
