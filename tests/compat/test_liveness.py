"""Prefect 2 clients never heartbeat. On a server whose liveness service crashes a silent run
within seconds, their flow runs are still not Crashed while they run, and a cancelled one is
not marked Cancelled before its worker could stop its process."""

import signal
import time

from tests.compat.conftest import ok, state_history, wait_for

# A run that had heartbeated would be Crashed 2-3 s into its silence.
SERVER_SETTINGS = {"RUN_HEARTBEAT_TIMEOUT": 2, "LIVENESS_LOOP_SECONDS": 1}
# Seconds of silence watched: past the timeout and a pass of the service, with a margin.
QUIET = 5

LONG_FLOW = """
import sys
import time

from prefect import flow, task


@task
def slow(seconds):
    time.sleep(seconds)
    return seconds


@flow(name=sys.argv[1])
def long_flow(seconds: float):
    return slow(seconds)


print("RESULT", long_flow(float(sys.argv[2])))
"""


def runs_of(api, flow_name):
    return ok(api.post("flow_runs/filter", json={"flows": {"name": {"any_": [flow_name]}}}))


def test_a_flow_running_past_the_heartbeat_timeout_completes(prefect, api):
    name = f"long-{prefect.tag}"
    output = prefect.script(LONG_FLOW, name, str(QUIET))
    assert f"RESULT {float(QUIET)}" in output
    [run] = runs_of(api, name)
    assert state_history(api, flow_run_id=run["id"]) == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("COMPLETED", "Completed"),
    ]


def test_a_cancelling_run_waits_for_its_worker_past_the_heartbeat_timeout(prefect, api):
    name = f"cancelled-{prefect.tag}"
    process, log_path = prefect.start_script(LONG_FLOW, name, "120")
    try:
        run = wait_for(
            lambda: [r for r in runs_of(api, name) if r["state_type"] == "RUNNING"],
            60,
            f"the flow run to start running ({log_path.read_text()[-2000:]})",
        )[0]
        prefect.run("flow-run", "cancel", run["id"])
        deadline = time.monotonic() + QUIET
        while time.monotonic() < deadline:
            assert ok(api.get(f"flow_runs/{run['id']}"))["state_type"] == "CANCELLING"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
