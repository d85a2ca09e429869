"""Signed-in dashboard sessions (``dashboard_session``), so that signing out ends them.

Signing in makes a random token: the browser keeps it in its (signed) session cookie, the
database keeps its SHA-256 with the fingerprint of the API key it was opened with. A request
is signed in while that row exists, carries the current key's fingerprint, and was last used
less than ``lifetime`` seconds ago; using it refreshes ``last_seen`` at most once per
:data:`REFRESH_SECONDS` (one write a minute per active session, not one per request).
Signing out deletes the row, so every copy of the cookie stops working at once. Expired rows
are deleted whenever someone signs in.
"""

import datetime
import hashlib
import secrets

from app.db import database
from app.models import DashboardSession, utcnow

# Seconds between two refreshes of a session's last_seen.
REFRESH_SECONDS = 60


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(key_fingerprint: str, lifetime: float) -> str:
    """Open a session for the key with ``key_fingerprint``; returns its token (for the
    cookie). Sessions unused for ``lifetime`` seconds are deleted on the way."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with database.atomic():
        DashboardSession.delete().where(
            DashboardSession.last_seen < now - datetime.timedelta(seconds=lifetime)
        ).execute()
        DashboardSession.insert(
            id=_digest(token), key_fingerprint=key_fingerprint, created=now, last_seen=now
        ).execute()
    return token


def session_is_valid(token: str, key_fingerprint: str, lifetime: float) -> bool:
    """True if ``token``'s session exists, was opened with this key and was used less than
    ``lifetime`` seconds ago (refreshing its ``last_seen`` when due)."""
    now = utcnow()
    row = DashboardSession.get_or_none(DashboardSession.id == _digest(token))
    if row is None or row.key_fingerprint != key_fingerprint:
        return False
    idle = (now - row.last_seen).total_seconds()
    if idle >= lifetime:
        return False
    if idle >= REFRESH_SECONDS:
        DashboardSession.update(last_seen=now).where(DashboardSession.id == row.id).execute()
    return True


def end_session(token: str) -> None:
    """Delete ``token``'s session (nothing happens if it is gone already)."""
    DashboardSession.delete().where(DashboardSession.id == _digest(token)).execute()
