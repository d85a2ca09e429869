"""Schedules with real Prefect clients against a real ``orion start`` (its scheduler on):
Prefect 2.20's ``flow.serve()`` runs its scheduled runs to Completed, a 2.20 deployment with
two schedules round-trips through the client's schedule calls, and Prefect 2.7.12 still
creates and reads a deployment's one ``schedule``. Everything is read back through Orion's
API."""

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.compat.conftest import Prefect, flow_runs, ok, prefect_venv, wait_for
from tests.support import BACKENDS, start_logged

SERVE = """
import sys

from prefect import flow


@flow(log_prints=True)
def tick(n: int = 1):
    print(f"tick {n}")
    return n


if __name__ == "__main__":
    tick.serve(name=sys.argv[1], interval=5, parameters={"n": 2})
"""

TWO_SCHEDULES = """
import asyncio
import datetime
import sys

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule


@flow
def twice():
    pass


async def main(name):
    async with get_client() as client:
        flow_id = await client.create_flow(twice)
        deployment_id = await client.create_deployment(
            flow_id,
            name,
            schedules=[
                DeploymentScheduleCreate(schedule=CronSchedule(cron="20 * * * *")),
                DeploymentScheduleCreate(
                    # Anchored at minute 7: by default the anchor is now, and a test run at
                    # minute 20 would find this schedule's runs at the removed cron's minute.
                    schedule=IntervalSchedule(
                        interval=datetime.timedelta(hours=2),
                        anchor_date=datetime.datetime(2024, 1, 1, 0, 7, tzinfo=datetime.UTC),
                    ),
                    active=False,
                ),
            ],
        )
        read = await client.read_deployment(deployment_id)
        print("SCHEDULES=" + ",".join(
            f"{type(s.schedule).__name__}:{s.active}" for s in read.schedules
        ))
        print("LEGACY=" + type(read.schedule).__name__)
        second = read.schedules[1]
        await client.update_deployment_schedule(deployment_id, second.id, active=True)
        added = await client.create_deployment_schedules(
            deployment_id, [(CronSchedule(cron="40 * * * *"), True)]
        )
        await client.delete_deployment_schedule(deployment_id, read.schedules[0].id)
        final = await client.read_deployment_schedules(deployment_id)
        print("FINAL=" + ",".join(f"{type(s.schedule).__name__}:{s.active}" for s in final))
        print("ADDED=" + str(added[0].id))
        print("ID=" + str(deployment_id))


asyncio.run(main(sys.argv[1]))
"""

LEGACY = """
import asyncio
import datetime
import sys

from prefect import flow
from prefect.client.orion import get_client
from prefect.orion.schemas.schedules import IntervalSchedule


@flow
def hourly():
    pass


async def main(name):
    async with get_client() as client:
        flow_id = await client.create_flow(hourly)
        deployment_id = await client.create_deployment(
            flow_id, name, schedule=IntervalSchedule(interval=datetime.timedelta(hours=1))
        )
        read = await client.read_deployment(deployment_id)
        print("SCHEDULE=" + str(read.schedule.interval.total_seconds()))
        print("ACTIVE=" + str(read.is_schedule_active))
        print("ID=" + str(deployment_id))


asyncio.run(main(sys.argv[1]))
"""


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, servers):
    return servers.get(request.param)


@pytest.fixture
def prefect_220(server, tmp_path):
    return Prefect("2.20", prefect_venv("2.20"), server.api_url, server.backend, tmp_path)


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.api_url + "/", timeout=30) as http:
        yield http


def value(output, key):
    """The text after ``KEY=`` on the output's line for it."""
    for line in output.splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1]
    raise AssertionError(f"no {key}= in:\n{output}")


def test_flow_serve_runs_its_scheduled_runs_to_completed(prefect_220, api, tmp_path):
    name = f"serve-{prefect_220.tag}"
    script = tmp_path / "serve_tick.py"
    script.write_text(SERVE)
    log_path = tmp_path / "serve.log"
    process = start_logged(
        [prefect_220.python, str(script), name],
        env=prefect_220.env(tmp_path, PREFECT_RUNNER_POLL_FREQUENCY="1"),
        cwd=str(tmp_path),
        log_path=log_path,
    )
    try:
        deployment = wait_for(
            lambda: (
                ok(api.get(f"deployments/name/tick/{name}"))
                if api.get(f"deployments/name/tick/{name}").status_code == 200
                else None
            ),
            60,
            lambda: f"the served deployment; serve output:\n{log_path.read_text()[-3000:]}",
        )
        assert [s["schedule"]["interval"] for s in deployment["schedules"]] == [5.0]

        def completed():
            runs = flow_runs(
                api,
                deployment_id={"any_": [deployment["id"]]},
                state={"type": {"any_": ["COMPLETED"]}},
            )
            return runs if len(runs) >= 2 else None

        done = wait_for(
            completed,
            90,
            lambda: f"two completed served runs; serve output:\n{log_path.read_text()[-3000:]}",
        )
        assert all(run["auto_scheduled"] for run in done)
        assert all(run["parameters"] == {"n": 2} for run in done)
        # The runner polls every second: its deployment is READY (Prefect 2.20's status).
        assert ok(api.get(f"deployments/{deployment['id']}"))["status"] == "READY"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    # Each scheduled run was claimed and run once.
    runs = flow_runs(api, deployment_id={"any_": [deployment["id"]]})
    started = [r for r in runs if r["run_count"]]
    assert all(r["run_count"] == 1 for r in started), started


def test_a_220_deployment_with_two_schedules_round_trips(prefect_220, api):
    name = f"two-{prefect_220.tag}"
    output = prefect_220.script(TWO_SCHEDULES, name)
    assert value(output, "SCHEDULES") == "CronSchedule:True,IntervalSchedule:False", output
    assert value(output, "LEGACY") == "CronSchedule"
    assert value(output, "FINAL") == "IntervalSchedule:True,CronSchedule:True", output
    deployment = ok(api.get(f"deployments/{value(output, 'ID')}"))
    assert [s["active"] for s in deployment["schedules"]] == [True, True]
    assert deployment["schedules"][1]["id"] == value(output, "ADDED")
    runs = flow_runs(api, deployment_id={"any_": [deployment["id"]]})
    minutes = {
        time.strptime(r["expected_start_time"][:19], "%Y-%m-%dT%H:%M:%S").tm_min for r in runs
    }
    assert 40 in minutes and 20 not in minutes, minutes


def test_a_27_client_creates_and_reads_a_single_schedule(server, api, tmp_path):
    prefect_27 = Prefect("2.7", prefect_venv("2.7"), server.api_url, server.backend, tmp_path)
    name = f"legacy-{prefect_27.tag}"
    output = prefect_27.script(LEGACY, name)
    assert value(output, "SCHEDULE") == "3600.0", output
    assert value(output, "ACTIVE") == "True"
    deployment = ok(api.get(f"deployments/{value(output, 'ID')}"))
    assert deployment["schedules"][0]["active"] is True
    prefect_27.run("deployment", "pause-schedule", f"hourly/{name}")
    deployment = ok(api.get(f"deployments/{value(output, 'ID')}"))
    assert deployment["paused"] is True
    assert [(s["schedule"]["interval"], s["active"]) for s in deployment["schedules"]] == [
        (3600.0, False)
    ]
