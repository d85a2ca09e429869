"""Task concurrency limits by tag: upsert, reads, deletion, slot resets, slot holders.

Slots are leases (:class:`app.models.ConcurrencySlot`) taken and released by orchestration
(SecureTaskConcurrencySlots, ReleaseTaskConcurrencySlots). A limit's active slots are the task
runs holding an unexpired lease of it; expired leases are ignored everywhere.
"""

import datetime
import uuid
from collections.abc import Iterable
from typing import Any

from app.db import database, for_update
from app.exceptions import ObjectNotFound
from app.models import ConcurrencyLimit, ConcurrencySlot, TaskRun, utcnow
from app.services.common import Id, get_or_raise


def upsert_limit(tag: str, concurrency_limit: int) -> tuple[ConcurrencyLimit, bool]:
    """Create the limit on ``tag``, or set the existing one's ``concurrency_limit``.

    Returns ``(limit, created)``. One ``INSERT ... ON CONFLICT (tag) DO UPDATE`` decides, so
    any number of concurrent callers leave exactly one row and exactly one of them gets
    ``created``; each reads the row back in its own transaction.
    """
    new_id = uuid.uuid4()
    now = utcnow()
    with database.atomic():
        (
            ConcurrencyLimit.insert(
                id=new_id, tag=tag, concurrency_limit=concurrency_limit, created=now, updated=now
            )
            .on_conflict(
                conflict_target=[ConcurrencyLimit.tag],
                update={
                    ConcurrencyLimit.concurrency_limit: concurrency_limit,
                    ConcurrencyLimit.updated: now,
                },
            )
            .execute()
        )
        limit = ConcurrencyLimit.get(ConcurrencyLimit.tag == tag)
    return limit, limit.id == new_id


def read_limit(limit_id: Id) -> ConcurrencyLimit:
    """The limit with this id; ObjectNotFound if there is none."""
    return get_or_raise(
        ConcurrencyLimit.select().where(ConcurrencyLimit.id == limit_id),
        "Concurrency limit",
        limit_id,
    )


def read_limit_by_tag(tag: str) -> ConcurrencyLimit:
    """The limit on ``tag``; ObjectNotFound if there is none."""
    return get_or_raise(
        ConcurrencyLimit.select().where(ConcurrencyLimit.tag == tag),
        "Concurrency limit on tag",
        repr(tag),
    )


def read_limits(limit: int | None, offset: int) -> list[ConcurrencyLimit]:
    """A page of limits ordered by tag."""
    return list(
        ConcurrencyLimit.select().order_by(ConcurrencyLimit.tag).limit(limit).offset(offset)
    )


def delete_limit(limit_id: Id) -> None:
    """Delete a limit with its leases; ObjectNotFound if there is none."""
    with database.atomic():
        deleted = ConcurrencyLimit.delete().where(ConcurrencyLimit.id == limit_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Concurrency limit {limit_id} not found.")


def delete_limit_by_tag(tag: str) -> None:
    """Delete the limit on ``tag`` with its leases; ObjectNotFound if there is none."""
    with database.atomic():
        deleted = ConcurrencyLimit.delete().where(ConcurrencyLimit.tag == tag).execute()
    if not deleted:
        raise ObjectNotFound(f"Concurrency limit on tag {tag!r} not found.")


def reset_limit(
    tag: str, slot_override: Iterable[Id] | None, lease_seconds: float
) -> ConcurrencyLimit:
    """Drop every lease of the limit on ``tag``; then, if ``slot_override`` (task run ids) is
    given, lease each of those runs a slot for ``lease_seconds``. Returns the limit.

    ObjectNotFound if the limit or any listed task run does not exist (nothing changes). The
    override may exceed the limit: it is an operator's decision. Locks are taken in the
    order set_state takes them (task runs, then the limit), so a reset never deadlocks with
    a transition.
    """
    run_ids = sorted(set(slot_override or ()))
    now = utcnow()
    with database.atomic():
        found = set()
        if run_ids:
            found = {
                run.id
                for run in for_update(
                    TaskRun.select(TaskRun.id).where(TaskRun.id.in_(run_ids)).order_by(TaskRun.id)
                )
            }
        limit = for_update(ConcurrencyLimit.select().where(ConcurrencyLimit.tag == tag)).first()
        if limit is None:
            raise ObjectNotFound(f"Concurrency limit on tag {tag!r} not found.")
        missing = [run_id for run_id in run_ids if run_id not in found]
        if missing:
            raise ObjectNotFound(f"Task run {missing[0]} not found.")
        ConcurrencySlot.delete().where(ConcurrencySlot.limit == limit.id).execute()
        ConcurrencySlot.lease(
            [limit.id], run_ids, now + datetime.timedelta(seconds=lease_seconds), now
        )
    return limit


def renew_flow_run_leases(flow_run_id: Id, lease_seconds: float, now: datetime.datetime) -> int:
    """Extend every unexpired lease held by a task run of this flow run to ``now +
    lease_seconds``; returns how many. Call inside a transaction.

    Expired leases stay expired: their slot may already have gone to another task run, and
    reviving them could put a limit over its count.
    """
    task_runs = TaskRun.select(TaskRun.id).where(TaskRun.flow_run == flow_run_id)
    return (
        ConcurrencySlot.update(expires=now + datetime.timedelta(seconds=lease_seconds), updated=now)
        .where(ConcurrencySlot.task_run.in_(task_runs) & (ConcurrencySlot.expires > now))
        .execute()
    )


def active_slots(limits: Iterable[ConcurrencyLimit]) -> dict[Any, list[Any]]:
    """``{limit id: [task run ids holding an unexpired lease]}`` for every limit given (an
    empty list when none), in one query."""
    holders: dict[Any, list[Any]] = {limit.id: [] for limit in limits}
    if holders:
        rows = (
            ConcurrencySlot.select(ConcurrencySlot.limit, ConcurrencySlot.task_run)
            .where(ConcurrencySlot.limit.in_(list(holders)) & (ConcurrencySlot.expires > utcnow()))
            .tuples()
        )
        for limit_id, run_id in rows:
            holders[limit_id].append(run_id)
    return holders
