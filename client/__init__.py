"""The Orion client library: write flows (``@flow``, ``@task``) and talk to an Orion server.

    from client import flow, task, get_run_logger

    @task(retries=2, retry_delay_seconds=[1, 5])
    def add(x: int, y: int) -> int:
        return x + y

    @flow(name="sums")
    def sums(n: int = 3):
        get_run_logger().info("adding up to %d", n)
        return [add(i, i) for i in range(n)]

    sums(3)    # a flow run with three task runs; returns [0, 2, 4]

The package's parts: ``client.api`` talks to the API, ``client.sdk`` runs flows and tasks,
``client.agent`` runs deployed flow runs, ``client.cli`` holds the client's ``orion`` commands.
The SDK: ``client.sdk.flows``, ``client.sdk.tasks``, ``client.sdk.engine`` (how runs are
orchestrated), ``client.sdk.futures`` (futures and task runners), ``client.sdk.results``
(results storage), ``client.sdk.logs`` (run loggers and log shipping), ``client.sdk.context``
(run contexts, ``tags``), ``client.sdk.caching`` (cache keys), ``client.sdk.validation``
(parameter checks), ``client.sdk.variables`` (``from client import variables``),
``client.sdk.concurrency`` (global concurrency and rate limits);
``client.blocks`` (blocks: configuration saved on the server) and ``client.infrastructure``
(where deployed runs execute) import pydantic when first used.

``from client import get_client`` gives an :class:`OrionClient` (``client.api.client``) with
one method per API endpoint, configured by ``ORION_*`` environment variables read when it is
made (``client.api.settings``). With ``ORION_API_URL`` unset it runs the API in-process on
``$ORION_HOME/orion.db`` (``client.api.ephemeral``). States to propose are built with the
constructors of ``client.api.states`` (``Running()``, ``Completed()`` ...); errors are in
``client.api.exceptions``. ``import client`` loads neither httpx nor the server: httpx is
imported when the first client is built, the server only in ephemeral mode.

    from client import get_client
    from client.api.states import Running

    with get_client() as orion:
        flow_id = orion.create_flow_from_name("etl")
        run = orion.create_flow_run(flow_id, parameters={"day": "2026-11-23"})
        result = orion.set_flow_run_state(run.id, Running())
        print(result.status, result.state, run.expected_start_time)
"""

import importlib
from typing import Any

from client.api.client import OrionClient, get_client

# The SDK's names load on first use (PEP 562), so ``import client`` stays cheap for code that
# only needs the API client; ``from client import flow`` works as usual.
_SDK_NAMES = {
    "flow": "client.sdk.flows",
    "Flow": "client.sdk.flows",
    "task": "client.sdk.tasks",
    "Task": "client.sdk.tasks",
    "unmapped": "client.sdk.tasks",
    "get_run_logger": "client.sdk.logs",
    "tags": "client.sdk.context",
    "get_run_context": "client.sdk.context",
    "task_input_hash": "client.sdk.caching",
    "OrionFuture": "client.sdk.futures",
    "SequentialTaskRunner": "client.sdk.futures",
    "ThreadPoolTaskRunner": "client.sdk.futures",
    "ConcurrentTaskRunner": "client.sdk.futures",
    "DaskTaskRunner": "client.task_runners.dask_runner",
    "RayTaskRunner": "client.task_runners.ray_runner",
    "ResultStorage": "client.sdk.results",
    "using_client": "client.sdk.engine",
    "RunAborted": "client.sdk.engine",
    "UpstreamTaskError": "client.sdk.engine",
    "ParameterTypeError": "client.sdk.validation",
}

# SDK modules used by their own names (``from client import variables``).
_SDK_MODULES = {"variables": "client.sdk.variables"}

__all__ = ["OrionClient", "get_client", *_SDK_NAMES, *_SDK_MODULES]  # noqa: PLE0604  (str keys)


def __getattr__(name: str) -> Any:
    if name in _SDK_MODULES:
        value = importlib.import_module(_SDK_MODULES[name])
        globals()[name] = value
        return value
    module = _SDK_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
