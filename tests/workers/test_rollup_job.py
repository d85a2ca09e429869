"""The rollup service as an RQ job run by a real worker process."""

from rq import Queue

from app.models import Flow, FlowRunHourly
from app.services import flow_runs, rollups
from tests.support import REDIS_URL
from tests.workers.test_workers import run_orion


def test_worker_runs_the_rollup_job(app, db, redis_db):
    flow, _ = Flow.get_or_create(name="rolled-flow")
    flow_runs.create_flow_run({"flow_id": flow.id})
    queue = Queue("orion", connection=redis_db)
    job = queue.enqueue("workers.jobs.refresh_rollup")
    result = run_orion(app, "worker", "--burst", REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stderr
    assert job.get_status(refresh=True) == "finished", result.stderr
    assert job.return_value() == {"hours": 1, "full": True}
    assert rollups.last_refresh() is not None
    assert [(row.state_type, row.count_runs) for row in FlowRunHourly.select()] == [("PENDING", 1)]
