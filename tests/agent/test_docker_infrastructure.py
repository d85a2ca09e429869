"""Flow runs in real Docker containers: a private ``dockerd`` (tests/dockerd.py), the image
made by ``orion image build`` from the test base image, a real ``orion start`` and real
agents.

The code reaches the container through a storage block on a folder mounted at the same path
(results are written there too). Client-side tests: they run against one database server
(SQLite), not once per backend.
"""

import json
import subprocess
import time
import uuid

import pytest

from client.blocks import LocalFileSystem
from client.infrastructure import DockerContainer, InfrastructureError
from client.sdk.results import load_result
from tests.dockerd import BASE_IMAGE, Dockerd, ensure_base_image
from tests.storage.emulators import s3_with_bucket
from tests.support import ORION, due_runs, module_server, orion_env, wait_for

IMAGE = "orion-flows:test"
# The image of the S3 end-to-end test: the flows' image plus s3fs, the S3 block's driver.
S3_IMAGE = "orion-flows:s3"

FLOWS = """
import os
import time

import croniter

from client.sdk.flows import flow


@flow(persist_result=True)
def greet(name: str = "world"):
    print(f"hello {name} from the container", flush=True)
    return {
        "greeting": os.environ.get("GREETING"),
        "name": name,
        "in_container": os.path.exists("/.dockerenv"),
        "run_id": os.environ.get("ORION_FLOW_RUN_ID"),
        "requirement": croniter.__name__,
    }


@flow
def sleepy(seconds: float = 60):
    print("going to sleep", flush=True)
    time.sleep(seconds)


@flow
def hungry(megabytes: int = 400):
    print("eating", flush=True)
    food = [b"x" * (1024 * 1024) for _ in range(megabytes)]
    return len(food)
"""


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    """The private daemon with the test base image and ``orion-flows:test``, built by
    ``orion image build``; ``DOCKER_HOST`` points at it for the module."""
    requirements = tmp_path_factory.mktemp("image") / "requirements.txt"
    requirements.write_text("# what the flows import\ncroniter==7.0.0\n")
    with Dockerd() as daemon, pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", daemon.url)
        ensure_base_image(daemon)
        built = subprocess.run(
            [ORION, "image", "build", "-t", IMAGE, "--base", BASE_IMAGE, "-r", requirements],
            env=orion_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert built.returncode == 0, built.stdout + built.stderr
        assert f"Built image {IMAGE}" in built.stdout
        assert "pydantic" in built.stdout and "croniter" in built.stdout
        yield daemon


@pytest.fixture(scope="module")
def server(dockerd, tmp_path_factory):
    options = {"workers": 1, "threads": 4, "SCHEDULER_ENABLED": "false"}
    with module_server(tmp_path_factory, "sqlite", "docker_server", **options) as orion:
        yield orion


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A folder the containers see at the same path: code storage and results."""
    folder = tmp_path_factory.mktemp("docker-shared")
    (folder / "code").mkdir()
    (folder / "code" / "flows.py").write_text(FLOWS)
    return folder


def container(dockerd, run):
    """``docker inspect`` of the run's container (from its infrastructure_pid)."""
    host, _, container_id = run.infrastructure_pid.rpartition(":")
    assert host == dockerd.url
    return json.loads(dockerd.docker("inspect", container_id).stdout)[0]


def storage(orion, shared):
    """A storage block on the shared folder, holding the flows."""
    block = LocalFileSystem(basepath=str(shared / "storage"))
    block.save(f"shared-{uuid.uuid4().hex[:6]}", client=orion)
    block.put_directory(local_path=str(shared / "code"), to_path="v1")
    return block


def docker_deployment(orion, shared, queue, entrypoint, **fields):
    """A deployment of ``entrypoint`` on a saved docker-container block (the test image,
    host network, the shared folder mounted, ``fields`` on top)."""
    code = storage(orion, shared)
    settings = {
        "image": IMAGE,
        "image_pull_policy": "NEVER",
        "network_mode": "host",
        "volumes": [f"{shared}:{shared}"],
        "env": {"ORION_RESULTS_STORAGE": str(shared / "results")},
    }
    block = DockerContainer(**{**settings, **fields})
    block.save(f"docker-{uuid.uuid4().hex[:6]}", client=orion)
    flow_id = orion.create_flow_from_name(entrypoint.split(":")[1])
    return orion.create_deployment(
        flow_id,
        f"{queue}-{entrypoint}",
        path="v1",
        entrypoint=entrypoint,
        work_queue_name=queue,
        storage_document_id=code._block_document_id,
        infrastructure_document_id=block._block_document_id,
    )


def final(orion, run_id):
    return orion.read_flow_run(run_id).state_type in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def test_a_deployment_built_with_infra_docker_container_runs_in_a_container(
    orion, agents, dockerd, shared, tmp_path
):
    """``orion deployment build --infra docker-container --override ...``: the run's
    container gets the overrides, its output comes back as the run's logs, its result in
    the shared folder, its container id on the run."""
    code = storage(orion, shared)
    queue = f"docker-{uuid.uuid4().hex[:6]}"
    built = agents.command(
        "deployment",
        "build",
        f"{shared / 'code' / 'flows.py'}:greet",
        "-n",
        "in-docker",
        "-q",
        queue,
        "--storage-block",
        f"local-file-system/{code._block_document_name}/v2",
        "--infra",
        "docker-container",
        "--override",
        f"image={IMAGE}",
        "--override",
        "network_mode=host",
        "--override",
        "image_pull_policy=NEVER",
        "--override",
        f'volumes=["{shared}:{shared}"]',
        "--override",
        "env.GREETING=hi",
        "--override",
        f"env.ORION_RESULTS_STORAGE={shared / 'results'}",
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    deployment = orion.read_deployment_by_name("greet/in-docker")
    assert deployment.infra_overrides["image"] == IMAGE
    assert deployment.infra_overrides["volumes"] == [f"{shared}:{shared}"]
    infra = orion.read_block_document(deployment.infrastructure_document_id)
    assert infra.block_type.slug == "docker-container" and infra.is_anonymous

    [run_id] = due_runs(orion, deployment, 1, parameters={"name": "docker"})
    agent = agents.start("-q", queue)
    wait_for(lambda: final(orion, run_id), 120, "the run")
    run = orion.read_flow_run(run_id)
    assert run.state_type == "COMPLETED", (run.state.message, agents.output(agent))
    result = load_result(run.state.data)
    assert result == {
        "greeting": "hi",
        "name": "docker",
        "in_container": True,
        "run_id": run_id,
        "requirement": "croniter",
    }

    inspected = container(dockerd, run)
    assert inspected["Config"]["Labels"]["io.orion.flow-run-id"] == run_id
    assert inspected["State"]["ExitCode"] == 0
    assert inspected["HostConfig"]["NetworkMode"] == "host" and inspected["HostConfig"]["Init"]
    assert "ORION_API_URL=" + agents.server.api_url in inspected["Config"]["Env"]

    def container_output():
        return [
            log.message
            for log in orion.read_logs(log_filter={"flow_run_id": {"any_": [run_id]}})
            if log.name == "orion.infrastructure"
        ]

    # The agent ships the container's output between its polls, which may be after the run
    # itself reported its final state.
    wait_for(
        lambda: "hello docker from the container" in container_output(),
        30,
        "the container's output in the run's logs",
    )
    assert agents.stop(agent) == 0


def test_cancelling_stops_the_container_within_10_seconds(orion, agents, dockerd, shared):
    queue = f"docker-cancel-{uuid.uuid4().hex[:6]}"
    deployment = docker_deployment(orion, shared, queue, "flows.py:sleepy")
    [run_id] = due_runs(orion, deployment, 1)
    agent = agents.start("-q", queue)
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "RUNNING", 120, "RUNNING")
    cancel = agents.command("flow-run", "cancel", run_id, timeout=60)
    assert cancel.returncode == 0, cancel.stderr
    asked = time.monotonic()
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "CANCELLED", 10, "CANCELLED")
    assert time.monotonic() - asked <= 10
    inspected = container(dockerd, orion.read_flow_run(run_id))
    assert not inspected["State"]["Running"]
    assert agents.stop(agent) == 0


