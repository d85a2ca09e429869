"""Server-side layout of a flow run's task-run dependency graph, drawn as SVG by a template.

A layered ("Sugiyama-style") layout, small enough to run per request:

1. each task run's column is the length of the longest chain of upstream task runs before it
   (Kahn's topological order; upstreams outside this flow run are ignored, and a cycle, which
   orchestration never produces, is broken by placing its runs in column 0);
2. within a column, runs are ordered by the mean row of their upstreams (one barycentre pass),
   which removes most edge crossings of real flows; ties keep expected start order;
3. nodes have a fixed size and full-size labels, so 500 task runs make a large drawing that
   scrolls rather than a small one nobody can read.

Cost is linear in nodes plus edges.
"""

from dataclasses import dataclass, field

NODE_WIDTH = 200
NODE_HEIGHT = 28
COLUMN_GAP = 64
ROW_GAP = 12
MARGIN = 8
LABEL_CHARS = 26


@dataclass
class Node:
    id: str
    name: str
    state_type: str
    state_name: str
    upstream: list
    column: int = 0
    row: int = 0
    x: int = 0
    y: int = 0
    label: str = ""


@dataclass
class Layout:
    nodes: list
    edges: list = field(default_factory=list)  # (path "d" attribute, upstream id, node id)
    width: int = 0
    height: int = 0
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def _columns(nodes, by_id):
    downstream = {node.id: [] for node in nodes}
    waiting = {}
    for node in nodes:
        node.upstream = [u for u in dict.fromkeys(node.upstream) if u in by_id and u != node.id]
        waiting[node.id] = len(node.upstream)
        for upstream in node.upstream:
            downstream[upstream].append(node.id)
    ready = [node.id for node in nodes if waiting[node.id] == 0]
    placed = set()
    while ready:
        current = ready.pop()
        placed.add(current)
        for child in downstream[current]:
            by_id[child].column = max(by_id[child].column, by_id[current].column + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    for node in nodes:
        if node.id not in placed:
            node.column = 0


def layout(task_runs, upstream_of):
    """Lay out ``task_runs`` (read rows, in expected start order); ``upstream_of(run)`` gives
    a run's upstream task run ids. Returns a :class:`Layout` in pixels."""
    nodes = []
    for run in task_runs:
        name = run.name or ""
        nodes.append(
            Node(
                id=str(run.id),
                name=name,
                state_type=run.state_type or "PENDING",
                state_name=run.state_name or "",
                upstream=[str(u) for u in upstream_of(run)],
                label=name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…",
            )
        )
    by_id = {node.id: node for node in nodes}
    _columns(nodes, by_id)

    columns = {}
    for node in nodes:
        columns.setdefault(node.column, []).append(node)
    for index in sorted(columns):
        members = columns[index]
        if index:
            order = {node.id: position for position, node in enumerate(members)}

            def barycentre(node, order=order):
                rows = [by_id[u].row for u in node.upstream]
                return (sum(rows) / len(rows) if rows else float("inf"), order[node.id])

            members.sort(key=barycentre)
        for row, node in enumerate(members):
            node.row = row
            node.x = MARGIN + index * (NODE_WIDTH + COLUMN_GAP)
            node.y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)

    result = Layout(nodes=nodes)
    for node in nodes:
        for upstream_id in node.upstream:
            source = by_id[upstream_id]
            x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT / 2
            x2, y2 = node.x, node.y + NODE_HEIGHT / 2
            bend = max((x2 - x1) / 2, COLUMN_GAP / 2)
            path = (
                f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} "
                f"{x2:.0f},{y2:.0f}"
            )
            result.edges.append((path, upstream_id, node.id))
    if nodes:
        result.width = max(n.x for n in nodes) + NODE_WIDTH + MARGIN
        result.height = max(n.y for n in nodes) + NODE_HEIGHT + MARGIN
    return result
