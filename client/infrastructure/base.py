"""The infrastructure interface: ``run(flow_run) -> result``, ``start``, ``poll``, ``wait``,
``kill(identifier)``; what an agent needs of any kind of infrastructure.

An agent starts a run with :meth:`Infrastructure.start` (it returns at once with a handle
whose ``identifier`` the agent records as the run's ``infrastructure_pid``), looks at it with
:meth:`Infrastructure.poll` between polls of its queues, asks :meth:`Infrastructure.exit_reason`
why it ended when it ended badly, and stops it with :meth:`Infrastructure.kill`. Output the
infrastructure captures (a container's) goes, line by line, to the ``output`` callback given
to ``start``.

Fields are Prefect 2.7.12's ``Infrastructure`` base fields (``type``, ``env``, ``labels``,
``name``, ``command``), so its documents load here and ours there. A deployment's
``infra_overrides`` (``{"image": "...", "env.FOO": "bar"}``: dotted paths into the block's
fields, as Prefect 2.7 applies them) are applied with :meth:`Infrastructure.with_overrides`.
"""

import abc
import dataclasses
import threading
import typing
from collections.abc import Callable, Mapping

from pydantic import Field

from client.blocks.core import Block

__all__ = [
    "Infrastructure",
    "InfrastructureResult",
    "InfrastructureError",
    "OutputCallback",
    "WatchedHandle",
    "WatchedInfrastructure",
    "emit_line",
    "flow_run_id_of",
]

# What ``start`` hands each line of captured output to (the line, without its newline).
OutputCallback = Callable[[str], None]


class InfrastructureError(Exception):
    """A flow run could not be started or stopped on this infrastructure (message: why)."""


@dataclasses.dataclass(frozen=True)
class InfrastructureResult:
    """How a flow run's infrastructure ended: its ``identifier`` (what :meth:`kill` takes)
    and ``status_code`` (0: success)."""

    identifier: str
    status_code: int

    def __bool__(self) -> bool:
        return self.status_code == 0


def flow_run_id_of(flow_run: typing.Any) -> str:
    """The id of ``flow_run``: a flow run object (with ``id``) or the id itself."""
    return str(getattr(flow_run, "id", flow_run))


