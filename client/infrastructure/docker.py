"""``DockerContainer``: run a flow run in a Docker container (Prefect 2.7.12's
``docker-container``), and ``DockerRegistry``, the registry login it may name.

Needs the ``docker`` Python SDK (``pip install orion[docker]``), imported on first use. The
Docker Engine is the one ``docker.from_env()`` finds (``DOCKER_HOST``, default the local
socket).

``start`` makes sure the image is there (``image_pull_policy``: ``ALWAYS`` pulls, ``NEVER``
never does, otherwise it pulls only a missing image, logging in through ``image_registry``
first when one is set), creates the container and starts it. The container runs
``command`` (default ``python3 -m client.agent.run FLOW_RUN_ID``: the image must hold the
client, see ``orion image build``) with ``init=True`` (a small init as PID 1 forwards
``SIGTERM`` to Python, so a stop is quick) and the environment: the block's ``env``, what
the caller adds (an agent: ``ORION_API_URL`` and ``ORION_API_KEY``), the run's id
(``ORION_FLOW_RUN_ID``, ``PREFECT__FLOW_RUN_ID``) and ``PYTHONUNBUFFERED=1``. Nothing of the
caller's own environment goes in. Its labels are the block's plus ``io.orion.flow-run-id``.
``network_mode`` ``host`` lets it reach a server on 127.0.0.1.

With ``stream_output`` a thread follows the container's output and hands each line to the
``output`` callback (an agent records them as the run's logs), or writes it to stdout. A
second thread waits for the container's end: :meth:`DockerContainer.poll` then gives its exit
code (137 when the kernel's OOM killer or a kill ended it; :meth:`exit_reason` says which),
or -1 when the Docker daemon went away first. With ``auto_remove`` the container is removed
once its exit code is known.

The identifier recorded on a run is ``DOCKER_HOST:CONTAINER_ID``; :meth:`kill` stops the
container (``SIGTERM``, ``SIGKILL`` after the grace period) through that daemon only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import threading
import typing
from collections.abc import Mapping

from pydantic import Field, SecretStr, field_validator

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

# The docker SDK's objects (typed Any here: the SDK is an optional extra, imported on use).
DockerClient = typing.Any
Container = typing.Any

__all__ = ["DockerContainer", "DockerRegistry", "ImagePullPolicy", "DockerHandle", "DEFAULT_IMAGE"]

#: The image ``orion image build`` tags by default, and the block's default image.
DEFAULT_IMAGE = "orion-flows:latest"
#: The label that names a container's flow run.
FLOW_RUN_LABEL = "io.orion.flow-run-id"
_LOGO = (
    "https://images.ctfassets.net/gm98wzqotmnx/2IfXXfMq66mrzJBDFFCHTp/"
    "6d8f320d9e4fc4393f045673d61ab612/Moby-logo.png?h=250"
)
_DEFAULT_HOST = "unix:///var/run/docker.sock"


def _docker_module() -> typing.Any:
    try:
        import docker
    except ImportError:
        raise InfrastructureError(
            "Docker infrastructure needs the docker Python SDK: pip install 'orion[docker]'."
        ) from None
    return docker


def docker_errors() -> tuple[type[Exception], ...]:
    """What a Docker SDK call may raise: its own errors, and requests' when the daemon
    cannot be reached (a connection refused or reset is not a DockerException)."""
    import requests

    return (_docker_module().errors.DockerException, requests.exceptions.RequestException)


def _failure(what: str, error: Exception) -> InfrastructureError:
    """``what`` failed because of ``error``; a daemon that cannot be reached says so."""
    import requests

    if isinstance(error, requests.exceptions.RequestException):
        return InfrastructureError(
            f"{what}: the Docker daemon at {docker_host()} cannot be reached: {error}"
        )
    return InfrastructureError(f"{what}: {error}")


def docker_host() -> str:
    """The Docker Engine address this process uses (``DOCKER_HOST`` or the local socket)."""
    return os.environ.get("DOCKER_HOST") or _DEFAULT_HOST


def docker_client() -> DockerClient:
    """A Docker SDK client for :func:`docker_host`; InfrastructureError if it cannot be
    reached."""
    docker = _docker_module()
    host = docker_host()
    if host.startswith("unix://") and not os.path.exists(host.removeprefix("unix://")):
        # Checked here: the SDK leaks the socket of a connection that fails.
        raise InfrastructureError(
            f"The Docker daemon at {host} cannot be reached: there is no such socket."
        )
    try:
        return docker.from_env()
    except docker.errors.DockerException as error:
        raise InfrastructureError(
            f"The Docker daemon at {docker_host()} cannot be reached: {error}"
        ) from None


class ImagePullPolicy(str, enum.Enum):
    IF_NOT_PRESENT = "IF_NOT_PRESENT"
    ALWAYS = "ALWAYS"
    NEVER = "NEVER"


class DockerRegistry(Block):
    """Credentials of a Docker registry, used to pull a ``DockerContainer``'s image."""

    _block_type_name = "Docker Registry"
    _description = "Connects to a Docker registry.\n\nRequires a Docker Engine to be connectable."
    _logo_url = _LOGO
    _documentation_url = (
        "https://docs.prefect.io/api-ref/prefect/infrastructure/"
        "#prefect.infrastructure.docker.DockerRegistry"
    )
    _block_schema_capabilities: typing.ClassVar[list[str]] = ["docker-login"]
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    username: str = Field(description="The username to log into the registry with.")
    password: SecretStr = Field(description="The password to log into the registry with.")
    registry_url: str = Field(
        description='The URL to the registry. Generally, "http" or "https" can be omitted.'
    )
    reauth: bool = Field(
        default=True, description="Whether or not to reauthenticate on each interaction."
    )

    def login(self, client: DockerClient) -> None:
        """Log ``client`` in to the registry."""
        client.login(
            username=self.username,
            password=self.password.get_secret_value(),
            registry=self.registry_url,
            reauth=self.reauth,
        )


