"""A flow run's graph as Prefect 2.20's UI draws it (``GET /api/flow_runs/{id}/graph-v2``).

The nodes are the run's task runs that have left PENDING and have a start time (expected or
actual), a task run that ran a subflow standing as that subflow (kind ``flow-run``, labelled
``<flow name> / <subflow name>``, with the subflow's times and state). A node's parents are the
nodes its task inputs name (``wait_for`` included); its children the nodes naming it. A
node ends at its end time, or, for a COMPLETED task run without one (a cached result), at its
expected start. Nodes come in start-time order; ``since`` leaves out nodes that ended before it
(a UI polling for what changed). Also: the run's artifacts (not results), by the node of their
task run or the run itself, each marked whether it is its key's latest; and the run's states.
Prefect 2.20's server gives artifacts and states only with its experiments turned on; they are
always given here.
"""

import datetime
from collections import defaultdict
from typing import Any

from app.exceptions import ObjectNotFound, TooLarge
from app.models import Artifact, Flow, FlowRun, FlowRunState, TaskRun
from app.services.artifacts import latest_of_its_key
from app.services.common import Id
from app.states import StateType

# Prefect 2.20's PREFECT_API_MAX_FLOW_RUN_GRAPH_NODES and ..._ARTIFACTS defaults.
MAX_NODES = 10_000
MAX_ARTIFACTS = 10_000


def read_flow_run_graph_v2(
    flow_run_id: Id, since: datetime.datetime | None = None, max_nodes: int = MAX_NODES
) -> dict[str, Any]:
    """The graph of a flow run: ``{start_time, end_time, root_node_ids, nodes: [(id, node)],
    artifacts, states}`` with ``node = {kind, id, label, state_type, start_time, end_time,
    parents: [{id}], children: [{id}], artifacts}``. ObjectNotFound if there is no such run,
    TooLarge if it has more than ``max_nodes`` nodes since ``since``."""
    run = (
        FlowRun.select(FlowRun.start_time, FlowRun.expected_start_time, FlowRun.end_time)
        .where(FlowRun.id == flow_run_id)
        .first()
    )
    if run is None:
        raise ObjectNotFound(f"Flow run {flow_run_id} not found.")
    nodes = _nodes(flow_run_id)
    _link(nodes)
    shown = [
        node
        for node in nodes.values()
        if since is None or node["end_time"] is None or node["end_time"] >= since
    ]
    if len(shown) > max_nodes:
        raise TooLarge(f"The graph of flow run {flow_run_id} has more than {max_nodes} nodes.")
    shown.sort(key=_start_then_end)
    artifacts = _artifacts(flow_run_id)
    for node in shown:
        node["artifacts"] = artifacts.get(node.pop("task_run_id"), [])
    return {
        "start_time": run.start_time or run.expected_start_time,
        "end_time": run.end_time,
        "root_node_ids": [node["id"] for node in shown if not node["parents"]],
        "nodes": [(node["id"], node) for node in shown],
        "artifacts": artifacts.get(None, []),
        "states": [
            {"id": state.id, "timestamp": state.timestamp, "type": state.type, "name": state.name}
            for state in FlowRunState.select(
                FlowRunState.id, FlowRunState.timestamp, FlowRunState.type, FlowRunState.name
            )
            .where(FlowRunState.flow_run == flow_run_id)
            .order_by(FlowRunState.timestamp, FlowRunState.id)
        ],
    }


