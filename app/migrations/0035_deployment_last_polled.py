"""When a Prefect 2.20 runner (``flow.serve()``) last asked for a deployment's runs:
``deployment.last_polled``, nullable (never). With its work queue's own ``last_polled`` it
makes the deployment's ``status`` (READY when polled within a minute, as Prefect 2.20's).
"""

from peewee import DateTimeField

MODELS = ()


def up(migrator, db):
    """Add the nullable ``last_polled`` column."""
    migrator.migrate(migrator.add_column("deployment", "last_polled", DateTimeField(null=True)))


def down(migrator, db):
    """Drop ``last_polled``."""
    migrator.migrate(migrator.drop_column("deployment", "last_polled"))
