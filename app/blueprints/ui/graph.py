"""The radar's data: a flow run's task runs as a graph of its tasks.

The server builds the graph; the browser lays it out and draws it (``app/static/ui/radar.js``
with dagre, vendored in ``app/static/vendor/dagre/``), so zooming, panning, expanding a group
or opening a subflow never waits for a request, and the layout is a maintained implementation
of layered graph drawing rather than our own: up to 200 tasks. Above, radar.js lays the
graph out itself (a plain layered layout, ~10 ms for 1,000 tasks where dagre takes ~500 ms).

- **Nodes are tasks**, not task runs: the task runs of one task (one ``task_key``: a
  ``.map()``, or a task called in a loop) are one node listing its members, so a flow of
  1,000 mapped task runs is a handful of nodes; the browser expands a group into its runs.
- **Edges** join tasks whose runs consumed each other's results (``task_inputs``; the client
  records an input only for a task's own future, state or result object), counted; edges
  between runs of one task, and to task runs outside the flow run, are left out.
- **Subflows**: a member whose run started a flow run (its ``parent_task_run_id``) names that
  run, so the browser can link to it and open its radar inside the node.
"""

import re

STATE_DEFAULT = "PENDING"
_NUMBERED = re.compile(r"-\d+$")


def radar(task_runs, upstream_of, subflow_runs):
    """The radar of ``task_runs`` (read rows in expected start order): ``{"nodes": [...],
    "edges": [[from task key, to task key, runs linked], ...]}``.

    ``upstream_of(run)`` gives a task run's upstream task run ids; ``subflow_runs`` are the
    flow runs its task runs started. Each node is ``{"id": task key, "name", "members":
    [[task run id, name, state type, state name, subflow run id or None], ...]}`` with its
    members in expected start order; nodes in order of their first run.
    """
    nodes = {}
    task_of = {}
    for run, member in zip(task_runs, radar_members(task_runs, subflow_runs)):
        node = nodes.get(run.task_key)
        if node is None:
            node = nodes[run.task_key] = {"id": run.task_key, "name": "", "members": []}
        node["members"].append(member)
        task_of[member[0]] = run.task_key
    edges = {}
    for run in task_runs:
        target = run.task_key
        for upstream in dict.fromkeys(str(u) for u in upstream_of(run)):
            source = task_of.get(upstream)
            if source is not None and source != target:
                edges[(source, target)] = edges.get((source, target), 0) + 1
    for node in nodes.values():
        node["name"] = _task_name(node["members"])
    return {
        "nodes": list(nodes.values()),
        "edges": [[source, target, count] for (source, target), count in edges.items()],
    }


def radar_members(task_runs, subflow_runs):
    """The radar's member of each of ``task_runs``: ``[task run id, name, state type, state
    name, subflow run id or None]`` (what a poll sends for the task runs that changed)."""
    child_of = {str(child.parent_task_run_id): str(child.id) for child in subflow_runs}
    return [
        [
            str(run.id),
            run.name or run.task_key,
            run.state_type or STATE_DEFAULT,
            run.state_name or "",
            child_of.get(str(run.id)),
        ]
        for run in task_runs
    ]


def _task_name(members):
    """A task's name from its runs' names: the one name, or their common ``name-N`` stem."""
    first = members[0][1]
    if len(members) == 1:
        return first
    stem = _NUMBERED.sub("", first)
    return stem if all(_NUMBERED.sub("", m[1]) == stem for m in members) else first
