"""``RayTaskRunner``: a flow run's submitted task runs go to Ray (extra ``orion[ray]``; ``ray``
is imported when a flow run starts the runner).

A session uses the process's Ray connection when there is one (and leaves it open), else
calls ``ray.init(address, **init_kwargs)`` (no address: a local Ray started for the flow run)
and ``ray.shutdown()`` at its end. ``ray.init`` keeps retrying an address where nothing
answers (a minute and more), so the address's host and port are first tried with a plain TCP
connection bounded by ``connect_timeout``: nothing listening there fails the flow run at once
with the address and the reason. A submission becomes one Ray task running the task run
through the Orion API (see :mod:`client.task_runners.remote`); upstream runs' outcomes are
passed to it as Ray object references, and each run's logs are sent before its Ray task
ends. A worker that dies mid-task: Ray runs the task again (its ``max_retries``), and that
attempt ends the lost one Failed (so the task's retries apply) or Crashed; when Ray gives
up, the run is reported Crashed with Ray's reason.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

from client.sdk.futures import OrionFuture, Outcome, TaskCall
from client.task_runners.remote import remote_call, run_on_worker, settle

__all__ = ["RayTaskRunner"]


def run_on_ray_worker(call: Any, *upstream: Outcome) -> Outcome:
    """What a Ray worker runs for one submission; its address is ``<node ip> pid <pid>``."""
    import ray.util

    worker = f"{ray.util.get_node_ip_address()} pid {os.getpid()}"
    return run_on_worker(call, upstream, worker, recover_lost_attempt=True)


class RayTaskRunner:
    """Runs submitted task runs on Ray: the cluster at ``address`` (``ray://host:10001`` or
    ``host:6379``), or a local Ray; ``init_kwargs`` go to ``ray.init``; ``connect_timeout``
    (seconds, > 0) bounds the check that something answers at ``address``."""

    def __init__(
        self,
        address: str | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        connect_timeout: float = 10,
    ) -> None:
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be more than 0 seconds, not {connect_timeout}")
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self.connect_timeout = connect_timeout
        self._remote: Any = None
        self._owns_ray = False
        self._lock = threading.Lock()
        # id(OrionFuture) -> (OrionFuture, ObjectRef, our future), kept until shutdown.
        self._submitted: dict[int, tuple[OrionFuture, Any, concurrent.futures.Future[Any]]] = {}

    def __repr__(self) -> str:
        return f"RayTaskRunner({self.address or 'local'})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_remote=None, _owns_ray=False, _lock=None, _submitted={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def start(self) -> RayTaskRunner:
        """A session for one flow run on the process's Ray connection, or a new one
        (RuntimeError naming the address when it cannot be made)."""
        import ray

        session = RayTaskRunner(self.address, self.init_kwargs, self.connect_timeout)
        if not ray.is_initialized():
            try:
                self._check_address()
                ray.init(address=self.address, **self.init_kwargs)
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise RuntimeError(
                    f"RayTaskRunner could not connect to Ray at {self.address}: {exc}"
                ) from exc
            session._owns_ray = True
        session._remote = ray.remote(run_on_ray_worker)
        return session

    def _check_address(self) -> None:
        """OSError unless a TCP connection to ``address``'s host and port opens within
        ``connect_timeout`` (no address, or one without a port such as ``auto``: nothing to
        check)."""
        if not self.address:
            return
        host, _, port = self.address.rpartition("://")[2].rpartition(":")
        if not host or not port.isdigit():
            return
        try:
            socket.create_connection((host, int(port)), timeout=self.connect_timeout).close()
        except TimeoutError:
            raise TimeoutError(
                f"nothing answered within connect_timeout ({self.connect_timeout} s)"
            ) from None

    def _ref_of(self, future: OrionFuture) -> Any:
        import ray

        with self._lock:
            entry = self._submitted.get(id(future))
        if entry is not None and entry[0] is future:
            return entry[1]
        outcome = future._future.result()
        if outcome.task_run is None:
            outcome.task_run = future.task_run
        return ray.put(outcome)

    def submit(self, call: TaskCall) -> concurrent.futures.Future[Outcome]:
        """Send ``call`` to Ray; return the future its outcome will complete."""
        if self._remote is None:
            raise RuntimeError("RayTaskRunner.submit() outside a started session")
        remote, upstream = remote_call(call, "RayTaskRunner", self._ref_of)
        remote.flush_logs = True
        ref = self._remote.remote(remote, *upstream)
        target: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        with self._lock:
            self._submitted[id(call.future)] = (call.future, ref, target)
        ref.future().add_done_callback(lambda done: settle(call, done.result, target))
        return target

    def shutdown(self, wait: bool = True) -> None:
        """Wait for every submitted run (with ``wait=False``, cancel the rest), then shut Ray
        down if this session started it."""
        import ray

        if self._remote is None:
            return
        with self._lock:
            entries = list(self._submitted.values())
        try:
            if wait:
                concurrent.futures.wait([target for _, _, target in entries])
            else:
                for _, ref, target in entries:
                    if not target.done():
                        ray.cancel(ref)
        finally:
            self._remote = None
            if self._owns_ray:
                ray.shutdown()
