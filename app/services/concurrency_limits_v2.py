"""Global concurrency limits (Prefect 2.20's "v2" limits): named pools of slots that flows
take and give back (``concurrency()``) or take and let decay (``rate_limit()``).

Rules, as in Prefect 2.20's server:

- an increment or decrement names limits; a name with no limit gets an *inactive* one
  (limit 1), and inactive limits limit nothing;
- an increment of ``slots`` takes them from every active named limit, or from none: it is
  granted only if each has ``active_slots + slots <= limit`` after decay. Asking for more
  slots than a limit has, or a ``rate_limit`` of a limit without slot decay, is InvalidData;
- a refused increment adds ``slots`` to ``denied_slots``, which (with the slot decay or the
  average occupancy) gives the ``Retry-After`` the caller should wait;
- with ``slot_decay_per_second`` > 0 taken slots free themselves at that rate; a decrement
  gives slots back (never below 0) and, given ``occupancy_seconds``, moves the average
  occupancy per slot toward it (over the last ``2 × limit`` samples).

Atomicity: every increment, decrement and lease sweep locks the limit rows it touches, in
name order, for its transaction (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` transaction holds the database write lock), then checks and writes. So
concurrent increments queue on the rows and a limit is never over-granted, and overlapping
sets of limits cannot deadlock.

Leases (Orion extension, what the Orion SDK uses; Prefect clients send no holder and get
Prefect's behaviour): an increment in ``concurrency`` mode with a ``holder`` (a UUID) and
``lease_seconds`` also records, in the same transaction, a ``concurrency_lease_v2`` row
(limit, holder, slots, expires = now + lease_seconds). The holder renews it
(:func:`renew_leases`) while it holds the slots, and its decrement with the same ``holder``
gives back at most the slots its lease still holds, deleting the lease. A holder killed
before its decrement stops renewing; once ``expires`` has passed, :func:`release_expired_leases`
(run by the liveness pass of ``app.services.periodic``) gives the lease's slots back and
deletes it. A late decrement of that holder then finds no lease and gives back nothing, so
slots are never freed twice.
"""

import datetime
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from peewee import IntegrityError

from app.db import database, for_update
from app.exceptions import InvalidData, ObjectAlreadyExists, ObjectNotFound
from app.models import GlobalConcurrencyLease as Lease
from app.models import GlobalConcurrencyLimit as Limit
from app.models import utcnow

_FIELDS = ("active", "name", "limit", "active_slots", "denied_slots", "slot_decay_per_second")
# Averages of occupancy are taken over the last ``limit * _SAMPLES`` decrements.
_SAMPLES = 2
_MIN_OCCUPANCY_SECONDS = 0.1
# The lease of an increment with a holder but no ``lease_seconds``.
DEFAULT_LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class Slots:
    """A limit's slot counts after decay at some moment, and its decay clock then."""

    active: int
    denied: int
    clock: datetime.datetime


def decayed(limit: Limit, now: datetime.datetime) -> Slots:
    """``limit``'s active and denied slots at ``now``.

    A rate limit frees ``floor(slot_decay_per_second × seconds)`` active and denied slots
    since its clock; otherwise only denied slots decay, one per average occupancy. The clock
    moves on by the time the freed slots account for (a fraction of a slot is kept, so
    frequent writes do not stop decay), and to ``now`` once nothing is left to decay.
    """
    rate = limit.slot_decay_per_second
    decaying = rate > 0
    if not decaying:
        rate = 1.0 / max(limit.avg_slot_occupancy_seconds, _MIN_OCCUPANCY_SECONDS)
    elapsed = max((now - limit.decayed_at).total_seconds(), 0.0)
    freed = math.floor(rate * elapsed)
    active = max(limit.active_slots - freed, 0) if decaying else limit.active_slots
    denied = max(limit.denied_slots - freed, 0)
    left = active if decaying else denied
    if left == 0:
        clock = now
    else:
        clock = limit.decayed_at + datetime.timedelta(seconds=freed / rate)
    return Slots(active, denied, clock)


def _name_taken(name: str) -> ObjectAlreadyExists:
    return ObjectAlreadyExists(f"A concurrency limit named {name!r} already exists.")


def _where(id_or_name: uuid.UUID | str) -> Any:
    if isinstance(id_or_name, uuid.UUID):
        return Limit.id == id_or_name
    return Limit.name == id_or_name


