"""Flow run input (Prefect 2.20): keyed text values a flow run receives.

``pause_flow_run(wait_for_input=...)`` stores the JSON schema of the input it waits for under a
key of its pause (``<state>-<pause key>-schema``) and names its keys in the Paused state's
``run_input_keyset``; a resume that sends ``run_input`` is checked against that schema and
stored under the ``response`` key (:func:`app.services.flow_runs.resume_flow_run`). Runs also
send each other messages this way (``send_input``/``receive_input``). One value per run and
key: a second create of a key is a Conflict. Values are stored and returned as sent.
"""

from collections.abc import Iterable
from typing import Any

from peewee import IntegrityError, fn

from app.db import database
from app.exceptions import ObjectAlreadyExists, ObjectNotFound
from app.models import FlowRun, FlowRunInput, utcnow
from app.services.common import Id, require_exists


def create_flow_run_input(
    flow_run_id: Id, key: str, value: str, sender: str | None = None
) -> FlowRunInput:
    """Store ``value`` under ``key`` for the flow run; ObjectNotFound if there is no such run,
    ObjectAlreadyExists if the run has a value under ``key`` (the unique index decides)."""
    now = utcnow()
    try:
        with database.atomic():
            require_exists(FlowRun, flow_run_id, "Flow run")
            return FlowRunInput.create(
                created=now,
                updated=now,
                flow_run=flow_run_id,
                key=key,
                value=value,
                sender=sender,
            )
    except IntegrityError:
        # The run was deleted since the check, or the key is taken: tell which.
        require_exists(FlowRun, flow_run_id, "Flow run")
        raise ObjectAlreadyExists(
            f"A flow run input with key {key!r} already exists for flow run {flow_run_id}."
        ) from None


def filter_flow_run_input(
    flow_run_id: Id, prefix: str, limit: int, exclude_keys: Iterable[str] = ()
) -> list[FlowRunInput]:
    """The run's inputs whose key starts with ``prefix`` (case-sensitive, no wildcards), oldest
    first, at most ``limit``, none under ``exclude_keys``; ObjectNotFound if no such run."""
    require_exists(FlowRun, flow_run_id, "Flow run")
    query = FlowRunInput.select().where(
        (FlowRunInput.flow_run == flow_run_id)
        & (fn.substr(FlowRunInput.key, 1, len(prefix)) == prefix)
    )
    excluded = list(exclude_keys)
    if excluded:
        query = query.where(FlowRunInput.key.not_in(excluded))
    return list(query.order_by(FlowRunInput.created, FlowRunInput.id).limit(limit))


def read_flow_run_input(flow_run_id: Id, key: str) -> FlowRunInput:
    """The run's input under ``key``; ObjectNotFound if none."""
    row = find_flow_run_input(flow_run_id, key)
    if row is None:
        raise ObjectNotFound(f"Flow run input {key!r} of flow run {flow_run_id} not found.")
    return row


def delete_flow_run_input(flow_run_id: Id, key: str) -> None:
    """Delete the run's input under ``key``; ObjectNotFound if none."""
    with database.atomic():
        deleted = (
            FlowRunInput.delete()
            .where((FlowRunInput.flow_run == flow_run_id) & (FlowRunInput.key == key))
            .execute()
        )
    if not deleted:
        raise ObjectNotFound(f"Flow run input {key!r} of flow run {flow_run_id} not found.")


def find_flow_run_input(flow_run_id: Id, key: str) -> Any:
    """The run's input under ``key``, or None."""
    return (
        FlowRunInput.select()
        .where((FlowRunInput.flow_run == flow_run_id) & (FlowRunInput.key == key))
        .first()
    )
