"""A job that tests/workers/test_workers.py enqueues by dotted path: what the work-horse
running it found already loaded (this module imports nothing of Orion's)."""

import os
import sys


def loaded():
    """Whether ``workers.jobs`` was imported, and its settings bound, before this job, and
    the pid of the horse (to tell it from the worker's main process)."""
    jobs = sys.modules.get("workers.jobs")
    return {
        "jobs_loaded": jobs is not None,
        "settings_bound": jobs is not None and jobs.settings.cache_info().currsize == 1,
        "pid": os.getpid(),
    }
