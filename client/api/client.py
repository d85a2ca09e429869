"""``OrionClient``: a synchronous client of the Orion REST API, one method per endpoint.

Method names and signatures follow Prefect 2's ``OrionClient`` where it has the method
(``create_flow_run``, ``read_flow_runs(flow_run_filter=..., sort=..., limit=...)``,
``set_flow_run_state(flow_run_id, state, force=False)`` ...). Differences: filters are plain
dicts in the API's JSON grammar (``{"state": {"type": {"any_": ["FAILED"]}}}``), responses are
:class:`client.api.objects.APIObject` dicts with attribute access (ids are strings), and a few
Orion extensions have methods of their own (``create_task_run_and_set_state``,
``send_flow_run_heartbeat``, counts, history).

Transport. One keep-alive ``httpx.Client`` per ``OrionClient``: over HTTP to ``api`` (or
``ORION_API_URL``), or, when neither is given, in-process to the ephemeral app through
``httpx.WSGITransport`` (see :mod:`client.api.ephemeral`). Every call sends
``X-PREFECT-API-VERSION``, and ``Authorization: Bearer <ORION_API_KEY>`` when a key is set.
httpx is imported when the first client is built, so ``import client`` stays cheap.

Retries. A call that fails to connect, is cut off or times out, or is answered 408, 429 or
5xx (but 501/505) is retried up to ``ORION_API_RETRIES`` times, waiting an exponential
backoff with jitter (``ORION_API_RETRY_DELAY_SECONDS`` doubled per retry, at most
``ORION_API_RETRY_MAX_DELAY_SECONDS``), or the ``Retry-After`` the server sent (at most
60 s). Retrying is safe because every write is idempotent: flows and concurrency limits are
upserts, flow runs carry an idempotency key (a fresh one per ``create_flow_run`` call unless
given), task runs are unique by (flow run, task key, dynamic key), proposed states carry a
``transition_id`` the server recognises (see :mod:`client.api.states`), log records carry
client-made ids the server stores once, and a delete retried after a lost answer treats
"not found" as done. ``resume_flow_run`` retried after a lost answer may report that the run
is no longer paused.

Errors raise :mod:`client.api.exceptions` (``ObjectNotFound`` for 404, ``ValidationError`` for 422
...), carrying the server's message; ``ServerUnreachable`` when retries ran out without an
answer. Retries are logged as warnings on the ``client.http`` logger.
"""

import datetime
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from client.api.encoding import dumps
from client.api.exceptions import (
    NotAnOrionAPI,
    ObjectNotFound,
    ServerUnreachable,
    error_for_response,
)
from client.api.objects import APIObject, OrchestrationResult, loads
from client.api.settings import Settings, get_settings
from client.api.states import Scheduled, State
from client.blocks.api import BlocksAPI

__all__ = ["OrionClient", "get_client", "API_VERSION"]

# The Orion REST API version this client speaks (sent as X-PREFECT-API-VERSION).
API_VERSION = "0.8.4"
# Longest Retry-After honoured, in seconds.
MAX_RETRY_AFTER_SECONDS = 60.0
# Most log records sent in one POST /api/logs/ (the server's default batch limit).
LOGS_BATCH_SIZE = 1000
# The base URL of in-process calls: its Host must be one the app serves (a loopback name
# passes the server's default Host check; the ephemeral app trusts it whatever its settings).
_EPHEMERAL_BASE_URL = "http://localhost/api"
_NOT_RETRIED_5XX = frozenset({501, 505})

# An id as the API takes it: a UUID or its text.
Id = str | uuid.UUID
# A filter in the API's JSON grammar: ``{"state": {"type": {"any_": ["FAILED"]}}}``.
Filter = dict[str, Any]

log = logging.getLogger("client.http")
_httpx: Any = None
_HTTPClient: Any = None


def _import_httpx() -> Any:
    global _httpx, _HTTPClient
    if _httpx is None:
        import httpx

        _HTTPClient = _http_client_class(httpx)
        _httpx = httpx
    return _httpx


_ssl_context: Any = None


def _default_ssl_context(httpx: Any) -> Any:
    """The SSL context every client of this process verifies servers with: httpx's default
    (certifi's roots, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), made once. httpx makes one
    per client, reading the roots again: about 20 ms each, paid by every flow run's process
    for each client it opens. An ``SSLContext`` is safe to share between threads."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return _ssl_context


def _http_client_class(httpx: Any) -> Any:
    """The ``httpx.Client`` subclass every ``OrionClient`` uses (built once httpx is loaded).

    httpx hands every response to its cookie jar, which first wraps the request and the
    response in ``urllib`` look-alikes and copies every header into an ``email`` message: a
    tenth of the client's CPU per call, although the API sets no cookie. Here the jar only
    sees responses that carry a ``Set-Cookie`` (or ``Set-Cookie2``) header, the only ones it
    would take anything from; cookies a proxy sets are kept and sent back as before.
    """

    class ResponseCookies(httpx.Cookies):
        def extract_cookies(self, response: Any) -> None:
            headers = response.headers
            if "set-cookie" in headers or "set-cookie2" in headers:
                super().extract_cookies(response)

    class HTTPClient(httpx.Client):
        def __init__(self, *, cookies: Any = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.cookies = cookies

        def _get_cookies(self) -> Any:
            return self._orion_cookies

        def _set_cookies(self, cookies: Any) -> None:
            self._orion_cookies = ResponseCookies(cookies)

        cookies = property(_get_cookies, _set_cookies)

    return HTTPClient


def _sort_value(sort: Any) -> Any:
    return getattr(sort, "value", sort)


def _paged(
    body: dict[str, Any], sort: Any, limit: int | None, offset: int | None
) -> dict[str, Any]:
    if sort is not None:
        body["sort"] = _sort_value(sort)
    if limit is not None:
        body["limit"] = limit
    if offset:
        body["offset"] = offset
    return body


def _filters(
    flow_filter: Filter | None,
    flow_run_filter: Filter | None,
    task_run_filter: Filter | None,
    deployment_filter: Filter | None,
) -> dict[str, Any]:
    body = {}
    for key, value in (
        ("flows", flow_filter),
        ("flow_runs", flow_run_filter),
        ("task_runs", task_run_filter),
        ("deployments", deployment_filter),
    ):
        if value is not None:
            body[key] = value
    return body


def _retry_after(response: Any) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``: seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _is_web_page(response: Any) -> bool:  # an httpx.Response (httpx loads lazily)
    """Whether ``response`` is an HTML page: the API answers JSON or nothing (an empty body,
    whatever its content type says), so a page comes from something else at that URL (the
    dashboard, a proxy). 5xx pages are left to the retries: a proxy answers them while the
    server is down."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "text/html" and bool(response.content.strip())


