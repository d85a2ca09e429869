"""Logs: bulk insertion and filtered reads."""
import uuid

from app.db import database
from app.models import Log, utcnow
from app.services import filters


def create_logs(records):
    """Insert a batch of loaded log records in one statement; returns how many."""
    if not records:
        return 0
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
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
        Log.insert_many(rows).execute()
    return len(rows)


def read_logs(body):
    """Logs matching a filter body (``logs``, sort, limit, offset)."""
    query = filters.apply_filters(Log.select(), Log, body)
    return list(filters.sort_and_page(query, Log, body))
