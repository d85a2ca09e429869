"""The notification service: send queued flow run notifications through their policy's block.

A flow run transition queues a row per matching policy (``app.models.notifications``). A pass
of this service (:func:`send_notifications`, a row of ``app.services.periodic.SERVICES``)
claims due rows, sends each through its block on a pool of threads, and records the outcome:

- **at most once**: a row is claimed (``sending_since`` set, ``attempts`` counted) in a
  committed transaction before anything is sent, so no other pass takes it while it is in
  flight; a sent notification's row is deleted. A row left in flight by a process that died
  (in flight far longer than a live pass takes to send it) is dropped and logged, never
  sent again: its outcome is unknown.
- **retried with backoff**: a send that fails in a way that may pass (connection refused,
  unknown host, time-out, HTTP 5xx, 408, 429) is tried again ``RETRY_SECONDS * 2**(n-1)``
  seconds after the n-th attempt, up to ``MAX_ATTEMPTS`` attempts; then it is given up and
  logged. A failure that cannot pass (a malformed URL, another 4xx, a private address the
  block forbids, a template that does not render) is given up at once.
- **never blocking**: nothing is sent inside a database transaction, so orchestration never
  waits on the network; sends run ``CONCURRENCY`` at a time, each bounded by
  ``TIMEOUT_SECONDS``, and a slot freed by one send is refilled at once, so a slow receiver
  holds one slot, not the others' notifications.

What is sent (the server never imports the client's block classes; it reads the block
document's data, secrets included):

- ``slack-webhook`` (Prefect's ``SlackWebhook``): ``POST url`` with Slack's incoming-webhook
  JSON, ``{"text": "*<subject>*\\n<message>"}``.
- ``webhook`` (Prefect's ``Webhook``: ``method``, ``url``, ``headers``,
  ``allow_private_urls``): ``<method> url`` with the block's headers and the JSON body
  ``{"subject", "body"}`` plus every template variable (``flow_run_id``, ``flow_run_state_name``
  ...), so a receiver can use the fields without parsing the message.

The message is the policy's ``message_template`` (or Prefect's default) filled in with the
template variables; ``flow_run_url`` points at this server's dashboard (``UI_URL``).
"""

import datetime
import ipaddress
import logging
import socket
import time
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.db import database, is_sqlite
from app.exceptions import ObjectNotFound
from app.models import (
    Flow,
    FlowRun,
    FlowRunNotification,
    FlowRunNotificationPolicy,
    FlowRunState,
    utcnow,
)
from app.services import blocks
from app.services.notification_policies import DEFAULT_MESSAGE_TEMPLATE, read_policy

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SUBJECT = "Prefect flow run notification"
CLAIM_AHEAD = 4
_RETRYABLE_STATUS = frozenset({408, 429})
# The flow and flow run id a test notification names (no such run exists).
TEST_RUN_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class NotificationSettings:
    """The service's settings (``NOTIFICATIONS_*`` in ``app.config``)."""

    timeout_seconds: float = 10
    max_attempts: int = 5
    retry_seconds: float = 10
    concurrency: int = 16
    ui_url: str = "http://127.0.0.1:4200"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "NotificationSettings":
        ui_url = config.get("UI_URL") or (f"http://{config['SERVER_HOST']}:{config['SERVER_PORT']}")
        return cls(
            timeout_seconds=config["NOTIFICATIONS_TIMEOUT_SECONDS"],
            max_attempts=config["NOTIFICATIONS_MAX_ATTEMPTS"],
            retry_seconds=config["NOTIFICATIONS_RETRY_SECONDS"],
            concurrency=config["NOTIFICATIONS_CONCURRENCY"],
            ui_url=ui_url.rstrip("/"),
        )


