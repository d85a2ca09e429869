"""The periodic services, in one table that every way of running them reads.

Each row of :data:`SERVICES` is a service: its name (in logs), the function that runs one
pass of it, its default interval, and the prefix of its two settings,
``ORION_<SETTING>_ENABLED`` (default true) and ``ORION_<SETTING>_LOOP_SECONDS`` (default the
row's interval). Three runners read the table, so adding a service is adding a row:

- embedded mode (``app.embedded.ServiceThread``) runs each enabled service on a thread of
  ``orion start`` every interval;
- the RQ jobs (``workers.jobs``) define one job per row, named like its function
  (``workers.jobs.schedule_deployments``), that runs one pass in a worker process;
- ``rq cron`` (``workers.cron_config``) enqueues each enabled service's job every interval.

A service function takes the Orion settings (a mapping such as ``app.config``), runs one
pass on the bound database (the caller opens the connection) and returns what it did. Every
pass is idempotent and safe to run twice or concurrently: the database, not the runner,
decides what is left to do.
"""

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app import metrics
from app.services import (
    concurrency_limits_v2,
    liveness,
    notifications,
    retention,
    rollups,
    scheduler,
)


def schedule_deployments(config: Mapping[str, Any]) -> int:
    """Give every active deployment the runs its schedule asks for; returns how many runs
    were inserted (counted in ``orion_scheduled_runs_created_total``)."""
    inserted = scheduler.schedule_deployments(
        settings=scheduler.SchedulerSettings.from_config(config)
    )
    metrics.SCHEDULED_RUNS.inc(inserted)
    return inserted


def mark_late_runs(config: Mapping[str, Any]) -> int:
    """Mark overdue Scheduled runs Late; returns how many (counted in
    ``orion_late_runs_marked_total``)."""
    marked = scheduler.mark_late_runs(
        late_after=datetime.timedelta(seconds=config["LATE_RUNS_AFTER_SECONDS"]),
        batch_size=config["LATE_RUNS_BATCH_SIZE"],
    )
    metrics.LATE_RUNS.inc(marked)
    return marked


def check_liveness(config: Mapping[str, Any]) -> dict[str, int]:
    """Crash silent and unstarted flow runs, cancel abandoned ones, give back the slots of
    expired global concurrency leases (their holder died); returns the counts."""
    settings = liveness.LivenessSettings.from_config(config)
    counts = liveness.check_liveness(settings=settings)
    counts["released_leases"] = concurrency_limits_v2.release_expired_leases(
        batch_size=settings.batch_size
    )
    return counts


def refresh_rollup(config: Mapping[str, Any]) -> dict[str, int]:
    """Recompute the hours of the dashboard's hourly run counts whose runs changed."""
    return rollups.refresh_flow_run_hourly()


def prune_old_runs(config: Mapping[str, Any]) -> dict[str, Any]:
    """With ``RETENTION_DAYS`` set, delete the finished flow runs older than that (with
    what they own) for at most ``RETENTION_PASS_SECONDS``; returns the rows deleted per
    table, the batches and the longest one's lock time. Unset: deletes nothing."""
    return retention.prune_old_runs(config).summary()


def send_flow_run_notifications(config: Mapping[str, Any]) -> dict[str, int]:
    """Send the queued flow run notifications that are due; returns the counts."""
    return notifications.send_notifications(notifications.NotificationSettings.from_config(config))


@dataclass(frozen=True)
class PeriodicService:
    """One periodic service (see the module docstring)."""

    name: str
    function: Callable[[Mapping[str, Any]], Any]
    default_interval: int
    setting: str

    @property
    def job_name(self) -> str:
        """The name of its RQ job in ``workers.jobs`` (its function's name)."""
        return self.function.__name__

    def enabled(self, config: Mapping[str, Any]) -> bool:
        """Whether ``<SETTING>_ENABLED`` (default true) turns the service on."""
        return bool(config.get(f"{self.setting}_ENABLED", True))

    def interval(self, config: Mapping[str, Any]) -> float:
        """Seconds between two passes: ``<SETTING>_LOOP_SECONDS``, or the default."""
        return config.get(f"{self.setting}_LOOP_SECONDS", self.default_interval)


SERVICES = (
    PeriodicService("scheduler", schedule_deployments, 60, "SCHEDULER"),
    PeriodicService("late runs", mark_late_runs, 5, "LATE_RUNS"),
    PeriodicService("liveness", check_liveness, 5, "LIVENESS"),
    PeriodicService("rollup", refresh_rollup, 60, "ROLLUP"),
    PeriodicService("notifications", send_flow_run_notifications, 2, "NOTIFICATIONS"),
    PeriodicService("retention", prune_old_runs, 60, "RETENTION"),
)


def enabled_services(config: Mapping[str, Any]) -> list[PeriodicService]:
    """The rows of :data:`SERVICES` that ``config`` turns on, in table order."""
    return [service for service in SERVICES if service.enabled(config)]