def _nodes(flow_run_id: Id) -> dict[str, dict[str, Any]]:
    """The graph's nodes by task run id (string), unlinked (``upstream``: the task run ids
    their inputs name)."""
    task_runs = list(
        TaskRun.select(
            TaskRun.id,
            TaskRun.name,
            TaskRun.state_type,
            TaskRun.start_time,
            TaskRun.expected_start_time,
            TaskRun.end_time,
            TaskRun.task_inputs,
        ).where((TaskRun.flow_run == flow_run_id) & (TaskRun.state_type != StateType.PENDING.value))
    )
    subflows = {}
    if task_runs:
        parents = TaskRun.select(TaskRun.id).where(TaskRun.flow_run == flow_run_id)
        for subflow in (
            FlowRun.select(
                FlowRun.id,
                FlowRun.name,
                FlowRun.parent_task_run_id,
                FlowRun.state_type,
                FlowRun.start_time,
                FlowRun.expected_start_time,
                FlowRun.end_time,
                Flow.name.alias("flow_name"),
            )
            .join(Flow)
            .where(FlowRun.parent_task_run_id.in_(parents))
            .objects()
        ):
            subflows[str(subflow.parent_task_run_id)] = subflow
    nodes = {}
    for task_run in task_runs:
        key = str(task_run.id)
        subflow = subflows.get(key)
        if subflow is not None:
            node = {
                "kind": "flow-run",
                "id": str(subflow.id),
                "label": f"{subflow.flow_name} / {subflow.name}",
                "state_type": subflow.state_type,
                "start_time": subflow.start_time or subflow.expected_start_time,
                "end_time": subflow.end_time or task_run.end_time,
            }
        else:
            cached = task_run.state_type == StateType.COMPLETED.value
            node = {
                "kind": "task-run",
                "id": key,
                "label": task_run.name,
                "state_type": task_run.state_type,
                "start_time": task_run.start_time or task_run.expected_start_time,
                "end_time": task_run.end_time or (task_run.expected_start_time if cached else None),
            }
        if node["start_time"] is None:
            continue
        node["task_run_id"] = task_run.id
        node["upstream"] = _upstream_ids(task_run.task_inputs)
        nodes[key] = node
    return nodes


def _upstream_ids(task_inputs: Any) -> list[str]:
    """The distinct run ids the task inputs name, in order."""
    found: dict[str, None] = {}
    for references in (task_inputs or {}).values():
        for reference in references or []:
            if isinstance(reference, dict) and reference.get("id"):
                found.setdefault(str(reference["id"]), None)
    return list(found)


def _link(nodes: dict[str, dict[str, Any]]) -> None:
    """Give every node its ``parents`` and ``children`` (``[{id}]`` by start time), from the
    upstream task runs that are nodes of the graph."""
    children = defaultdict(list)
    for node in nodes.values():
        parents = [nodes[upstream] for upstream in node.pop("upstream") if upstream in nodes]
        node["parents"] = [{"id": p["id"]} for p in sorted(parents, key=_start)]
        for upstream in parents:
            children[id(upstream)].append(node)
    for node in nodes.values():
        node["children"] = [{"id": c["id"]} for c in sorted(children[id(node)], key=_start)]


def _start(node: dict[str, Any]) -> Any:
    return node["start_time"]


def _start_then_end(node: dict[str, Any]) -> Any:
    # Nodes still running (no end) after those that ended at the same start, as PostgreSQL's
    # ORDER BY start_time, end_time puts NULLs last.
    return (node["start_time"], node["end_time"] is None, node["end_time"] or node["start_time"])


def _artifacts(flow_run_id: Id) -> dict[Any, list[dict[str, Any]]]:
    """The run's artifacts other than results, oldest first (at most :data:`MAX_ARTIFACTS`),
    grouped by task run id (None: made by the flow run itself)."""
    rows = (
        Artifact.select(
            Artifact.id,
            Artifact.created,
            Artifact.key,
            Artifact.type,
            Artifact.task_run_id,
            latest_of_its_key().alias("latest"),
        )
        .where(
            (Artifact.flow_run_id == flow_run_id)
            & (Artifact.type.is_null() | (Artifact.type != "result"))
        )
        .order_by(Artifact.created, Artifact.id)
        .limit(MAX_ARTIFACTS)
        .objects()
    )
    grouped = defaultdict(list)
    for row in rows:
        grouped[row.task_run_id].append(
            {
                "id": row.id,
                "created": row.created,
                "key": row.key,
                "type": row.type,
                "is_latest": row.key is None or bool(row.latest),
            }
        )
    return grouped
