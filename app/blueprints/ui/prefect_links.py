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
page; an address of Prefect's UI with no page here (its settings, automations, artifact
lists) is a 404 as before.
"""

from flask import redirect, url_for

from app.blueprints.ui import bp
from app.exceptions import ObjectNotFound
from app.services import artifacts, work_pools


def _to(endpoint, anchor=None, **values):
    return redirect(url_for(endpoint, _anchor=anchor, **values), 302)


@bp.get("/dashboard")
def prefect_dashboard():
    return _to("ui.dashboard_page")


@bp.get("/flow-runs/flow-run/<uuid:flow_run_id>")
def prefect_flow_run(flow_run_id):
    return _to("ui.flow_run_page", flow_run_id=flow_run_id)


@bp.get("/flow-runs/flow-run/<uuid:flow_run_id>/radar")
def prefect_flow_run_radar(flow_run_id):
    """Prefect 2.7's full-page radar: here the radar is a section of the run's page."""
    return _to("ui.flow_run_page", flow_run_id=flow_run_id, anchor="graph-h")


@bp.get("/flow-runs/task-run/<uuid:task_run_id>")
@bp.get("/task-runs/task-run/<uuid:task_run_id>")
def prefect_task_run(task_run_id):
    """A task run: Prefect 2.7 routes it under flow runs, 2.20 under task runs."""
    return _to("ui.task_run_page", task_run_id=task_run_id)


@bp.get("/flows/flow/<uuid:flow_id>")
def prefect_flow(flow_id):
    return _to("ui.flow_page", flow_id=flow_id)


@bp.get("/deployments/deployment/<uuid:deployment_id>")
def prefect_deployment(deployment_id):
    return _to("ui.deployment_page", deployment_id=deployment_id)


@bp.get("/deployments/deployment/<uuid:deployment_id>/edit")
def prefect_deployment_edit(deployment_id):
    return _to("ui.edit_deployment_page", deployment_id=deployment_id)


@bp.get("/deployments/deployment/<uuid:deployment_id>/run")
def prefect_deployment_run(deployment_id):
    return _to("ui.custom_run_page", deployment_id=deployment_id)


@bp.get("/blocks/block/<uuid:document_id>")
def prefect_block(document_id):
    return _to("ui.block_page", document_id=document_id)


@bp.get("/blocks/block/<uuid:document_id>/edit")
def prefect_block_edit(document_id):
    return _to("ui.edit_block", document_id=document_id)


@bp.get("/blocks/catalog/<slug>")
def prefect_block_type(slug):
    """A block type's page in Prefect's catalog: here the catalog is one page."""
    return _to("ui.block_catalog_page")


@bp.get("/blocks/catalog/<slug>/create")
def prefect_block_create(slug):
    return _to("ui.new_block", slug=slug)


@bp.get("/concurrency-limits/concurrency-limit/<uuid:limit_id>")
def prefect_concurrency_limit(limit_id):
    """A task concurrency limit: here every limit is on one page."""
    return _to("ui.concurrency_limits_page", anchor="task-h")


@bp.get("/concurrency-limits/concurrency-limit-v2/<uuid:limit_id>")
def prefect_global_limit(limit_id):
    """A global concurrency limit (Prefect 2.20): its form here."""
    return _to("ui.edit_global_limit", limit_id=limit_id)


@bp.get("/work-pools/work-pool/<name>")
@bp.get("/work-pools/work-pool/<name>/edit")
def prefect_work_pool(name):
    """A pool, or its form: here a pool's page is where it is changed."""
    return _to("ui.work_pool_page", name=name)


@bp.get("/work-pools/work-pool/<name>/queue/<queue_name>")
def prefect_pool_queue(name, queue_name):
    """A pool's queue, named by its pool and its name; Orion's page names it by id."""
    queue = work_pools.read_pool_queue(name, queue_name)
    return _to("ui.work_queue_page", queue_id=queue.id)


@bp.get("/work-pools/work-pool/<name>/queue/<queue_name>/edit")
def prefect_pool_queue_edit(name, queue_name):
    queue = work_pools.read_pool_queue(name, queue_name)
    return _to("ui.edit_work_queue", queue_id=queue.id)


@bp.get("/work-queues/work-queue/<uuid:queue_id>")
def prefect_work_queue(queue_id):
    return _to("ui.work_queue_page", queue_id=queue_id)


@bp.get("/work-queues/work-queue/<uuid:queue_id>/edit")
def prefect_work_queue_edit(queue_id):
    return _to("ui.edit_work_queue", queue_id=queue_id)


@bp.get("/work-queues/create")
def prefect_work_queue_create():
    return _to("ui.new_work_queue")


@bp.get("/notifications/create")
def prefect_notification_create():
    return _to("ui.new_notification")


def _artifact_run(artifact):
    """The page showing ``artifact``: its flow run's, where the run's artifacts are listed."""
    if artifact.flow_run_id is None:
        raise ObjectNotFound(
            f"Artifact {artifact.id} belongs to no flow run; the dashboard shows artifacts "
            "on their flow run's page."
        )
    return _to("ui.flow_run_page", flow_run_id=artifact.flow_run_id, anchor="artifacts-h")


@bp.get("/artifacts/artifact/<uuid:artifact_id>")
def prefect_artifact(artifact_id):
    return _artifact_run(artifacts.read_artifact(artifact_id))


@bp.get("/artifacts/key/<key>")
def prefect_artifact_key(key):
    """An artifact key: its newest artifact's run."""
    return _artifact_run(artifacts.read_latest_artifact(key))
