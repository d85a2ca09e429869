"""Logs: bulk insertion and filtered reads."""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from app.db import database
from app.models import Log, utcnow
from app.services import filters
from app.services.common import Body


def create_logs(records: Sequence[Mapping[str, Any]]) -> int:
    """Insert a batch of loaded log records in one statement; returns how many were given.

    A record carrying an ``id`` that is already stored (a client retrying a batch whose answer
    it lost) is skipped (``ON CONFLICT DO NOTHING``); records without one get a new id.
    """
    if not records:
        return 0
    now = utcnow()
    rows = [
        {
            "id": r.get("id") or uuid.uuid4(),
            "created": now,
            "updated": now,
            "name": r["name"],
            "level": r["level"],
            "message": r["message"],
            "timestamp": r["timestamp"],
            "flow_run_id": r["flow_run_id"],
            "task_run_id": r.get("task_run_id"),
        }
        for r in records
    ]
    with database.atomic():
        Log.insert_many(rows).on_conflict_ignore().execute()
    return len(rows)


def read_logs(body: Body) -> list[Log]:
    """Logs matching a filter body (``logs``, sort, limit, offset)."""
    query = filters.apply_filters(Log.select(), Log, body)
    return list(filters.sort_and_page(query, Log, body))
