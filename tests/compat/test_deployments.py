"""Prefect's deployment workflow against Orion: ``prefect deployment build --apply`` with a
LocalFileSystem storage block, ``prefect deployment run``, ``prefect agent start -q`` running
the flow from storage, and cancellation: a run set Cancelling is killed by Prefect's agent.

Each Prefect process costs seconds of start-up on a busy machine, so the second run is created
and cancelled through the API (what ``prefect deployment run`` and ``prefect flow-run cancel``
send); the agent's side, which finds and kills it, is Prefect's own."""

import os
import signal
import subprocess

import pytest

from tests.compat.conftest import flow_runs, log_messages, ok, state_history, wait_for

FLOW = """
import time

from prefect import flow, get_run_logger


@flow(name="compat-deployed")
def deployed(marker: str = "none", seconds: float = 0):
    get_run_logger().info("deployed flow started: %s", marker)
    time.sleep(seconds)
    get_run_logger().info("deployed flow finished: %s", marker)
    return marker
"""


@pytest.fixture(scope="module")
def deployment(prefect, api):
    """``prefect deployment build --apply`` of a flow file, stored through a LocalFileSystem
    block; returns (deployment as the API returns it, the storage folder).

    The block document is created through the API on the server's system block type
    (saving blocks from Prefect is test_blocks' and test_flows' part; one Prefect process less).
    """
    project = prefect.workdir / "project"
    project.mkdir()
    (project / "compat_flow.py").write_text(FLOW)
    storage = prefect.workdir / "storage"
    block_name = f"storage-{prefect.tag}"
    block_type = ok(api.get("block_types/slug/local-file-system"))
    [schema] = ok(
        api.post(
            "block_schemas/filter",
            json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1},
        )
    )
    ok(
        api.post(
            "block_documents/",
            json={
                "name": block_name,
                "data": {"basepath": str(storage)},
                "block_type_id": block_type["id"],
                "block_schema_id": schema["id"],
            },
        )
    )
    prefect.run(
        "deployment",
        "build",
        "compat_flow.py:deployed",
        "-n",
        f"dep-{prefect.tag}",
        "-q",
        f"q-{prefect.tag}",
        "-sb",
        f"local-file-system/{block_name}",
        "--apply",
        cwd=project,
    )
    found = ok(
        api.post(
            "deployments/filter", json={"deployments": {"name": {"any_": [f"dep-{prefect.tag}"]}}}
        )
    )
    assert len(found) == 1, found
    return found[0], storage


@pytest.fixture(scope="module")
def agent(prefect, deployment):
    """``prefect agent start -q`` on the deployment's queue, stopped (with its flow runs) at
    the end; yields the process and the path of its output."""
    process, log_path = prefect.start("agent", "start", "-q", f"q-{prefect.tag}", log_name="agent")
    yield process, log_path
    try:
        os.killpg(process.pid, signal.SIGTERM)  # its flow runs are in its process group
    except ProcessLookupError:
        pass
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def run_deployment(prefect, api, deployment, **params):
    """``prefect deployment run`` with ``params``; returns the new flow run from the API."""
    before = {run["id"] for run in flow_runs(api, deployment_id={"any_": [deployment["id"]]})}
    prefect.run(
        "deployment",
        "run",
        f"compat-deployed/{deployment['name']}",
        *[arg for key, value in params.items() for arg in ("--param", f"{key}={value}")],
    )
    [new] = [
        run
        for run in flow_runs(api, deployment_id={"any_": [deployment["id"]]})
        if run["id"] not in before
    ]
    return new


def flow_run_in(api, agent, flow_run_id, *state_types):
    """The flow run if its state is one of ``state_types``, else None (for ``wait_for``);
    fails at once, with the agent's output, if the agent has died."""
    process, log_path = agent
    if process.poll() is not None:
        pytest.fail(
            f"the agent exited {process.returncode}:\n{log_path.read_text()[-4000:]}", pytrace=False
        )
    run = ok(api.get(f"flow_runs/{flow_run_id}"))
    return run if run["state"] and run["state"]["type"] in state_types else None


