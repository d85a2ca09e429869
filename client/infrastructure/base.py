"""The infrastructure interface: ``run(flow_run) -> result``, ``start``, ``kill(identifier)``.

Fields are Prefect 2.7.12's ``Infrastructure`` base fields (``type``, ``env``, ``labels``,
``name``, ``command``), so its documents load here and ours there.
"""

import abc
import dataclasses
import typing
from collections.abc import Mapping

from pydantic import Field

from client.blocks.core import Block

__all__ = ["Infrastructure", "InfrastructureResult", "InfrastructureError", "flow_run_id_of"]


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
    """Somewhere a flow run executes. Subclasses implement :meth:`start`, :meth:`wait` and
    :meth:`kill`; :meth:`run` is start + wait."""

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
        self, flow_run: typing.Any, env: Mapping[str, str | None] | None = None
    ) -> typing.Any:
        """Start ``flow_run`` (a flow run or its id) and return a handle with an
        ``identifier`` at once; ``env`` is added to the block's environment."""

    @abc.abstractmethod
    def wait(self, handle: typing.Any) -> InfrastructureResult:
        """Wait for what :meth:`start` started; its :class:`InfrastructureResult`."""

    @abc.abstractmethod
    def kill(self, identifier: str, grace_seconds: float = 30) -> None:
        """Stop what :meth:`start` started (by its ``identifier``): ask politely, then
        force after ``grace_seconds``. InfrastructureError if it cannot be reached."""

    def run(
        self, flow_run: typing.Any, env: Mapping[str, str | None] | None = None
    ) -> InfrastructureResult:
        """Run ``flow_run`` to its end here; returns an :class:`InfrastructureResult`."""
        return self.wait(self.start(flow_run, env=env))