def create_limit(values: Mapping[str, Any]) -> Limit:
    """Create a limit from a loaded create body; ObjectAlreadyExists if the name is taken."""
    now = utcnow()
    try:
        with database.atomic():
            return Limit.create(
                id=uuid.uuid4(),
                created=now,
                updated=now,
                decayed_at=now,
                **{key: values[key] for key in _FIELDS if key in values},
            )
    except IntegrityError:
        raise _name_taken(values["name"]) from None


def read_limit(id_or_name: uuid.UUID | str) -> Limit:
    """The limit with this id (a UUID) or name (a string); ObjectNotFound if none. Its
    ``active_slots`` and ``denied_slots`` are given after decay."""
    limit = Limit.select().where(_where(id_or_name)).first()
    if limit is None:
        raise ObjectNotFound("Concurrency Limit not found")
    return _with_decay(limit, utcnow())


def _with_decay(limit: Limit, now: datetime.datetime) -> Limit:
    slots = decayed(limit, now)
    limit.active_slots, limit.denied_slots = slots.active, slots.denied
    return limit


def read_limits(limit: int, offset: int) -> list[Limit]:
    """A page of limits sorted by name, slots after decay."""
    now = utcnow()
    rows = Limit.select().order_by(Limit.name).offset(offset).limit(limit)
    return [_with_decay(row, now) for row in rows]


# Limits with slots recorded in use that :func:`busy_limits` reads, at most (a bound for the
# dashboard; an installation has tens of global limits).
_BUSY_CANDIDATES = 500


def busy_limits(most: int, now: datetime.datetime | None = None) -> list[Limit]:
    """The active limits with slots in use after decay, the fullest (by share of the limit)
    first, at most ``most``."""
    now = now or utcnow()
    rows = (
        Limit.select()
        .where(Limit.active & (Limit.active_slots > 0))
        .order_by(Limit.active_slots.desc(), Limit.name)
        .limit(_BUSY_CANDIDATES)
    )
    busy = [limit for limit in (_with_decay(row, now) for row in rows) if limit.active_slots]
    busy.sort(key=lambda limit: (-limit.active_slots / max(limit.limit, 1), limit.name))
    return busy[:most]


def update_limit(id_or_name: uuid.UUID | str, changes: Mapping[str, Any]) -> None:
    """Apply a loaded update body; ObjectNotFound if no such limit, ObjectAlreadyExists for
    a new name that is taken. Setting ``active_slots`` or ``denied_slots`` restarts decay.

    Setting ``active_slots`` below what the limit's leases hold shrinks the leases to it,
    those that expire first first (the holders least recently heard from): the slots set
    are then the only ones held, and a holder's later decrement or expiry gives back at most
    what its lease still holds, so it cannot free slots taken after the update."""
    now = utcnow()
    columns: dict[Any, Any] = {key: changes[key] for key in _FIELDS if changes.get(key) is not None}
    if "active_slots" in columns or "denied_slots" in columns:
        columns["decayed_at"] = now
    try:
        with database.atomic():
            limit = for_update(Limit.select().where(_where(id_or_name))).first()
            if limit is None:
                raise ObjectNotFound("Concurrency Limit not found")
            Limit.update(updated=now, **columns).where(Limit.id == limit.id).execute()
            if "active_slots" in columns:
                _trim_leases(limit, columns["active_slots"], now)
    except IntegrityError:
        raise _name_taken(changes["name"]) from None


def _trim_leases(limit: Limit, slots: int, now: datetime.datetime) -> None:
    """Shrink ``limit``'s leases, soonest to expire first, until they hold at most
    ``slots`` in all. Call inside the transaction that locked the limit."""
    leases = list(
        for_update(Lease.select().where(Lease.limit == limit.id).order_by(Lease.expires, Lease.id))
    )
    excess = sum(lease.slots for lease in leases) - slots
    for lease in leases:
        if excess <= 0:
            break
        taken = min(lease.slots, excess)
        _shrink(lease, taken, now)
        excess -= taken


