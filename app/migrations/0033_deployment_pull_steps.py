"""A deployment's pull steps (Prefect 2.20): ``deployment.pull_steps``, the steps a flow run
of the deployment runs to fetch its code before it starts, as ``prefect deploy`` and
``Flow.deploy`` send them (``[{"prefect.deployments.steps.set_working_directory":
{"directory": ...}}]``). Stored as given; nullable: deployments built the 0.8.4 way (storage
block and path) have none.
"""

from peewee import JSONField

MODELS = ()


def up(migrator, db):
    """Add the nullable ``pull_steps`` column."""
    migrator.migrate(migrator.add_column("deployment", "pull_steps", JSONField(null=True)))


def down(migrator, db):
    """Drop ``pull_steps``."""
    migrator.migrate(migrator.drop_column("deployment", "pull_steps"))
