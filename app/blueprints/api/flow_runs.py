"""Flow runs: ``/api/flow_runs``."""

from flask import Response, current_app, g
from flask.views import MethodView

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.clock import utcnow
from app.schemas.actions import (
    FlowRunCreateSchema,
    FlowRunHistorySchema,
    FlowRunUpdateSchema,
    ResumeFlowRunSchema,
    SetStateSchema,
)
from app.schemas.core import (
    FlowRunSchema,
    GraphNodeSchema,
    HistoryIntervalSchema,
    OrchestrationResultSchema,
    dump_flow_run,
    dump_graph_node,
    dump_orchestration_result,
)
from app.schemas.filters import FlowRunCountBody, FlowRunFilterBody
from app.schemas.flow_run_input import (
    FlowRunInputCreateSchema,
    FlowRunInputFilterSchema,
    FlowRunInputSchema,
    dump_flow_run_input,
)
from app.schemas.graph import GraphQuery, GraphSchema, dump_graph
from app.services import flow_run_input, flow_runs, orchestration
from app.services.flow_run_graph import read_flow_run_graph_v2

blp = Blueprint("flow_runs", __name__, url_prefix="/api/flow_runs", description="Flow runs.")


@blp.route("/")
class FlowRuns(MethodView):
    @blp.arguments(FlowRunCreateSchema)
    @blp.response(201, FlowRunSchema)
    @blp.alt_response(
        200,
        schema=FlowRunSchema,
        success=True,
        description="A run with this flow and idempotency key already existed.",
    )
    def post(self, data):
        """Create a flow run (default state Pending), idempotent on flow + idempotency key."""
        run, created = flow_runs.create_flow_run(data)
        return json_response(
            dump_flow_run(run, pools=flow_runs.pools_of([run])), 201 if created else 200
        )


@blp.route("/<uuid:flow_run_id>")
class FlowRunById(MethodView):
    @blp.response(200, FlowRunSchema)
    def get(self, flow_run_id):
        """Read a flow run with its current state."""
        run = flow_runs.read_flow_run(flow_run_id)
        return json_response(dump_flow_run(run, pools=flow_runs.pools_of([run])))

    @blp.arguments(FlowRunUpdateSchema)
    @blp.response(204)
    def patch(self, changes, flow_run_id):
        """Update a flow run's name, version, parameters, policy, tags or infrastructure pid.

        Orion extension: `infrastructure_exit_code`, the code the run's infrastructure ended
        with (a 32-bit integer, or null), which agents record when it ends.
        """
        flow_runs.update_flow_run(flow_run_id, changes)
        return no_content()

    @blp.response(204)
    def delete(self, flow_run_id):
        """Delete a flow run with its states and task runs."""
        flow_runs.delete_flow_run(flow_run_id)
        return no_content()


@blp.post("/filter")
@blp.arguments(FlowRunFilterBody)
@blp.response(200, FlowRunSchema(many=True))
def filter_flow_runs(body):
    """List flow runs matching filters, sorted and paged."""
    now = utcnow()
    runs = flow_runs.read_flow_runs(body)
    pools = flow_runs.pools_of(runs)
    return json_response([dump_flow_run(r, now, pools) for r in runs])


@blp.post("/count")
@blp.arguments(FlowRunCountBody)
@blp.response(200, description="The number of matching flow runs.")
def count_flow_runs(body):
    """Count flow runs matching filters."""
    return json_response(flow_runs.count_flow_runs(body))


@blp.post("/lateness")
@blp.arguments(FlowRunCountBody)
@blp.response(200, description="Mean lateness in seconds, or null when no run matches.")
def flow_run_lateness(body):
    """The mean lateness of the flow runs matching the filters (Prefect 2.20): how long after
    its expected start a run started, or, not started and due, has waited so far."""
    return json_response(flow_runs.average_lateness(body))


@blp.post("/history")
@blp.arguments(FlowRunHistorySchema)
@blp.response(200, HistoryIntervalSchema(many=True))
def flow_run_history(body):
    """Count matching flow runs per state in time buckets of their expected start."""
    history = flow_runs.read_flow_run_history(
        body.pop("history_start"),
        body.pop("history_end"),
        body.pop("history_interval_seconds"),
        body,
    )
    for entry in history:
        entry["interval_start"] = entry["interval_start"].isoformat()
        entry["interval_end"] = entry["interval_end"].isoformat()
    return json_response(history)


@blp.post("/<uuid:flow_run_id>/set_state")
@blp.arguments(SetStateSchema)
@blp.response(201, OrchestrationResultSchema, description="A new state was written.")
@blp.alt_response(
    200,
    schema=OrchestrationResultSchema,
    success=True,
    description="Nothing was written (WAIT, ABORT, REJECT keeping the state, or a "
    "retried transition).",
)
def set_flow_run_state(body, flow_run_id):
    """Propose a new state for a flow run; the orchestration rules decide what happens."""
    result = orchestration.set_flow_run_state(
        flow_run_id, body["state"], force=body["force"], api_version=g.get("api_version")
    )
    return json_response(dump_orchestration_result(result), 201 if result.written else 200)


