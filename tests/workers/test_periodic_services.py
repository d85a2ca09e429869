"""The one table of periodic services (``app.services.periodic.SERVICES``) and its three
runners: every service in the table is run by embedded mode, is an RQ job, and is enqueued
by ``rq cron``, so a service added to the table cannot be missing from one of them."""

import logging
import signal
import subprocess

from rq.job import Job

from app.embedded import ServiceThread
from app.services import periodic
from tests.support import ORION, REDIS_URL, wait_for
from tests.workers.test_workers import app_env, enqueued, run_orion


class Records(logging.Handler):
    """Keeps the records a logger emits."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def messages(self, level):
        return [r.getMessage() for r in self.records if r.levelno == level]


def test_the_table_names_each_service_once():
    assert len({s.name for s in periodic.SERVICES}) == len(periodic.SERVICES)
    assert len({s.job_name for s in periodic.SERVICES}) == len(periodic.SERVICES)
    assert len({s.setting for s in periodic.SERVICES}) == len(periodic.SERVICES)


def test_settings_turn_services_off_and_set_their_intervals():
    first, *others = periodic.SERVICES
    config = {f"{first.setting}_ENABLED": False, f"{others[0].setting}_LOOP_SECONDS": 7}
    assert periodic.enabled_services(config) == others
    assert others[0].interval(config) == 7
    assert [s.interval({}) for s in others[1:]] == [s.default_interval for s in others[1:]]


def test_embedded_mode_runs_every_service_of_the_table(app, db):
    thread_log = logging.getLogger("tests.embedded-services")
    thread_log.setLevel(logging.DEBUG)
    records = Records()
    thread_log.addHandler(records)
    thread = ServiceThread(dict(app.config), logger=thread_log)
    assert [(name, interval) for name, interval, _ in thread.services] == [
        (s.name, s.default_interval) for s in periodic.SERVICES
    ]
    expected = {f"Service {s.name} ran" for s in periodic.SERVICES}

    def ran():
        return {m.split(":")[0] for m in records.messages(logging.DEBUG)}

    thread.start()
    try:
        wait_for(
            lambda: expected <= ran(),
            30,
            lambda: f"embedded mode to run all of {expected} (ran {ran()})",
        )
    finally:
        thread.stop()
        thread.join(timeout=30)
        thread_log.removeHandler(records)
    assert not records.messages(logging.ERROR)


def test_cron_enqueues_every_service_of_the_table_as_a_job_that_runs(app, db, redis_db):
    every_second = {f"{s.setting}_LOOP_SECONDS": 1 for s in periodic.SERVICES}
    cron = subprocess.Popen(
        [ORION, "cron"],
        env=app_env(app, REDIS_URL=REDIS_URL, **every_second),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: all(enqueued(redis_db, s.job_name) for s in periodic.SERVICES),
            15,
            "rq cron to enqueue every service's job",
        )
    finally:
        cron.send_signal(signal.SIGTERM)
        output = cron.communicate(timeout=20)[0]
    assert cron.returncode == 0, output
    jobs = {s.job_name: enqueued(redis_db, s.job_name) for s in periodic.SERVICES}
    result = run_orion(app, "worker", "--burst", REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stderr
    for name, ids in jobs.items():
        statuses = {Job.fetch(i, connection=redis_db).get_status() for i in ids}
        assert statuses == {"finished"}, (name, statuses, result.stderr)
