"""RQ jobs: the periodic services, each a thin wrapper over an ``app.services`` function.

A job process reads the ORION_* settings and binds the database on its first job (``rq
worker`` forks a work-horse per job, so usually once per job), runs the service with the
current time and returns what it did (runs inserted or marked), which RQ keeps as the
job's result.
"""
import datetime
import functools

from app.config import load_config
from app.db import database, init_database
from app.services import liveness, rollups, scheduler


@functools.lru_cache(maxsize=None)
def settings():
    """The ORION_* settings of this process, with the database bound to them (once)."""
    config = load_config()
    init_database(config)
    return config


def schedule_deployments():
    """Give every active deployment the runs its schedule asks for (scheduler service)."""
    config = settings()
    with database.connection_context():
        return scheduler.schedule_deployments(
            settings=scheduler.SchedulerSettings.from_config(config))


def mark_late_runs():
    """Mark overdue Scheduled runs Late (late-runs service)."""
    config = settings()
    with database.connection_context():
        return scheduler.mark_late_runs(
            late_after=datetime.timedelta(seconds=config["LATE_RUNS_AFTER_SECONDS"]),
            batch_size=config["LATE_RUNS_BATCH_SIZE"])


def check_liveness():
    """Crash silent and stuck flow runs, cancel abandoned ones (liveness service)."""
    config = settings()
    with database.connection_context():
        return liveness.check_liveness(settings=liveness.LivenessSettings.from_config(config))


def refresh_rollup():
    """Recompute the hours of the dashboard's hourly run counts whose runs changed (rollup
    service)."""
    settings()
    with database.connection_context():
        return rollups.refresh_flow_run_hourly()
