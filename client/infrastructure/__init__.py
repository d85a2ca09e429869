"""Infrastructure blocks: where and how a deployment's flow runs are started.

One interface (:class:`client.infrastructure.base.Infrastructure`): ``run(flow_run)`` starts
the run and waits for it (returning an :class:`InfrastructureResult`), ``start(flow_run)``
starts it and returns at once (what agents use), ``kill(identifier)`` stops what ``start``
started, ``poll(handle)`` looks at it. One class per kind: :class:`Process` (a local
subprocess), :class:`DockerContainer` (a Docker container; the ``docker`` SDK is the
``orion[docker]`` extra) and :class:`KubernetesJob` (a Kubernetes Job; the ``kubernetes``
client is the ``orion[kubernetes]`` extra). A deployment names
its infrastructure by block document (``infrastructure_document_id``); agents load that block
and call it. Loaded lazily (pydantic is imported on first use).
"""

import importlib
from typing import Any

_NAMES = {
    "Infrastructure": "client.infrastructure.base",
    "InfrastructureResult": "client.infrastructure.base",
    "InfrastructureError": "client.infrastructure.base",
    "OutputCallback": "client.infrastructure.base",
    "Process": "client.infrastructure.process",
    "DockerContainer": "client.infrastructure.docker",
    "DockerRegistry": "client.infrastructure.docker",
    "KubernetesJob": "client.infrastructure.kubernetes",
    "KubernetesClusterConfig": "client.infrastructure.kubernetes",
}

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'client.infrastructure' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
