"""``kubernetes-job`` blocks: the Job manifest (built from the ``kubernetes`` client's models,
validated strictly by ``kubernetes-validate`` against Kubernetes 1.37) and the run's life
(create, watch the pod, stream its log, failures, cancellation) through the real
``kubernetes`` client talking HTTP to a fake API server (tests/agent/kubernetes_fake.py)
that plays recorded pod events. No cluster runs here (see docs/kubernetes.md)."""

import re
import threading
import time
import uuid
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from client.api.states import Running
from client.infrastructure.base import InfrastructureError
from client.infrastructure.kubernetes import KubernetesClusterConfig, KubernetesJob
from tests.agent.kubernetes_fake import GONE, HOLD, FakeKubernetes, running, terminated, waiting
from tests.support import due_runs, module_server, wait_for

KUBERNETES_VERSION = "1.37.0"
RUN_ID = "5f0c6a4e-2d3b-4f59-9d43-0c2b7c0e5a11"


def validate(manifest):
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.fixture
def fake():
    servers = []

    def start(*args, **kwargs):
        servers.append(FakeKubernetes(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def block_on(server, **fields):
    config = KubernetesClusterConfig(config=server.kubeconfig(), context_name="fake")
    return KubernetesJob(cluster_config=config, **fields)


def test_the_manifest_validates_and_holds_the_blocks_fields():
    block = KubernetesJob(
        image="registry.local/flows:2",
        namespace="flows",
        name="nightly",
        labels={"team": "data", "example.com/owner": "ops"},
        env={"FROM_BLOCK": "yes", "DROPPED": None},
        command=["python3", "-m", "client.agent.run"],
        service_account_name="runner",
        image_pull_policy="Always",
        finished_job_ttl=300,
        customizations=[
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/resources",
                "value": {"limits": {"memory": "512Mi"}},
            }
        ],
    )
    manifest = block.build_job(RUN_ID, {"ORION_API_URL": "http://orion:4200/api"})
    validate(manifest)
    validate(KubernetesJob().build_job(RUN_ID))  # Prefect's defaults, made valid
    assert manifest["metadata"] == {
        "namespace": "flows",
        "generateName": "nightly-",
        "labels": {"team": "data", "example.com/owner": "ops", "orion.io/flow-run-id": RUN_ID},
    }
    spec = manifest["spec"]
    assert spec["ttlSecondsAfterFinished"] == 300
    assert spec["parallelism"] == 1 and spec["completions"] == 1
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "runner" and pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["image"] == "registry.local/flows:2"
    assert container["imagePullPolicy"] == "Always"
    assert container["args"] == ["python3", "-m", "client.agent.run"]
    assert container["resources"] == {"limits": {"memory": "512Mi"}}
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "FROM_BLOCK": "yes",
        "ORION_API_URL": "http://orion:4200/api",
        "ORION_FLOW_RUN_ID": RUN_ID,
        "PREFECT__FLOW_RUN_ID": RUN_ID,
    }
    # The client's V1Job model holds all of it: what is sent is what was validated.
    from kubernetes.client import ApiClient

    assert ApiClient().sanitize_for_serialization(block.job_model(manifest)) == manifest


