"""A flow run's own job variables and its deployment's version (Prefect 2.20):
``flow_run.job_variables``, what ``run_deployment(job_variables=...)`` and ``prefect
deployment run --job-variable`` give one run (its worker merges them over the deployment's),
and ``flow_run.deployment_version``, the version its deployment had when the run was made.
Both nullable: runs made before, or not from a deployment, have neither.
"""

from peewee import CharField, JSONField

MODELS = ()


def up(migrator, db):
    """Add the nullable ``job_variables`` and ``deployment_version`` columns."""
    migrator.migrate(
        migrator.add_column("flow_run", "job_variables", JSONField(null=True)),
        migrator.add_column("flow_run", "deployment_version", CharField(null=True)),
    )


def down(migrator, db):
    """Drop ``job_variables`` and ``deployment_version``."""
    migrator.migrate(
        migrator.drop_column("flow_run", "job_variables"),
        migrator.drop_column("flow_run", "deployment_version"),
    )
