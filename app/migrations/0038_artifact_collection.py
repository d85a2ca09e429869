"""Each artifact key's latest in its own table, ``artifact_collection`` (Prefect 2.20's name).

Lists of each key's latest (Prefect 2.20's ``/api/artifacts/latest/filter``, the dashboard's
``/artifacts``) found them in one grouped pass over every artifact's ``(key, created)``: 0.2-0.4
s a page with 100,000 keys. With a row per key they read one row per key. The table is filled
from the existing artifacts: for each key its newest by ``created``, then by id (as the
service orders them). Frozen model, as in ``0022_flow_run_input``.
"""

from peewee import CharField, DateTimeField, Model, UUIDField


class ArtifactCollection(Model):
    key = CharField(primary_key=True)
    latest_id = UUIDField(unique=True)
    latest_created = DateTimeField()

    class Meta:
        legacy_table_names = False
        table_name = "artifact_collection"
        # Lists of each key's latest, newest first.
        indexes = ((("latest_created", "latest_id"), False),)


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (ArtifactCollection,)

_FILL = """
INSERT INTO artifact_collection (key, latest_id, latest_created)
SELECT a.key, a.id, a.created FROM artifact a
WHERE a.key IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM artifact b
    WHERE b.key = a.key AND (b.created > a.created OR (b.created = a.created AND b.id > a.id))
)
"""


def up(migrator, db):
    """Create the table and give every key with artifacts its latest."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)
    db.execute_sql(_FILL)


def down(migrator, db):
    """Drop the table (the artifacts keep what it was made from)."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
