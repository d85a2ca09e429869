"""Client settings: ``ORION_*`` environment variables, read when a client is made.

Same names as the server's settings where both sides have one (``ORION_HOME``, ``ORION_API_KEY``).
Nothing here reads the environment at import time: :func:`get_settings` does, and every
:class:`client.api.client.OrionClient` calls it when it is built (unless given settings).

| variable | default | meaning |
|---|---|---|
| ``ORION_API_URL`` | unset | server API (``http://127.0.0.1:4200/api``); unset = ephemeral |
| ``ORION_API_KEY`` | unset | sent as ``Authorization: Bearer <key>`` |

Prefect's ``PREFECT_API_URL`` and ``PREFECT_API_KEY`` are understood too, for users who carry
them over; the ``ORION_`` name wins when both are set.
| ``ORION_API_TIMEOUT`` | ``30`` | seconds an HTTP call may take (connect, read, write each) |
| ``ORION_API_RETRIES`` | ``6`` | how many times a failed call is retried (0 = never) |
| ``ORION_API_RETRY_DELAY_SECONDS`` | ``0.5`` | first backoff delay; doubled on each retry |
| ``ORION_API_RETRY_MAX_DELAY_SECONDS`` | ``10`` | longest backoff delay between two attempts |
| ``ORION_HOME`` | ``~/.orion`` | local state; the ephemeral API uses ``$ORION_HOME/orion.db`` |
| ``ORION_HEARTBEAT_SECONDS`` | ``5`` | how often a running flow run reports it is alive |
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Settings", "get_settings"]


@dataclass(frozen=True)
class Settings:
    """Everything a client needs to know; see the module docstring for each value."""

    api_url: str | None = None
    api_key: str | None = None
    api_timeout: float = 30.0
    api_retries: int = 6
    api_retry_delay_seconds: float = 0.5
    api_retry_max_delay_seconds: float = 10.0
    home: str = "~/.orion"
    heartbeat_seconds: float = 5.0

    @property
    def home_path(self) -> str:
        """``home`` with ``~`` expanded, as an absolute path."""
        return os.path.abspath(os.path.expanduser(self.home))


def _number(environ: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {kind.__name__}.") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative.")
    return value


def _first(environ: Mapping[str, str], *names: str) -> str:
    """The first of ``names`` set to a non-blank value in ``environ``, stripped; else ``""``."""
    for name in names:
        value = (environ.get(name) or "").strip()
        if value:
            return value
    return ""


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the client settings from ``environ`` (default: ``os.environ``) now.

    Raises ``ValueError`` naming the variable when a number does not parse or is negative.
    An empty ``ORION_API_URL`` or ``ORION_API_KEY`` counts as unset (and so does an empty
    Prefect alias of either).
    """
    environ = os.environ if environ is None else environ
    return Settings(
        api_url=_first(environ, "ORION_API_URL", "PREFECT_API_URL").rstrip("/") or None,
        api_key=_first(environ, "ORION_API_KEY", "PREFECT_API_KEY") or None,
        api_timeout=_number(environ, "ORION_API_TIMEOUT", 30.0, float),
        api_retries=_number(environ, "ORION_API_RETRIES", 6, int),
        api_retry_delay_seconds=_number(environ, "ORION_API_RETRY_DELAY_SECONDS", 0.5, float),
        api_retry_max_delay_seconds=_number(
            environ, "ORION_API_RETRY_MAX_DELAY_SECONDS", 10.0, float
        ),
        home=environ.get("ORION_HOME") or "~/.orion",
        heartbeat_seconds=_number(environ, "ORION_HEARTBEAT_SECONDS", 5.0, float),
    )
