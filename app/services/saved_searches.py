"""Saved searches: named filter presets of the dashboard, upserted by name.

``filters`` is Orion's list of ``{"object", "property", "type", "operation", "value"}``
conditions; this module stores it as given and never interprets it.
"""

import uuid
from typing import Any

from app.db import database
from app.exceptions import ObjectNotFound
from app.models import SavedSearch, utcnow
from app.services.common import Id, get_or_raise


def upsert_saved_search(name: str, filters: Any) -> tuple[SavedSearch, bool]:
    """Save ``filters`` under ``name``, replacing the filters of an existing search of that
    name. Returns ``(search, created)``; one ``INSERT ... ON CONFLICT (name) DO UPDATE``
    decides, so concurrent saves leave one row."""
    new_id = uuid.uuid4()
    now = utcnow()
    with database.atomic():
        (
            SavedSearch.insert(id=new_id, name=name, filters=filters, created=now, updated=now)
            .on_conflict(
                conflict_target=[SavedSearch.name],
                update={SavedSearch.filters: filters, SavedSearch.updated: now},
            )
            .execute()
        )
        search = SavedSearch.get(SavedSearch.name == name)
    return search, search.id == new_id


def read_saved_search(search_id: Id) -> SavedSearch:
    """The saved search with this id; ObjectNotFound if there is none."""
    return get_or_raise(
        SavedSearch.select().where(SavedSearch.id == search_id), "Saved search", search_id
    )


def read_saved_searches(limit: int, offset: int = 0) -> list[SavedSearch]:
    """A page of saved searches ordered by name."""
    return list(SavedSearch.select().order_by(SavedSearch.name).limit(limit).offset(offset))


def delete_saved_search(search_id: Id) -> None:
    """Delete a saved search; ObjectNotFound if there is none."""
    with database.atomic():
        deleted = SavedSearch.delete().where(SavedSearch.id == search_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Saved search {search_id} not found.")
