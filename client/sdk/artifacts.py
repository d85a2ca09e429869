"""Artifacts: what a flow or task run makes for people to see, shown on its run's page.

    from client import flow
    from client.sdk.artifacts import create_markdown_artifact, create_table_artifact

    @flow
    def report():
        create_markdown_artifact("# Sales\\n\\nUp **12 %** on last week.", key="sales-report")
        create_table_artifact([{"region": "EU", "sales": 120}, {"region": "US", "sales": 98}])

Inside a flow or task run an artifact belongs to that run (and to its flow run); outside any
run it belongs to none. A ``key`` (lowercase letters, numbers and dashes) makes it a new
version of that key's artifact. The data is stored as Prefect 2.20 stores it, so its UI and
clients read ours and the other way round: markdown and links as markdown text, tables as
the JSON text of the rows.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any


def _run_ids() -> dict[str, str | None]:
    from client.sdk.context import get_flow_run_context, get_task_run_context

    task = get_task_run_context()
    if task is not None and task.task_run is not None:
        return {"flow_run_id": task.flow_run_id, "task_run_id": task.task_run["id"]}
    flow = get_flow_run_context()
    return {"flow_run_id": flow.flow_run_id if flow else None, "task_run_id": None}


def _create(kind: str, data: Any, key: str | None, description: str | None) -> str:
    from client.sdk.engine import get_sdk_client

    artifact = get_sdk_client().create_artifact(
        type=kind, data=data, key=key, description=description, **_run_ids()
    )
    return artifact["id"]


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> str:
    """Save ``markdown`` as an artifact of the current run; returns its id."""
    return _create("markdown", markdown, key, description)


def create_table_artifact(
    table: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | Sequence[Sequence[Any]],
    key: str | None = None,
    description: str | None = None,
) -> str:
    """Save a table (a list of rows as dicts, a dict of columns, or a list of row lists) as
    an artifact of the current run; returns its id."""
    return _create("table", json.dumps(table, default=str), key, description)


def create_link_artifact(
    link: str, link_text: str | None = None, key: str | None = None, description: str | None = None
) -> str:
    """Save a link (shown as ``link_text``, else the address) as an artifact of the current
    run; returns its id."""
    return _create("markdown", f"[{link_text or link}]({link})", key, description)