class OrionClient(BlocksAPI):
    """A synchronous Orion API client (see the module docstring).

    ``api``: the API's base URL (``http://host:4200/api``), or a WSGI app (an Orion Flask app)
    to call in-process, or None for ``ORION_API_URL``, or the ephemeral app when that is unset.
    ``api_key`` overrides ``ORION_API_KEY``; ``settings`` (a :class:`client.api.settings.Settings`)
    replaces the environment; ``httpx_settings`` are extra ``httpx.Client`` arguments (its
    ``headers`` are added to the client's own).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        api: str | Callable[..., Any] | None = None,
        *,
        api_key: str | None = None,
        settings: Settings | None = None,
        httpx_settings: Mapping[str, Any] | None = None,
    ) -> None:
        httpx = _import_httpx()
        settings = settings or get_settings()
        if api_key is not None:
            settings = replace(settings, api_key=api_key)
        self.settings = settings
        options: dict[str, Any] = {"timeout": httpx.Timeout(settings.api_timeout)}
        api = api if api is not None else settings.api_url
        if api is None:
            from client.api.ephemeral import ephemeral_app

            api = ephemeral_app(settings.home_path)
        # True when calls go to an app in this process (no URL another process could use).
        self.in_process = not isinstance(api, str)
        if isinstance(api, str):
            self.api_url = api.rstrip("/")
            options["verify"] = _default_ssl_context(httpx)
        else:
            self.api_url = _EPHEMERAL_BASE_URL
            options["transport"] = httpx.WSGITransport(app=api)
        headers = {"X-PREFECT-API-VERSION": API_VERSION}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        options.update(httpx_settings or {})
        headers.update(options.pop("headers", None) or {})
        # Calls send absolute URLs: httpx parses a relative one, then the merged one again.
        self._base_url = self.api_url + "/"
        self._http = _HTTPClient(base_url=self._base_url, headers=headers, **options)
        self._retryable_errors = (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections (the client cannot be used afterwards)."""
        self._http.close()

    def __enter__(self) -> "OrionClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        delay = min(
            self.settings.api_retry_max_delay_seconds,
            self.settings.api_retry_delay_seconds * 2**attempt,
        )
        return random.uniform(delay / 2, delay)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        retries: int | None = None,
        missing_ok_on_retry: bool = False,
    ) -> Any:
        """Send one API call with retries; return the ``httpx.Response`` of a success.

        ``path`` is relative to the API root (``"flow_runs/filter"``); ``body`` is encoded as
        JSON (datetimes, UUIDs and States included). Raises :mod:`client.api.exceptions` errors.
        With ``missing_ok_on_retry`` a 404 answering a retry counts as success (None) when an
        earlier attempt may have done the work (its answer was lost, or a gateway gave up on
        it: 502, 504).
        """
        retries = self.settings.api_retries if retries is None else retries
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["content"] = dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        url = self._base_url + path.lstrip("/")
        attempt = 0
        outcome_unknown = False
        while True:
            try:
                response = self._http.request(method, url, **kwargs)
            except self._retryable_errors as error:
                outcome_unknown = True
                if attempt >= retries:
                    raise ServerUnreachable(
                        f"{method} {self.api_url}/{path} failed after {attempt + 1} "
                        f"attempt(s): {type(error).__name__}: {error}"
                    ) from error
                delay, reason = self._backoff(attempt), f"{type(error).__name__}: {error}"
            else:
                status = response.status_code
                if status < 500 and _is_web_page(response):
                    raise NotAnOrionAPI(
                        f"{self.api_url} is not the Orion API: {method} {path} got a web page "
                        f"(HTTP {status}). ORION_API_URL should end in /api, like "
                        f"http://127.0.0.1:4200/api."
                    )
                if status < 400:
                    return response
                if status == 404 and outcome_unknown and missing_ok_on_retry:
                    return None
                outcome_unknown = outcome_unknown or status in (502, 504)
                retryable = status in (408, 429) or (
                    status >= 500 and status not in _NOT_RETRIED_5XX
                )
                if not retryable or attempt >= retries:
                    raise self._error(response)
                retry_after = _retry_after(response) if status in (429, 503) else None
                delay = self._backoff(attempt) if retry_after is None else retry_after
                reason = f"HTTP {status}"
            attempt += 1
            log.warning(
                "Orion API %s %s failed (%s); retry %d of %d in %.2f s",
                method,
                path,
                reason,
                attempt,
                retries,
                delay,
            )
            time.sleep(delay)

    @staticmethod
    def _error(response: Any) -> Exception:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = response.text
        return error_for_response(response.status_code, body)

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """:meth:`request`, returning the parsed JSON (APIObjects), or None for no content."""
        response = self.request(method, path, body, params, **options)
        if response is None or response.status_code == 204 or not response.content:
            return None
        return loads(response.content)

    # -- server -----------------------------------------------------------------------------

    def api_healthcheck(self) -> Exception | None:
        """None when the server is up and reaches its database; otherwise the exception
        (one attempt, no retries)."""
        try:
            self.request("GET", "health", retries=0)
        except Exception as error:
            return error
        return None

    def hello(self) -> str:
        """The server's greeting (a connectivity check)."""
        return self._call("GET", "hello")

    def read_server_version(self) -> str:
        """The server's version string."""
        return self._call("GET", "admin/version")

    # -- flows ------------------------------------------------------------------------------

    def create_flow(self, flow: Any) -> uuid.UUID:
        """Upsert the flow named ``flow.name``; returns its id (uuid.UUID)."""
        return self.create_flow_from_name(flow.name, tags=getattr(flow, "tags", None))

    def create_flow_from_name(
        self,
        flow_name: str,
        tags: Iterable[str] | None = None,
    ) -> uuid.UUID:
        """Upsert the flow named ``flow_name``; returns its id (uuid.UUID)."""
        body: dict[str, Any] = {"name": flow_name}
        if tags:
            body["tags"] = list(tags)
        return uuid.UUID(self._call("POST", "flows/", body)["id"])

    def read_flow(self, flow_id: Id) -> APIObject:
        return self._call("GET", f"flows/{flow_id}")

    def read_flow_by_name(self, flow_name: str) -> APIObject:
        return self._call("GET", f"flows/name/{quote(flow_name, safe='')}")

    def read_flows(
        self,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
        sort: Any = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[APIObject]:
        """Flows matching the filters (dicts in the API's filter grammar), sorted and paged."""
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        return self._call("POST", "flows/filter", _paged(body, sort, limit, offset))

    def count_flows(
        self,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
    ) -> int:
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        return self._call("POST", "flows/count", body)

    def update_flow(self, flow_id: Id, tags: Iterable[str]) -> None:
        """Replace a flow's tags."""
        self._call("PATCH", f"flows/{flow_id}", {"tags": list(tags)})

    def delete_flow(self, flow_id: Id) -> None:
        """Delete a flow with its runs."""
        self._call("DELETE", f"flows/{flow_id}", missing_ok_on_retry=True)

    # -- flow runs --------------------------------------------------------------------------

    def create_flow_run(
        self,
        flow: Any,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        parent_task_run_id: Id | None = None,
        state: State | None = None,
        *,
        flow_version: str | None = None,
        empirical_policy: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        deployment_id: Id | None = None,
        work_queue_name: str | None = None,
        infrastructure_document_id: Id | None = None,
    ) -> APIObject:
        """Create a flow run (state ``state``, default Pending, written without rules).

        ``flow`` is a flow id, or an object with a ``name`` (upserted first, one more call,
        as Prefect does; its ``version``, ``retries`` and ``retry_delay_seconds`` fill the
        run's version and retry policy). ``idempotency_key`` defaults to a fresh one, so a
        retried call returns the same run.
        """
        if isinstance(flow, (str, uuid.UUID)):
            flow_id = flow
        else:
            flow_id = self.create_flow(flow)
            if flow_version is None:
                flow_version = getattr(flow, "version", None)
            if empirical_policy is None and getattr(flow, "retries", None) is not None:
                empirical_policy = {
                    "retries": flow.retries,
                    "retry_delay": getattr(flow, "retry_delay_seconds", None),
                }
        body: dict[str, Any] = {
            "flow_id": flow_id,
            "idempotency_key": idempotency_key or str(uuid.uuid4()),
        }
        for key, value in (
            ("name", name),
            ("parameters", parameters),
            ("context", context),
            ("tags", list(tags) if tags is not None else None),
            ("parent_task_run_id", parent_task_run_id),
            ("flow_version", flow_version),
            ("empirical_policy", empirical_policy),
            ("deployment_id", deployment_id),
            ("work_queue_name", work_queue_name),
            ("infrastructure_document_id", infrastructure_document_id),
        ):
            if value is not None:
                body[key] = value
        if state is not None:
            body["state"] = state.to_json()
        return self._call("POST", "flow_runs/", body)

    def read_flow_run(self, flow_run_id: Id) -> APIObject:
        return self._call("GET", f"flow_runs/{flow_run_id}")

    def read_flow_runs(
        self,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
        sort: Any = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[APIObject]:
        """Flow runs matching the filters, sorted (``"ID_DESC"`` ...) and paged."""
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        return self._call("POST", "flow_runs/filter", _paged(body, sort, limit, offset))

    def count_flow_runs(
        self,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
    ) -> int:
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        return self._call("POST", "flow_runs/count", body)

    def read_flow_run_history(
        self,
        history_start: datetime.datetime,
        history_end: datetime.datetime,
        history_interval_seconds: float,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
    ) -> list[APIObject]:
        """Counts of matching flow runs per state in buckets of ``history_interval_seconds``
        between two aware datetimes."""
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        body.update(
            history_start=history_start,
            history_end=history_end,
            history_interval_seconds=history_interval_seconds,
        )
        return self._call("POST", "flow_runs/history", body)

    def update_flow_run(
        self,
        flow_run_id: Id,
        flow_version: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        empirical_policy: Mapping[str, Any] | None = None,
        infrastructure_pid: str | None = None,
        infrastructure_exit_code: int | None = None,
    ) -> None:
        """Change the given fields of a flow run (None: unchanged).
        ``infrastructure_exit_code`` is an Orion extension (Prefect's servers refuse it)."""
        body = {}
        for key, value in (
            ("flow_version", flow_version),
            ("parameters", parameters),
            ("name", name),
            ("tags", list(tags) if tags is not None else None),
            ("empirical_policy", empirical_policy),
            ("infrastructure_pid", infrastructure_pid),
            ("infrastructure_exit_code", infrastructure_exit_code),
        ):
            if value is not None:
                body[key] = value
        self._call("PATCH", f"flow_runs/{flow_run_id}", body)

    def delete_flow_run(self, flow_run_id: Id) -> None:
        """Delete a flow run with its states and task runs."""
        self._call("DELETE", f"flow_runs/{flow_run_id}", missing_ok_on_retry=True)

    def set_flow_run_state(
        self, flow_run_id: Id, state: State, force: bool = False
    ) -> OrchestrationResult:
        """Propose ``state`` (a :class:`client.api.states.State`); returns the
        OrchestrationResult."""
        body = {"state": state.to_json(), "force": force}
        return OrchestrationResult.from_json(
            self._call("POST", f"flow_runs/{flow_run_id}/set_state", body)
        )

    def resume_flow_run(self, flow_run_id: Id) -> OrchestrationResult:
        """Resume a paused flow run; returns the OrchestrationResult."""
        return OrchestrationResult.from_json(self._call("POST", f"flow_runs/{flow_run_id}/resume"))

    def read_flow_run_graph(self, flow_run_id: Id) -> list[APIObject]:
        """The run's task runs with their upstream dependencies (graph nodes)."""
        return self._call("GET", f"flow_runs/{flow_run_id}/graph")

    def send_flow_run_heartbeat(self, flow_run_id: Id) -> None:
        """Tell the server the flow run is alive (Orion extension); also renews the
        concurrency slot leases its task runs hold."""
        self._call("POST", f"flow_runs/{flow_run_id}/heartbeat")

    def read_flow_run_states(self, flow_run_id: Id) -> list[State]:
        """Every state of a flow run, oldest first (States)."""
        return [
            State.from_json(s)
            for s in self._call("GET", "flow_run_states/", params={"flow_run_id": str(flow_run_id)})
        ]

    def read_flow_run_state(self, state_id: Id) -> State:
        return State.from_json(self._call("GET", f"flow_run_states/{state_id}"))

    # -- task runs --------------------------------------------------------------------------

    @staticmethod
    def _task_run_body(
        task: Any,
        flow_run_id: Id,
        dynamic_key: object,
        name: str | None,
        extra_tags: Iterable[str] | None,
        task_inputs: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "flow_run_id": flow_run_id,
            "task_key": task.task_key,
            "dynamic_key": str(dynamic_key),
        }
        task_name = getattr(task, "name", None)
        if name is not None:
            body["name"] = name
        elif task_name:
            body["name"] = f"{task_name}-{dynamic_key}"
        tags = set(getattr(task, "tags", None) or ())
        if extra_tags:
            tags.update(extra_tags)
        if tags:
            body["tags"] = sorted(tags)
        version = getattr(task, "version", None)
        if version is not None:
            body["task_version"] = version
        policy: dict[str, Any] = {}
        for key, attr in (
            ("retries", "retries"),
            ("retry_delay", "retry_delay_seconds"),
            ("retry_jitter_factor", "retry_jitter_factor"),
        ):
            value = getattr(task, attr, None)
            if value is not None:
                policy[key] = value
        if policy:
            body["empirical_policy"] = policy
        if task_inputs:
            body["task_inputs"] = task_inputs
        return body

    def create_task_run(
        self,
        task: Any,
        flow_run_id: Id,
        dynamic_key: object,
        name: str | None = None,
        extra_tags: Iterable[str] | None = None,
        state: State | None = None,
        task_inputs: Mapping[str, Any] | None = None,
    ) -> APIObject:
        """Create a task run (first state ``state``, default Pending, written without rules),
        or return the existing one with the same flow run, task key and dynamic key.

        ``task`` is any object with a ``task_key``; its ``name``, ``tags``, ``version``,
        ``retries``, ``retry_delay_seconds`` (number or list) and ``retry_jitter_factor`` are
        used when present. ``task_inputs`` maps argument names to lists of
        ``{"input_type": "task_run"|"parameter"|"constant", ...}``.
        """
        body = self._task_run_body(task, flow_run_id, dynamic_key, name, extra_tags, task_inputs)
        if state is not None:
            body["state"] = state.to_json()
        return self._call("POST", "task_runs/", body)

    def create_task_run_and_set_state(
        self,
        task: Any,
        flow_run_id: Id,
        dynamic_key: object,
        proposed_state: State,
        name: str | None = None,
        extra_tags: Iterable[str] | None = None,
        state: State | None = None,
        task_inputs: Mapping[str, Any] | None = None,
    ) -> tuple[APIObject, OrchestrationResult]:
        """Create a task run (as :meth:`create_task_run`) and propose ``proposed_state``
        through the task orchestration rules, in one round trip (Orion extension). Returns
        ``(task_run, OrchestrationResult)``, the task run as it is after the proposal.

        Without ``state``, the proposal is the new run's first state: ``Pending(...)``, or
        ``Running(cache_key=...)`` straight away, which may come back Cached (REJECT), WAIT
        under a full tag limit, or ABORT when the flow run is not RUNNING or a tag's limit is
        0; when nothing is written the run is left Pending. With ``state`` the run starts in
        it and the proposal follows. An existing run gets the proposal from its current state.
        """
        body = self._task_run_body(task, flow_run_id, dynamic_key, name, extra_tags, task_inputs)
        if state is not None:
            body["state"] = state.to_json()
        body["proposed_state"] = proposed_state.to_json()
        answer = self._call("POST", "task_runs/create_and_set_state", body)
        return answer["task_run"], OrchestrationResult.from_json(answer["orchestration_result"])

    def read_task_run(self, task_run_id: Id) -> APIObject:
        return self._call("GET", f"task_runs/{task_run_id}")

    def read_task_runs(
        self,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
        sort: Any = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[APIObject]:
        """Task runs matching the filters, sorted and paged."""
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        return self._call("POST", "task_runs/filter", _paged(body, sort, limit, offset))

    def count_task_runs(
        self,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
    ) -> int:
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        return self._call("POST", "task_runs/count", body)

    def update_task_run(self, task_run_id: Id, name: str | None = None) -> None:
        """Rename a task run."""
        body = {} if name is None else {"name": name}
        self._call("PATCH", f"task_runs/{task_run_id}", body)

    def delete_task_run(self, task_run_id: Id) -> None:
        """Delete a task run with its states."""
        self._call("DELETE", f"task_runs/{task_run_id}", missing_ok_on_retry=True)

    def set_task_run_state(
        self, task_run_id: Id, state: State, force: bool = False
    ) -> OrchestrationResult:
        """Propose ``state`` for a task run; returns the OrchestrationResult."""
        body = {"state": state.to_json(), "force": force}
        return OrchestrationResult.from_json(
            self._call("POST", f"task_runs/{task_run_id}/set_state", body)
        )

    def read_task_run_states(self, task_run_id: Id) -> list[State]:
        """Every state of a task run, oldest first (States)."""
        return [
            State.from_json(s)
            for s in self._call("GET", "task_run_states/", params={"task_run_id": str(task_run_id)})
        ]

    def read_task_run_state(self, state_id: Id) -> State:
        return State.from_json(self._call("GET", f"task_run_states/{state_id}"))

    # -- logs -------------------------------------------------------------------------------

    def create_logs(self, logs: Iterable[Mapping[str, Any]]) -> None:
        """Store log records: dicts with ``name``, ``level``, ``message``, ``timestamp``
        (aware datetime or ISO string), ``flow_run_id`` and optional ``task_run_id``.

        Each record without an ``id`` is sent with a fresh one (the dicts are not changed), so
        a retried batch never stores a line twice. Sent in batches of ``LOGS_BATCH_SIZE``.
        """
        batch: list[Mapping[str, Any]] = []
        for record in logs:
            if "id" not in record:
                record = dict(record, id=str(uuid.uuid4()))
            batch.append(record)
            if len(batch) == LOGS_BATCH_SIZE:
                self._call("POST", "logs/", batch)
                batch = []
        if batch:
            self._call("POST", "logs/", batch)

    def read_logs(
        self,
        log_filter: Filter | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort: Any = None,
    ) -> list[APIObject]:
        """Logs matching ``log_filter`` (dict), sorted (default ``"TIMESTAMP_ASC"``), paged."""
        body: dict[str, Any] = {} if log_filter is None else {"logs": log_filter}
        return self._call("POST", "logs/filter", _paged(body, sort, limit, offset))

    # -- concurrency limits -----------------------------------------------------------------

    def create_concurrency_limit(self, tag: str, concurrency_limit: int) -> uuid.UUID:
        """Upsert the limit on ``tag``; returns its id (uuid.UUID)."""
        body = {"tag": tag, "concurrency_limit": concurrency_limit}
        return uuid.UUID(self._call("POST", "concurrency_limits/", body)["id"])

    def read_concurrency_limit(self, concurrency_limit_id: Id) -> APIObject:
        return self._call("GET", f"concurrency_limits/{concurrency_limit_id}")

    def read_concurrency_limit_by_tag(self, tag: str) -> APIObject:
        return self._call("GET", f"concurrency_limits/tag/{quote(tag, safe='')}")

    def read_concurrency_limits(self, limit: int | None = None, offset: int = 0) -> list[APIObject]:
        return self._call("POST", "concurrency_limits/filter", _paged({}, None, limit, offset))

    def reset_concurrency_limit_by_tag(
        self, tag: str, slot_override: Iterable[Id] | None = None
    ) -> APIObject:
        """Drop every lease of the tag's limit, then give its slots to ``slot_override``
        (task run ids) if given; returns the limit."""
        body = {} if slot_override is None else {"slot_override": list(slot_override)}
        return self._call("POST", f"concurrency_limits/tag/{quote(tag, safe='')}/reset", body)

    def delete_concurrency_limit(self, concurrency_limit_id: Id) -> None:
        self._call("DELETE", f"concurrency_limits/{concurrency_limit_id}", missing_ok_on_retry=True)

    def delete_concurrency_limit_by_tag(self, tag: str) -> None:
        self._call(
            "DELETE", f"concurrency_limits/tag/{quote(tag, safe='')}", missing_ok_on_retry=True
        )

    # -- global concurrency limits (Prefect 2.20's "v2") ---------------------------------------

    def create_global_concurrency_limit(
        self, name: str, limit: int, slot_decay_per_second: float = 0.0, active: bool = True
    ) -> APIObject:
        """Create a global concurrency limit; ObjectAlreadyExists if the name is taken."""
        body = {
            "name": name,
            "limit": limit,
            "slot_decay_per_second": slot_decay_per_second,
            "active": active,
        }
        return self._call("POST", "v2/concurrency_limits/", body)

    def read_global_concurrency_limit(self, id_or_name: Id) -> APIObject:
        """The global limit with this id or name (slots after decay); ObjectNotFound if none."""
        return self._call("GET", f"v2/concurrency_limits/{quote(str(id_or_name), safe='')}")

    def read_global_concurrency_limits(
        self, limit: int | None = None, offset: int = 0
    ) -> list[APIObject]:
        """Global limits sorted by name."""
        return self._call("POST", "v2/concurrency_limits/filter", _paged({}, None, limit, offset))

    def update_global_concurrency_limit(self, id_or_name: Id, **changes: Any) -> None:
        """Change the given fields (``limit``, ``active``, ``name``, ``slot_decay_per_second``,
        ``active_slots``, ``denied_slots``)."""
        self._call("PATCH", f"v2/concurrency_limits/{quote(str(id_or_name), safe='')}", changes)

    def delete_global_concurrency_limit(self, id_or_name: Id) -> None:
        self._call(
            "DELETE",
            f"v2/concurrency_limits/{quote(str(id_or_name), safe='')}",
            missing_ok_on_retry=True,
        )

    def increment_concurrency_slots(
        self,
        names: Iterable[str],
        slots: int,
        mode: str = "concurrency",
        holder: Id | None = None,
        lease_seconds: float | None = None,
    ) -> list[APIObject]:
        """Take ``slots`` of each named limit, or none: Locked (423, with ``retry_after``) when
        not granted. With ``holder`` (concurrency mode), the slots are leased for
        ``lease_seconds`` and must be renewed (:meth:`renew_concurrency_leases`)."""
        body: dict[str, Any] = {"names": list(names), "slots": slots, "mode": mode}
        if holder is not None:
            body["holder"] = str(holder)
            body["lease_seconds"] = lease_seconds
        return self._call("POST", "v2/concurrency_limits/increment", body, retries=0)

    def release_concurrency_slots(
        self,
        names: Iterable[str],
        slots: int,
        occupancy_seconds: float | None = None,
        holder: Id | None = None,
    ) -> list[APIObject]:
        """Give back ``slots`` of each named limit (with ``holder``: what its lease holds)."""
        body: dict[str, Any] = {"names": list(names), "slots": slots}
        if occupancy_seconds:
            body["occupancy_seconds"] = occupancy_seconds
        if holder is not None:
            body["holder"] = str(holder)
        return self._call("POST", "v2/concurrency_limits/decrement", body)

    def renew_concurrency_leases(self, holder: Id, lease_seconds: float) -> int:
        """Extend ``holder``'s leases to now + ``lease_seconds``; ObjectNotFound if they were
        released (expired: the slots are no longer held)."""
        body = {"holder": str(holder), "lease_seconds": lease_seconds}
        return self._call("POST", "v2/concurrency_limits/leases/renew", body)

    # -- artifacts -----------------------------------------------------------------------------

    def create_artifact(self, **fields: Any) -> APIObject:
        """Create an artifact from its fields (``key``, ``type``, ``description``, ``data``,
        ``metadata_``, ``flow_run_id``, ``task_run_id``); None values are left out."""
        body = {key: value for key, value in fields.items() if value is not None}
        return self._call("POST", "artifacts/", body)

    def read_latest_artifact(self, key: str) -> APIObject | None:
        """The newest artifact of ``key``, or None if it has none."""
        try:
            return self._call("GET", f"artifacts/{quote(key, safe='')}/latest")
        except ObjectNotFound:
            return None

    def read_artifacts(self, body: dict[str, Any] | None = None) -> list[APIObject]:
        """Artifacts matching a filter body (``artifacts``, ``flow_runs`` ...), newest first."""
        return self._call("POST", "artifacts/filter", body or {})

    # -- variables -----------------------------------------------------------------------------

    def create_variable(self, name: str, value: str, tags: Iterable[str] = ()) -> APIObject:
        """Create a variable; ObjectAlreadyExists if one has this name."""
        return self._call("POST", "variables/", {"name": name, "value": value, "tags": list(tags)})

    def read_variable_by_name(self, name: str) -> APIObject | None:
        """The variable with this name, or None if there is none."""
        try:
            return self._call("GET", f"variables/name/{quote(name, safe='')}")
        except ObjectNotFound:
            return None

    def update_variable_by_name(
        self, name: str, value: str | None = None, tags: Iterable[str] | None = None
    ) -> None:
        """Change the value and/or tags of the variable with this name."""
        body: dict[str, Any] = {}
        if value is not None:
            body["value"] = value
        if tags is not None:
            body["tags"] = list(tags)
        self._call("PATCH", f"variables/name/{quote(name, safe='')}", body)

    def read_variables(self, limit: int | None = None, offset: int = 0) -> list[APIObject]:
        """Variables by name, paged."""
        return self._call("POST", "variables/filter", _paged({}, None, limit, offset))

    def delete_variable_by_name(self, name: str) -> None:
        self._call("DELETE", f"variables/name/{quote(name, safe='')}", missing_ok_on_retry=True)

    # -- work queues, deployments and agents ------------------------------------------------

    def create_work_queue(
        self,
        name: str,
        description: str | None = None,
        is_paused: bool = False,
        concurrency_limit: int | None = None,
        tags: Iterable[str] | None = None,
    ) -> APIObject:
        """Create a work queue (ObjectAlreadyExists if the name is taken); returns it.

        ``tags`` makes an Orion 2.0 queue matching runs by tags (deprecated)."""
        body: dict[str, Any] = {
            "name": name,
            "is_paused": is_paused,
            "concurrency_limit": concurrency_limit,
        }
        if description is not None:
            body["description"] = description
        if tags:
            body["filter"] = {"tags": list(tags)}
        return self._call("POST", "work_queues/", body)

    def read_work_queue(self, work_queue_id: Id) -> APIObject:
        return self._call("GET", f"work_queues/{work_queue_id}")

    def read_work_queue_by_name(self, name: str) -> APIObject:
        return self._call("GET", f"work_queues/name/{quote(name, safe='')}")

    def read_work_queues(
        self, work_queue_filter: Filter | None = None, limit: int | None = None, offset: int = 0
    ) -> list[APIObject]:
        """Work queues matching ``work_queue_filter`` (``{"name": {"startswith_": [...]}}``),
        by name, paged."""
        body = {} if work_queue_filter is None else {"work_queues": work_queue_filter}
        return self._call("POST", "work_queues/filter", _paged(body, None, limit, offset))

    def update_work_queue(self, work_queue_id: Id, **fields: Any) -> None:
        """Set the given fields (``is_paused``, ``concurrency_limit`` (None: unlimited),
        ``name``, ``description``) of a work queue."""
        self._call("PATCH", f"work_queues/{work_queue_id}", fields)

    def delete_work_queue_by_id(self, work_queue_id: Id) -> None:
        """Delete a work queue (its runs are kept)."""
        self._call("DELETE", f"work_queues/{work_queue_id}", missing_ok_on_retry=True)

    def read_work_queue_status(self, work_queue_id: Id) -> APIObject:
        """``{healthy, late_runs_count, last_polled, health_check_policy}``."""
        return self._call("GET", f"work_queues/{work_queue_id}/status")

    def get_runs_in_work_queue(
        self,
        work_queue_id: Id,
        limit: int = 10,
        scheduled_before: datetime.datetime | None = None,
        agent_id: Id | None = None,
        agent_name: str | None = None,
    ) -> list[APIObject]:
        """The queue's scheduled flow runs due by ``scheduled_before`` (default now), within
        its free concurrency. Records the poll; ``agent_id`` (and ``agent_name``) records the
        polling agent too. (A client built with the header ``x-prefect-ui: true`` records
        nothing.)"""
        body: dict[str, Any] = {"limit": limit}
        for key, value in (
            ("scheduled_before", scheduled_before),
            ("agent_id", agent_id),
            ("agent_name", agent_name),
        ):
            if value is not None:
                body[key] = value
        return self._call("POST", f"work_queues/{work_queue_id}/get_runs", body)

    # -- work pools, their queues and workers (Prefect 2.20) -------------------------------

    def create_work_pool(
        self,
        name: str,
        type: str = "process",
        description: str | None = None,
        is_paused: bool = False,
        concurrency_limit: int | None = None,
        base_job_template: Mapping[str, Any] | None = None,
    ) -> APIObject:
        """Create a work pool with its ``default`` queue (ObjectAlreadyExists if the name is
        taken); returns it."""
        body: dict[str, Any] = {
            "name": name,
            "type": type,
            "is_paused": is_paused,
            "concurrency_limit": concurrency_limit,
            "base_job_template": dict(base_job_template or {}),
        }
        if description is not None:
            body["description"] = description
        return self._call("POST", "work_pools/", body)

    def read_work_pool(self, name: str) -> APIObject:
        """The work pool called ``name``, with its ``status`` (READY, NOT_READY, PAUSED)."""
        return self._call("GET", f"work_pools/{quote(name, safe='')}")

    def read_work_pools(
        self, work_pool_filter: Filter | None = None, limit: int | None = None, offset: int = 0
    ) -> list[APIObject]:
        """Work pools matching ``work_pool_filter`` (``{"name": {"any_": [...]}}``), by name,
        paged."""
        body = {} if work_pool_filter is None else {"work_pools": work_pool_filter}
        return self._call("POST", "work_pools/filter", _paged(body, None, limit, offset))

    def update_work_pool(self, name: str, **fields: Any) -> None:
        """Set the given fields (``is_paused``, ``concurrency_limit`` (None: unlimited),
        ``description``, ``base_job_template``) of a work pool."""
        self._call("PATCH", f"work_pools/{quote(name, safe='')}", fields)

    def delete_work_pool(self, name: str) -> None:
        """Delete a work pool with its queues and workers; ObjectAlreadyExists (409) naming
        its deployments while it has any."""
        self._call("DELETE", f"work_pools/{quote(name, safe='')}", missing_ok_on_retry=True)

    def create_work_pool_queue(
        self,
        work_pool_name: str,
        name: str,
        description: str | None = None,
        is_paused: bool = False,
        concurrency_limit: int | None = None,
        priority: int | None = None,
    ) -> APIObject:
        """Create a queue in a work pool (ObjectAlreadyExists if the pool has one of that
        name; without ``priority`` it comes last); returns it."""
        body: dict[str, Any] = {
            "name": name,
            "is_paused": is_paused,
            "concurrency_limit": concurrency_limit,
        }
        if description is not None:
            body["description"] = description
        if priority is not None:
            body["priority"] = priority
        return self._call("POST", f"work_pools/{quote(work_pool_name, safe='')}/queues", body)

    def read_work_pool_queues(
        self,
        work_pool_name: str,
        work_queue_filter: Filter | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[APIObject]:
        """A work pool's queues matching ``work_queue_filter``, by priority then name, paged."""
        body = {} if work_queue_filter is None else {"work_queues": work_queue_filter}
        return self._call(
            "POST",
            f"work_pools/{quote(work_pool_name, safe='')}/queues/filter",
            _paged(body, None, limit, offset),
        )

    def update_work_pool_queue(self, work_pool_name: str, name: str, **fields: Any) -> None:
        """Set the given fields (``is_paused``, ``concurrency_limit`` (None: unlimited),
        ``priority``, ``name``, ``description``) of a work pool's queue."""
        self._call(
            "PATCH",
            f"work_pools/{quote(work_pool_name, safe='')}/queues/{quote(name, safe='')}",
            fields,
        )

    def delete_work_pool_queue(self, work_pool_name: str, name: str) -> None:
        """Delete a work pool's queue (its runs are kept); ObjectAlreadyExists (409) for the
        pool's default queue."""
        self._call(
            "DELETE",
            f"work_pools/{quote(work_pool_name, safe='')}/queues/{quote(name, safe='')}",
            missing_ok_on_retry=True,
        )

    def send_worker_heartbeat(
        self, work_pool_name: str, worker_name: str, heartbeat_interval_seconds: int | None = None
    ) -> None:
        """Tell the server the worker ``worker_name`` of the pool is alive (it is created if
        new); ``heartbeat_interval_seconds`` sets how long it stays ONLINE without another
        (three intervals, and at least the server's agent heartbeat timeout)."""
        body: dict[str, Any] = {"name": worker_name}
        if heartbeat_interval_seconds is not None:
            body["heartbeat_interval_seconds"] = heartbeat_interval_seconds
        self._call("POST", f"work_pools/{quote(work_pool_name, safe='')}/workers/heartbeat", body)

    def read_workers_for_work_pool(
        self, work_pool_name: str, limit: int | None = None, offset: int = 0
    ) -> list[APIObject]:
        """A work pool's workers, most recently seen first, each ONLINE or OFFLINE."""
        return self._call(
            "POST",
            f"work_pools/{quote(work_pool_name, safe='')}/workers/filter",
            _paged({}, None, limit, offset),
        )

    def get_scheduled_flow_runs_for_work_pool(
        self,
        work_pool_name: str,
        work_queue_names: Iterable[str] | None = None,
        scheduled_before: datetime.datetime | None = None,
        scheduled_after: datetime.datetime | None = None,
        limit: int | None = None,
    ) -> list[APIObject]:
        """The pool's scheduled flow runs due by ``scheduled_before`` (default now), from the
        named queues (None: all of the pool's), queues by priority, within the pool's and
        queues' free concurrency; none from a paused pool or queue. Each item is
        ``{work_pool_id, work_queue_id, flow_run}``. Records the poll on the queues (a client
        built with the header ``x-prefect-ui: true`` records nothing). A run is claimed by
        proposing PENDING for it."""
        body: dict[str, Any] = {}
        for key, value in (
            ("work_queue_names", None if work_queue_names is None else list(work_queue_names)),
            ("scheduled_before", scheduled_before),
            ("scheduled_after", scheduled_after),
            ("limit", limit),
        ):
            if value is not None:
                body[key] = value
        return self._call(
            "POST", f"work_pools/{quote(work_pool_name, safe='')}/get_scheduled_flow_runs", body
        )

    def create_deployment(self, flow_id: Id, name: str, **fields: Any) -> APIObject:
        """Create a deployment of a flow, or update the one with the same name (the given
        ``fields``: ``path``, ``entrypoint``, ``parameters``, ``work_queue_name``,
        ``schedule`` ...); returns it."""
        return self._call("POST", "deployments/", {"flow_id": flow_id, "name": name, **fields})

    def read_deployment(self, deployment_id: Id) -> APIObject:
        return self._call("GET", f"deployments/{deployment_id}")

    def create_flow_run_from_deployment(
        self,
        deployment_id: Id,
        state: State | None = None,
        parameters: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> APIObject:
        """A flow run of the deployment (its parameters updated with ``parameters``), in
        ``state`` (default Scheduled for now, so the deployment's agents pick it up, as
        Prefect's client does); idempotent on ``idempotency_key`` (a fresh one by default, so a
        retried call returns the same run)."""
        body: dict[str, Any] = {
            "idempotency_key": idempotency_key or str(uuid.uuid4()),
            "state": (state or Scheduled()).to_json(),
        }
        if parameters is not None:
            body["parameters"] = parameters
        return self._call("POST", f"deployments/{deployment_id}/create_flow_run", body)

    def read_agent(self, agent_id: Id) -> APIObject:
        return self._call("GET", f"agents/{agent_id}")

    def send_agent_heartbeat(self, agent_id: Id, name: str | None = None) -> None:
        """Tell the server the agent ``agent_id`` (called ``name``) is alive (Orion
        extension); the server creates the agent if it does not know it yet."""
        self._call("POST", f"agents/{agent_id}/heartbeat", {"name": name})

    def read_agents(
        self, agent_filter: Filter | None = None, limit: int | None = None, offset: int = 0
    ) -> list[APIObject]:
        """Agents matching ``agent_filter`` (``{"work_queue_id": {"any_": [...]}}``), by
        name, paged."""
        body: dict[str, Any] = {} if agent_filter is None else {"agents": agent_filter}
        return self._call("POST", "agents/filter", _paged(body, None, limit, offset))

    # -- deployments: reads, schedules and backfills (the ``orion deployment`` commands) -----

    def read_deployment_by_name(self, name: str) -> APIObject:
        """The deployment named ``flow_name/deployment_name``."""
        flow_name, _, deployment_name = name.partition("/")
        return self._call(
            "GET", f"deployments/name/{quote(flow_name, safe='')}/{quote(deployment_name, safe='')}"
        )

    def read_deployments(
        self,
        *,
        flow_filter: Filter | None = None,
        flow_run_filter: Filter | None = None,
        task_run_filter: Filter | None = None,
        deployment_filter: Filter | None = None,
        sort: Any = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[APIObject]:
        """Deployments matching the filters, sorted and paged."""
        body = _filters(flow_filter, flow_run_filter, task_run_filter, deployment_filter)
        return self._call("POST", "deployments/filter", _paged(body, sort, limit, offset))

    def delete_deployment(self, deployment_id: Id) -> None:
        """Delete a deployment and its future never-started scheduled runs."""
        self._call("DELETE", f"deployments/{deployment_id}", missing_ok_on_retry=True)

    def set_deployment_schedule_active(self, deployment_id: Id, active: bool) -> None:
        """Resume (True) or pause (False) a deployment's schedule."""
        action = "set_schedule_active" if active else "set_schedule_inactive"
        self._call("POST", f"deployments/{deployment_id}/{action}")

    def schedule_deployment(
        self,
        deployment_id: Id,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
        max_runs: int | None = None,
        dry_run: bool = False,
    ) -> APIObject:
        """Schedule every slot of the deployment's schedule from ``start_time`` to
        ``end_time`` (at most ``max_runs``; aware datetimes), or with ``dry_run`` only say
        which: ``{dry_run, scheduled_times, created, existing}``. Idempotent: existing runs
        are not duplicated."""
        body: dict[str, Any] = {"dry_run": dry_run}
        for key, value in (
            ("start_time", start_time),
            ("end_time", end_time),
            ("max_runs", max_runs),
        ):
            if value is not None:
                body[key] = value
        return self._call("POST", f"deployments/{deployment_id}/schedule", body)


def get_client(api: str | Callable[..., Any] | None = None, **kwargs: Any) -> OrionClient:
    """A new :class:`OrionClient` with the current settings (see its arguments)."""
    return OrionClient(api, **kwargs)
