"""Several schedules per deployment (Prefect 2.20): ``deployment_schedule``, and
``deployment.paused`` / ``deployment.enforce_parameter_schema``.

A deployment's one ``schedule`` becomes one ``deployment_schedule`` row, active as its
``is_schedule_active`` was, and ``paused`` is ``NOT is_schedule_active`` (so a deployment
paused without a schedule stays paused); then ``schedule`` and ``is_schedule_active`` are
dropped: the schedules table is the one place a schedule lives. Down puts the first schedule
(the oldest) back in ``schedule`` and ``NOT paused`` in ``is_schedule_active``: a deployment's
other schedules are lost on the way down. Frozen models, as in ``0001_initial``.
"""

import datetime
import uuid

from peewee import (
    BooleanField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    UUIDField,
)


class Deployment(Model):
    id = UUIDField(primary_key=True)
    updated = DateTimeField()
    schedule = JSONField(null=True)
    is_schedule_active = BooleanField()
    paused = BooleanField()

    class Meta:
        table_name = "deployment"


class DeploymentSchedule(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)
    deployment = ForeignKeyField(Deployment, on_delete="CASCADE")
    schedule = JSONField()
    active = BooleanField()
    max_active_runs = IntegerField(null=True)
    max_scheduled_runs = IntegerField(null=True)
    catchup = BooleanField()

    class Meta:
        legacy_table_names = False
        table_name = "deployment_schedule"


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (DeploymentSchedule,)
_BOUND = (Deployment, DeploymentSchedule)
_OLD_INDEX = "deployment_is_schedule_active"


def _stamp(value):
    """A naive UTC time as the app's UTCDateTimeField writes it (fixed width, so SQLite's
    text sorts)."""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def up(migrator, db):
    """Create ``deployment_schedule``, add ``paused`` and ``enforce_parameter_schema``, move
    every schedule into the new table, then drop the old columns."""
    with db.bind_ctx(_BOUND):
        db.create_tables(MODELS, safe=False)
        migrator.migrate(
            migrator.add_column("deployment", "paused", BooleanField(default=False)),
            migrator.add_column(
                "deployment", "enforce_parameter_schema", BooleanField(default=False)
            ),
            migrator.add_index("deployment", ("paused",)),
        )
        Deployment.update(paused=~Deployment.is_schedule_active).execute()
        rows = [
            {
                "id": uuid.uuid4(),
                "created": _stamp(updated),
                "updated": _stamp(updated),
                "deployment": deployment_id,
                "schedule": schedule,
                "active": active,
                "catchup": False,
            }
            for deployment_id, updated, schedule, active in Deployment.select(
                Deployment.id,
                Deployment.updated,
                Deployment.schedule,
                Deployment.is_schedule_active,
            )
            .where(Deployment.schedule.is_null(False))
            .tuples()
        ]
        for offset in range(0, len(rows), 500):
            DeploymentSchedule.insert_many(rows[offset : offset + 500]).execute()
        migrator.migrate(
            migrator.drop_index("deployment", _OLD_INDEX),
            migrator.drop_column("deployment", "schedule"),
            migrator.drop_column("deployment", "is_schedule_active"),
        )


def down(migrator, db):
    """Put each deployment's first schedule back in ``schedule`` (its others are lost),
    ``NOT paused`` in ``is_schedule_active``; drop what ``up`` added."""
    with db.bind_ctx(_BOUND):
        migrator.migrate(
            migrator.add_column("deployment", "schedule", JSONField(null=True)),
            migrator.add_column("deployment", "is_schedule_active", BooleanField(default=True)),
            migrator.add_index("deployment", ("is_schedule_active",)),
        )
        Deployment.update(is_schedule_active=~Deployment.paused).execute()
        first: dict = {}
        for deployment_id, schedule in (
            DeploymentSchedule.select(DeploymentSchedule.deployment, DeploymentSchedule.schedule)
            .order_by(DeploymentSchedule.created, DeploymentSchedule.id)
            .tuples()
        ):
            first.setdefault(deployment_id, schedule)
        for deployment_id, schedule in first.items():
            Deployment.update(schedule=schedule).where(Deployment.id == deployment_id).execute()
        migrator.migrate(
            migrator.drop_index("deployment", "deployment_paused"),
            migrator.drop_column("deployment", "paused"),
            migrator.drop_column("deployment", "enforce_parameter_schema"),
        )
        db.drop_tables(MODELS, safe=False)
