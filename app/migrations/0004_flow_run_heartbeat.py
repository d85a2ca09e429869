"""Flow run heartbeats: ``flow_run.last_heartbeat``, the time a running flow last reported in.

Set by ``POST /api/flow_runs/{id}/heartbeat``; read by the service that marks silent runs
Crashed. Nullable: runs that never heartbeat (older clients, runs not yet started) keep NULL.
"""

from peewee import DateTimeField

MODELS = ()


def up(migrator, db):
    """Add the nullable ``last_heartbeat`` column."""
    migrator.migrate(migrator.add_column("flow_run", "last_heartbeat", DateTimeField(null=True)))


def down(migrator, db):
    """Drop ``last_heartbeat``."""
    migrator.migrate(migrator.drop_column("flow_run", "last_heartbeat"))
