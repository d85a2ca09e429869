"""Deployments on blocks, end to end against a real ``orion start`` (SQLite and PostgreSQL):
``orion deployment build --storage-block ... --infra-block ...`` uploads the code once through
a saved storage block; a real agent runs the flow on the saved ``process`` block, downloading
the code through the storage block on every run."""

import shutil
import uuid

import pytest

from client.blocks import LocalFileSystem, String
from client.infrastructure import Process
from client.sdk.results import load_result
from tests.agent.test_agent_processes import server  # noqa: F401 (fixture)
from tests.support import due_runs, wait_for

FLOW = """
import os

from client.sdk.flows import flow


@flow(persist_result=True)
def where(x: int = 1):
    with open("data.txt") as handle:
        return {"x": x, "data": handle.read(), "cwd": os.getcwd(),
                "env": os.environ.get("FROM_BLOCK")}
"""


def build(agents, tmp_path, *args):
    done = agents.command("deployment", "build", *args, cwd=tmp_path)
    return done.returncode, done.stdout + done.stderr


def test_a_deployment_built_on_blocks_runs_from_the_storage_block(orion, agents, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "where.py").write_text(FLOW)
    (code / "data.txt").write_text("uploaded")
    shared = tmp_path / "shared"
    suffix = uuid.uuid4().hex[:6]
    LocalFileSystem(basepath=str(shared)).save(f"shared-{suffix}", client=orion)
    Process(env={"FROM_BLOCK": "yes"}).save(f"default-{suffix}", client=orion)
    queue = f"blocks-{suffix}"

    status, out = build(
        agents,
        tmp_path,
        f"{code / 'where.py'}:where",
        "-n",
        "on-blocks",
        "-q",
        queue,
        "--storage-block",
        f"local-file-system/shared-{suffix}/v1",
        "--infra-block",
        f"process/default-{suffix}",
    )
    assert status == 0, out
    assert "Uploaded 2 file(s) through block" in out
    assert (shared / "v1" / "where.py").exists()
    deployment = orion.read_deployment_by_name("where/on-blocks")
    assert deployment.path == "v1" and deployment.entrypoint == "where.py:where"
    storage = orion.read_block_document(deployment.storage_document_id)
    infra = orion.read_block_document(deployment.infrastructure_document_id)
    assert storage.name == f"shared-{suffix}" and infra.name == f"default-{suffix}"
    assert deployment.parameter_openapi_schema["properties"]["x"]["type"] == "integer"

    # The agent can only have the code from the storage block: the original is gone.
    shutil.rmtree(code)
    [run_id] = due_runs(orion, deployment, 1, parameters={"x": "5"})
    agents.start("-q", queue)
    wait_for(
        lambda: orion.read_flow_run(run_id).state_type in ("COMPLETED", "FAILED", "CRASHED"),
        90,
        "the run",
    )
    run = orion.read_flow_run(run_id)
    assert run.state_type == "COMPLETED", run.state.message
    result = load_result(run.state.data)
    assert result["x"] == 5 and result["data"] == "uploaded" and result["env"] == "yes"
    assert not result["cwd"].startswith(str(shared))  # a fresh download, not the block folder
    # The process reports Completed before it exits; the agent records its exit code after.
    wait_for(lambda: orion.read_flow_run(run_id).infrastructure_exit_code == 0, 10, "the exit code")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--storage-block", "local-file-system/nope"],
            "Storage block 'local-file-system/nope': No 'local-file-system' block document named",
        ),
        (["--storage-block", "string/plain"], "cannot store flow code"),
        (["--infra-block", "string/plain"], "is a 'string' block, not an infrastructure block"),
        (["--infra-block", "process"], "is not SLUG/NAME"),
        (["--storage-block", "x/y", "--storage", "/tmp/x"], "Give --storage or --storage-block"),
        (
            ["--infra", "smb"],
            "Infrastructure type 'smb' is not one this client implements",
        ),
        (
            ["--infra", "kubernetes-job", "--override", "pod_watch_timeout_seconds=soon"],
            "Infrastructure overrides {'pod_watch_timeout_seconds': 'soon'}",
        ),
        (["--infra", "process", "--infra-block", "process/x"], "Give --infra or --infra-block"),
        (["--override", "image"], "Override 'image' is not KEY=VALUE"),
        (["--override", "volumes=[oops"], "Override 'volumes=[oops': its value is not valid JSON"),
        (
            ["--infra", "docker-container", "--override", "colour=red"],
            "Infrastructure override 'colour': the 'docker-container' block has no such field.",
        ),
        (
            ["--infra", "docker-container", "--override", 'volumes=["no-colon"]'],
            "Invalid volume specification",
        ),
    ],
)
def test_build_names_what_is_wrong_with_a_block(orion, agents, tmp_path, args, message):
    (tmp_path / "where.py").write_text(FLOW)
    String(value="text").save("plain", client=orion, overwrite=True)
    status, out = build(agents, tmp_path, f"{tmp_path / 'where.py'}:where", "-n", "bad", *args)
    assert status != 0 and message in out, out


