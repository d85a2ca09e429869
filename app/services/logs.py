"""Logs: bulk insertion and filtered reads."""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from peewee import chunked

from app.db import database
from app.models import Log, utcnow
from app.services import filters
from app.services.common import Body

#: Log rows per INSERT statement: 9 parameters a row, 9,000 a statement.
ROWS_PER_INSERT = 1000


def create_logs(records: Sequence[Mapping[str, Any]]) -> int:
    """Insert a batch of loaded log records in one transaction; returns how many were given.

    Any number of records: they are inserted :data:`ROWS_PER_INSERT` to a statement, which
    keeps each statement's parameters within SQLite's limit (32,766).

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
    # Compiled before the transaction: building the SQL is most of an insert's time (about
    # 40 ms per 1,000 rows against 10 to run it), and SQLite's write lock is held from the
    # first insert to the commit.
    statements = [
        Log.insert_many(chunk).on_conflict_ignore().sql()
        for chunk in chunked(rows, ROWS_PER_INSERT)
    ]
    with database.atomic():
        for sql, params in statements:
            database.execute_sql(sql, params)
    return len(rows)


def read_logs(body: Body) -> list[Log]:
    """Logs matching a filter body (``logs``, sort, limit, offset)."""
    query = filters.apply_filters(Log.select(), Log, body)
    return list(filters.sort_and_page(query, Log, body))
