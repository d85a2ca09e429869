"""Helpers shared by the services: idempotent inserts, lookups that raise ObjectNotFound."""

import uuid
from collections.abc import Mapping
from typing import Any

from app.db import database
from app.exceptions import ObjectNotFound
from app.models import statements, utcnow
from app.models.base import BaseModel

# An id as the services take it: a UUID (as the API's schemas load it) or its text.
Id = uuid.UUID | str
# A request body as the API's schemas load it: filters, sort, paging, fields.
Body = Mapping[str, Any]


def get_or_raise(query: Any, label: str, object_id: Id) -> Any:
    """The first row of ``query``, or ObjectNotFound naming ``label`` and ``object_id``."""
    row = query.first()
    if row is None:
        raise ObjectNotFound(f"{label} {object_id} not found.")
    return row


def insert_or_get(
    model: type[BaseModel], values: Mapping[str, Any], unique_where: Any
) -> tuple[Any, bool]:
    """Insert ``values`` unless a row matching the unique key ``unique_where`` exists.

    Returns ``(row, created)``. Safe under any number of concurrent callers: the database's
    unique index decides (``ON CONFLICT DO NOTHING`` / ``INSERT OR IGNORE``), and the row is
    read back in the same transaction, so every caller gets the one row that won.
    """
    new_id = uuid.uuid4()
    with database.atomic():
        model.insert(id=new_id, **values).on_conflict_ignore().execute()
        row = model.get(unique_where)
    return row, row.id == new_id


def require_exists(model: type[BaseModel], object_id: Id, label: str) -> None:
    """Raise ObjectNotFound unless a ``model`` row with this id exists."""
    if not statements.exists(model, object_id):
        raise ObjectNotFound(f"{label} {object_id} not found.")


def update_or_raise(
    model: type[BaseModel], object_id: Id, changes: Mapping[str, Any], label: str
) -> None:
    """Apply ``changes`` to one row (stamping ``updated``); ObjectNotFound if there is none."""
    with database.atomic():
        updated = model.update(updated=utcnow(), **changes).where(model.id == object_id).execute()
    if not updated:
        raise ObjectNotFound(f"{label} {object_id} not found.")
