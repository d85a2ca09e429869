"""A flow run's graph in Prefect 2.20's shape (``GET /api/flow_runs/{id}/graph-v2``;
built by :mod:`app.services.flow_run_graph`)."""

from marshmallow import fields

from app.schemas.base import DateTime, InputSchema, OrionSchema
from app.states import STATE_TYPE_VALUES


class GraphQuery(InputSchema):
    since = DateTime(
        load_default=None,
        metadata={"description": "Only nodes that have not ended before this time."},
    )


class GraphArtifactSchema(OrionSchema):
    id = fields.UUID(required=True)
    created = DateTime(required=True)
    key = fields.String(allow_none=True)
    type = fields.String(allow_none=True)
    is_latest = fields.Boolean(required=True)


class GraphEdgeSchema(OrionSchema):
    id = fields.UUID(required=True)


class GraphNodeV2Schema(OrionSchema):
    kind = fields.String(required=True, metadata={"enum": ["flow-run", "task-run"]})
    id = fields.UUID(required=True)
    label = fields.String(required=True)
    state_type = fields.String(required=True, metadata={"enum": list(STATE_TYPE_VALUES)})
    start_time = DateTime(required=True)
    end_time = DateTime(allow_none=True)
    parents = fields.List(fields.Nested(GraphEdgeSchema), required=True)
    children = fields.List(fields.Nested(GraphEdgeSchema), required=True)
    artifacts = fields.List(fields.Nested(GraphArtifactSchema), required=True)


class GraphStateSchema(OrionSchema):
    id = fields.UUID(required=True)
    timestamp = DateTime(required=True)
    type = fields.String(required=True)
    name = fields.String(required=True)


class GraphSchema(OrionSchema):
    start_time = DateTime(allow_none=True)
    end_time = DateTime(allow_none=True)
    root_node_ids = fields.List(fields.UUID(), required=True)
    nodes = fields.List(
        fields.Tuple((fields.UUID(), fields.Nested(GraphNodeV2Schema))),
        required=True,
        metadata={"description": "[node id, node] pairs, by start time."},
    )
    artifacts = fields.List(
        fields.Nested(GraphArtifactSchema),
        required=True,
        metadata={"description": "Artifacts the flow run made itself (not its task runs)."},
    )
    states = fields.List(fields.Nested(GraphStateSchema), required=True)


def dump_graph(graph):
    """The service's graph as JSON values (ids as text, times ISO 8601)."""

    def iso(value):
        return value.isoformat() if value is not None else None

    def artifacts(items):
        return [
            {**artifact, "id": str(artifact["id"]), "created": iso(artifact["created"])}
            for artifact in items
        ]

    return {
        "start_time": iso(graph["start_time"]),
        "end_time": iso(graph["end_time"]),
        "root_node_ids": graph["root_node_ids"],
        "nodes": [
            [
                node_id,
                {
                    **node,
                    "start_time": iso(node["start_time"]),
                    "end_time": iso(node["end_time"]),
                    "artifacts": artifacts(node["artifacts"]),
                },
            ]
            for node_id, node in graph["nodes"]
        ],
        "artifacts": artifacts(graph["artifacts"]),
        "states": [
            {**state, "id": str(state["id"]), "timestamp": iso(state["timestamp"])}
            for state in graph["states"]
        ],
    }
