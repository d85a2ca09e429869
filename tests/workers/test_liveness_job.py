"""The liveness service as an RQ job run by a real worker process."""

import datetime

from rq import Queue

from app.models import Flow, FlowRun, utcnow
from app.services import flow_runs, orchestration
from tests.support import REDIS_URL
from tests.workers.test_workers import run_orion


def silent_running_run():
    """A RUNNING flow run whose last heartbeat came when it started."""
    flow, _ = Flow.get_or_create(name="silent-flow")
    run, _ = flow_runs.create_flow_run({"flow_id": flow.id})
    orchestration.set_flow_run_state(run.id, {"type": "RUNNING", "name": "Running"})
    flow_runs.record_heartbeat(run.id, 300)
    return run.id


def test_worker_runs_the_liveness_job(app, db, redis_db):
    silent = silent_running_run()
    alive = silent_running_run()
    # With a timeout of 0 only a heartbeat from the future still counts.
    flow_runs.record_heartbeat(alive, 300, now=utcnow() + datetime.timedelta(hours=1))
    queue = Queue("orion", connection=redis_db)
    job = queue.enqueue("workers.jobs.check_liveness")
    result = run_orion(app, "worker", "--burst", REDIS_URL=REDIS_URL, RUN_HEARTBEAT_TIMEOUT=0)
    assert result.returncode == 0, result.stderr
    assert job.get_status(refresh=True) == "finished", result.stderr
    assert job.return_value() == {
        "crashed_running": 1,
        "crashed_pending": 0,
        "cancelled": 0,
        "released_leases": 0,
    }
    assert FlowRun.get_by_id(silent).state_type == "CRASHED"
    assert FlowRun.get_by_id(alive).state_type == "RUNNING"
