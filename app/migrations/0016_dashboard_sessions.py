"""Dashboard sessions server-side: ``dashboard_session``, one row per signed-in session, so
that signing out ends a session for every copy of its cookie. Independent of every other
table: it needs only an initialised database (any migration before it may be missing).
Frozen model, as in ``0001_initial``.
"""

from peewee import CharField, DateTimeField, Model


class DashboardSession(Model):
    id = CharField(primary_key=True, max_length=64)
    key_fingerprint = CharField(max_length=64)
    created = DateTimeField()
    last_seen = DateTimeField(index=True)

    class Meta:
        legacy_table_names = False
        table_name = "dashboard_session"


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (DashboardSession,)


def up(migrator, db):
    """Create the table and its index; fails if it already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop the table (everyone is signed out)."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