def reset_limit(id_or_name: uuid.UUID | str) -> None:
    """Free every slot of the limit: no active or denied slots, and no leases, so a holder's
    later decrement gives back nothing and cannot free slots taken after the reset (a Prefect
    client's, which has no lease, still gives back its slots, never below 0). ObjectNotFound
    if no such limit."""
    now = utcnow()
    with database.atomic():
        updated = (
            Limit.update(active_slots=0, denied_slots=0, decayed_at=now, updated=now)
            .where(_where(id_or_name))
            .execute()
        )
        if not updated:
            raise ObjectNotFound("Concurrency Limit not found")
        limit_ids = Limit.select(Limit.id).where(_where(id_or_name))
        Lease.delete().where(Lease.limit.in_(limit_ids)).execute()


def delete_limit(id_or_name: uuid.UUID | str) -> None:
    """Delete the limit (and its leases); ObjectNotFound if none."""
    with database.atomic():
        deleted = Limit.delete().where(_where(id_or_name)).execute()
    if not deleted:
        raise ObjectNotFound("Concurrency Limit not found")


def _locked(names: Iterable[str]) -> list[Limit]:
    """The limits of ``names``, creating missing ones inactive, locked in name order. Call
    inside a transaction."""
    names = sorted(set(names))
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "created": now,
            "updated": now,
            "decayed_at": now,
            "name": name,
            "limit": 1,
            "active": False,
        }
        for name in names
    ]
    existing = {row.name for row in Limit.select(Limit.name).where(Limit.name.in_(names))}
    missing = [row for row in rows if row["name"] not in existing]
    if missing:
        Limit.insert_many(missing).on_conflict_ignore().execute()
    return list(for_update(Limit.select().where(Limit.name.in_(names)).order_by(Limit.name)))


@dataclass(frozen=True)
class Increment:
    """What an increment did: ``granted`` or not, the limits named (inactive ones too),
    and for a refusal the seconds the caller should wait before asking again."""

    granted: bool
    limits: list[Limit]
    retry_after: float = 0.0


def increment(
    names: Iterable[str],
    slots: int,
    mode: str = "concurrency",
    holder: uuid.UUID | None = None,
    lease_seconds: float | None = None,
) -> Increment:
    """Take ``slots`` of every active limit in ``names``, or none (see the module
    docstring); with a ``holder`` in ``concurrency`` mode, record its lease for
    ``lease_seconds``. InvalidData for more slots than a limit has, or a ``rate_limit`` of a
    limit without slot decay."""
    with database.atomic():
        limits = _locked(names)
        active = [limit for limit in limits if limit.active]
        if any(limit.limit < slots for limit in active):
            raise InvalidData("Slots requested is greater than the limit", ["body", "slots"])
        non_decaying = [limit.name for limit in active if limit.slot_decay_per_second == 0.0]
        if mode == "rate_limit" and non_decaying:
            raise InvalidData(
                "Only concurrency limits with slot decay can be used for rate limiting. The "
                f"following limits do not have a decay configured: {','.join(non_decaying)!r}",
                ["body", "names"],
            )
        now = utcnow()
        counts = {limit.id: decayed(limit, now) for limit in active}
        granted = all(counts[limit.id].active + slots <= limit.limit for limit in active)
        taken, denied = (slots, 0) if granted else (0, slots)
        for limit in active:
            count = counts[limit.id]
            Limit.update(
                active_slots=count.active + taken,
                denied_slots=count.denied + denied,
                decayed_at=count.clock,
                updated=now,
            ).where(Limit.id == limit.id).execute()
        if granted and holder is not None and mode == "concurrency" and active:
            _lease(active, holder, slots, now, lease_seconds)
    if granted:
        return Increment(True, limits)
    return Increment(False, limits, _retry_after(active, counts, slots))


def _lease(
    limits: list[Limit],
    holder: uuid.UUID,
    slots: int,
    now: datetime.datetime,
    lease_seconds: float | None,
) -> None:
    expires = now + datetime.timedelta(seconds=lease_seconds or DEFAULT_LEASE_SECONDS)
    rows = [
        {
            "id": uuid.uuid4(),
            "created": now,
            "updated": now,
            "limit": limit.id,
            "holder": holder,
            "slots": slots,
            "expires": expires,
        }
        for limit in limits
    ]
    Lease.insert_many(rows).on_conflict(
        conflict_target=[Lease.limit, Lease.holder],
        update={Lease.slots: Lease.slots + slots, Lease.expires: expires, Lease.updated: now},
    ).execute()


