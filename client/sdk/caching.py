"""Cache keys for tasks, with Prefect 2's signatures.

A task given ``cache_key_fn`` calls it as ``cache_key_fn(context, parameters)`` before each run:
``context`` is the :class:`client.sdk.context.TaskRunContext` of the run about to start (its
``task``, ``flow_run_id`` and ``parameters``; ``task_run`` is None, the run is created together
with its first state), ``parameters`` maps the task's parameter names to the call's values. A
string return value is the cache key; None means "do not cache this call". When a COMPLETED
state with the same key exists and has not expired, the server answers the run's start with a
``Cached`` copy of it and the task returns that result, read back from results storage.
"""

import hashlib
import json
import pickle
from collections.abc import Mapping
from typing import Any

from client.sdk.context import TaskRunContext


def hash_objects(*objects: Any) -> str | None:
    """A stable hex digest of ``objects``: their JSON (sorted keys) when they have one, else
    their pickle; None when they have neither."""
    try:
        data = json.dumps(objects, sort_keys=True).encode()
    except (TypeError, ValueError):
        try:
            data = pickle.dumps(objects, protocol=4)
        except Exception:
            return None
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def task_input_hash(context: TaskRunContext, arguments: Mapping[str, Any]) -> str | None:
    """Cache key from the task's identity, its code and the call's inputs (Prefect 2's
    ``task_input_hash``): the same task called with equal inputs gets the same key; changing
    the task's code changes it. None (no caching) when the inputs cannot be hashed."""
    return hash_objects(context.task.task_key, context.task.fn.__code__.co_code.hex(), arguments)