class Infrastructure(Block, abc.ABC):
    """Somewhere a flow run executes. Subclasses implement :meth:`start`, :meth:`poll`,
    :meth:`wait` and :meth:`kill`; :meth:`run` is start + wait."""

    _block_schema_capabilities: typing.ClassVar[list[str]] = ["run-infrastructure"]

    type: str = Field(description="The type of infrastructure.")
    env: dict[str, str | None] = Field(
        default_factory=dict,
        title="Environment",
        description="Environment variables to set in the configured infrastructure.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels applied to the infrastructure for metadata purposes.",
    )
    name: str | None = Field(
        default=None, description="Name applied to the infrastructure for identification."
    )
    command: list[str] | None = Field(
        default=None, description="The command to run in the infrastructure."
    )

    @abc.abstractmethod
    def start(
        self,
        flow_run: typing.Any,
        env: Mapping[str, str | None] | None = None,
        output: OutputCallback | None = None,
    ) -> typing.Any:
        """Start ``flow_run`` (a flow run or its id) and return a handle with an
        ``identifier`` at once; ``env`` is added to the block's environment. ``output``, if
        given, receives the lines of output this infrastructure captures (kinds that let the
        output go to this process's own stdout ignore it). InfrastructureError when the run
        cannot be started (the message says why)."""

    @abc.abstractmethod
    def poll(self, handle: typing.Any) -> int | None:
        """The exit code of what :meth:`start` started, or None while it runs. Never
        blocks for long and never raises: infrastructure that can no longer be reached has
        ended (a negative code; :meth:`exit_reason` says why)."""

    def exit_reason(self, handle: typing.Any) -> str | None:
        """Why what :meth:`start` started ended (once :meth:`poll` gave its code), when
        there is more to say than the exit code (e.g. "killed for lack of memory")."""
        return None

    @abc.abstractmethod
    def wait(self, handle: typing.Any) -> InfrastructureResult:
        """Wait for what :meth:`start` started; its :class:`InfrastructureResult`."""

    @abc.abstractmethod
    def kill(self, identifier: str, grace_seconds: float = 30) -> None:
        """Stop what :meth:`start` started (by its ``identifier``): ask politely, then
        force after ``grace_seconds``; blocks until it is gone or forced. Something already
        gone is no error. InfrastructureError if it cannot be reached."""

    def run(
        self, flow_run: typing.Any, env: Mapping[str, str | None] | None = None
    ) -> InfrastructureResult:
        """Run ``flow_run`` to its end here; returns an :class:`InfrastructureResult`."""
        return self.wait(self.start(flow_run, env=env))

    def with_overrides(self, overrides: Mapping[str, typing.Any] | None) -> typing.Self:
        """A copy of this block with a deployment's ``infra_overrides`` applied: each key is
        a dotted path into the fields (``image``, ``env.FOO``), each value replaces what is
        there (values given as text are converted to the field's type). ValueError naming
        the override that does not fit."""
        if not overrides:
            return self
        data = self.model_dump()
        for path, value in overrides.items():
            *parents, last = str(path).split(".")
            target = data
            for part in parents:
                child = target.get(part) if isinstance(target, dict) else None
                if child is None and isinstance(target, dict):
                    child = target[part] = {}
                if not isinstance(child, dict):
                    raise ValueError(
                        f"Infrastructure override {path!r}: {part!r} is not a mapping "
                        f"of the {self.get_block_type_slug()!r} block."
                    )
                target = child
            if not parents and last not in type(self).model_fields:
                raise ValueError(
                    f"Infrastructure override {path!r}: the {self.get_block_type_slug()!r} "
                    "block has no such field."
                )
            target[last] = value
        try:
            copy = type(self).model_validate(data)
        except ValueError as error:
            raise ValueError(f"Infrastructure overrides {dict(overrides)!r}: {error}") from None
        copy._block_document_id = self._block_document_id
        copy._block_document_name = self._block_document_name
        return copy


@dataclasses.dataclass
class WatchedHandle:
    """What :meth:`WatchedInfrastructure.start` returns: the ``identifier`` recorded on the
    run, and what the thread watching the run found once it ended (``exit_code``,
    ``reason``; set together by :meth:`end`). ``streamer`` is the thread following the run's
    output, if any. Subclasses add what their kind needs to reach the run (their own fields
    come before these keyword-only ones)."""

    identifier: str
    _: dataclasses.KW_ONLY
    finished: threading.Event = dataclasses.field(default_factory=threading.Event)
    exit_code: int | None = None
    reason: str | None = None
    streamer: threading.Thread | None = None

    def end(self, exit_code: int, reason: str | None) -> None:
        """Record how the run ended; :meth:`WatchedInfrastructure.poll` sees it from now."""
        self.exit_code, self.reason = exit_code, reason
        self.finished.set()


class WatchedInfrastructure(Infrastructure, abc.ABC):
    """Infrastructure whose ``start`` leaves a thread watching the run, which calls
    :meth:`WatchedHandle.end` on the handle when the run ends (never raising: a run that can
    no longer be reached ends with a negative code and the reason). ``poll``,
    ``exit_reason`` and ``wait`` read the handle; subclasses implement ``start`` and
    ``kill``."""

    def poll(self, handle: WatchedHandle) -> int | None:
        return handle.exit_code if handle.finished.is_set() else None

    def exit_reason(self, handle: WatchedHandle) -> str | None:
        return handle.reason

    def wait(self, handle: WatchedHandle) -> InfrastructureResult:
        handle.finished.wait()
        return InfrastructureResult(handle.identifier, typing.cast(int, handle.exit_code))


def emit_line(line: bytes, output: OutputCallback | None) -> None:
    """Hand one line of a run's captured output (without its newline) to ``output``, or
    print it when there is no callback."""
    text = line.decode(errors="replace").rstrip("\r")
    if output is not None:
        output(text)
    else:
        print(text, flush=True)