def _retry_after(active: list[Limit], counts: Mapping[Any, Slots], slots: int) -> float:
    """Prefect's estimate: the wait per slot of the most blocking limit times the slots
    ahead of the caller there."""
    if not active:
        return 0.0

    def blocking(limit: Limit) -> float:
        ahead = slots + counts[limit.id].denied
        return ahead if limit.slot_decay_per_second > 0 else ahead / max(limit.limit, 1)

    worst = max(active, key=blocking)
    per_slot = (
        1.0 / worst.slot_decay_per_second
        if worst.slot_decay_per_second > 0
        else worst.avg_slot_occupancy_seconds
    )
    return per_slot * blocking(worst)


def decrement(
    names: Iterable[str],
    slots: int,
    occupancy_seconds: float | None = None,
    holder: uuid.UUID | None = None,
) -> list[Limit]:
    """Give back ``slots`` of every active limit in ``names`` (never below 0); with a
    ``holder``, at most what its lease on each limit still holds, shrinking or deleting the
    lease. Returns the limits named."""
    with database.atomic():
        limits = _locked(names)
        active = [limit for limit in limits if limit.active]
        now = utcnow()
        leases = {}
        if holder is not None and active:
            query = Lease.select().where(
                Lease.holder == holder, Lease.limit.in_([limit.id for limit in active])
            )
            leases = {lease.limit_id: lease for lease in query}
        for limit in active:
            given = slots
            if holder is not None:
                lease = leases.get(limit.id)
                given = min(slots, lease.slots) if lease else 0
                if lease is not None:
                    _shrink(lease, given, now)
            _give_back(limit, given, now, occupancy_seconds if given else None)
    return limits


def _shrink(lease: Lease, slots: int, now: datetime.datetime) -> None:
    if lease.slots <= slots:
        Lease.delete().where(Lease.id == lease.id).execute()
    else:
        Lease.update(slots=Lease.slots - slots, updated=now).where(Lease.id == lease.id).execute()


def _give_back(
    limit: Limit, slots: int, now: datetime.datetime, occupancy_seconds: float | None
) -> None:
    count = decayed(limit, now)
    columns: dict[str, Any] = {
        "active_slots": max(count.active - slots, 0),
        "denied_slots": count.denied,
        "decayed_at": count.clock,
        "updated": now,
    }
    if occupancy_seconds and slots:
        per_slot = max(occupancy_seconds / slots, _MIN_OCCUPANCY_SECONDS)
        samples = max(limit.limit, 1) * _SAMPLES
        average = limit.avg_slot_occupancy_seconds
        columns["avg_slot_occupancy_seconds"] = average + (per_slot - average) / samples
    Limit.update(**columns).where(Limit.id == limit.id).execute()


def renew_leases(holder: uuid.UUID, lease_seconds: float) -> int:
    """Extend every lease of ``holder`` to now + ``lease_seconds``; returns how many.
    ObjectNotFound if it has none left (expired and released: its slots are gone)."""
    now = utcnow()
    expires = now + datetime.timedelta(seconds=lease_seconds)
    with database.atomic():
        renewed = Lease.update(expires=expires, updated=now).where(Lease.holder == holder).execute()
    if not renewed:
        raise ObjectNotFound(f"No concurrency lease of holder {holder} is left.")
    return renewed


def release_expired_leases(now: datetime.datetime | None = None, batch_size: int = 200) -> int:
    """Give back the slots of leases past their expiry and delete them; returns how many
    leases. Locks the limits (name order) before the leases, as increments do, and
    re-reads the leases under the lock, so a lease renewed meanwhile is kept."""
    now = now or utcnow()
    limit_ids = {
        lease.limit_id
        for lease in Lease.select(Lease.limit).where(Lease.expires < now).limit(batch_size)
    }
    if not limit_ids:
        return 0
    released = 0
    with database.atomic():
        limits = list(
            for_update(Limit.select().where(Limit.id.in_(limit_ids)).order_by(Limit.name))
        )
        expired = list(
            for_update(
                Lease.select().where(
                    Lease.limit.in_([limit.id for limit in limits]), Lease.expires < now
                )
            )
        )
        by_limit: dict[Any, int] = {}
        for lease in expired:
            by_limit[lease.limit_id] = by_limit.get(lease.limit_id, 0) + lease.slots
        for limit in limits:
            if limit.id in by_limit:
                _give_back(limit, by_limit[limit.id], now, None)
        if expired:
            released = Lease.delete().where(Lease.id.in_([lease.id for lease in expired])).execute()
    return released
