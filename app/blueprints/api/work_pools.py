"""Prefect 2.7's experimental work pools: ``/api/experimental/work_pools``, listing only.

Orion runs work through work queues and agents and has no work pools to create or read. Prefect
2.7's own UI lists the pools on every work queues page (to tell a pool's default queue from the
others) whether or not its server enables them; Prefect's server then answers 404, a failed
call in the browser. Here the list is served, and it is empty: there are no pools, so no queue
is a pool's default queue. The rest of the experimental work pool paths stay unserved (404).
"""

from app.blueprints.api.common import Blueprint, json_response
from app.schemas.filters import WorkPoolFilterBody

blp = Blueprint(
    "work_pools",
    __name__,
    url_prefix="/api/experimental/work_pools",
    description="Prefect 2.7's experimental work pools: Orion has none.",
)


@blp.post("/filter")
@blp.arguments(WorkPoolFilterBody)
@blp.response(200, description="The work pools: none, Orion has no work pools.")
def filter_work_pools(body):
    """List work pools: always empty (Orion runs work through work queues and agents)."""
    return json_response([])
