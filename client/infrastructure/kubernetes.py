"""``KubernetesJob``: run a flow run as a Kubernetes Job (Prefect 2.7.12's
``kubernetes-job``), and ``KubernetesClusterConfig``, the kubectl configuration it may name.

Needs the official ``kubernetes`` Python client (``pip install orion[kubernetes]``), imported
on first use. The cluster is the block's ``cluster_config`` (a kubeconfig and a context), or
else the in-cluster service account, or else ``~/.kube/config``.

The Job's manifest (:meth:`KubernetesJob.build_job`) is Prefect's: the block's ``job`` (by
default :meth:`KubernetesJob.base_job_manifest`), then the block's fields applied as JSON 6902
patches (namespace, labels, ``generateName`` from ``name``, the container's ``env``,
``image``, ``imagePullPolicy``, ``command`` as ``args``, ``serviceAccountName``,
``ttlSecondsAfterFinished`` from ``finished_job_ttl``), then the block's ``customizations`` (a
JSON 6902 patch), then the run's environment: the caller's (an agent: ``ORION_API_URL``,
``ORION_API_KEY``) and the run's id (``ORION_FLOW_RUN_ID``, ``PREFECT__FLOW_RUN_ID``). It is
sent as a ``V1Job`` of the client's models; a manifest the models do not fully hold (an
unknown field) is refused before anything is sent. Prefect's base manifest puts
``parallelism`` and ``completions`` in the pod spec, where Kubernetes rejects them; they are
moved to the Job spec. ``backoffLimit`` is 0 unless the manifest sets it: a pod that fails is
not started again (the agent has already ended the run Crashed). The Job is labelled
``orion.io/flow-run-id``.

``start`` creates the Job and returns; a thread watches its pod (label ``job-name``). A pod
that does not run within ``pod_watch_timeout_seconds``, an image that cannot be pulled
(``ImagePullBackOff``, ``ErrImagePull``, ``InvalidImageName``), a bad container config, a pod
evicted or a container killed for lack of memory (``OOMKilled``, code 137) each end the run
with a negative code (137 for OOM) and :meth:`KubernetesJob.exit_reason` saying why; the Job
is deleted when its pod never ran. With ``stream_output`` the pod's log is followed and each
line handed to the ``output`` callback. A watch that ends is started again (from the last
resource version seen, or from the pod's current state once that version has expired: ``410
Gone``); only the API server going away (or ``job_watch_timeout_seconds`` without an event)
ends the run from here. The identifier recorded on a run is
``NAMESPACE:JOB_NAME``; :meth:`KubernetesJob.kill` deletes the Job (and, in the foreground,
its pods) unless it has finished: a finished Job is left to ``finished_job_ttl``.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import threading
import time
import types
import typing
from collections.abc import Mapping

from pydantic import Field

from client.blocks.core import Block
from client.blocks.system import PREFECT_SYSTEM_SCHEMA_VERSION
from client.infrastructure.base import (
    InfrastructureError,
    OutputCallback,
    WatchedHandle,
    WatchedInfrastructure,
    emit_line,
    flow_run_id_of,
)

__all__ = [
    "KubernetesJob",
    "KubernetesClusterConfig",
    "KubernetesImagePullPolicy",
    "KubernetesHandle",
    "DEFAULT_IMAGE",
]

#: The image a Job runs when neither the block nor its manifest names one.
DEFAULT_IMAGE = "orion-flows:latest"
_LOGO = (
    "https://images.ctfassets.net/gm98wzqotmnx/1zrSeY8DZ1MJZs2BAyyyGk/"
    "20445025358491b8b72600b8f996125b/Kubernetes_logo_without_workmark.svg.png?h=250"
)
#: The label that names a Job's flow run.
FLOW_RUN_LABEL = "orion.io/flow-run-id"
#: Container waiting reasons after which the pod will never run.
_FATAL_WAITING = {
    "ImagePullBackOff": "the image {image!r} cannot be pulled",
    "ErrImagePull": "the image {image!r} cannot be pulled",
    "InvalidImageName": "the image name {image!r} is invalid",
    "CreateContainerConfigError": "the container's configuration is invalid",
    "CreateContainerError": "the container could not be created",
}
#: Exit code of a run whose pod ended for a reason other than its process's exit.
CRASHED = -1
OOM_EXIT_CODE = 137


def _kubernetes() -> typing.Any:
    try:
        import kubernetes
    except ImportError:
        raise InfrastructureError(
            "Kubernetes infrastructure needs the kubernetes Python client: "
            "pip install 'orion[kubernetes]'."
        ) from None
    return kubernetes


class KubernetesImagePullPolicy(enum.Enum):
    IF_NOT_PRESENT = "IfNotPresent"
    ALWAYS = "Always"
    NEVER = "Never"


class KubernetesClusterConfig(Block):
    """A kubectl configuration (``config``: a kubeconfig's contents) and the context of it
    to use (``context_name``)."""

    _block_type_name = "Kubernetes Cluster Config"
    _description = (
        "Stores configuration for interaction with Kubernetes clusters.\n\n"
        "See `from_file` for creation."
    )
    _logo_url = _LOGO
    _documentation_url = (
        "https://docs.prefect.io/api-ref/prefect/blocks/kubernetes/"
        "#prefect.blocks.kubernetes.KubernetesClusterConfig"
    )
    _code_example = (
        "Load a saved Kubernetes cluster config:\n```python\n"
        "from prefect.blocks.kubernetes import KubernetesClusterConfig\n\n"
        'cluster_config_block = KubernetesClusterConfig.load("BLOCK_NAME")\n```'
    )
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    config: dict[str, typing.Any] = Field(
        description="The entire contents of a kubectl config file."
    )
    context_name: str = Field(description="The name of the kubectl context to use.")

    def api_client(self) -> typing.Any:
        """A ``kubernetes.client.ApiClient`` for this configuration's context."""
        kubernetes = _kubernetes()
        try:
            return kubernetes.config.new_client_from_config_dict(
                self.config, context=self.context_name
            )
        except (kubernetes.config.ConfigException, ValueError, KeyError) as error:
            raise InfrastructureError(
                f"The Kubernetes cluster config is unusable: {error}"
            ) from None


JsonPatch = list[dict[str, typing.Any]]


@dataclasses.dataclass
class KubernetesHandle(WatchedHandle):
    """A created Job: ``identifier`` (``NAMESPACE:JOB_NAME``), where it is, the API client
    the watching thread uses, and the Job's pod's name once the thread saw it."""

    namespace: str
    job_name: str
    api_client: typing.Any
    pod_name: str | None = None


class KubernetesJob(WatchedInfrastructure):
    """A Kubernetes Job (see the module docstring)."""

    _block_type_name = "Kubernetes Job"
    _description = (
        "Runs a command as a Kubernetes Job.\n\nClick [here](https://medium.com/the-prefect-"
        "blog/how-to-use-kubernetes-with-prefect-419b2e8b8cb2/) to see a tutorial."
    )
    _logo_url = _LOGO
    _documentation_url = (
        "https://docs.prefect.io/api-ref/prefect/infrastructure/"
        "#prefect.infrastructure.KubernetesJob"
    )
    _code_example = (
        "```python\nfrom prefect.infrastructure.kubernetes import KubernetesJob\n\n"
        'kubernetes_job_block = KubernetesJob.load("BLOCK_NAME")\n```'
    )
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    type: typing.Literal["kubernetes-job"] = Field(
        default="kubernetes-job", description="The type of infrastructure."
    )
    image: str | None = Field(
        default=None,
        description=(
            "The image reference of a container image to use for the job, for example, "
            "`docker.io/prefecthq/prefect:2-latest`.The behavior is as described in the "
            "Kubernetes documentation and uses the latest version of Prefect by default, "
            "unless an image is already present in a provided job manifest."
        ),
    )
    namespace: str | None = Field(
        default=None,
        description=(
            "The Kubernetes namespace to use for this job. Defaults to 'default' unless a "
            "namespace is already present in a provided job manifest."
        ),
    )
    service_account_name: str | None = Field(
        default=None, description="The Kubernetes service account to use for this job."
    )
    image_pull_policy: KubernetesImagePullPolicy | None = Field(
        default=None, description="The Kubernetes image pull policy to use for job containers."
    )
    cluster_config: KubernetesClusterConfig | None = Field(
        default=None, description="The Kubernetes cluster config to use for this job."
    )
    job: dict[str, typing.Any] = Field(
        default_factory=lambda: KubernetesJob.base_job_manifest(),
        title="Base Job Manifest",
        description="The base manifest for the Kubernetes Job.",
    )
    customizations: JsonPatch = Field(
        default_factory=list,
        description="A list of JSON 6902 patches to apply to the base Job manifest.",
        json_schema_extra={
            "format": "rfc6902",
            "items": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    )
    job_watch_timeout_seconds: int | None = Field(
        default=None,
        description=(
            "Number of seconds to wait for each event emitted by the job before timing out. "
            "Defaults to `None`, which means no timeout will be enforced while waiting for "
            "each event in the job lifecycle."
        ),
    )
    pod_watch_timeout_seconds: int = Field(
        default=60, description="Number of seconds to watch for pod creation before timing out."
    )
    stream_output: bool = Field(
        default=True,
        description="If set, output will be streamed from the job to local standard output.",
    )
    finished_job_ttl: int | None = Field(
        default=None,
        description=(
            "The number of seconds to retain jobs after completion. If set, finished jobs "
            "will be cleaned up by Kubernetes after the given delay. If None (default), jobs "
            "will need to be manually removed."
        ),
    )

    @staticmethod
    def base_job_manifest() -> dict[str, typing.Any]:
        """Prefect 2.7.12's base Job: one container named ``prefect-job``, never restarted."""
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"labels": {}},
            "spec": {
                "template": {
                    "spec": {
                        "parallelism": 1,
                        "completions": 1,
                        "restartPolicy": "Never",
                        "containers": [{"name": "prefect-job", "env": []}],
                    }
                }
            },
        }

    # -- the manifest -----------------------------------------------------------------------

    def build_job(
        self, flow_run: typing.Any = None, env: Mapping[str, str | None] | None = None
    ) -> dict[str, typing.Any]:
        """The Job manifest for ``flow_run`` (see the module docstring), as a plain dict.
        InfrastructureError naming the patch that does not apply."""
        import jsonpatch

        manifest = copy.deepcopy(self.job)
        manifest.setdefault("metadata", {})
        pod_spec = manifest.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
        for key in ("parallelism", "completions"):
            if key in pod_spec:
                manifest["spec"].setdefault(key, pod_spec.pop(key))
        manifest["spec"].setdefault("backoffLimit", 0)
        _container(manifest)  # the shortcuts patch it: say plainly when there is none
        try:
            manifest = jsonpatch.apply_patch(manifest, self._shortcuts(manifest))
            manifest = jsonpatch.apply_patch(manifest, list(self.customizations))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise InfrastructureError(
                f"The kubernetes-job customizations do not apply to its Job manifest: {error}"
            ) from None
        variables: dict[str, str | None] = {**self.env, **(env or {})}
        if flow_run is not None:
            run_id = flow_run_id_of(flow_run)
            manifest["metadata"].setdefault("labels", {})[FLOW_RUN_LABEL] = run_id
            variables["ORION_FLOW_RUN_ID"] = variables["PREFECT__FLOW_RUN_ID"] = run_id
            if not self.command and not _container(manifest).get("args"):
                _container(manifest)["args"] = ["python3", "-m", "client.agent.run", run_id]
        container = _container(manifest)
        entries = [e for e in container.get("env") or [] if e.get("name") not in variables]
        entries += [{"name": k, "value": v} for k, v in variables.items() if v is not None]
        container["env"] = entries
        container.setdefault("image", DEFAULT_IMAGE)
        manifest.setdefault("metadata", {}).setdefault("namespace", "default")
        return manifest

    def _shortcuts(self, manifest: dict[str, typing.Any]) -> JsonPatch:
        """The block's fields as JSON 6902 operations on ``manifest`` (Prefect's order)."""
        patch: JsonPatch = []
        if self.namespace:
            patch.append({"op": "add", "path": "/metadata/namespace", "value": self.namespace})
        if self.labels:
            if "labels" not in manifest.setdefault("metadata", {}):
                patch.append({"op": "add", "path": "/metadata/labels", "value": {}})
            for key, value in self.labels.items():
                escaped = key.replace("~", "~0").replace("/", "~1")
                patch.append({"op": "add", "path": f"/metadata/labels/{escaped}", "value": value})
        if self.name:
            patch.append({"op": "add", "path": "/metadata/generateName", "value": f"{self.name}-"})
        else:
            patch.append({"op": "add", "path": "/metadata/generateName", "value": "orion-job-"})
        containers = "/spec/template/spec/containers/0"
        if self.image:
            patch.append({"op": "add", "path": f"{containers}/image", "value": self.image})
        if self.image_pull_policy:
            patch.append(
                {
                    "op": "add",
                    "path": f"{containers}/imagePullPolicy",
                    "value": self.image_pull_policy.value,
                }
            )
        if self.service_account_name:
            patch.append(
                {
                    "op": "add",
                    "path": "/spec/template/spec/serviceAccountName",
                    "value": self.service_account_name,
                }
            )
        if self.command:
            patch.append({"op": "add", "path": f"{containers}/args", "value": self.command})
        if self.finished_job_ttl is not None:
            patch.append(
                {
                    "op": "add",
                    "path": "/spec/ttlSecondsAfterFinished",
                    "value": self.finished_job_ttl,
                }
            )
        return patch

    def job_model(self, manifest: dict[str, typing.Any]) -> typing.Any:
        """``manifest`` as the client's ``V1Job`` model. InfrastructureError when the models
        do not hold all of it (a misspelt or misplaced field) or a value has the wrong type."""
        kubernetes = _kubernetes()
        api = kubernetes.client.ApiClient()
        try:
            # The client turns an API response into models; hand it the manifest as one.
            response = types.SimpleNamespace(data=json.dumps(manifest))
            model = api.deserialize(response, "V1Job")
        except (ValueError, TypeError) as error:
            raise InfrastructureError(f"The Kubernetes Job manifest is invalid: {error}") from None
        lost = _difference(manifest, api.sanitize_for_serialization(model), "")
        if lost:
            raise InfrastructureError(
                f"The Kubernetes Job manifest is invalid: {lost} is not a field Kubernetes "
                "knows there."
            )
        return model

    # -- running ----------------------------------------------------------------------------

    def _api_client(self) -> typing.Any:
        if self.cluster_config is not None:
            return self.cluster_config.api_client()
        kubernetes = _kubernetes()
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            try:
                kubernetes.config.load_kube_config()
            except (kubernetes.config.ConfigException, OSError) as error:
                raise InfrastructureError(
                    f"No Kubernetes cluster configured (in-cluster or ~/.kube/config): {error}"
                ) from None
        return kubernetes.client.ApiClient()

    def start(
        self,
        flow_run: typing.Any,
        env: Mapping[str, str | None] | None = None,
        output: OutputCallback | None = None,
    ) -> KubernetesHandle:
        kubernetes = _kubernetes()
        manifest = self.build_job(flow_run, env)
        model = self.job_model(manifest)
        namespace = manifest["metadata"]["namespace"]
        api_client = self._api_client()
        try:
            created = kubernetes.client.BatchV1Api(api_client).create_namespaced_job(
                namespace, model
            )
        except kubernetes.client.ApiException as error:
            api_client.close()
            raise InfrastructureError(
                f"The Kubernetes Job could not be created: {error.status} {error.reason}: "
                f"{_message(error)}"
            ) from None
        except Exception as error:  # urllib3: the API server cannot be reached
            api_client.close()
            raise InfrastructureError(
                f"The Kubernetes API server cannot be reached: {error}"
            ) from None
        job_name = created.metadata.name
        handle = KubernetesHandle(f"{namespace}:{job_name}", namespace, job_name, api_client)
        threading.Thread(
            target=self._watch, args=(handle, output), daemon=True, name="kubernetes-watch"
        ).start()
        return handle

    def _watch(self, handle: KubernetesHandle, output: OutputCallback | None) -> None:
        try:
            code, reason = self._follow_pod(handle, output)
        except Exception as error:  # the API server went away
            code, reason = CRASHED, f"the Kubernetes API server went away: {error}"
        if handle.streamer is not None:
            handle.streamer.join(timeout=5)  # the last lines before the end is known
        handle.api_client.close()
        handle.end(code, reason)

    def _follow_pod(
        self, handle: KubernetesHandle, output: OutputCallback | None
    ) -> tuple[int, str | None]:
        """Watch the Job's pod to its end: (exit code, reason)."""
        kubernetes = _kubernetes()
        core = kubernetes.client.CoreV1Api(handle.api_client)
        started = False
        deadline = time.monotonic() + self.pod_watch_timeout_seconds
        resource_version = None
        while True:
            if started:
                remaining = self.job_watch_timeout_seconds
            else:
                remaining = max(1, round(deadline - time.monotonic()))
            watch = kubernetes.watch.Watch()
            arguments: dict[str, typing.Any] = {"label_selector": f"job-name={handle.job_name}"}
            if remaining is not None:
                arguments["timeout_seconds"] = remaining
            if resource_version:
                arguments["resource_version"] = resource_version
            try:
                for event in watch.stream(core.list_namespaced_pod, handle.namespace, **arguments):
                    pod = event["object"]
                    resource_version = pod.metadata.resource_version or resource_version
                    handle.pod_name = pod.metadata.name
                    if event["type"] == "DELETED":
                        watch.stop()
                        return CRASHED, f"the pod {pod.metadata.name} was deleted"
                    ended = _pod_end(pod, self._image_of(pod))
                    if ended is not None:
                        watch.stop()
                        if not started and ended[0] != 0:
                            if not _ran(pod):
                                self._delete(handle)
                        if not started and self.stream_output and _ran(pod):
                            self._stream(handle, core, output)
                        return ended
                    if not started and pod.status and pod.status.phase == "Running":
                        started = True
                        if self.stream_output:
                            self._stream(handle, core, output)
            except kubernetes.client.ApiException as error:
                if error.status != 410:
                    raise
                # The resource version watched from expired (and the client's one retry
                # did not help): watch again from the pod's current state.
                resource_version = None
                continue
            if not started and time.monotonic() >= deadline:
                self._delete(handle)
                return CRASHED, (
                    f"the Job's pod did not start within pod_watch_timeout_seconds "
                    f"({self.pod_watch_timeout_seconds} s)"
                )
            if started and self.job_watch_timeout_seconds is not None:
                return CRASHED, (
                    f"no event from the Job's pod within job_watch_timeout_seconds "
                    f"({self.job_watch_timeout_seconds} s)"
                )

    def _image_of(self, pod: typing.Any) -> str:
        containers = (pod.spec.containers if pod.spec else None) or []
        return str(containers[0].image) if containers else str(self.image)

    def _stream(
        self, handle: KubernetesHandle, core: typing.Any, output: OutputCallback | None
    ) -> None:
        handle.streamer = threading.Thread(
            target=_stream_log,
            args=(core, handle.namespace, handle.pod_name, output),
            daemon=True,
            name="kubernetes-log",
        )
        handle.streamer.start()

    def _delete(self, handle: KubernetesHandle) -> None:
        kubernetes = _kubernetes()
        try:
            kubernetes.client.BatchV1Api(handle.api_client).delete_namespaced_job(
                handle.job_name, handle.namespace, propagation_policy="Foreground"
            )
        except kubernetes.client.ApiException:
            pass

    # -- stopping ---------------------------------------------------------------------------

    def kill(self, identifier: str, grace_seconds: float = 30) -> None:
        kubernetes = _kubernetes()
        namespace, _, job_name = str(identifier).partition(":")
        if not namespace or not job_name:
            raise InfrastructureError(f"{identifier!r} is not a NAMESPACE:JOB_NAME identifier.")
        api_client = self._api_client()
        batch = kubernetes.client.BatchV1Api(api_client)
        try:
            if _finished(batch.read_namespaced_job(job_name, namespace)):
                return  # left to finished_job_ttl (or whoever removes finished Jobs)
            batch.delete_namespaced_job(
                job_name,
                namespace,
                grace_period_seconds=max(0, round(grace_seconds)),
                propagation_policy="Foreground",
            )
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return
            raise InfrastructureError(
                f"Job {job_name!r} could not be deleted: {error.status} {_message(error)}"
            ) from None
        except Exception as error:
            raise InfrastructureError(
                f"Job {job_name!r} could not be deleted: the Kubernetes API server cannot be "
                f"reached: {error}"
            ) from None
        finally:
            api_client.close()


