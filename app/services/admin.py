"""Server administration: database health, the settings as the API shows them, and the
database operations of ``/api/admin/database/...``."""

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from app.db import database
from app.models import TABLES
from app.services import block_crypto, blocks

OBFUSCATED = "*" * 8
# Settings whose values are secrets, shown as OBFUSCATED when set.
SECRET_SETTINGS = frozenset({"API_KEY", "SECRET_KEY", "ENCRYPTION_KEY"})
# Settings that are URLs which may carry a password (user:password@host).
URL_SETTINGS = frozenset({"DATABASE_URL", "REDIS_URL"})
_URL_PASSWORD = re.compile(r"^([a-z0-9+.-]+://[^:/@]*:)([^@]*)(@)", re.IGNORECASE)


def database_problem() -> str | None:
    """None when the database answers a trivial query, else a one-line description."""
    try:
        with database.connection_context():
            database.execute_sql("SELECT 1").fetchone()
    except Exception as error:  # any driver error means "unhealthy", reported not raised
        return f"{type(error).__name__}: {str(error).strip() or 'no detail'}"
    return None


def pending_migrations(migrations: Any) -> list[str]:
    """The names of the migrations not applied to the database, oldest first. ``migrations``
    is the ``app.migrations`` package, handed over by the assembly (services do not import
    it: see DESIGN.md's layers)."""
    with database.connection_context():
        return [name for name, applied in migrations.status(database) if not applied]


def _shown(name: str, value: Any) -> Any:
    if value in (None, ""):
        return value
    if name in SECRET_SETTINGS:
        return OBFUSCATED
    if name in URL_SETTINGS and isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m.group(1) + OBFUSCATED + m.group(3), value)
    return value


def settings_view(config: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``{"ORION_<NAME>": value}`` of the settings ``names`` in ``config``, secrets replaced by
    ``********`` and passwords in URLs too (Prefect's ``with_obfuscated_secrets``). Values
    that are not JSON (none today) are shown as their text."""
    view: dict[str, Any] = {}
    for name in sorted(names):
        value = _shown(name, config.get(name))
        if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
            value = str(value)
        view[f"ORION_{name}"] = value
    return view


def clear_database() -> None:
    """Delete every row of every Orion table (the schema stays), then register the system
    block types and this server's encryption key fingerprint again, as a start would."""
    with database.atomic():
        for model in reversed(TABLES):
            model.delete().execute()
    block_crypto.check_key()
    blocks.install_system_block_types()


def drop_database(downgrade: Callable[[Any, Any], object]) -> None:
    """Drop every Orion table: ``downgrade`` (``app.migrations.downgrade``, passed in by the
    caller since services do not import the migrations) reverts every migration."""
    downgrade(database, None)


def create_database(upgrade: Callable[[Any], object]) -> None:
    """Create the Orion tables: ``upgrade`` (``app.migrations.upgrade``) applies every pending
    migration; then the system block types and key fingerprint are registered."""
    upgrade(database)
    block_crypto.check_key()
    blocks.install_system_block_types()


def flow_run_summary(now: Any) -> list[tuple[str, int, int, int, float]]:
    """Flow runs by state type in one grouped query (for ``/metrics``): rows of
    ``(state_type, count, due, late, oldest_due_seconds)``, where ``due`` counts the SCHEDULED
    runs whose time has come, ``late`` those marked Late, and ``oldest_due_seconds`` is how
    long the earliest has waited (all 0 for other state types). One pass over ``flow_run``'s
    four state columns, no join."""
    from peewee import SQL, Case, fn

    from app.models import FlowRun

    due = fn.SUM(Case(None, [(FlowRun.next_scheduled_start_time <= now, 1)], 0))
    late = fn.SUM(Case(None, [(FlowRun.state_name == "Late", 1)], 0))
    query = FlowRun.select(
        FlowRun.state_type,
        fn.COUNT(SQL("*")),
        due,
        late,
        fn.MIN(FlowRun.next_scheduled_start_time),
    ).group_by(FlowRun.state_type)
    rows = []
    for state_type, count, due_count, late_count, earliest in query.tuples():
        if state_type != "SCHEDULED" or earliest is None:
            rows.append((state_type, count, 0, 0, 0.0))
            continue
        waited = max(0.0, (now - earliest).total_seconds())
        rows.append((state_type, count, int(due_count or 0), int(late_count or 0), waited))
    return rows