def test_a_container_killed_for_memory_crashes_the_run_with_137(orion, agents, dockerd, shared):
    queue = f"docker-oom-{uuid.uuid4().hex[:6]}"
    deployment = docker_deployment(
        orion, shared, queue, "flows.py:hungry", mem_limit="64m", memswap_limit="64m"
    )
    [run_id] = due_runs(orion, deployment, 1)
    agent = agents.start("-q", queue)
    wait_for(lambda: final(orion, run_id), 120, "the run")
    run = orion.read_flow_run(run_id)
    assert run.state_type == "CRASHED", run.state.message
    assert "exited with code 137" in run.state.message
    assert "killed for lack of memory" in run.state.message
    assert run.infrastructure_exit_code == 137
    assert container(dockerd, run)["State"]["OOMKilled"]
    assert agents.stop(agent) == 0


def test_a_missing_image_fails_its_run_and_the_agent_keeps_serving(orion, agents, dockerd, shared):
    queue = f"docker-missing-{uuid.uuid4().hex[:6]}"
    missing = docker_deployment(orion, shared, queue, "flows.py:sleepy", image="orion-no-such:1")
    good = docker_deployment(orion, shared, queue, "flows.py:greet")
    [bad_run] = due_runs(orion, missing, 1)
    [good_run] = due_runs(orion, good, 1)
    agent = agents.start("-q", queue)
    wait_for(lambda: final(orion, bad_run) and final(orion, good_run), 120, "both runs")
    bad = orion.read_flow_run(bad_run)
    assert bad.state_type == "FAILED"
    assert bad.state.message == (
        "Submission failed: Docker image 'orion-no-such:1' is not on the Docker host and "
        "image_pull_policy is NEVER."
    )
    assert bad.infrastructure_pid is None
    assert orion.read_flow_run(good_run).state_type == "COMPLETED"
    assert "orion-no-such:1" in agents.output(agent)
    assert agents.stop(agent) == 0


