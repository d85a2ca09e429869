"""A flow run's exit code: ``flow_run.infrastructure_exit_code``, the code the run's
infrastructure (process, container, Job) ended with, as the agent that started it saw it.

Set through ``PATCH /api/flow_runs/{id}`` (an Orion extension of its body) when the agent
finds the infrastructure ended; shown on the run's page beside ``infrastructure_pid``.
Nullable: runs not started by an agent, still running, or reported by older agents and
Prefect's keep NULL.
"""

from peewee import IntegerField

MODELS = ()


def up(migrator, db):
    """Add the nullable ``infrastructure_exit_code`` column."""
    migrator.migrate(
        migrator.add_column("flow_run", "infrastructure_exit_code", IntegerField(null=True))
    )


def down(migrator, db):
    """Drop ``infrastructure_exit_code``."""
    migrator.migrate(migrator.drop_column("flow_run", "infrastructure_exit_code"))
