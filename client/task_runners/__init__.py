"""Task runners: where a flow run's submitted task runs execute.

- ``SequentialTaskRunner`` (the default) and ``ThreadPoolTaskRunner`` (``ConcurrentTaskRunner``):
  in the flow run's own process (:mod:`client.sdk.futures`);
- ``DaskTaskRunner`` (:mod:`client.task_runners.dask_runner`, extra ``orion[dask]``): on a Dask
  cluster, at an address or started per flow run;
- ``RayTaskRunner`` (:mod:`client.task_runners.ray_runner`, extra ``orion[ray]``): on Ray,
  local or at an address.

A runner has ``start()`` (a session for one flow run), ``submit(call)`` (a
:class:`client.sdk.futures.TaskCall`; returns a ``concurrent.futures.Future`` of its Outcome)
and ``shutdown(wait)``. The names load on first use, and Dask and Ray only when a session
starts, so importing this package costs nothing.
"""

import importlib
from typing import Any

_NAMES = {
    "SequentialTaskRunner": "client.sdk.futures",
    "ThreadPoolTaskRunner": "client.sdk.futures",
    "ConcurrentTaskRunner": "client.sdk.futures",
    "DaskTaskRunner": "client.task_runners.dask_runner",
    "RayTaskRunner": "client.task_runners.ray_runner",
}

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'client.task_runners' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
