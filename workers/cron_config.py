"""``rq cron`` configuration: enqueue the periodic service jobs (``orion cron`` runs it).

rq imports this module when the cron process starts, so the intervals are the ORION_*
settings of that process. Run exactly one cron process: rq's CronScheduler takes no lock,
and two would enqueue every job twice (harmless, since every job is idempotent, but
wasted). A job not started within a minute (or its interval, if longer) expires
(``ttl``), so at most that many pile up behind a stopped worker. After Redis is flushed or
restarted, the next tick enqueues again and the jobs restore everything from the database.
"""
from rq import cron

from app.config import load_config
from workers import jobs

_config = load_config()
QUEUE = _config["REDIS_QUEUE"]

if _config["SCHEDULER_ENABLED"]:
    cron.register(jobs.schedule_deployments, queue_name=QUEUE,
                  interval=_config["SCHEDULER_LOOP_SECONDS"],
                  ttl=max(60, _config["SCHEDULER_LOOP_SECONDS"]), result_ttl=600)
if _config["LATE_RUNS_ENABLED"]:
    cron.register(jobs.mark_late_runs, queue_name=QUEUE,
                  interval=_config["LATE_RUNS_LOOP_SECONDS"],
                  ttl=max(60, _config["LATE_RUNS_LOOP_SECONDS"]), result_ttl=600)
if _config["LIVENESS_ENABLED"]:
    cron.register(jobs.check_liveness, queue_name=QUEUE,
                  interval=_config["LIVENESS_LOOP_SECONDS"],
                  ttl=max(60, _config["LIVENESS_LOOP_SECONDS"]), result_ttl=600)
if _config["ROLLUP_ENABLED"]:
    cron.register(jobs.refresh_rollup, queue_name=QUEUE,
                  interval=_config["ROLLUP_LOOP_SECONDS"],
                  ttl=max(60, _config["ROLLUP_LOOP_SECONDS"]), result_ttl=600)
