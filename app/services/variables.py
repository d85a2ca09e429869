"""Variables (Prefect 2.20): named text values that flows read at run time.

Names are unique; creating a second variable of a name is a Conflict, and so is renaming one
to a name that is taken (the unique index decides, so concurrent creates leave one row).
"""

import uuid
from collections.abc import Mapping
from typing import Any

from peewee import IntegrityError

from app.db import database
from app.exceptions import ObjectAlreadyExists, ObjectNotFound
from app.models import Variable, utcnow
from app.services import filters
from app.services.common import Body, Id, get_or_raise

_FIELDS = ("name", "value", "tags")


def _taken(name: str) -> ObjectAlreadyExists:
    return ObjectAlreadyExists(f"A variable named {name!r} already exists.")


def create_variable(values: Mapping[str, Any]) -> Variable:
    """Create a variable from a loaded create body; ObjectAlreadyExists if the name is taken."""
    now = utcnow()
    try:
        with database.atomic():
            return Variable.create(
                id=uuid.uuid4(),
                created=now,
                updated=now,
                name=values["name"],
                value=values["value"],
                tags=values.get("tags") or [],
            )
    except IntegrityError:
        raise _taken(values["name"]) from None


def read_variable(variable_id: Id) -> Variable:
    """The variable with this id; ObjectNotFound if none."""
    return get_or_raise(
        Variable.select().where(Variable.id == variable_id), "Variable", variable_id
    )


def read_variable_by_name(name: str) -> Variable:
    """The variable with this name; ObjectNotFound if none."""
    return get_or_raise(Variable.select().where(Variable.name == name), "Variable", name)


def read_variables(body: Body) -> list[Variable]:
    """Variables matching a filter body (``variables``), sorted (``NAME_ASC`` by default)
    and paged."""
    query = filters.apply_filters(Variable.select(), Variable, body)
    return list(filters.sort_and_page(query, Variable, body))


def count_variables(body: Body) -> int:
    """How many variables match a filter body."""
    return filters.apply_filters(Variable.select(), Variable, body).count()


def update_variable(variable_id: Id, changes: Mapping[str, Any]) -> None:
    """Apply a loaded update body to the variable with this id; ObjectNotFound if none,
    ObjectAlreadyExists for a new name that is taken."""
    _update(Variable.id == variable_id, changes, variable_id)


def update_variable_by_name(name: str, changes: Mapping[str, Any]) -> None:
    """:func:`update_variable` for the variable with this name."""
    _update(Variable.name == name, changes, repr(name))


def delete_variable(variable_id: Id) -> None:
    """Delete the variable with this id; ObjectNotFound if none."""
    _delete(Variable.id == variable_id, variable_id)


def delete_variable_by_name(name: str) -> None:
    """Delete the variable with this name; ObjectNotFound if none."""
    _delete(Variable.name == name, repr(name))


def _update(where: Any, changes: Mapping[str, Any], label: Any) -> None:
    columns = {key: changes[key] for key in _FIELDS if changes.get(key) is not None}
    try:
        with database.atomic():
            updated = Variable.update(updated=utcnow(), **columns).where(where).execute()
    except IntegrityError:
        raise _taken(changes["name"]) from None
    if not updated:
        raise ObjectNotFound(f"Variable {label} not found.")


def _delete(where: Any, label: Any) -> None:
    with database.atomic():
        deleted = Variable.delete().where(where).execute()
    if not deleted:
        raise ObjectNotFound(f"Variable {label} not found.")