@dataclasses.dataclass
class DockerHandle(WatchedHandle):
    """A started container: ``identifier`` (``DOCKER_HOST:CONTAINER_ID``) and the
    container; the waiting thread ends it."""

    container: Container

    @property
    def container_id(self) -> str:
        return str(self.container.id)


class DockerContainer(WatchedInfrastructure):
    """A Docker container (see the module docstring)."""

    _block_type_name = "Docker Container"
    _description = (
        "Runs a command in a container.\n\nRequires a Docker Engine to be connectable. "
        "Docker settings will be retrieved from\nthe environment.\n\nClick "
        "[here](https://docs.prefect.io/tutorials/docker/) to see a tutorial."
    )
    _logo_url = _LOGO
    _documentation_url = (
        "https://docs.prefect.io/api-ref/prefect/infrastructure/"
        "#prefect.infrastructure.DockerContainer"
    )
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    type: typing.Literal["docker-container"] = Field(
        default="docker-container", description="The type of infrastructure."
    )
    image: str = Field(
        default_factory=lambda: DEFAULT_IMAGE,
        description="Tag of a Docker image to use. Defaults to the Prefect image.",
    )
    image_pull_policy: ImagePullPolicy | None = Field(
        default=None, description="Specifies if the image should be pulled."
    )
    image_registry: DockerRegistry | None = None
    networks: list[str] = Field(
        default_factory=list,
        description="A list of strings specifying Docker networks to connect the container to.",
    )
    network_mode: str | None = Field(
        default=None,
        description="The network mode for the created container (e.g. host, bridge). "
        "If 'networks' is set, this cannot be set.",
    )
    auto_remove: bool = Field(
        default=False, description="If set, the container will be removed on completion."
    )
    volumes: list[str] = Field(
        default_factory=list,
        description='A list of volume mount strings in the format of "local_path:container_path".',
    )
    stream_output: bool = Field(
        default=True,
        description="If set, the output will be streamed from the container to local "
        "standard output.",
    )
    memswap_limit: int | str | None = Field(
        default=None,
        description=(
            "Total memory (memory + swap), -1 to disable swap. Should only be "
            "set if `mem_limit` is also set. If `mem_limit` is set, this defaults to"
            "allowing the container to use as much swap as memory. For example, if "
            "`mem_limit` is 300m and `memswap_limit` is not set, the container can use "
            "600m in total of memory and swap."
        ),
    )
    mem_limit: float | str | None = Field(
        default=None,
        description=(
            "Memory limit of the created container. Accepts float values to enforce "
            "a limit in bytes or a string with a unit e.g. 100000b, 1000k, 128m, 1g. "
            "If a string is given without a unit, bytes are assumed."
        ),
    )
    privileged: bool = Field(
        default=False, description="Give extended privileges to this container."
    )

    @field_validator("volumes")
    @classmethod
    def _check_volumes(cls, volumes: list[str]) -> list[str]:
        for volume in volumes:
            if ":" not in volume:
                raise ValueError(
                    "Invalid volume specification. "
                    f"Expected format 'path:container_path', but got {volume!r}"
                )
        return volumes

    @field_validator("labels")
    @classmethod
    def _docker_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        """Prefect's label names: ``example.com/key`` becomes ``com.example.key``."""
        converted = {}
        for name, value in (labels or {}).items():
            if "/" in name:
                namespace, key = name.split("/", 1)
                name = ".".join(reversed(namespace.split("."))) + "." + key
            converted[name] = value
        return converted

    # -- starting ---------------------------------------------------------------------------

    def _environment(
        self, flow_run_id: str, extra: Mapping[str, str | None] | None
    ) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1"}
        for key, value in {**self.env, **(extra or {})}.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        env["ORION_FLOW_RUN_ID"] = env["PREFECT__FLOW_RUN_ID"] = flow_run_id
        return env

    def _ensure_image(self, client: DockerClient) -> None:
        docker = _docker_module()
        policy = self.image_pull_policy or ImagePullPolicy.IF_NOT_PRESENT
        if policy is not ImagePullPolicy.ALWAYS:
            try:
                client.images.get(self.image)
                return
            except docker.errors.ImageNotFound:
                if policy is ImagePullPolicy.NEVER:
                    raise InfrastructureError(
                        f"Docker image {self.image!r} is not on the Docker host and "
                        "image_pull_policy is NEVER."
                    ) from None
        try:
            if self.image_registry is not None:
                self.image_registry.login(client)
            repository, _, tag = self.image.rpartition(":")
            if not repository or "/" in tag:
                repository, tag = self.image, "latest"
            client.images.pull(repository, tag=tag)
        except docker_errors() as error:
            raise InfrastructureError(
                f"Docker image {self.image!r} is not on the Docker host and could not be "
                f"pulled: {error}"
            ) from None

    def start(
        self,
        flow_run: typing.Any,
        env: Mapping[str, str | None] | None = None,
        output: OutputCallback | None = None,
    ) -> DockerHandle:
        flow_run_id = flow_run_id_of(flow_run)
        if self.networks and self.network_mode:
            raise InfrastructureError("Set either networks or network_mode, not both.")
        client = docker_client()
        command = (
            list(self.command)
            if self.command
            else ["python3", "-m", "client.agent.run", flow_run_id]
        )
        try:
            self._ensure_image(client)
            container = client.containers.create(
                self.image,
                command=command,
                environment=self._environment(flow_run_id, env),
                labels={**self.labels, FLOW_RUN_LABEL: flow_run_id},
                name=self.name,
                volumes=list(self.volumes),
                network_mode=self.network_mode,
                network=self.networks[0] if self.networks else None,
                mem_limit=self.mem_limit,
                memswap_limit=self.memswap_limit,
                privileged=self.privileged,
                init=True,
                detach=True,
            )
            for network in self.networks[1:]:
                client.networks.get(network).connect(container)
            container.start()
        except docker_errors() as error:
            client.close()
            raise _failure("The Docker container could not start", error) from None
        except InfrastructureError:
            client.close()
            raise
        handle = DockerHandle(f"{docker_host()}:{container.id}", container)
        if self.stream_output:
            handle.streamer = threading.Thread(
                target=_stream, args=(container, output), daemon=True, name="docker-output"
            )
            handle.streamer.start()
        threading.Thread(
            target=self._wait_for_end, args=(handle,), daemon=True, name="docker-wait"
        ).start()
        return handle

    def _wait_for_end(self, handle: DockerHandle) -> None:
        try:
            answer = handle.container.wait()
            if handle.streamer is not None:
                handle.streamer.join(timeout=2)  # the last lines before the end is known
            code = int(answer.get("StatusCode", -1))
            reason = (answer.get("Error") or {}).get("Message") or None
            handle.container.reload()
            if handle.container.attrs.get("State", {}).get("OOMKilled"):
                reason = "the container was killed for lack of memory (OOM)"
            if self.auto_remove:
                handle.container.remove(force=True)
        except docker_errors() as error:
            code, reason = -1, f"the Docker daemon at {docker_host()} went away: {error}"
        handle.end(code, reason)

    # -- stopping ---------------------------------------------------------------------------

    def kill(self, identifier: str, grace_seconds: float = 30) -> None:
        docker = _docker_module()
        host, _, container_id = str(identifier).rpartition(":")
        if not host or not container_id:
            raise InfrastructureError(
                f"{identifier!r} is not a DOCKER_HOST:CONTAINER_ID identifier."
            )
        if host != docker_host():
            raise InfrastructureError(
                f"Container {container_id!r} runs on the Docker host {host!r}, not on this "
                f"agent's ({docker_host()!r}); it cannot be stopped from here."
            )
        try:
            with contextlib.closing(docker_client()) as client:
                client.containers.get(container_id).stop(timeout=max(0, round(grace_seconds)))
        except docker.errors.NotFound:
            return
        except docker_errors() as error:
            raise _failure(f"Container {container_id!r} could not be stopped", error) from None


def _stream(container: Container, output: OutputCallback | None) -> None:
    """Follow the container's output to its end, one line at a time."""
    pending = b""
    try:
        for chunk in container.logs(stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                emit_line(line, output)
    except Exception:  # the daemon went away: the waiting thread reports it
        pass
    if pending:
        emit_line(pending, output)
