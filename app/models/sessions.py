"""Signed-in dashboard sessions, kept server-side so that signing out ends them.

The browser's cookie holds a random token; the row is keyed by the token's SHA-256 (a copy
of the table signs no one in). See ``app.services.dashboard_sessions``.
"""

from peewee import CharField, Model

from app.db import database
from app.models.base import UTCDateTimeField


class DashboardSession(Model):
    """One signed-in dashboard session: the token's digest, the API key's fingerprint it was
    opened with, when it was opened and when it was last used (refreshed at most once a
    minute)."""

    id = CharField(primary_key=True, max_length=64)
    key_fingerprint = CharField(max_length=64)
    created = UTCDateTimeField()
    last_seen = UTCDateTimeField(index=True)

    class Meta:
        database = database
        legacy_table_names = False
        table_name = "dashboard_session"