def _container(manifest: dict[str, typing.Any]) -> dict[str, typing.Any]:
    try:
        return typing.cast(dict, manifest["spec"]["template"]["spec"]["containers"][0])
    except (KeyError, IndexError, TypeError):
        raise InfrastructureError(
            "The Kubernetes Job manifest has no container (spec.template.spec.containers[0])."
        ) from None


def _difference(given: typing.Any, kept: typing.Any, path: str) -> str | None:
    """The first path of ``given`` that ``kept`` (its round trip through the models) lost."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return path or "/"
        for key, value in given.items():
            if key not in kept:
                return f"{path}/{key}"
            lost = _difference(value, kept[key], f"{path}/{key}")
            if lost:
                return lost
    elif isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return path
        for index, (a, b) in enumerate(zip(given, kept, strict=True)):
            lost = _difference(a, b, f"{path}/{index}")
            if lost:
                return lost
    return None


def _finished(job: typing.Any) -> bool:
    """Whether the Job has completed or failed (a condition ``Complete``/``Failed`` true)."""
    conditions = (job.status.conditions if job.status else None) or []
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)


def _ran(pod: typing.Any) -> bool:
    """Whether the pod's container got to run (is running or has terminated)."""
    for status in (pod.status.container_statuses if pod.status else None) or []:
        if status.state and (status.state.running or status.state.terminated):
            return True
    return False