def where_is(api, flow_run_id):
    """For timeouts: a flow run's state history, read through the API."""
    return lambda: f"{flow_run_id}; its states: {state_history(api, flow_run_id=flow_run_id)}"


def test_build_apply_stores_the_flow_through_the_storage_block(deployment, api, prefect):
    found, storage = deployment
    assert found["work_queue_name"] == f"q-{prefect.tag}"
    block = ok(api.get(f"block_documents/{found['storage_document_id']}"))
    assert block["name"] == f"storage-{prefect.tag}"
    assert block["block_type"]["slug"] == "local-file-system"
    infra = ok(api.get(f"block_documents/{found['infrastructure_document_id']}"))
    assert infra["block_type"]["slug"] == "process"
    assert found["entrypoint"] == "compat_flow.py:deployed"
    assert found["parameter_openapi_schema"]["properties"]["marker"]["type"] == "string"
    # build uploaded the project through the block: the flow file is in the storage folder.
    assert (storage / "compat_flow.py").read_text() == FLOW


def test_deployment_run_is_run_by_the_agent(deployment, agent, api, prefect):
    found, _ = deployment
    run = run_deployment(prefect, api, found, marker=f"quick-{prefect.tag}")
    assert run["parameters"] == {"marker": f"quick-{prefect.tag}"}
    assert state_history(api, flow_run_id=run["id"])[0] == ("SCHEDULED", "Scheduled")
    done = wait_for(
        lambda: flow_run_in(api, agent, run["id"], "COMPLETED", "FAILED", "CRASHED"),
        90,
        where_is(api, run["id"]),
    )
    assert done["state"]["type"] == "COMPLETED", done["state"]
    assert done["infrastructure_pid"]
    # The flow's process sends its last logs as it exits, just after its final state.
    wait_for(
        lambda: f"deployed flow finished: quick-{prefect.tag}" in log_messages(api, run["id"]),
        30,
        "the flow run's logs",
    )


def process_ended(pid):
    """Whether process ``pid`` is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.split()[1:2] == ["Z"] for line in status if line.startswith("State:"))
    except FileNotFoundError:
        return True


def test_cancelling_a_running_flow_run_stops_it(deployment, agent, api, prefect):
    found, _ = deployment
    run = ok(
        api.post(
            f"deployments/{found['id']}/create_flow_run",
            json={
                "parameters": {"marker": f"slow-{prefect.tag}", "seconds": 600},
                "state": {"type": "SCHEDULED"},
            },
        )
    )
    running = wait_for(
        lambda: flow_run_in(api, agent, run["id"], "RUNNING"), 90, where_is(api, run["id"])
    )
    # Cancel once the flow's body is running (its first log line has reached the server).
    wait_for(
        lambda: f"deployed flow started: slow-{prefect.tag}" in log_messages(api, run["id"]),
        60,
        "the slow flow's first log line",
    )
    ok(api.post(f"flow_runs/{run['id']}/set_state", json={"state": {"type": "CANCELLING"}}))
    cancelled = wait_for(
        lambda: flow_run_in(api, agent, run["id"], "CANCELLED"), 60, where_is(api, run["id"])
    )
    assert cancelled["state"]["type"] == "CANCELLED"
    # The agent killed the flow's process: it is gone (or a zombie its parent has yet to reap;
    # Prefect 2.7's agent reports the cancellation as soon as it has signalled the process)
    # and the flow never finished.
    pid = int(running["infrastructure_pid"].rsplit(":", 1)[1])
    wait_for(lambda: process_ended(pid), 30, f"the flow's process {pid} to end")
    assert f"deployed flow finished: slow-{prefect.tag}" not in log_messages(api, run["id"])