def test_the_documented_manifests_validate():
    """docs/kubernetes.md's manifests for the server, workers and agents (not applied to a
    cluster here) are at least valid Kubernetes 1.37 objects."""
    text = (Path(__file__).parents[2] / "docs" / "kubernetes.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    documents = [d for d in yaml.safe_load_all(block) if d]
    assert {d["kind"] for d in documents} >= {"Deployment", "StatefulSet", "Role", "Service"}
    for document in documents:
        validate(document)


def test_an_invalid_manifest_is_refused_with_the_field():
    misplaced = KubernetesJob(
        customizations=[{"op": "add", "path": "/spec/template/spec/colour", "value": "red"}]
    )
    manifest = misplaced.build_job(RUN_ID)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(manifest)
    with pytest.raises(InfrastructureError, match="/spec/template/spec/colour is not a field"):
        misplaced.job_model(manifest)
    bad_patch = KubernetesJob(customizations=[{"op": "remove", "path": "/spec/nothing"}])
    with pytest.raises(InfrastructureError, match="customizations do not apply"):
        bad_patch.build_job(RUN_ID)
    with pytest.raises(InfrastructureError, match="has no container"):
        KubernetesJob(job={}).build_job(RUN_ID)


def test_a_job_runs_to_its_end_and_its_log_comes_back(fake):
    server = fake(
        [waiting("ContainerCreating"), running(), terminated("Succeeded", 0)],
        log_lines=["hello from the pod", "done"],
    )
    block = block_on(server, image="flows:1", finished_job_ttl=60)
    lines = []
    handle = block.start(RUN_ID, {"ORION_API_KEY": "k"}, output=lines.append)
    assert handle.identifier == "default:orion-job-x7k2p"
    result = block.wait(handle)
    assert result.status_code == 0 and block.poll(handle) == 0 and block.exit_reason(handle) is None
    assert lines == ["hello from the pod", "done"]
    [(_, path, job)] = [r for r in server.requests if r[0] == "POST"]
    assert path == "/apis/batch/v1/namespaces/default/jobs"
    validate(job)
    assert job["spec"]["ttlSecondsAfterFinished"] == 60
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ORION_FLOW_RUN_ID"] == RUN_ID and env["ORION_API_KEY"] == "k"
    assert any("/pods/orion-job-x7k2p-pod1/log" in r[1] for r in server.requests)
    assert job["metadata"]["labels"]["orion.io/flow-run-id"] == RUN_ID
    assert job["spec"]["backoffLimit"] == 0  # a failed pod is not run again
    block.kill(handle.identifier)  # finished: left to finished_job_ttl, not deleted
    assert not [r for r in server.requests if r[0] == "DELETE"]


@pytest.mark.parametrize(
    "script, code, reason, deleted",
    [
        (
            [waiting("ErrImagePull"), waiting("ImagePullBackOff", "Back-off pulling image")],
            -1,
            "ErrImagePull: the image 'flows:1' cannot be pulled",
            True,
        ),
        (
            [running(), terminated("Failed", 137, "OOMKilled")],
            137,
            "OOMKilled: the container was killed for lack of memory",
            False,
        ),
        (
            [running(), {"phase": "Failed", "reason": "Evicted", "message": "low on memory"}],
            -1,
            "was evicted: low on memory",
            False,
        ),
        ([running(), terminated("Failed", 3, "Error")], 3, "Error", False),
    ],
    ids=["image-pull", "oom", "evicted", "exit-code"],
)
def test_pod_failures_end_the_run_with_the_reason(fake, script, code, reason, deleted):
    server = fake(script)
    block = block_on(server)
    handle = block.start(RUN_ID)
    assert block.wait(handle).status_code == code
    assert reason in block.exit_reason(handle)
    assert any(r[0] == "DELETE" for r in server.requests) is deleted


def test_an_expired_watch_is_watched_again_from_the_current_state(fake):
    """A long run outlives its watch's resource version: ``410 Gone`` (twice: the client
    retries once by itself) is not the end of the run."""
    server = fake([running(), GONE, GONE, terminated("Succeeded", 0)])
    block = block_on(server, stream_output=False)
    handle = block.start(RUN_ID)
    assert block.wait(handle).status_code == 0, block.exit_reason(handle)
    watches = [path for method, path, _ in server.requests if "watch=true" in path.lower()]
    assert len(watches) == 3 and "resourceVersion" not in watches[-1]


def test_a_pod_that_never_starts_times_out_and_its_job_is_deleted(fake):
    server = fake([waiting("ContainerCreating"), HOLD])
    block = block_on(server, pod_watch_timeout_seconds=1)
    started = time.monotonic()
    handle = block.start(RUN_ID)
    assert block.wait(handle).status_code == -1
    assert time.monotonic() - started < 10
    assert "did not start within pod_watch_timeout_seconds (1 s)" in block.exit_reason(handle)
    [(_, path, _)] = [r for r in server.requests if r[0] == "DELETE"]
    assert path.startswith("/apis/batch/v1/namespaces/default/jobs/orion-job-x7k2p?")
    assert "propagationPolicy=Foreground" in path


def test_cancelling_deletes_the_job_and_ends_the_run(fake):
    server = fake([running(), HOLD], log_lines=["working"])
    block = block_on(server)
    handle = block.start(RUN_ID, output=lambda line: None)
    time.sleep(0.3)
    assert block.poll(handle) is None
    block.kill(handle.identifier, grace_seconds=5)
    [(_, path, _)] = [r for r in server.requests if r[0] == "DELETE"]
    assert path.startswith("/apis/batch/v1/namespaces/default/jobs/orion-job-x7k2p?")
    assert "gracePeriodSeconds=5" in path and "propagationPolicy=Foreground" in path
    assert block.wait(handle).status_code == -1
    assert "was deleted" in block.exit_reason(handle)
    block.kill(handle.identifier)  # already gone: no error


def test_a_refused_job_and_an_absent_api_server_are_clear_errors(fake):
    server = fake(create_error=(422, 'Job.batch "x" is invalid: spec.template: Required value'))
    with pytest.raises(InfrastructureError, match=r"422.*spec\.template: Required value"):
        block_on(server).start(RUN_ID)
    gone = block_on(server)
    server.close()
    with pytest.raises(InfrastructureError, match="cannot be reached"):
        gone.start(RUN_ID)


def test_the_watch_thread_does_not_linger(fake):
    server = fake([running(), terminated("Succeeded", 0)])
    block = block_on(server)
    before = threading.active_count()
    block.wait(block.start(RUN_ID))
    time.sleep(0.2)
    assert threading.active_count() <= before + 1


# -- a real agent (SQLite server: client-side) -----------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    options = {"workers": 1, "threads": 4, "SCHEDULER_ENABLED": "false"}
    with module_server(tmp_path_factory, "sqlite", "kubernetes_server", **options) as orion:
        yield orion


def k8s_deployment(orion, fake_server, queue, tmp_path, **fields):
    (tmp_path / "flows.py").write_text(
        "from client.sdk.flows import flow\n\n@flow\ndef f():\n    pass\n"
    )
    block = block_on(fake_server, image="flows:1", **fields)
    block.save(f"k8s-{uuid.uuid4().hex[:6]}", client=orion)
    flow_id = orion.create_flow_from_name("f")
    return orion.create_deployment(
        flow_id,
        queue,
        path=str(tmp_path),
        entrypoint="flows.py:f",
        work_queue_name=queue,
        infrastructure_document_id=block._block_document_id,
    )


def test_an_agent_runs_a_job_and_crashes_it_on_an_image_pull_failure(orion, agents, fake, tmp_path):
    fake_server = fake(
        [waiting("ContainerCreating"), waiting("ErrImagePull", "pull access denied")]
    )
    queue = f"k8s-{uuid.uuid4().hex[:6]}"
    deployment = k8s_deployment(orion, fake_server, queue, tmp_path)
    [run_id] = due_runs(orion, deployment, 1)
    agent = agents.start("-q", queue)
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "CRASHED", 60, "CRASHED")
    run = orion.read_flow_run(run_id)
    assert run.infrastructure_pid == "default:orion-job-x7k2p"
    assert run.state.message == (
        "The flow run's kubernetes-job default:orion-job-x7k2p exited with code -1 without "
        "reporting a final state: ErrImagePull: the image 'flows:1' cannot be pulled: "
        "pull access denied."
    )
    [(_, _, job)] = [r for r in fake_server.requests if r[0] == "POST"]
    validate(job)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ORION_FLOW_RUN_ID"] == run_id and env["ORION_API_URL"] == orion.api_url
    assert agents.stop(agent) == 0


