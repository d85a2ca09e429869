"""The rq worker class of ``orion worker``: the service jobs loaded once, before any fork.

``rq worker`` forks a work-horse per job, and a horse imports the job's module on its first
use of it. Without this class the parent never imports ``workers.jobs``, so every job paid
for importing it (and with it ``app.services``, the models, peewee, the settings) and for
binding the database again. ``rq worker --worker-class workers.worker.Worker`` imports this
module in the parent: the jobs, their settings and the unconnected database binding are then
inherited by every horse (no connection is opened here; each job opens its own).
"""

from rq.worker import Worker as _RQWorker

from workers import jobs

jobs.settings()


class Worker(_RQWorker):
    """rq's Worker, started after :mod:`workers.jobs` is loaded and its settings bound."""
