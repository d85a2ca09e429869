"""Prefect 2.20's work pools against Orion: ``prefect work-pool create/ls``, ``prefect
work-queue ls``, a deployment built on the pool, and ``prefect worker start --run-once`` running
its flow run to Completed; the server's side read through its API."""

from tests.compat.conftest import ok, prefect_220_only

FLOWS = """
import os

from prefect import flow


@flow(log_prints=True)
def pooled(x: int = 1):
    print(f"POOLED {x} {os.environ.get('GREETING')}")
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


FROM_SOURCE = """
import sys
from prefect import flow

flow.from_source(source=sys.argv[1], entrypoint="pooled_flows.py:pooled").deploy(
    name=sys.argv[2], work_pool_name=sys.argv[3], parameters={"x": 40}
)
"""


def test_prefect_deploy_and_flow_deploy_run_from_their_pull_steps(prefect, api):
    """Prefect 2.20's own ways to deploy, ``prefect deploy`` and ``Flow.from_source(...)
    .deploy()``, send pull steps (here: go to the flow's folder) instead of a storage block;
    the worker's flow run reads them back to find the code, so each run completes."""
    pool = f"pull-{prefect.tag}"
    prefect.run("work-pool", "create", pool, "--type", "process")
    folder = prefect.workdir / "pulled"
    folder.mkdir()
    (folder / "pooled_flows.py").write_text(FLOWS)
    by_cli, by_api = f"cli-{prefect.tag}", f"api-{prefect.tag}"
    deploy = ("--no-prompt", "deploy", "pooled_flows.py:pooled", "-n", by_cli, "-p", pool)
    # Twice, as a user deploys again after a change: the schedule stays, once.
    for _ in range(2):
        prefect.run(*deploy, "--cron", "0 0 1 1 *", cwd=folder)
    prefect.script(FROM_SOURCE, str(folder), by_api, pool)
    steps = [{"prefect.deployments.steps.set_working_directory": {"directory": str(folder)}}]
    for name in (by_cli, by_api):
        deployment = ok(api.get(f"deployments/name/pooled/{name}"))
        assert deployment["pull_steps"] == steps, deployment
        assert deployment["storage_document_id"] is None and deployment["path"] is None
    prefect.run("deployment", "run", f"pooled/{by_cli}")
    # This run's own job variables: its worker sets the environment of its process.
    prefect.run("deployment", "run", f"pooled/{by_api}", "-jv", 'env={"GREETING": "hello"}')
    cli_deployment = ok(api.get(f"deployments/name/pooled/{by_cli}"))
    assert [s["schedule"]["cron"] for s in cli_deployment["schedules"]] == ["0 0 1 1 *"]

    # From elsewhere: only the pull steps lead the run to the flow's file.
    output = prefect.run(
        "worker", "start", "--pool", pool, "--run-once", cwd=prefect.workdir, timeout=180
    )
    runs = ok(api.post("flow_runs/filter", json={"work_pools": {"name": {"any_": [pool]}}}))
    runs = [r for r in runs if r["state_type"] != "SCHEDULED"]  # the cron's, next January
    assert sorted((r["state_type"], r["parameters"].get("x", 1)) for r in runs) == [
        ("COMPLETED", 1),
        ("COMPLETED", 40),
    ], output
    (by_run,) = [r for r in runs if r["parameters"].get("x") == 40]
    assert by_run["job_variables"] == {"env": {"GREETING": "hello"}}
    assert by_run["work_pool_name"] == pool
    logs = ok(api.post("logs/filter", json={"logs": {"flow_run_id": {"any_": [by_run["id"]]}}}))
    assert any("POOLED 40 hello" in log["message"] for log in logs), output


def test_work_pool_commands_read_the_agents_pool(prefect, api):
    """A Prefect 2.7 agent's queue puts ``default-agent-pool`` on the server; Prefect 2.20's
    client refuses a pool without a default queue, so listing pools used to fail here."""
    ok(api.post("work_queues/", json={"name": f"agents-{prefect.tag}"}))
    listed = prefect.run("work-pool", "ls", COLUMNS=300)
    assert "default-agent-pool" in listed and "prefect-agent" in listed
    shown = prefect.run("work-pool", "inspect", "default-agent-pool", COLUMNS=300)
    default = ok(api.get("work_pools/default-agent-pool/queues/default"))
    assert default["id"] in shown