class SendError(Exception):
    """A send failed; ``retry`` says whether trying again may succeed."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass
class Job:
    """One claimed notification, ready to send (or to drop, when ``problem`` says why)."""

    row_id: object
    attempts: int
    policy_id: object | None = None
    flow_run_id: object | None = None
    block: tuple[str, str, dict[str, Any]] | None = None  # slug, name, data of the document
    message: str = ""
    variables: dict[str, Any] | None = None
    problem: str | None = None


def send_notifications(settings: NotificationSettings) -> dict[str, int]:
    """One pass: send every due notification; returns ``{"sent", "retrying", "gave_up",
    "dropped"}`` counts."""
    counts = {"sent": 0, "retrying": 0, "gave_up": 0, "dropped": 0}
    counts["dropped"] += _drop_abandoned(settings)
    import httpx  # on first use: app/services/__init__.py says why

    client = httpx.Client(timeout=settings.timeout_seconds, follow_redirects=False)
    # Claiming stops after this long, so a pass on a busy queue ends and lets the other
    # embedded services run; what is left is the next pass's.
    deadline = time.monotonic() + max(30.0, 3 * settings.timeout_seconds)
    # Jobs claimed ahead of the sending threads, so outcomes are recorded in groups (fewer
    # write transactions) and a freed thread never waits for a claim. A claimed job is
    # therefore sent within CLAIM_AHEAD send time-outs of its claim.
    slots = CLAIM_AHEAD * settings.concurrency
    try:
        with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="orion-notify") as pool:
            in_flight: dict[Future[Any], Job] = {}
            exhausted = False
            while True:
                free = slots - len(in_flight)
                claiming = time.monotonic() < deadline
                if free > 0 and claiming and (not exhausted or not in_flight):
                    jobs = _claim(free, settings)
                    exhausted = len(jobs) < free
                    _finish(
                        [(job, None, job.problem) for job in jobs if job.problem is not None],
                        counts,
                        settings,
                    )
                    for job in jobs:
                        if job.problem is None:
                            in_flight[pool.submit(_send, client, job, settings)] = job
                if not in_flight:
                    if exhausted or not claiming:
                        break
                    continue
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                _finish(
                    [(in_flight.pop(future), future.exception(), None) for future in done],
                    counts,
                    settings,
                )
    finally:
        client.close()
    return counts


def _due_rows(limit: int, now: datetime.datetime) -> list[Any]:
    query = (
        FlowRunNotification.select(FlowRunNotification.id, FlowRunNotification.attempts)
        .where(
            FlowRunNotification.sending_since.is_null()
            & (FlowRunNotification.next_attempt_at <= now)
        )
        .order_by(FlowRunNotification.next_attempt_at, FlowRunNotification.id)
        .limit(limit)
    )
    if not is_sqlite():
        query = query.for_update("FOR UPDATE SKIP LOCKED")
    return list(query)


def _claim(limit: int, settings: NotificationSettings) -> list[Job]:
    """Claim up to ``limit`` due notifications (committed before anything is sent) and
    return them as jobs."""
    now = utcnow()
    with database.atomic():
        rows = _due_rows(limit, now)
        if not rows:
            return []
        ids = [row.id for row in rows]
        (
            FlowRunNotification.update(
                sending_since=now, attempts=FlowRunNotification.attempts + 1, updated=now
            )
            .where(FlowRunNotification.id.in_(ids))
            .execute()
        )
        details = {row["id"]: row for row in _details(ids)}
    documents: dict[Any, Any] = {}
    jobs = []
    for row in rows:
        job = Job(row_id=row.id, attempts=row.attempts + 1)
        detail = details.get(row.id)
        if detail is None or detail["policy_id"] is None:
            job.problem = "its policy or flow run state no longer exists"
        else:
            _prepare(job, detail, documents, settings)
        jobs.append(job)
    return jobs


def _details(ids: list[Any]) -> Any:
    """What a message needs of each queue row: policy, block, flow, run and state columns."""
    Policy, Queue, State = FlowRunNotificationPolicy, FlowRunNotification, FlowRunState
    return (
        Queue.select(
            Queue.id,
            Policy.id.alias("policy_id"),
            Policy.message_template.alias("message_template"),
            Policy.block_document.alias("block_document_id"),
            Flow.id.alias("flow_id"),
            Flow.name.alias("flow_name"),
            FlowRun.id.alias("flow_run_id"),
            FlowRun.name.alias("flow_run_name"),
            FlowRun.parameters.alias("flow_run_parameters"),
            State.type.alias("flow_run_state_type"),
            State.name.alias("flow_run_state_name"),
            State.timestamp.alias("flow_run_state_timestamp"),
            State.message.alias("flow_run_state_message"),
        )
        .join(Policy, on=(Queue.policy_id == Policy.id))
        .join(State, on=(Queue.flow_run_state_id == State.id), src=Queue)
        .join(FlowRun, on=(State.flow_run == FlowRun.id))
        .join(Flow, on=(FlowRun.flow == Flow.id))
        .where(Queue.id.in_(ids))
        .dicts()
    )


def _prepare(
    job: Job, detail: Mapping[str, Any], documents: dict[Any, Any], settings: NotificationSettings
) -> None:
    """Fill ``job`` from its row's details: the block and the rendered message."""
    job.policy_id = detail["policy_id"]
    job.flow_run_id = detail["flow_run_id"]
    document_id = detail["block_document_id"]
    if document_id not in documents:
        try:
            resolved = blocks.read_block_document(document_id, include_secrets=True)
            documents[document_id] = (
                resolved.block_type.slug,
                resolved.document.name,
                resolved.data,
            )
        except ObjectNotFound:
            documents[document_id] = None
    job.block = documents[document_id]
    if job.block is None:
        job.problem = f"its block document {document_id} no longer exists"
        return
    timestamp = detail["flow_run_state_timestamp"]
    if isinstance(timestamp, str):
        timestamp = datetime.datetime.fromisoformat(timestamp)
    job.variables = {
        "flow_run_notification_policy_id": str(detail["policy_id"]),
        "flow_id": str(detail["flow_id"]),
        "flow_name": detail["flow_name"],
        "flow_run_url": f"{settings.ui_url}/flow-runs/{detail['flow_run_id']}",
        "flow_run_id": str(detail["flow_run_id"]),
        "flow_run_name": detail["flow_run_name"],
        "flow_run_parameters": detail["flow_run_parameters"],
        "flow_run_state_type": detail["flow_run_state_type"],
        "flow_run_state_name": detail["flow_run_state_name"],
        "flow_run_state_timestamp": timestamp.isoformat() if timestamp else None,
        "flow_run_state_message": detail["flow_run_state_message"],
    }
    template = detail["message_template"] or DEFAULT_MESSAGE_TEMPLATE
    try:
        job.message = template.format(**job.variables)
    except (KeyError, IndexError, AttributeError, ValueError) as error:
        job.problem = f"its message template does not render: {error!r}"