@blp.post("/<uuid:flow_run_id>/resume")
@blp.arguments(ResumeFlowRunSchema)
@blp.response(201, OrchestrationResultSchema, description="The run was resumed.")
@blp.alt_response(
    200,
    schema=OrchestrationResultSchema,
    success=True,
    description="Nothing was written (the run is not paused, a rule refused, or the run "
    "input was refused: REJECT with the reason).",
)
def resume_flow_run(body, flow_run_id):
    """Resume a paused flow run (RUNNING, or Scheduled "Resuming" if the pause reschedules).

    A run paused waiting for input (Prefect 2.20's ``pause_flow_run(wait_for_input=...)``)
    needs ``run_input`` valid against the schema the flow stored; the input is then stored for
    the flow under its pause's ``response`` key."""
    result = flow_runs.resume_flow_run(
        flow_run_id, body.get("run_input"), api_version=g.get("api_version")
    )
    return json_response(dump_orchestration_result(result), 201 if result.written else 200)


@blp.post("/<uuid:flow_run_id>/input")
@blp.arguments(FlowRunInputCreateSchema)
@blp.response(201, description="The input was stored.")
@blp.alt_response(404, description="No such flow run.")
@blp.alt_response(409, description="The run has an input under this key.")
def create_flow_run_input(body, flow_run_id):
    """Store a keyed input for a flow run (Prefect 2.20)."""
    flow_run_input.create_flow_run_input(flow_run_id, body["key"], body["value"], body["sender"])
    return json_response(None, 201)


@blp.post("/<uuid:flow_run_id>/input/filter")
@blp.arguments(FlowRunInputFilterSchema)
@blp.response(200, FlowRunInputSchema(many=True))
def filter_flow_run_input(body, flow_run_id):
    """The run's inputs whose key starts with ``prefix``, oldest first, at most ``limit``
    (default 1), leaving out ``exclude_keys``."""
    rows = flow_run_input.filter_flow_run_input(
        flow_run_id, body["prefix"], body["limit"], body["exclude_keys"]
    )
    return json_response([dump_flow_run_input(row) for row in rows])


@blp.route("/<uuid:flow_run_id>/input/<path:key>")
class FlowRunInputByKey(MethodView):
    @blp.response(200, description="The value, as plain text (as it was stored).")
    @blp.alt_response(404, description="No input under this key.")
    def get(self, flow_run_id, key):
        """Read the run's input under ``key``: its value as plain text."""
        row = flow_run_input.read_flow_run_input(flow_run_id, key)
        return Response(row.value, 200, mimetype="text/plain")

    @blp.response(204)
    @blp.alt_response(404, description="No input under this key.")
    def delete(self, flow_run_id, key):
        """Delete the run's input under ``key``."""
        flow_run_input.delete_flow_run_input(flow_run_id, key)
        return no_content()


@blp.get("/<uuid:flow_run_id>/graph")
@blp.response(200, GraphNodeSchema(many=True))
def flow_run_graph(flow_run_id):
    """The flow run's task runs with their upstream task runs (from task_inputs)."""
    now = utcnow()
    nodes = flow_runs.read_flow_run_graph(flow_run_id)
    return json_response([dump_graph_node(node, now) for node in nodes])


@blp.get("/<uuid:flow_run_id>/graph-v2")
@blp.arguments(GraphQuery, location="query")
@blp.response(200, GraphSchema)
@blp.alt_response(400, description="The graph has more nodes than the server answers.")
def flow_run_graph_v2(query, flow_run_id):
    """The flow run's graph as Prefect 2.20's UI draws it: its task runs and subflow runs
    with their parents and children, its artifacts and states (``since``: only nodes that
    have not ended before then)."""
    graph = read_flow_run_graph_v2(flow_run_id, since=query["since"])
    return json_response(dump_graph(graph))


@blp.post("/<uuid:flow_run_id>/heartbeat")
@blp.response(204, description="The heartbeat was recorded.")
def flow_run_heartbeat(flow_run_id):
    """Record that a flow run is alive (Orion extension).

    Sets the run's `last_heartbeat` to now and renews, for `ORION_TASK_CONCURRENCY_LEASE_SECONDS`,
    every unexpired concurrency slot lease its task runs hold. A running flow sends this every
    `ORION_HEARTBEAT_SECONDS`; runs that fall silent can then be found and marked Crashed, and
    their slots lapse. 404 if the flow run does not exist.
    """
    flow_runs.record_heartbeat(flow_run_id, current_app.config["TASK_CONCURRENCY_LEASE_SECONDS"])
    return no_content()
