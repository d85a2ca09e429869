"""Flows: idempotent creation by name, reads, tag updates, deletion."""

from collections.abc import Iterable, Mapping
from typing import Any

from app.db import database
from app.models import Flow, FlowRun, utcnow
from app.models.rollups import mark_deleted_runs_stale
from app.services import filters
from app.services.common import Body, Id, get_or_raise, insert_or_get, update_or_raise


def create_flow(name: str, tags: Iterable[str] = ()) -> tuple[Flow, bool]:
    """Create the flow ``name``, or return the existing one. Returns ``(flow, created)``."""
    now = utcnow()
    return insert_or_get(
        Flow,
        {"name": name, "tags": list(tags), "created": now, "updated": now},
        Flow.name == name,
    )


def read_flow(flow_id: Id) -> Flow:
    """The flow with this id; ObjectNotFound if there is none."""
    return get_or_raise(Flow.select().where(Flow.id == flow_id), "Flow", flow_id)


def read_flow_by_name(name: str) -> Flow:
    """The flow with this name; ObjectNotFound if there is none."""
    return get_or_raise(Flow.select().where(Flow.name == name), "Flow", repr(name))


def update_flow(flow_id: Id, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` (currently only ``tags``) to a flow."""
    update_or_raise(Flow, flow_id, changes, "Flow")


def delete_flow(flow_id: Id) -> None:
    """Delete a flow with its deployments and runs (cascade)."""
    with database.atomic():
        mark_deleted_runs_stale(FlowRun.flow == flow_id)
        deleted = Flow.delete().where(Flow.id == flow_id).execute()
    if not deleted:
        read_flow(flow_id)


def read_flows(body: Body) -> list[Flow]:
    """Flows matching a filter body (flows/flow_runs/task_runs/deployments, sort, paging)."""
    query = filters.apply_filters(Flow.select(), Flow, body)
    return list(filters.sort_and_page(query, Flow, body))


def count_flows(body: Body) -> int:
    """How many flows match a filter body."""
    return filters.apply_filters(Flow.select(), Flow, body).count()