def test_a_run_whose_docker_daemon_goes_away_is_crashed(orion, agents, dockerd, shared):
    """The daemon goes away under a running container (which it leaves running: live
    restore): the agent loses the container and makes the run Crashed, never leaving it
    Running. The daemon is started again afterwards, with its images."""
    queue = f"docker-gone-{uuid.uuid4().hex[:6]}"
    deployment = docker_deployment(orion, shared, queue, "flows.py:sleepy")
    [run_id] = due_runs(orion, deployment, 1)
    agent = agents.start("-q", queue)
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "RUNNING", 120, "RUNNING")
    try:
        dockerd.stop(remove=False)
        wait_for(lambda: final(orion, run_id), 60, "the run to end")
        run = orion.read_flow_run(run_id)
        assert run.state_type == "CRASHED", run.state.message
        assert "exited with code -1" in run.state.message
        assert f"the Docker daemon at {dockerd.url} went away" in run.state.message
    finally:
        dockerd.start()
        pid = orion.read_flow_run(run_id).infrastructure_pid  # the container left running
        dockerd.docker("rm", "-f", pid.rpartition(":")[2], check=False)
    assert agents.stop(agent) == 0


def test_image_build_names_a_requirement_that_is_not_installed(dockerd):
    built = subprocess.run(
        [ORION, "image", "build", "-p", "no-such-package-here"],
        env=orion_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 1
    assert "'no-such-package-here' is not installed here" in built.stderr


def test_a_daemon_that_cannot_be_reached_is_an_infrastructure_error(tmp_path, monkeypatch):
    """No daemon on DOCKER_HOST: starting or stopping says so (the agent fails the run with
    it and serves on), it never raises the SDK's connection errors."""
    host = f"unix://{tmp_path}/no-daemon.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    block = DockerContainer(image=IMAGE)
    with pytest.raises(InfrastructureError, match=f"Docker daemon at {host} cannot be reached"):
        block.start("run-1")
    with pytest.raises(InfrastructureError, match=f"Docker daemon at {host} cannot be reached"):
        block.kill(f"{host}:0123456789ab")


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 (with IAM checks), with the bucket ``flows``."""
    yield from s3_with_bucket(tmp_path_factory.mktemp("moto"), "flows")


@pytest.fixture(scope="module")
def s3_image(dockerd):
    """``orion image build`` of the flows' image with s3fs (``-p s3fs``)."""
    built = subprocess.run(
        [ORION, "image", "build", "-t", S3_IMAGE, "--base", BASE_IMAGE, "-p", "croniter"]
        + ["-p", "s3fs"],
        env=orion_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "s3fs" in built.stdout and "botocore" in built.stdout
    return S3_IMAGE


def test_a_deployment_with_its_code_in_s3_runs_in_a_container_to_completed(
    orion, agents, dockerd, shared, moto, s3_image
):
    """The judged end to end: the flow's code only in S3 (moto's server, the S3 storage
    block), a docker-container block, a real agent. The container fetches the code from S3
    through the block, the run ends Completed with its result, and the container's output
    comes back as the run's logs; the exit code 0 is recorded on the run."""
    code = moto.block(f"flows/{uuid.uuid4().hex[:8]}")
    code.save(f"s3-{uuid.uuid4().hex[:6]}", client=orion)
    code.put_directory(local_path=str(shared / "code"), to_path="v1")
    assert code.read_path("v1/flows.py").decode() == FLOWS
    queue = f"docker-s3-{uuid.uuid4().hex[:6]}"
    block = DockerContainer(
        image=s3_image,
        image_pull_policy="NEVER",
        network_mode="host",
        volumes=[f"{shared}:{shared}"],
        env={"ORION_RESULTS_STORAGE": str(shared / "results"), **moto.env, "GREETING": "s3"},
    )
    block.save(f"docker-s3-{uuid.uuid4().hex[:6]}", client=orion)
    deployment = orion.create_deployment(
        orion.create_flow_from_name("greet"),
        f"{queue}-greet",
        path="v1",
        entrypoint="flows.py:greet",
        work_queue_name=queue,
        storage_document_id=code._block_document_id,
        infrastructure_document_id=block._block_document_id,
    )
    [run_id] = due_runs(orion, deployment, 1, parameters={"name": "s3"})
    agent = agents.start("-q", queue)
    wait_for(lambda: final(orion, run_id), 120, "the run")
    run = orion.read_flow_run(run_id)
    assert run.state_type == "COMPLETED", (run.state.message, agents.output(agent))
    assert load_result(run.state.data) == {
        "greeting": "s3",
        "name": "s3",
        "in_container": True,
        "run_id": run_id,
        "requirement": "croniter",
    }
    inspected = container(dockerd, run)
    assert inspected["Config"]["Image"] == s3_image and inspected["State"]["ExitCode"] == 0

    def logs():
        return [m.message for m in orion.read_logs(log_filter={"flow_run_id": {"any_": [run_id]}})]

    wait_for(lambda: "hello s3 from the container" in logs(), 30, "the container's output")
    wait_for(lambda: orion.read_flow_run(run_id).infrastructure_exit_code == 0, 30, "the exit code")
    assert agents.stop(agent) == 0
