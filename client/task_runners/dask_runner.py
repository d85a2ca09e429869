"""``DaskTaskRunner``: a flow run's submitted task runs go to a Dask cluster (extra
``orion[dask]``; ``distributed`` is imported when a flow run starts the runner).

Each flow run's session connects a ``distributed.Client`` to the scheduler at ``address``,
or starts a ``distributed.LocalCluster`` of worker processes for itself (``processes=True``,
``dashboard_address=":0"``, plus ``cluster_kwargs``) and stops it when its task runs are done.
A submission becomes one Dask task (see :mod:`client.task_runners.remote` for what is
shipped and how the dependencies between runs become Dask's); the worker runs the task run
through the Orion API, so its workers need the ``client`` package and must reach the server.

Failures: a task that raises ends Failed (after the retries the server grants) as anywhere
else. A worker that dies mid-task: Dask runs the task again on another worker, which finds
the run left RUNNING and ends that attempt Failed (so the task's retries apply) or Crashed.
When Dask gives up on a task (it killed too many workers, the scheduler went away), the run
is reported Crashed with Dask's reason. A scheduler that does not answer within
``connect_timeout`` seconds fails the flow run, naming the address.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from client.sdk.futures import OrionFuture, Outcome, TaskCall
from client.task_runners.remote import (
    flush_worker_logs,
    remote_call,
    run_on_worker,
    settle,
)

__all__ = ["DaskTaskRunner"]

_log = logging.getLogger("orion.task_runners")


def run_on_dask_worker(call: Any, *upstream: Outcome) -> Outcome:
    """What a Dask worker runs for one submission (upstream outcomes come as arguments)."""
    from distributed import get_worker

    return run_on_worker(call, upstream, get_worker().address, recover_lost_attempt=True)


class DaskTaskRunner:
    """Runs submitted task runs on Dask: the scheduler at ``address`` (``tcp://host:8786``),
    or, without one, a ``LocalCluster`` started per flow run (``cluster_kwargs`` are its
    arguments, e.g. ``n_workers``, ``threads_per_worker``). ``client_kwargs`` go to
    ``distributed.Client``; ``connect_timeout`` is how long to try the scheduler (seconds)."""

    def __init__(
        self,
        address: str | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.address = address
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()
        # id(OrionFuture) -> (OrionFuture, Dask future, our future): kept until shutdown, as
        # later submissions may depend on any of them.
        self._submitted: dict[int, tuple[OrionFuture, Any, concurrent.futures.Future[Any]]] = {}

    def __repr__(self) -> str:
        where = self.address or f"LocalCluster({self.cluster_kwargs or ''})"
        return f"DaskTaskRunner({where})"

    def __getstate__(self) -> dict[str, Any]:
        # A flow (and so its runner) may be pickled with a task; a session's connections
        # stay here.
        state = dict(self.__dict__)
        state.update(_client=None, _cluster=None, _lock=None, _submitted={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The session's ``distributed.Client`` (None before :meth:`start`)."""
        return self._client

    def start(self) -> DaskTaskRunner:
        """A session for one flow run: connected to the scheduler, or with a cluster of its
        own. RuntimeError naming the address when the scheduler does not answer."""
        from distributed import Client, LocalCluster

        session = DaskTaskRunner(
            self.address, self.cluster_kwargs, self.client_kwargs, self.connect_timeout
        )
        if self.address:
            try:
                session._client = Client(
                    self.address, timeout=self.connect_timeout, **self.client_kwargs
                )
            except (OSError, TimeoutError) as exc:
                raise RuntimeError(
                    f"DaskTaskRunner could not connect to the Dask scheduler at "
                    f"{self.address}: {exc}"
                ) from exc
            return session
        options: dict[str, Any] = {"processes": True, "dashboard_address": ":0"}
        options.update(self.cluster_kwargs)
        session._cluster = LocalCluster(**options)
        try:
            session._client = Client(session._cluster, **self.client_kwargs)
        except BaseException:
            session._cluster.close()
            raise
        return session

    def _dask_future_of(self, future: OrionFuture) -> Any:
        """The Dask future whose result is ``future``'s outcome (one of this session's, or
        the finished outcome of another runner's, sent to the cluster)."""
        with self._lock:
            entry = self._submitted.get(id(future))
        if entry is not None and entry[0] is future:
            return entry[1]
        outcome = future._future.result()
        if outcome.task_run is None:
            outcome.task_run = future.task_run
        return self._client.scatter(outcome, hash=False)

    def submit(self, call: TaskCall) -> concurrent.futures.Future[Outcome]:
        """Send ``call`` to the cluster; return the future its outcome will complete."""
        if self._client is None:
            raise RuntimeError("DaskTaskRunner.submit() outside a started session")
        remote, upstream = remote_call(call, "DaskTaskRunner", self._dask_future_of)
        key = f"{remote.task.name}-{remote.dynamic_key}-{uuid.uuid4().hex[:12]}"
        dask_future = self._client.submit(
            run_on_dask_worker, remote, *upstream, key=key, pure=False
        )
        target: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        with self._lock:
            self._submitted[id(call.future)] = (call.future, dask_future, target)
        dask_future.add_done_callback(lambda done: settle(call, done.result, target))
        return target

    def shutdown(self, wait: bool = True) -> None:
        """Wait for every submitted run (with ``wait=False``, cancel those not finished),
        send the workers' queued run logs, then disconnect (and stop the session's own
        cluster)."""
        if self._client is None:
            return
        with self._lock:
            entries = list(self._submitted.values())
        try:
            if wait:
                concurrent.futures.wait([target for _, _, target in entries])
                try:
                    self._client.run(flush_worker_logs)
                except Exception as exc:
                    _log.warning("Could not flush the Dask workers' run logs: %s", exc)
            else:
                self._client.cancel([dask_future for _, dask_future, _ in entries])
        finally:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None
