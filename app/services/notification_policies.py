"""Flow run notification policies: create, read, filter, update, delete.

A policy names a block document that sends the message; this server can send through the
block types in :data:`SENDABLE_BLOCK_TYPES` (``app.services.notifications`` knows how), so a
policy naming a document of another type is refused when it is created or changed, rather
than failing silently at every state change. The message template is checked against the
variables a notification fills in (Prefect's ``FLOW_RUN_NOTIFICATION_TEMPLATE_KWARGS``).
"""

import string
import uuid
from collections.abc import Mapping
from typing import Any

from app.db import database
from app.exceptions import InvalidData, ObjectNotFound
from app.models import BlockDocument, BlockType, FlowRunNotificationPolicy, utcnow
from app.services.common import get_or_raise

# Block type slugs the notification service sends through.
SENDABLE_BLOCK_TYPES = ("slack-webhook", "webhook")

# The variables a message template may use, as in Prefect 2.7.
TEMPLATE_VARIABLES = (
    "flow_run_notification_policy_id",
    "flow_id",
    "flow_name",
    "flow_run_url",
    "flow_run_id",
    "flow_run_name",
    "flow_run_parameters",
    "flow_run_state_type",
    "flow_run_state_name",
    "flow_run_state_timestamp",
    "flow_run_state_message",
)

# Prefect 2.7's default message (models/flow_run_notification_policies.py).
DEFAULT_MESSAGE_TEMPLATE = """
Flow run {flow_name}/{flow_run_name} entered state `{flow_run_state_name}` at {flow_run_state_timestamp}.

Flow ID: {flow_id}
Flow run ID: {flow_run_id}
Flow run URL: {flow_run_url}
State message: {flow_run_state_message}
"""

_FIELDS = ("is_active", "state_names", "tags", "block_document_id", "message_template")


def check_template(template: str) -> None:
    """InvalidData unless ``template`` (a str.format template) uses only
    :data:`TEMPLATE_VARIABLES`, by name, with valid braces."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise InvalidData(
            f"Invalid message template: {error}.", ["body", "message_template"]
        ) from None
    for name in fields:
        base = name.split(".")[0].split("[")[0]
        if base not in TEMPLATE_VARIABLES:
            shown = repr(base) if base else "a positional field {}"
            raise InvalidData(
                f"Invalid template variable provided: {shown}. Valid variables: "
                f"{', '.join(sorted(TEMPLATE_VARIABLES))}.",
                ["body", "message_template"],
            )


def _check_block_document(document_id: uuid.UUID | str) -> None:
    row = (
        BlockDocument.select(BlockDocument.id, BlockType.slug)
        .join(BlockType, on=(BlockDocument.block_type == BlockType.id))
        .where(BlockDocument.id == document_id)
        .tuples()
        .first()
    )
    if row is None:
        raise InvalidData(
            f"Block document {document_id} does not exist.", ["body", "block_document_id"]
        )
    if row[1] not in SENDABLE_BLOCK_TYPES:
        raise InvalidData(
            f"Block document {document_id} is a {row[1]!r} block; this server sends "
            f"notifications through {' or '.join(SENDABLE_BLOCK_TYPES)} blocks.",
            ["body", "block_document_id"],
        )


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    columns = {key: values[key] for key in _FIELDS if key in values}
    if "block_document_id" in columns:
        columns["block_document"] = columns.pop("block_document_id")
    return columns


def create_policy(values: Mapping[str, Any]) -> Any:
    """Create a policy from a loaded create body; InvalidData for an unusable block
    document or template."""
    if values.get("message_template") is not None:
        check_template(values["message_template"])
    with database.atomic():
        _check_block_document(values["block_document_id"])
        return FlowRunNotificationPolicy.create(**_columns(values))


def read_policy(policy_id: uuid.UUID | str) -> Any:
    """The policy with this id; ObjectNotFound if none."""
    return get_or_raise(
        FlowRunNotificationPolicy.select().where(FlowRunNotificationPolicy.id == policy_id),
        "Flow run notification policy",
        policy_id,
    )


def read_policies(body: Mapping[str, Any]) -> list[Any]:
    """Policies matching a filter body, ordered by id, paged (``limit``, ``offset``).

    ``flow_run_notification_policy_filter.is_active.eq_`` keeps active (true) or inactive
    (false) policies; no filter keeps all.
    """
    query = FlowRunNotificationPolicy.select().order_by(FlowRunNotificationPolicy.id)
    criteria = (body.get("flow_run_notification_policy_filter") or {}).get("is_active") or {}
    if criteria.get("eq_") is not None:
        query = query.where(FlowRunNotificationPolicy.is_active == criteria["eq_"])
    return list(query.limit(body["limit"]).offset(body["offset"]))


def update_policy(policy_id: uuid.UUID | str, changes: Mapping[str, Any]) -> Any:
    """Apply a loaded update body; ObjectNotFound if there is no such policy, InvalidData as
    for :func:`create_policy`."""
    if changes.get("message_template") is not None:
        check_template(changes["message_template"])
    with database.atomic():
        if changes.get("block_document_id") is not None:
            _check_block_document(changes["block_document_id"])
        updated = (
            FlowRunNotificationPolicy.update(updated=utcnow(), **_columns(changes))
            .where(FlowRunNotificationPolicy.id == policy_id)
            .execute()
        )
    if not updated:
        raise ObjectNotFound(f"Flow run notification policy {policy_id} not found.")


def delete_policy(policy_id: uuid.UUID | str) -> None:
    """Delete a policy (its queued notifications are dropped when their turn comes);
    ObjectNotFound if none."""
    with database.atomic():
        deleted = (
            FlowRunNotificationPolicy.delete()
            .where(FlowRunNotificationPolicy.id == policy_id)
            .execute()
        )
    if not deleted:
        raise ObjectNotFound(f"Flow run notification policy {policy_id} not found.")