def test_an_agent_streams_the_pods_log_and_cancelling_deletes_the_job(
    orion, agents, fake, tmp_path
):
    fake_server = fake([running(), HOLD], log_lines=["hello from the pod"])
    queue = f"k8s-{uuid.uuid4().hex[:6]}"
    deployment = k8s_deployment(orion, fake_server, queue, tmp_path)
    [run_id] = due_runs(orion, deployment, 1)
    agent = agents.start("-q", queue)

    def logged():
        logs = orion.read_logs(log_filter={"flow_run_id": {"any_": [run_id]}})
        return any("hello from the pod" in log.message for log in logs)

    wait_for(logged, 60, "the pod's log line")
    orion.set_flow_run_state(run_id, Running(), force=True)
    cancel = agents.command("flow-run", "cancel", run_id, timeout=60)
    assert cancel.returncode == 0, cancel.stderr
    wait_for(lambda: orion.read_flow_run(run_id).state_type == "CANCELLED", 10, "CANCELLED")
    # The cancellation's delete, then the agent's clean-up of what is left (already gone).
    deletes = [path for method, path, _ in fake_server.requests if method == "DELETE"]
    assert deletes and all("/jobs/orion-job-x7k2p?" in path for path in deletes)
    assert agents.stop(agent) == 0
