"""Prefect 2.20's work pools against Orion: ``prefect work-pool create/ls``, ``prefect
work-queue ls``, a deployment built on the pool, and ``prefect worker start --run-once`` running
its flow run to Completed; the server's side read through its API."""

import httpx
import pytest

from tests.compat.conftest import Prefect, ok, prefect_venv
from tests.support import BACKENDS

FLOWS = """
from prefect import flow


@flow(log_prints=True)
def pooled(x: int = 1):
    print(f"POOLED {x}")
    return x + 1
"""


@pytest.fixture(scope="module", params=BACKENDS)
def prefect(request, servers, tmp_path_factory):
    """Prefect 2.20 pointed at the module's server of a backend."""
    server = servers.get(request.param)
    workdir = tmp_path_factory.mktemp("prefect-2.20-pools")
    return Prefect("2.20", prefect_venv("2.20"), server.api_url, server.backend, workdir)


@pytest.fixture(scope="module")
def api(prefect):
    with httpx.Client(base_url=prefect.api_url + "/", timeout=30) as http:
        yield http


def test_a_process_worker_runs_a_deployment_of_its_pool(prefect, api):
    pool = f"pool-{prefect.tag}"
    prefect.run("work-pool", "create", pool, "--type", "process")
    assert pool in prefect.run("work-pool", "ls", COLUMNS=300)
    stored = ok(api.get(f"work_pools/{pool}"))
    assert stored["type"] == "process" and "job_configuration" in stored["base_job_template"]

    (prefect.workdir / "pooled_flows.py").write_text(FLOWS)
    name = f"d-{prefect.tag}"
    prefect.run(
        "deployment",
        "build",
        "pooled_flows.py:pooled",
        "-n",
        name,
        "--pool",
        pool,
        "--apply",
        cwd=prefect.workdir,
    )
    assert "default" in prefect.run("work-queue", "ls", "--pool", pool, COLUMNS=300)
    output = prefect.run("deployment", "run", f"pooled/{name}", cwd=prefect.workdir)
    runs = ok(api.post("flow_runs/filter", json={"work_pools": {"name": {"any_": [pool]}}}))
    assert len(runs) == 1, output

    output = prefect.run(
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "process",
        "--run-once",
        cwd=prefect.workdir,
        timeout=180,
    )
    run = ok(api.get(f"flow_runs/{runs[0]['id']}"))
    assert run["state_type"] == "COMPLETED", output
    workers = ok(api.post(f"work_pools/{pool}/workers/filter", json={}))
    assert len(workers) == 1 and workers[0]["status"] == "ONLINE"
