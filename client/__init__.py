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

The SDK: ``client.flows``, ``client.tasks``, ``client.engine`` (how runs are orchestrated),
``client.futures`` (futures and task runners), ``client.results`` (results storage),
``client.logs`` (run loggers and log shipping), ``client.context`` (run contexts, ``tags``),
``client.caching`` (cache keys), ``client.validation`` (parameter checks), ``client.blocks``
(blocks: configuration saved on the server) and ``client.infrastructure`` (where deployed
runs execute); pydantic is imported only by the last three, when first used.

``from client import get_client`` gives an :class:`OrionClient` (``client.client``) with one
method per API endpoint, configured by ``ORION_*`` environment variables read when it is made
(``client.settings``). With ``ORION_API_URL`` unset it runs the API in-process on
``$ORION_HOME/orion.db`` (``client.ephemeral``). States to propose are built with the
constructors of ``client.states`` (``Running()``, ``Completed()`` ...); errors are in
``client.exceptions``. ``import client`` loads neither httpx nor the server: httpx is imported
when the first client is built, the server only in ephemeral mode.

    from client import get_client
    from client.states import Running

    with get_client() as orion:
        flow_id = orion.create_flow_from_name("etl")
        run = orion.create_flow_run(flow_id, parameters={"day": "2026-11-23"})
        result = orion.set_flow_run_state(run.id, Running())
        print(result.status, result.state, run.expected_start_time)
"""
import importlib

from client.client import OrionClient, get_client

# The SDK's names load on first use (PEP 562), so ``import client`` stays cheap for code that
# only needs the API client; ``from client import flow`` works as usual.
_SDK_NAMES = {
    "flow": "client.flows", "Flow": "client.flows",
    "task": "client.tasks", "Task": "client.tasks", "unmapped": "client.tasks",
    "get_run_logger": "client.logs",
    "tags": "client.context", "get_run_context": "client.context",
    "task_input_hash": "client.caching",
    "OrionFuture": "client.futures", "SequentialTaskRunner": "client.futures",
    "ThreadPoolTaskRunner": "client.futures", "ConcurrentTaskRunner": "client.futures",
    "ResultStorage": "client.results",
    "using_client": "client.engine", "RunAborted": "client.engine",
    "UpstreamTaskError": "client.engine",
    "ParameterTypeError": "client.validation",
}

__all__ = ["OrionClient", "get_client", *_SDK_NAMES]


def __getattr__(name):
    module = _SDK_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
