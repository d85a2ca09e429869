"""Prefect's dashboard addresses, answered by redirects to Orion's pages.

Prefect 2 clients print links into the UI of the server they talk to, at the API's address
without ``/api`` (``PREFECT_UI_URL``): the engine logs "View at .../flow-runs/flow-run/<id>"
for every flow run (2.20), ``prefect deployment run`` and ``prefect deploy`` link the flow
run and the deployment, ``prefect work-pool create`` the pool, ``prefect block create`` the
block type's form, and ``prefect.runtime.flow_run.ui_url`` is such a link. Against Orion
those addresses reach this dashboard, whose pages for the same things live at shorter
paths (``/flow-runs/<id>`` for Prefect's ``/flow-runs/flow-run/<id>``).

Every address of Prefect 2.7's and 2.20's UI routers (their built apps' route tables) that
has a page here redirects to it with a 302 (temporary: the address is Prefect's, the page is
ours). Redirects carry no query string: Prefect's links have none, and its UI's own query
parameters mean nothing here. An address whose object does not exist is the dashboard's 404
page; an address of Prefect's UI with no page here (its settings, automations) is a 404 as
before. Some of Prefect's addresses are the dashboard's own (``/artifacts/key/<key>``,
``/variables``): they need no redirect.
"""

from flask import current_app, redirect, url_for

from app.blueprints.ui import bp
from app.services import work_pools

# Prefect's address -> the endpoint of the same page here, with the anchor of its section.
# The address's variables are passed on when the page takes them (same names).
_SAME_PAGE = (
    ("/dashboard", "ui.dashboard_page", None),
    ("/flow-runs/flow-run/<uuid:flow_run_id>", "ui.flow_run_page", None),
    # Prefect 2.7's full-page radar: here the radar is a section of the run's page.
    ("/flow-runs/flow-run/<uuid:flow_run_id>/radar", "ui.flow_run_page", "graph-h"),
    # A task run: Prefect 2.7 routes it under flow runs, 2.20 under task runs.
    ("/flow-runs/task-run/<uuid:task_run_id>", "ui.task_run_page", None),
    ("/task-runs/task-run/<uuid:task_run_id>", "ui.task_run_page", None),
    ("/flows/flow/<uuid:flow_id>", "ui.flow_page", None),
    ("/deployments/deployment/<uuid:deployment_id>", "ui.deployment_page", None),
    ("/deployments/deployment/<uuid:deployment_id>/edit", "ui.edit_deployment_page", None),
    ("/deployments/deployment/<uuid:deployment_id>/run", "ui.custom_run_page", None),
    ("/blocks/block/<uuid:document_id>", "ui.block_page", None),
    ("/blocks/block/<uuid:document_id>/edit", "ui.edit_block", None),
    # A block type's page in Prefect's catalog: here the catalog is one page.
    ("/blocks/catalog/<slug>", "ui.block_catalog_page", None),
    ("/blocks/catalog/<slug>/create", "ui.new_block", None),
    # A task concurrency limit: here they are all on one page.
    (
        "/concurrency-limits/concurrency-limit/<uuid:limit_id>",
        "ui.concurrency_limits_page",
        "task-h",
    ),
    ("/concurrency-limits/concurrency-limit-v2/<uuid:limit_id>", "ui.edit_global_limit", None),
    # A pool's form: here a pool's page is where it is changed.
    ("/work-pools/work-pool/<name>", "ui.work_pool_page", None),
    ("/work-pools/work-pool/<name>/edit", "ui.work_pool_page", None),
    ("/work-queues/work-queue/<uuid:queue_id>", "ui.work_queue_page", None),
    ("/work-queues/work-queue/<uuid:queue_id>/edit", "ui.edit_work_queue", None),
    ("/work-queues/create", "ui.new_work_queue", None),
    ("/notifications/create", "ui.new_notification", None),
)


def _to(endpoint, anchor=None, **values):
    return redirect(url_for(endpoint, _anchor=anchor, **values), 302)


def _same_page(endpoint, anchor):
    """The view redirecting to ``endpoint``'s page."""

    def view(**values):
        taken = current_app.url_map.iter_rules(endpoint)
        arguments = set().union(*(rule.arguments for rule in taken))
        return _to(endpoint, anchor, **{k: v for k, v in values.items() if k in arguments})

    return view


for _rule, _endpoint, _anchor in _SAME_PAGE:
    bp.add_url_rule(_rule, f"prefect {_rule}", _same_page(_endpoint, _anchor))


@bp.get("/work-pools/work-pool/<name>/queue/<queue_name>")
def prefect_pool_queue(name, queue_name):
    """A pool's queue, named by its pool and its name; Orion's page names it by id."""
    queue = work_pools.read_pool_queue(name, queue_name)
    return _to("ui.work_queue_page", queue_id=queue.id)


@bp.get("/work-pools/work-pool/<name>/queue/<queue_name>/edit")
def prefect_pool_queue_edit(name, queue_name):
    queue = work_pools.read_pool_queue(name, queue_name)
    return _to("ui.edit_work_queue", queue_id=queue.id)
