"""Work pool pages: the list of pools (status, queues, workers online and offline, upcoming
runs), a pool's page (its queues with their health, its workers, its base job template, its
upcoming runs) and pausing or resuming a pool.

A worker is online as the API says (:func:`app.services.work_pools.worker_is_online`: a
heartbeat within ``ORION_AGENT_HEARTBEAT_TIMEOUT``, or within three of the worker's own
heartbeat intervals if that is longer). Agents are not workers: the agents' pool
(``default-agent-pool``) shows its queues' agents in their health, as the work queue pages do.
"""

from flask import flash, redirect, request, url_for

from app.blueprints.ui import agent_timeout, bp, local_path, page_url, params, render
from app.clock import utcnow
from app.services import dashboard, work_pools, work_queues

POOLS_SHOWN = 200
WORKERS_SHOWN = 200
RUNS_PER_PAGE = 25
MAX_PAGE = 200


@bp.get("/work-pools")
def work_pools_page():
    """Work pools by name: type, status, concurrency limit, queues, workers online and
    offline, upcoming (SCHEDULED) runs, and the pause or resume button."""
    now = utcnow()
    pools = work_pools.read_work_pools({"limit": POOLS_SHOWN, "offset": 0})
    return render(
        "ui/work_pools.html",
        "ui/_work_pools.html",
        pools=pools,
        overview=work_pools.pool_overview(pools, now, agent_timeout()),
        shown=POOLS_SHOWN,
    )


@bp.get("/work-pools/<name>")
def work_pool_page(name):
    """A work pool: its queues by priority with their health, its workers (online or
    offline, last heartbeat), its base job template, and its upcoming runs (its queues'
    SCHEDULED runs, the earliest first, a page at a time)."""
    now = utcnow()
    page = params.integer(request.args, "page", 1, 1, MAX_PAGE)
    pool = work_pools.read_work_pool(name)
    queues = work_pools.pool_queues(pool)
    timeout = agent_timeout()
    workers = work_pools.pool_workers(pool, WORKERS_SHOWN)
    upcoming = work_pools.upcoming_pool_runs(
        pool, queues, RUNS_PER_PAGE + 1, (page - 1) * RUNS_PER_PAGE
    )
    has_next = len(upcoming) > RUNS_PER_PAGE
    upcoming = upcoming[:RUNS_PER_PAGE]
    online = {worker.id: work_pools.worker_is_online(worker, now, timeout) for worker in workers}
    return render(
        "ui/work_pool.html",
        None,
        pool=pool,
        is_agent_pool=work_pools.is_agent_pool(pool),
        pool_state=work_pools.pool_status(pool, now, timeout),
        active_runs=work_queues.count_pool_active_runs(pool),
        queues=queues,
        health=work_queues.queue_health(queues, now, timeout),
        scheduled=work_queues.scheduled_run_counts(queues),
        workers=workers,
        online=online,
        workers_shown=WORKERS_SHOWN,
        upcoming=upcoming,
        queue_names={str(queue.id): queue.name for queue in queues},
        flow_names=dashboard.flow_names(run.flow_id for run in upcoming),
        deployment_names=dashboard.deployment_names(run.deployment_id for run in upcoming),
        page=page,
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if has_next and page < MAX_PAGE else None,
    )


@bp.post("/work-pools/<name>/pause")
@bp.post("/work-pools/<name>/resume", endpoint="resume_work_pool")
def pause_work_pool(name):
    """Pause a work pool (none of its queues hands out runs) or resume it; an unknown pool
    is a 404 page."""
    pool = work_pools.read_work_pool(name)
    paused = request.endpoint == "ui.pause_work_pool"
    work_pools.update_work_pool(pool.name, {"is_paused": paused})
    flash(f"{'Paused' if paused else 'Resumed'} the work pool {pool.name!r}.")
    return redirect(
        local_path(request.form.get("next"), url_for("ui.work_pool_page", name=pool.name)), 303
    )
