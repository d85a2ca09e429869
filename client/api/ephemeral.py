"""The ephemeral API: the Orion app in this process, for clients with no ``ORION_API_URL``.

The first client that needs it builds the app (``app.create_app``, imported here, lazily: the
only place the client touches the server's code) on the SQLite database
``$ORION_HOME/orion.db`` (or ``ORION_DATABASE_URL`` if set), creating the file and applying
pending migrations first, exactly as ``orion start`` does (and, like it, only refusing a
database newer than this Orion when ``ORION_DATABASE_MIGRATE_ON_START`` is false). One app
per process, shared by every client after it (the server binds one database per process);
later clients get the same app whatever their ``ORION_HOME``. Clients reach it through
``httpx.WSGITransport``: the same code path as a real server, with no background services,
as in Prefect's ephemeral mode.
"""

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ephemeral_app"]

_lock = threading.Lock()
_app = None


def ephemeral_app(home: str) -> Callable[..., Any]:
    """The process's ephemeral Orion app, built and migrated on first use under ``home``."""
    global _app
    with _lock:
        if _app is None:
            _app = _build(home)
        return _app


def _build(home: str) -> Callable[..., Any]:
    from app import create_app, migrations
    from app.config import load_config
    from app.db import database, init_database

    # Nothing but this process reaches the app, through the client's base URL, whose Host
    # ("localhost") must pass the app's Host check whatever ORION_TRUSTED_HOSTS says.
    overrides = {"HOME": home, "TRUSTED_HOSTS": ["localhost"]}
    config = load_config(overrides)
    if config["DATABASE_MIGRATE_ON_START"]:
        init_database(config)
        with database.connection_context():
            migrations.upgrade(database)
    return create_app(overrides)
