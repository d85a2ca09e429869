"""RQ jobs: one per periodic service of ``app.services.periodic.SERVICES``, named like the
service's function (``workers.jobs.schedule_deployments``, ``workers.jobs.mark_late_runs``,
...), so a row added to the table is a job here without another line.

A job process reads the ORION_* settings and binds the database on its first job (``rq
worker`` forks a work-horse per job, so usually once per job), runs one pass of the service
and returns what it did (runs inserted or marked), which RQ keeps as the job's result.
"""

import functools

from app.config import load_config
from app.db import database, init_database
from app.services import periodic


@functools.cache
def settings():
    """The ORION_* settings of this process, with the database bound to them (once)."""
    config = load_config()
    init_database(config)
    return config


def _job(service):
    """The RQ job of ``service``: one pass on this process's settings and database."""

    def job():
        config = settings()
        with database.connection_context():
            return service.function(config)

    # RQ enqueues and finds a job by its dotted path, "<__module__>.<__qualname__>".
    job.__name__ = job.__qualname__ = service.job_name
    job.__module__ = __name__
    job.__doc__ = f"One pass of the {service.name} service: {service.function.__doc__}"
    return job


JOBS = {service.name: _job(service) for service in periodic.SERVICES}
globals().update({job.__name__: job for job in JOBS.values()})