def test_build_on_a_new_kubernetes_job_block_with_an_override(orion, agents, tmp_path):
    """``--infra kubernetes-job --override image=...``, as Prefect's CLI: an anonymous
    ``kubernetes-job`` block with its defaults, the override kept on the deployment."""
    (tmp_path / "where.py").write_text(FLOW)
    status, out = build(
        agents,
        tmp_path,
        f"{tmp_path / 'where.py'}:where",
        "-n",
        "on-k8s",
        "--infra",
        "kubernetes-job",
        "--override",
        "image=registry.local/flows:2",
        "--override",
        "namespace=flows",
    )
    assert status == 0, out
    deployment = orion.read_deployment_by_name("where/on-k8s")
    assert deployment.infra_overrides == {"image": "registry.local/flows:2", "namespace": "flows"}
    document = orion.read_block_document(deployment.infrastructure_document_id)
    assert document.block_type.slug == "kubernetes-job" and document.is_anonymous
    assert document.data["pod_watch_timeout_seconds"] == 60
    assert document.data["job"]["kind"] == "Job"


def test_a_run_on_an_invalid_kubernetes_manifest_fails_with_the_reason(orion, agents, tmp_path):
    """A deployment on a ``kubernetes-job`` block (saved by Prefect, say) whose Job manifest
    has no container: the agent claims the run and fails it with the reason, sending
    nothing to any cluster, and keeps serving its queue."""
    (tmp_path / "where.py").write_text(FLOW)
    (tmp_path / "data.txt").write_text("local")
    block_type = orion.read_block_type_by_slug("kubernetes-job")
    [schema] = [s for s in orion.read_block_schemas() if s.block_type_id == block_type.id]
    suffix = uuid.uuid4().hex[:6]
    job = orion.create_block_document(
        {
            "name": f"k8s-{suffix}",
            "data": {"image": "python:3.11", "job": {}},
            "block_schema_id": schema.id,
            "block_type_id": block_type.id,
        }
    )
    queue = f"k8s-{suffix}"
    flow_id = orion.create_flow_from_name("where")
    deployment = orion.create_deployment(
        flow_id,
        f"k8s-{suffix}",
        path=str(tmp_path),
        entrypoint="where.py:where",
        work_queue_name=queue,
        infrastructure_document_id=job.id,
    )
    [run_id] = due_runs(orion, deployment, 1)
    agent = agents.start("-q", queue)
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "FAILED", 60, "FAILED")
    run = orion.read_flow_run(run_id)
    assert run.state.message == (
        "Submission failed: The Kubernetes Job manifest has no container "
        "(spec.template.spec.containers[0])."
    )
    assert run.infrastructure_pid is None
    assert agents.stop(agent) == 0
