"""Flow run input (Prefect 2.20): ``flow_run_input``, keyed text values a flow run receives
(``pause_flow_run(wait_for_input=...)`` stores its input's schema there, and the input a resume
sends). One value per run and key; a run's inputs go with it. Frozen models, as in
``0006_agents`` (``flow_run`` carries only its primary key).
"""

from peewee import CharField, DateTimeField, ForeignKeyField, Model, TextField, UUIDField


class _Base(Model):
    id = UUIDField(primary_key=True)

    class Meta:
        legacy_table_names = False


class FlowRun(_Base):
    class Meta:
        table_name = "flow_run"


class FlowRunInput(_Base):
    created = DateTimeField()
    updated = DateTimeField(index=True)
    flow_run = ForeignKeyField(FlowRun, on_delete="CASCADE", index=False)
    key = CharField()
    value = TextField()
    sender = CharField(null=True)

    class Meta:
        table_name = "flow_run_input"
        # Also serves a run's inputs by key prefix (its leading column), hence no FK index.
        indexes = ((("flow_run", "key"), True),)


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (FlowRunInput,)


def up(migrator, db):
    """Create the table with its unique (flow_run, key) index; fails if it already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop the table."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