def _send(client: "httpx.Client", job: Job, settings: NotificationSettings) -> None:
    """Send one job through its block; raises SendError on failure."""
    import httpx  # loaded by the caller that made ``client``

    assert job.block is not None and job.variables is not None  # jobs without a problem have both
    slug, _, data = job.block
    if slug == "slack-webhook":
        method, url = "POST", data.get("url")
        headers: dict[str, str] = {}
        payload = {"text": f"*{SUBJECT}*\n{job.message}"}
    elif slug == "webhook":
        method = data.get("method") or "POST"
        url, headers = data.get("url"), data.get("headers") or {}
        payload = {"subject": SUBJECT, "body": job.message, **job.variables}
    else:
        raise SendError(f"this server cannot send through {slug!r} blocks", retry=False)
    if not isinstance(url, str) or not url:
        raise SendError("the block has no URL", retry=False)
    if slug == "webhook" and data.get("allow_private_urls") is False:
        _refuse_private(url)
    try:
        response = client.request(
            method, url, headers=headers, json=payload, timeout=settings.timeout_seconds
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
        raise SendError(f"invalid URL: {error}", retry=False) from None
    except httpx.HTTPError as error:
        raise SendError(f"{type(error).__name__}: {error}", retry=True) from None
    if response.is_success:
        return
    retry = response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS
    raise SendError(f"HTTP {response.status_code} from the receiver", retry=retry)


def send_test(policy_id: Any, settings: NotificationSettings) -> str:
    """Send a test message through a policy's block now, as a notification of a made-up
    Completed run would be sent (its template, its block), but not queued and not retried.

    Returns what it was sent through (``slug block 'name'``); SendError saying why when the
    block cannot send or the receiver refused; ObjectNotFound if there is no such policy.
    """
    policy = read_policy(policy_id)
    job = Job(row_id=None, attempts=1)
    detail = {
        "policy_id": policy.id,
        "flow_run_id": TEST_RUN_ID,
        "block_document_id": policy.block_document_id,
        "flow_id": TEST_RUN_ID,
        "flow_name": "test-flow",
        "flow_run_name": "test-notification",
        "flow_run_parameters": {},
        "flow_run_state_type": "COMPLETED",
        "flow_run_state_name": "Completed",
        "flow_run_state_timestamp": utcnow(),
        "flow_run_state_message": "A test notification sent from the dashboard.",
        "message_template": policy.message_template,
    }
    _prepare(job, detail, {}, settings)
    if job.problem is not None:
        raise SendError(f"Cannot send: {job.problem}.", retry=False)
    import httpx  # on first use: app/services/__init__.py says why

    with httpx.Client(timeout=settings.timeout_seconds, follow_redirects=False) as client:
        _send(client, job, settings)
    assert job.block is not None  # _prepare set it, or a problem was raised above
    return f"{job.block[0]} block {job.block[1]!r}"


def _refuse_private(url: str) -> None:
    """SendError (final) if ``url``'s host resolves to a private, loopback or link-local
    address (the webhook block's ``allow_private_urls: false``)."""
    host = urllib.parse.urlsplit(url).hostname
    if not host:
        raise SendError("invalid URL: no host", retry=False)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as error:
        raise SendError(f"cannot resolve {host}: {error}", retry=True) from None
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            raise SendError(
                f"{host} is a private address and the block does not allow private URLs",
                retry=False,
            )


def _describe(job: Job) -> str:
    if job.block is None:
        return f"notification {job.row_id}"
    slug, name, _ = job.block
    return (
        f"notification of policy {job.policy_id} for flow run {job.flow_run_id} "
        f"through {slug} block {name!r}"
    )


def _finish(
    outcomes: list[tuple[Job, BaseException | None, str | None]],
    counts: dict[str, int],
    settings: NotificationSettings,
) -> None:
    """Record the outcomes of claimed jobs, ``[(job, error or None, dropped reason or None)]``,
    in one transaction: delete each row, or put it back for a retry; log each."""
    now = utcnow()
    deleted, retries = [], []
    for job, error, dropped in outcomes:
        if dropped is not None:
            log.warning("Dropped %s: %s.", _describe(job), dropped)
            counts["dropped"] += 1
        elif error is None:
            log.info("Sent %s.", _describe(job))
            counts["sent"] += 1
        elif getattr(error, "retry", False) and job.attempts < settings.max_attempts:
            delay = settings.retry_seconds * 2 ** (job.attempts - 1)
            log.warning(
                "Sending %s failed (attempt %d of %d): %s; retrying in %.1f s.",
                _describe(job),
                job.attempts,
                settings.max_attempts,
                error,
                delay,
            )
            counts["retrying"] += 1
            retries.append((job, str(error)[:2000], now + datetime.timedelta(seconds=delay)))
            continue
        else:
            if not isinstance(error, SendError):
                log.error(
                    "Sending %s failed unexpectedly.",
                    _describe(job),
                    exc_info=(type(error), error, error.__traceback__),
                )
            log.error(
                "Gave up sending %s after %d attempt(s): %s.", _describe(job), job.attempts, error
            )
            counts["gave_up"] += 1
        deleted.append(job.row_id)
    if not deleted and not retries:
        return
    with database.atomic():
        if deleted:
            FlowRunNotification.delete().where(FlowRunNotification.id.in_(deleted)).execute()
        for job, message, next_attempt_at in retries:
            (
                FlowRunNotification.update(
                    sending_since=None,
                    last_error=message,
                    updated=now,
                    next_attempt_at=next_attempt_at,
                )
                .where(FlowRunNotification.id == job.row_id)
                .execute()
            )


def _drop_abandoned(settings: NotificationSettings) -> int:
    """Delete rows left in flight by a pass that never finished (its process died); their
    outcome is unknown, so they are not sent again. A live pass sends a claimed row within
    CLAIM_AHEAD time-outs, so a row in flight for twice that (and a minute) is abandoned.
    Returns how many."""
    cutoff = utcnow() - datetime.timedelta(seconds=2 * CLAIM_AHEAD * settings.timeout_seconds + 60)
    with database.atomic():
        rows = list(
            FlowRunNotification.select(
                FlowRunNotification.id,
                FlowRunNotification.policy_id,
                FlowRunNotification.flow_run_state_id,
            ).where(FlowRunNotification.sending_since < cutoff)
        )
        if rows:
            (
                FlowRunNotification.delete()
                .where(FlowRunNotification.id.in_([row.id for row in rows]))
                .execute()
            )
    for row in rows:
        log.error(
            "Dropped notification of policy %s for flow run state %s: a send started "
            "before %s never finished, so whether it arrived is unknown; it is not "
            "sent again.",
            row.policy_id,
            row.flow_run_state_id,
            cutoff.isoformat(),
        )
    return len(rows)
