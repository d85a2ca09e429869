"""Flow pages: flows by name with their recent activity, and a flow with its runs and
deployments."""

import datetime

from flask import request, url_for

from app.blueprints.ui import bp, page_url, params, render
from app.blueprints.ui.run_filter import MAX_PAGE, RUNS_PER_PAGE
from app.clock import utcnow
from app.services import dashboard, deployments, flow_runs, flows

FLOWS_PER_PAGE = 50
DEPLOYMENTS_SHOWN = 100


@bp.get("/flows")
def flows_page():
    """Flows by name (filterable by a name substring) with their runs of the last day."""
    name = params.text(request.args, "name")
    page = params.integer(request.args, "page", 1, 1, MAX_PAGE)
    body = {
        "flows": {"name": {"like_": name}} if name else {},
        "sort": "NAME_ASC",
        "limit": FLOWS_PER_PAGE + 1,
        "offset": (page - 1) * FLOWS_PER_PAGE,
    }
    flow_list = flows.read_flows(body)
    has_next = len(flow_list) > FLOWS_PER_PAGE
    flow_list = flow_list[:FLOWS_PER_PAGE]
    now = utcnow()
    return render(
        "ui/flows.html",
        "ui/_flows_results.html",
        flows=flow_list,
        name=name,
        activity=dashboard.run_counts_by_flow(
            [f.id for f in flow_list], now - datetime.timedelta(days=1), now
        ),
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if has_next and page < MAX_PAGE else None,
    )


@bp.get("/flows/<uuid:flow_id>")
def flow_page(flow_id):
    """A flow and its most recent runs."""
    flow = flows.read_flow(flow_id)
    runs = flow_runs.read_flow_runs(
        {
            "flows": {"id": {"any_": [str(flow_id)]}},
            "sort": "START_TIME_DESC",
            "limit": RUNS_PER_PAGE,
        }
    )
    now = utcnow()
    flow_deployments = deployments.read_deployments(
        {"flows": {"id": {"any_": [str(flow_id)]}}, "sort": "NAME_ASC", "limit": DEPLOYMENTS_SHOWN}
    )
    return render(
        "ui/flow.html",
        None,
        flow=flow,
        runs=runs,
        deployments=flow_deployments,
        deployments_shown=DEPLOYMENTS_SHOWN,
        activity=dashboard.run_counts_by_flow([flow.id], now - datetime.timedelta(days=1), now)[
            str(flow.id)
        ],
        flow_names={str(flow.id): flow.name},
        all_runs_url=url_for("ui.flow_runs_page", flow=str(flow_id)),
    )
