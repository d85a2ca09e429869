"""``Process``: run a flow run as a subprocess of this machine (Prefect 2.7.12's ``process``).

The default command is ``python -m client.agent.run FLOW_RUN_ID`` with this interpreter
(:mod:`client.agent.run` fetches the deployment's code and runs the flow). A ``command`` set on the
block runs instead, with the flow run id in ``ORION_FLOW_RUN_ID`` (and ``PREFECT__FLOW_RUN_ID``).
The process gets this process's environment, then the block's ``env`` (a ``None`` value removes
a variable), then what the caller adds; it starts in a new session (so :meth:`Process.kill`
stops its children too) in ``working_dir`` (default: the current directory). Its identifier is
``host:pid``; a process killed by a signal has the negative signal number as exit code.
"""

import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import typing
import weakref
from collections.abc import Mapping

from pydantic import Field

from client.blocks.system import PREFECT_SYSTEM_SCHEMA_VERSION
from client.infrastructure.base import (
    Infrastructure,
    InfrastructureError,
    InfrastructureResult,
    OutputCallback,
    flow_run_id_of,
)

__all__ = ["Process", "ProcessHandle"]

# The processes started here, by identifier: kill() reaps them, or a finished one would stay
# a zombie (still "alive" to killpg) until its owner waits for it.
_started: weakref.WeakValueDictionary[str, subprocess.Popen[bytes]] = weakref.WeakValueDictionary()


@dataclasses.dataclass
class ProcessHandle:
    """A started flow run process: ``identifier`` (``host:pid``) and its ``popen``."""

    identifier: str
    popen: subprocess.Popen[bytes]


class Process(Infrastructure):
    """A local subprocess (see the module docstring)."""

    _description = (
        "Run a command in a new process.\n\nCurrent environment variables and "
        "Prefect settings will be included in the created\nprocess. Configured "
        "environment variables will override any current environment\nvariables."
    )
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    type: typing.Literal["process"] = Field(
        default="process", description="The type of infrastructure."
    )
    stream_output: bool = Field(
        default=True,
        description="If set, output will be streamed from the process to local standard output.",
    )
    working_dir: str | pathlib.Path | None = Field(
        default=None,
        description="If set, the process will open within the specified path "
        "as the working directory. Otherwise, a temporary directory "
        "will be created.",
    )

    def _environment(
        self, flow_run_id: str, extra: Mapping[str, str | None] | None
    ) -> dict[str, str]:
        env = dict(os.environ)
        for key, value in {**self.env, **(extra or {})}.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        env["ORION_FLOW_RUN_ID"] = env["PREFECT__FLOW_RUN_ID"] = flow_run_id
        return env

    def start(
        self,
        flow_run: typing.Any,
        env: Mapping[str, str | None] | None = None,
        output: OutputCallback | None = None,
    ) -> ProcessHandle:
        """Start the process; its output goes to this process's stdout and stderr
        (``stream_output``) or nowhere, never to ``output``."""
        flow_run_id = flow_run_id_of(flow_run)
        command = (
            list(self.command)
            if self.command
            else [sys.executable, "-m", "client.agent.run", flow_run_id]
        )
        sink = None if self.stream_output else subprocess.DEVNULL
        try:
            popen = subprocess.Popen(
                command,
                env=self._environment(flow_run_id, env),
                cwd=str(self.working_dir) if self.working_dir else None,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )
        except OSError as error:
            raise InfrastructureError(f"the flow run process could not start: {error}") from error
        handle = ProcessHandle(f"{socket.gethostname()}:{popen.pid}", popen)
        _started[handle.identifier] = popen
        return handle

    def poll(self, handle: ProcessHandle) -> int | None:
        return handle.popen.poll()

    def wait(self, handle: ProcessHandle) -> InfrastructureResult:
        return InfrastructureResult(handle.identifier, handle.popen.wait())

    def kill(self, identifier: str, grace_seconds: float = 30) -> None:
        host, _, pid_text = str(identifier).rpartition(":")
        if host != socket.gethostname():
            raise InfrastructureError(
                f"Process {identifier!r} runs on host {host!r}, not on this one "
                f"({socket.gethostname()!r}); it cannot be stopped from here."
            )
        try:
            pid = int(pid_text)
            os.killpg(pid, signal.SIGTERM)
        except ValueError:
            raise InfrastructureError(f"{identifier!r} is not a host:pid identifier.") from None
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            popen = _started.get(identifier)
            if popen is not None:
                popen.poll()
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
