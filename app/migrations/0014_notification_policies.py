"""Flow run notifications: ``flow_run_notification_policy`` (when to notify, through which
block document) and ``flow_run_notification_queue`` (notifications waiting to be sent, with
their attempts). Frozen models, as in ``0001_initial``.
"""

from peewee import (
    BooleanField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
    UUIDField,
)


class _Base(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)

    class Meta:
        legacy_table_names = False


class BlockDocument(_Base):
    """The existing table (0013), referenced by the policy's foreign key; not created here."""

    class Meta:
        table_name = "block_document"


class FlowRunNotificationPolicy(_Base):
    is_active = BooleanField(default=True)
    state_names = JSONField(default=list)
    tags = JSONField(default=list)
    block_document = ForeignKeyField(BlockDocument, on_delete="CASCADE")
    message_template = TextField(null=True)

    class Meta:
        table_name = "flow_run_notification_policy"


class FlowRunNotification(_Base):
    policy_id = UUIDField()
    flow_run_state_id = UUIDField()
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(index=True)
    sending_since = DateTimeField(null=True)
    last_error = TextField(null=True)

    class Meta:
        table_name = "flow_run_notification_queue"
        indexes = ((("policy_id", "flow_run_state_id"), True),)


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (FlowRunNotificationPolicy, FlowRunNotification)


def up(migrator, db):
    """Create the two tables with their indexes; fails if one already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop the two tables."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
