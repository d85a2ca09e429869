"""Artifacts (Prefect 2.20): what flow and task runs make for people to see.

Artifacts sharing a ``key`` are versions of one; the key's *latest* is its newest artifact
(by creation time, then id). ``artifact_collection`` holds each key's latest, kept in step
here in the transaction of every create and delete (and by retention's prunes, through
:func:`refresh_latest`), so ``/latest`` reads and lists of each key's latest read one row
per key. A create records itself as its key's latest only if it is newer than the one
recorded (an upsert that compares), so creates that commit out of order, or race a
delete's refresh, still leave the newest.
"""

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from peewee import EXCLUDED, Tuple, fn

from app.db import database, for_update
from app.exceptions import ObjectNotFound
from app.models import Artifact, utcnow
from app.models import ArtifactCollection as Latest
from app.services import filters
from app.services.common import Body, Id, get_or_raise

_FIELDS = ("key", "type", "description", "data", "metadata_", "flow_run_id", "task_run_id")
_CHANGEABLE = ("data", "description", "metadata_")


def create_artifact(values: Mapping[str, Any]) -> Artifact:
    """Create an artifact from a loaded create body; with a key, it becomes its key's
    latest."""
    now = utcnow()
    with database.atomic():
        artifact = Artifact.create(
            id=uuid.uuid4(),
            created=now,
            updated=now,
            **{key: values.get(key) for key in _FIELDS},
        )
        if artifact.key is not None:
            _record_latest(artifact)
        return artifact


def _record_latest(artifact: Artifact) -> None:
    Latest.insert(
        key=artifact.key, latest_id=artifact.id, latest_created=artifact.created
    ).on_conflict(
        conflict_target=[Latest.key],
        update={
            Latest.latest_id: EXCLUDED.latest_id,
            Latest.latest_created: EXCLUDED.latest_created,
        },
        where=Tuple(EXCLUDED.latest_created, EXCLUDED.latest_id)
        > Tuple(Latest.latest_created, Latest.latest_id),
    ).execute()


def refresh_latest(keys: Iterable[str]) -> None:
    """Record again the latest of each of ``keys`` from its artifacts, or forget a key left
    with none. Call inside the transaction that deleted artifacts of those keys."""
    for key in sorted(set(keys)):
        # Lock the key's row first: a create's upsert of the key waits, then compares with
        # what this records.
        list(for_update(Latest.select(Latest.key).where(Latest.key == key)))
        newest = (
            Artifact.select(Artifact.id, Artifact.created)
            .where(Artifact.key == key)
            .order_by(Artifact.created.desc(), Artifact.id.desc())
            .first()
        )
        if newest is None:
            Latest.delete().where(Latest.key == key).execute()
        else:
            Latest.update(latest_id=newest.id, latest_created=newest.created).where(
                Latest.key == key
            ).execute()


def read_artifact(artifact_id: Id) -> Artifact:
    """The artifact with this id; ObjectNotFound if none."""
    return get_or_raise(
        Artifact.select().where(Artifact.id == artifact_id), "Artifact", artifact_id
    )


def latest_of_its_key() -> Any:
    """The condition keeping an artifact only if it is its key's latest."""
    return fn.EXISTS(Latest.select(Latest.key).where(Latest.latest_id == Artifact.id))


def read_latest_artifact(key: str) -> Artifact:
    """The newest artifact of ``key``; ObjectNotFound if it has none."""
    return get_or_raise(
        Artifact.select()
        .join(Latest, on=(Latest.latest_id == Artifact.id))
        .where(Latest.key == key),
        "Artifact with key",
        repr(key),
    )


def _query(body: Body, latest: bool) -> Any:
    query = Artifact.select()
    if latest:
        query = query.join(Latest, on=(Latest.latest_id == Artifact.id))
        # A key criterion asked of every artifact holds for its key's row too: there, the
        # database can filter the keys before it reads their artifacts.
        criteria = body.get("artifacts") or {}
        if criteria.get("key") and criteria.get("operator", "and_") == "and_":
            by_key = filters.column_condition(Latest.key, criteria["key"])
            if by_key is not None:
                query = query.where(by_key)
    return filters.apply_filters(query, Artifact, body)


# Lists of each key's latest sort by the key's row, whose columns repeat the latest's and are
# indexed: a page reads its rows in order rather than sorting every key's.
_LATEST_SORTS = {
    "CREATED_DESC": (Latest.latest_created.desc(), Latest.latest_id.desc()),
    "ID_DESC": (Latest.latest_id.desc(),),
    "KEY_DESC": (Latest.key.desc(),),
    "KEY_ASC": (Latest.key.asc(),),
}


def read_artifacts(body: Body, latest: bool = False) -> list[Artifact]:
    """Artifacts (or, with ``latest``, each key's latest) matching a filter body (its
    ``artifacts``, ``flow_runs``, ``task_runs``, ``flows`` and ``deployments``), sorted and
    paged."""
    query = _query(body, latest)
    sort = body.get("sort") or filters.DEFAULT_SORTS[Artifact]
    if latest and sort in _LATEST_SORTS:
        query = query.order_by(*_LATEST_SORTS[sort])
        return list(filters.apply_pagination(query, body.get("limit"), body.get("offset") or 0))
    return list(filters.sort_and_page(query, Artifact, body))


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
        artifact = Artifact.select(Artifact.key).where(Artifact.id == artifact_id).first()
        if artifact is None:
            raise ObjectNotFound(f"Artifact {artifact_id} not found.")
        Artifact.delete().where(Artifact.id == artifact_id).execute()
        if artifact.key is not None:
            refresh_latest([artifact.key])


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
