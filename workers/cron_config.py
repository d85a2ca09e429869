"""``rq cron`` configuration: enqueue the periodic service jobs (``orion cron`` runs it).

rq imports this module when the cron process starts, so which services run and their
intervals are the ORION_* settings of that process, read through the one table of services
(``app.services.periodic.SERVICES``). Run exactly one cron process: rq's CronScheduler
takes no lock, and two would enqueue every job twice (harmless, since every job is
idempotent, but wasted). A job not started within a minute (or its interval, if longer)
expires (``ttl``), so at most that many pile up behind a stopped worker. After Redis is
flushed or restarted, the next tick enqueues again and the jobs restore everything from the
database.
"""

from rq import cron

from app.config import load_config
from app.services import periodic
from workers import jobs

_config = load_config()
QUEUE = _config["REDIS_QUEUE"]

for _service in periodic.enabled_services(_config):
    _interval = _service.interval(_config)
    cron.register(
        jobs.JOBS[_service.name],
        queue_name=QUEUE,
        interval=_interval,
        ttl=max(60, _interval),
        result_ttl=600,
    )
