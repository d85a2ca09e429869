"""Global concurrency limits (Prefect 2.20's ``/v2/concurrency_limits``):
``concurrency_limit_v2``, a named pool of slots (a concurrency or, with slot decay, a rate
limit), and ``concurrency_lease_v2``, the slots one holder took with an expiry, so a killed
holder's slots come back. Frozen models, as in ``0001_initial``.
"""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    UUIDField,
)


class GlobalConcurrencyLimit(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)
    active = BooleanField(default=True)
    name = CharField(unique=True)
    limit = IntegerField()
    active_slots = IntegerField(default=0)
    denied_slots = IntegerField(default=0)
    slot_decay_per_second = FloatField(default=0.0)
    avg_slot_occupancy_seconds = FloatField(default=2.0)
    decayed_at = DateTimeField()

    class Meta:
        legacy_table_names = False
        table_name = "concurrency_limit_v2"


class GlobalConcurrencyLease(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)
    limit = ForeignKeyField(GlobalConcurrencyLimit, on_delete="CASCADE", index=False)
    holder = UUIDField()
    slots = IntegerField()
    expires = DateTimeField(index=True)

    class Meta:
        legacy_table_names = False
        table_name = "concurrency_lease_v2"
        indexes = ((("limit", "holder"), True), (("holder",), False))


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (GlobalConcurrencyLimit, GlobalConcurrencyLease)


def up(migrator, db):
    """Create the tables with their indexes; fails if they already exist."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop the tables."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
