"""Prefect 2.20's work pools against Orion: ``prefect work-pool create/ls``, ``prefect
work-queue ls``, a deployment built on the pool, and ``prefect worker start --run-once`` running
its flow run to Completed; the server's side read through its API."""

from tests.compat.conftest import ok, prefect_220_only

FLOWS = """
from prefect import flow


@flow(log_prints=True)
def pooled(x: int = 1):
    print(f"POOLED {x}")
    return x + 1
"""


prefect = prefect_220_only("prefect-2.20-pools")


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