def _pod_end(pod: typing.Any, image: str) -> tuple[int, str | None] | None:
    """(exit code, reason) if ``pod`` has ended or never will run, else None."""
    status = pod.status
    if status is None:
        return None
    if status.reason == "Evicted":
        return CRASHED, f"the pod {pod.metadata.name} was evicted: {status.message or ''}".strip()
    for container in status.container_statuses or []:
        state = container.state
        if state is None:
            continue
        if state.waiting is not None and state.waiting.reason in _FATAL_WAITING:
            why = _FATAL_WAITING[state.waiting.reason].format(image=container.image or image)
            detail = f": {state.waiting.message}" if state.waiting.message else ""
            return CRASHED, f"{state.waiting.reason}: {why}{detail}"
        if state.terminated is not None:
            code = int(state.terminated.exit_code)
            if state.terminated.reason == "OOMKilled":
                return OOM_EXIT_CODE, "OOMKilled: the container was killed for lack of memory"
            if status.phase in ("Succeeded", "Failed"):
                return code, None if code == 0 else state.terminated.reason
    if status.phase == "Succeeded":
        return 0, None
    if status.phase == "Failed":
        return CRASHED, f"the pod {pod.metadata.name} failed: {status.reason or 'unknown'}"
    return None


def _stream_log(
    core: typing.Any, namespace: str, pod_name: str | None, output: OutputCallback | None
) -> None:
    """Follow the pod's log to its end, one line at a time."""
    try:
        response = core.read_namespaced_pod_log(
            pod_name, namespace, follow=True, _preload_content=False
        )
        pending = b""
        for chunk in response.stream(4096):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                emit_line(line, output)
        if pending:
            emit_line(pending, output)
        response.release_conn()
    except Exception:  # the API server went away: the watching thread reports it
        pass


def _message(error: typing.Any) -> str:
    """The ``message`` of a Kubernetes API error's Status body, or its body."""
    try:
        return str(json.loads(error.body).get("message") or error.body)
    except (TypeError, ValueError, AttributeError):
        return str(error.body)
