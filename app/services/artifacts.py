"""Artifacts (Prefect 2.20): what flow and task runs make for people to see.

Artifacts sharing a ``key`` are versions of one; the key's *latest* is its newest artifact
(by creation time, then id), found through the ``(key, created)`` index rather than kept in
a second table, so creating or deleting an artifact has nothing else to keep in step.
``/latest`` reads and filters see only those. Two forms of the same test: per row
(:func:`latest_of_its_key`, a look-up per artifact, for a run's few artifacts), and for
lists over every artifact (:func:`_latest_only`, one grouped pass over the index: 40-80 ms
for a page at 300,000 artifacts on both backends, where a look-up per artifact took
0.4-1 s).
"""

import uuid
from collections.abc import Mapping
from typing import Any

from peewee import Tuple, fn

from app.db import database
from app.exceptions import ObjectNotFound
from app.models import Artifact, utcnow
from app.services import filters
from app.services.common import Body, Id, get_or_raise

_FIELDS = ("key", "type", "description", "data", "metadata_", "flow_run_id", "task_run_id")
_CHANGEABLE = ("data", "description", "metadata_")


def create_artifact(values: Mapping[str, Any]) -> Artifact:
    """Create an artifact from a loaded create body."""
    now = utcnow()
    with database.atomic():
        return Artifact.create(
            id=uuid.uuid4(),
            created=now,
            updated=now,
            **{key: values.get(key) for key in _FIELDS},
        )


def read_artifact(artifact_id: Id) -> Artifact:
    """The artifact with this id; ObjectNotFound if none."""
    return get_or_raise(
        Artifact.select().where(Artifact.id == artifact_id), "Artifact", artifact_id
    )


def latest_of_its_key() -> Any:
    """The condition keeping an artifact only if it is its key's latest, tested row by row
    (for a few rows; lists use :func:`_latest_only`)."""
    newer = Artifact.alias("newer")
    return Artifact.key.is_null(False) & (
        Artifact.id
        == newer.select(newer.id)
        .where(newer.key == Artifact.key)
        .order_by(newer.created.desc(), newer.id.desc())
        .limit(1)
    )


def read_latest_artifact(key: str) -> Artifact:
    """The newest artifact of ``key``; ObjectNotFound if it has none."""
    return get_or_raise(
        Artifact.select()
        .where(Artifact.key == key)
        .order_by(Artifact.created.desc(), Artifact.id.desc()),
        "Artifact with key",
        repr(key),
    )


def _latest_only(query: Any) -> Any:
    """``query`` keeping each key's latest: an artifact whose ``(key, created)`` is its key's
    newest (one grouped pass over the index), and which no artifact of the same key and
    instant outranks by id (looked up only for those few)."""
    newest = Artifact.alias("newest")
    per_key = (
        newest.select(newest.key, fn.MAX(newest.created))
        .where(newest.key.is_null(False))
        .group_by(newest.key)
    )
    twin = Artifact.alias("twin")
    outranked = twin.select(twin.id).where(
        (twin.key == Artifact.key) & (twin.created == Artifact.created) & (twin.id > Artifact.id)
    )
    return query.where(
        Artifact.key.is_null(False)
        & Tuple(Artifact.key, Artifact.created).in_(per_key)
        & ~fn.EXISTS(outranked)
    )


def _query(body: Body, latest: bool) -> Any:
    query = Artifact.select()
    if latest:
        query = _latest_only(query)
    return filters.apply_filters(query, Artifact, body)


def read_artifacts(body: Body, latest: bool = False) -> list[Artifact]:
    """Artifacts (or, with ``latest``, each key's latest) matching a filter body (its
    ``artifacts``, ``flow_runs``, ``task_runs``, ``flows`` and ``deployments``), sorted and
    paged."""
    return list(filters.sort_and_page(_query(body, latest), Artifact, body))


def count_artifacts(body: Body, latest: bool = False) -> int:
    """How many artifacts (or keys' latest) match a filter body."""
    return _query(body, latest).count()


def update_artifact(artifact_id: Id, changes: Mapping[str, Any]) -> None:
    """Change an artifact's data, description or metadata (what is given); ObjectNotFound if
    there is no such artifact."""
    columns = {key: changes[key] for key in _CHANGEABLE if key in changes}
    with database.atomic():
        updated = (
            Artifact.update(updated=utcnow(), **columns).where(Artifact.id == artifact_id).execute()
        )
    if not updated:
        raise ObjectNotFound(f"Artifact {artifact_id} not found.")


def delete_artifact(artifact_id: Id) -> None:
    """Delete an artifact (its key's previous version, if any, becomes the latest);
    ObjectNotFound if none."""
    with database.atomic():
        deleted = Artifact.delete().where(Artifact.id == artifact_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Artifact {artifact_id} not found.")


def artifacts_of_flow_run(flow_run_id: Id, limit: int) -> list[Artifact]:
    """The artifacts of a flow run and of its task runs, oldest first (the run page's)."""
    return list(
        Artifact.select()
        .where(Artifact.flow_run_id == flow_run_id)
        .order_by(Artifact.created, Artifact.id)
        .limit(limit)
    )


def versions_of(key: str, limit: int, offset: int) -> list[Artifact]:
    """The artifacts of ``key``, newest first (the first is its latest), paged."""
    return list(
        Artifact.select()
        .where(Artifact.key == key)
        .order_by(Artifact.created.desc(), Artifact.id.desc())
        .offset(offset)
        .limit(limit)
    )


def version_counts(keys: list[str]) -> dict[str, int]:
    """``{key: how many artifacts it has}`` for the given keys, in one query."""
    if not keys:
        return {}
    query = (
        Artifact.select(Artifact.key, fn.COUNT(Artifact.key))
        .where(Artifact.key.in_(keys))
        .group_by(Artifact.key)
    )
    return dict(query.tuples())
