"""``orion work-queue``, ``pool``, ``concurrency-limit``, ``flow-run``, ``deployment``,
``agent``, ``variable`` and ``global-concurrency-limit``.

The client's part of the ``orion`` command (:mod:`orion_cli` joins it with the server's).
These commands never touch the database: like Prefect's CLI they talk to the API through
:class:`client.OrionClient`, so they work against any server (``ORION_API_URL``, with
``ORION_API_KEY``) or, with ``ORION_API_URL`` unset, against the ephemeral in-process API on
``$ORION_HOME/orion.db``. A command may be given the client to use as the click context's
``obj`` (tests pass one bound to their app).

Output is a plain aligned table (lists), an indented JSON document (``inspect``) or one line
saying what was done. Every error (unknown object, refused request, server unreachable) prints
one ``Error:`` line and exits with status 1.
"""

import datetime
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import click

from client import OrionClient, get_client
from client.api.exceptions import ObjectAlreadyExists, ObjectNotFound, OrionClientError
from client.api.objects import APIObject
from client.api.states import Cancelling, SetStateStatus, StateType

UTC = datetime.UTC
# Rows `ls` commands show unless told otherwise.
DEFAULT_ROWS = 15


class ApiGroup(click.Group):
    """A command group whose client errors become one ``Error:`` line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrionClientError as error:
            # A refusal's message lists each field's problem on a line of its own.
            message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise click.ClickException(message or type(error).__name__) from None


def _client() -> OrionClient:
    """The client of this invocation: the context's ``obj`` if it is one, else a new one
    from the environment (closed with the context)."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if isinstance(root.obj, OrionClient):
        return root.obj
    client = root.meta.get("orion.client")
    if client is None:
        client = root.meta["orion.client"] = get_client()
        root.call_on_close(client.close)
    return client


def _uuid(value: str, label: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise click.ClickException(f"{label} {value!r} is not a valid id.") from None


def _time(value: datetime.datetime | str | None) -> str:
    """A datetime (or ISO string) as ``YYYY-MM-DD HH:MM:SS`` UTC; "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    """Print ``rows`` under ``headers`` in aligned columns, or ``empty`` when there are none."""
    if not rows:
        click.echo(empty)
        return
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _dump(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def _rows_option(help_text: str, default: int = DEFAULT_ROWS) -> Callable[[Any], Any]:
    """The ``--limit`` option of a listing command: how many rows it shows (``rows``)."""
    return click.option(
        "--limit",
        "rows",
        type=click.IntRange(1),
        default=default,
        show_default=True,
        help=help_text,
    )


# -- work queues ----------------------------------------------------------------------------


@click.group("work-queue", cls=ApiGroup)
def work_queue_group() -> None:
    """Create, inspect, pause and limit work queues."""


def _queue(name_or_id: str) -> APIObject:
    """The work queue with this name, or this id; a clear error if there is none."""
    client = _client()
    try:
        queue_id = uuid.UUID(name_or_id)
    except ValueError:
        queue_id = None
    try:
        if queue_id is not None:
            try:
                return client.read_work_queue(queue_id)
            except ObjectNotFound:
                pass
        return client.read_work_queue_by_name(name_or_id)
    except ObjectNotFound:
        raise click.ClickException(f"Work queue {name_or_id!r} not found.") from None


@work_queue_group.command("create")
@click.argument("name")
@click.option("-l", "--limit", type=click.IntRange(0), help="Most runs PENDING or RUNNING at once.")
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    help="Match runs by tag instead of by queue name (deprecated Orion 2.0 queues).",
)
@click.option("-d", "--description", help="What the queue is for.")
def work_queue_create(
    name: str, limit: int | None, tags: tuple[str, ...], description: str | None
) -> None:
    """Create a work queue called NAME.

    Safe to re-run: if NAME exists already with what was asked (the options given, and the
    same tags, none for a queue matching runs by name), it says so and succeeds; if it
    differs, it fails naming the difference and changes nothing.
    """
    client = _client()
    try:
        queue = client.create_work_queue(
            name, description=description, concurrency_limit=limit, tags=tags or None
        )
    except ObjectAlreadyExists:
        queue = client.read_work_queue_by_name(name)
    else:
        click.echo(f"Created work queue {queue.name!r} ({queue.id}).")
        return
    existing_tags = sorted((queue.filter or {}).get("tags") or ())
    differences = []
    if existing_tags != sorted(set(tags)):
        differences.append(f"tags {existing_tags or 'none'}, not {sorted(set(tags)) or 'none'}")
    if limit is not None and queue.concurrency_limit != limit:
        current = (
            "no concurrency limit"
            if queue.concurrency_limit is None
            else f"concurrency limit {queue.concurrency_limit}"
        )
        differences.append(f"{current}, not {limit} (see set-concurrency-limit)")
    if description is not None and (queue.description or "") != description:
        differences.append(f"description {queue.description or ''!r}, not {description!r}")
    if differences:
        raise click.ClickException(
            f"Work queue {name!r} exists already with " + "; ".join(differences) + "."
        )
    click.echo(f"Work queue {queue.name!r} ({queue.id}) exists already; left as it is.")


@work_queue_group.command("ls")
@click.option("--match", "prefix", help="Only queues whose name starts with this.")
def work_queue_ls(prefix: str | None) -> None:
    """List work queues."""
    criteria = {"name": {"startswith_": [prefix]}} if prefix else None
    queues = _client().read_work_queues(criteria)
    rows = [
        (
            q.name,
            "unlimited" if q.concurrency_limit is None else q.concurrency_limit,
            "yes" if q.is_paused else "no",
            _time(q.last_polled),
            q.id,
        )
        for q in queues
    ]
    _table(("NAME", "CONCURRENCY LIMIT", "PAUSED", "LAST POLLED", "ID"), rows, "No work queues.")


@work_queue_group.command("inspect")
@click.argument("name_or_id")
def work_queue_inspect(name_or_id: str) -> None:
    """Show a work queue (by name or id) and its health."""
    queue = _queue(name_or_id)
    _dump(dict(queue, status=_client().read_work_queue_status(queue.id)))


@work_queue_group.command("pause")
@click.argument("name_or_id")
def work_queue_pause(name_or_id: str) -> None:
    """Pause a work queue: agents get no runs from it."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, is_paused=True)
    click.echo(f"Paused work queue {queue.name!r}.")


@work_queue_group.command("resume")
@click.argument("name_or_id")
def work_queue_resume(name_or_id: str) -> None:
    """Resume a paused work queue."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, is_paused=False)
    click.echo(f"Resumed work queue {queue.name!r}.")


@work_queue_group.command("set-concurrency-limit")
@click.argument("name_or_id")
@click.argument("limit", type=click.IntRange(0))
def work_queue_set_limit(name_or_id: str, limit: int) -> None:
    """Allow at most LIMIT runs of the queue PENDING or RUNNING at once."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, concurrency_limit=limit)
    click.echo(f"Work queue {queue.name!r} now runs at most {limit} flow runs at once.")


@work_queue_group.command("clear-concurrency-limit")
@click.argument("name_or_id")
def work_queue_clear_limit(name_or_id: str) -> None:
    """Remove a work queue's concurrency limit."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, concurrency_limit=None)
    click.echo(f"Work queue {queue.name!r} has no concurrency limit now.")


@work_queue_group.command("preview")
@click.argument("name_or_id")
@click.option(
    "--hours",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Show runs due within this many hours.",
)
@_rows_option("Most runs shown.", default=10)
def work_queue_preview(name_or_id: str, hours: float, rows: int) -> None:
    """Show the queue's scheduled runs due in the next hours, earliest first.

    Read with a flow run filter, so the look is not recorded as a poll (the queue's health is
    unchanged); agents get these runs as the queue's pause and concurrency limit allow.
    """
    queue = _queue(name_or_id)
    until = datetime.datetime.now(UTC) + datetime.timedelta(hours=hours)
    criteria = {
        "state": {"type": {"any_": [StateType.SCHEDULED.value]}},
        "next_scheduled_start_time": {"before_": until.isoformat()},
    }
    if queue.filter is None:
        criteria["work_queue_name"] = {"any_": [queue.name]}
    else:
        if queue.filter.get("tags"):
            criteria["tags"] = {"all_": queue.filter["tags"]}
        if queue.filter.get("deployment_ids"):
            criteria["deployment_id"] = {"any_": queue.filter["deployment_ids"]}
    runs = _client().read_flow_runs(
        flow_run_filter=criteria, sort="NEXT_SCHEDULED_START_TIME_ASC", limit=rows
    )
    _table(
        ("SCHEDULED FOR", "NAME", "STATE", "ID"),
        [(_time(r.next_scheduled_start_time), r.name, r.state_name, r.id) for r in runs],
        f"No runs due in the next {hours:g} hour(s).",
    )
    if queue.is_paused:
        click.echo(f"Work queue {queue.name!r} is paused: agents get none of these runs.")


@work_queue_group.command("delete")
@click.argument("name_or_id")
def work_queue_delete(name_or_id: str) -> None:
    """Delete a work queue (its flow runs are kept)."""
    queue = _queue(name_or_id)
    _client().delete_work_queue_by_id(queue.id)
    click.echo(f"Deleted work queue {queue.name!r}.")


# -- work pools -----------------------------------------------------------------------------


@click.group("pool", cls=ApiGroup)
def pool_group() -> None:
    """Create, inspect, pause, limit and delete work pools and their queues."""


def _pool(name: str) -> APIObject:
    """The work pool called ``name``; a clear error if there is none."""
    try:
        return _client().read_work_pool(name)
    except ObjectNotFound:
        raise click.ClickException(f"Work pool {name!r} not found.") from None


def _limit_text(limit: int | None) -> str:
    return "no concurrency limit" if limit is None else f"concurrency limit {limit}"


@pool_group.command("create")
@click.argument("name")
@click.option(
    "-t",
    "--type",
    "pool_type",
    default="process",
    show_default=True,
    help="The pool's type; `orion agent start --pool` runs process pools.",
)
@click.option(
    "-l",
    "--concurrency-limit",
    type=click.IntRange(0),
    help="Most of the pool's runs PENDING or RUNNING at once.",
)
@click.option("-d", "--description", help="What the pool is for.")
@click.option("--paused", is_flag=True, help="Create it paused: no runs are handed out.")
def pool_create(
    name: str,
    pool_type: str,
    concurrency_limit: int | None,
    description: str | None,
    paused: bool,
) -> None:
    """Create a work pool called NAME, with its queue "default".

    Safe to re-run: if NAME exists already of the same type and with the options given, it
    says so and succeeds; if it differs, it fails naming the difference and changes nothing.
    """
    client = _client()
    try:
        pool = client.create_work_pool(
            name,
            type=pool_type,
            description=description,
            is_paused=paused,
            concurrency_limit=concurrency_limit,
        )
    except ObjectAlreadyExists:
        pool = client.read_work_pool(name)
    else:
        click.echo(f"Created work pool {pool.name!r} of type {pool.type!r} ({pool.id}).")
        return
    differences = []
    if pool.type != pool_type:
        differences.append(f"type {pool.type!r}, not {pool_type!r}")
    if concurrency_limit is not None and pool.concurrency_limit != concurrency_limit:
        differences.append(
            f"{_limit_text(pool.concurrency_limit)}, not {concurrency_limit} "
            "(see set-concurrency-limit)"
        )
    if description is not None and (pool.description or "") != description:
        differences.append(f"description {pool.description or ''!r}, not {description!r}")
    if paused and not pool.is_paused:
        differences.append("not paused (see pause)")
    if differences:
        raise click.ClickException(
            f"Work pool {name!r} exists already with " + "; ".join(differences) + "."
        )
    click.echo(f"Work pool {pool.name!r} ({pool.id}) exists already; left as it is.")


@pool_group.command("ls")
def pool_ls() -> None:
    """List work pools with their status (READY while a worker is online)."""
    pools = _client().read_work_pools()
    rows = [
        (
            p.name,
            p.type,
            p.status,
            "unlimited" if p.concurrency_limit is None else p.concurrency_limit,
            "yes" if p.is_paused else "no",
            p.id,
        )
        for p in pools
    ]
    _table(("NAME", "TYPE", "STATUS", "CONCURRENCY LIMIT", "PAUSED", "ID"), rows, "No work pools.")


@pool_group.command("inspect")
@click.argument("name")
def pool_inspect(name: str) -> None:
    """Show a work pool as JSON, with its queues (by priority) and its workers."""
    pool = _pool(name)
    client = _client()
    _dump(
        dict(
            pool,
            queues=client.read_work_pool_queues(name),
            workers=client.read_workers_for_work_pool(name),
        )
    )


@pool_group.command("pause")
@click.argument("name")
def pool_pause(name: str) -> None:
    """Pause a work pool: agents and workers get none of its runs."""
    _pool(name)
    _client().update_work_pool(name, is_paused=True)
    click.echo(f"Paused work pool {name!r}.")


@pool_group.command("resume")
@click.argument("name")
def pool_resume(name: str) -> None:
    """Resume a paused work pool."""
    _pool(name)
    _client().update_work_pool(name, is_paused=False)
    click.echo(f"Resumed work pool {name!r}.")


@pool_group.command("set-concurrency-limit")
@click.argument("name")
@click.argument("limit", type=click.IntRange(0))
def pool_set_limit(name: str, limit: int) -> None:
    """Allow at most LIMIT runs of the pool PENDING or RUNNING at once."""
    _pool(name)
    _client().update_work_pool(name, concurrency_limit=limit)
    click.echo(f"Work pool {name!r} now runs at most {limit} flow runs at once.")


@pool_group.command("clear-concurrency-limit")
@click.argument("name")
def pool_clear_limit(name: str) -> None:
    """Remove a work pool's concurrency limit."""
    _pool(name)
    _client().update_work_pool(name, concurrency_limit=None)
    click.echo(f"Work pool {name!r} has no concurrency limit now.")


@pool_group.command("delete")
@click.argument("name")
def pool_delete(name: str) -> None:
    """Delete a work pool with its queues and workers. Refused while deployments use it
    (they are named): delete them or move them to another pool first."""
    _pool(name)
    try:
        _client().delete_work_pool(name)
    except ObjectAlreadyExists as error:
        raise click.ClickException(f"Work pool {name!r} was not deleted: {error}") from None
    click.echo(f"Deleted work pool {name!r}.")


@pool_group.group("queue", cls=ApiGroup)
def pool_queue_group() -> None:
    """Create and list the queues of a work pool."""


@pool_queue_group.command("create")
@click.argument("pool")
@click.argument("name")
@click.option(
    "--priority",
    type=click.IntRange(1),
    help="1 is served first; a priority another queue holds moves it and those after it "
    "down one [after the pool's last queue].",
)
@click.option("-l", "--limit", type=click.IntRange(0), help="Most runs PENDING or RUNNING at once.")
@click.option("-d", "--description", help="What the queue is for.")
def pool_queue_create(
    pool: str, name: str, priority: int | None, limit: int | None, description: str | None
) -> None:
    """Create the queue NAME in the work pool POOL."""
    _pool(pool)
    try:
        queue = _client().create_work_pool_queue(
            pool, name, description=description, concurrency_limit=limit, priority=priority
        )
    except ObjectAlreadyExists:
        raise click.ClickException(f"Work pool {pool!r} has a queue {name!r} already.") from None
    click.echo(
        f"Created queue {queue.name!r} in work pool {pool!r} (priority {queue.priority}, "
        f"{queue.id})."
    )


@pool_queue_group.command("ls")
@click.argument("pool")
def pool_queue_ls(pool: str) -> None:
    """List the queues of the work pool POOL, by priority."""
    _pool(pool)
    queues = _client().read_work_pool_queues(pool)
    _table(
        ("PRIORITY", "NAME", "CONCURRENCY LIMIT", "PAUSED", "LAST POLLED", "ID"),
        [
            (
                q.priority,
                q.name,
                "unlimited" if q.concurrency_limit is None else q.concurrency_limit,
                "yes" if q.is_paused else "no",
                _time(q.last_polled),
                q.id,
            )
            for q in queues
        ],
        f"Work pool {pool!r} has no queues.",
    )


# -- concurrency limits ---------------------------------------------------------------------


@click.group("concurrency-limit", cls=ApiGroup)
def concurrency_limit_group() -> None:
    """Limit how many task runs with a tag may run at once."""


def _limit(tag: str) -> APIObject:
    try:
        return _client().read_concurrency_limit_by_tag(tag)
    except ObjectNotFound:
        raise click.ClickException(f"No concurrency limit on tag {tag!r}.") from None


@concurrency_limit_group.command("create")
@click.argument("tag")
@click.argument("limit", type=click.IntRange(0))
def concurrency_limit_create(tag: str, limit: int) -> None:
    """Allow at most LIMIT task runs tagged TAG to run at once (updates an existing limit)."""
    limit_id = _client().create_concurrency_limit(tag, limit)
    click.echo(f"Concurrency limit on tag {tag!r} set to {limit} ({limit_id}).")


@concurrency_limit_group.command("ls")
@_rows_option("Most limits shown.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Limits skipped.")
def concurrency_limit_ls(rows: int, offset: int) -> None:
    """List concurrency limits with their active slots."""
    limits = _client().read_concurrency_limits(limit=rows, offset=offset)
    _table(
        ("TAG", "LIMIT", "ACTIVE SLOTS", "ID"),
        [(x.tag, x.concurrency_limit, len(x.active_slots), x.id) for x in limits],
        "No concurrency limits.",
    )


@concurrency_limit_group.command("inspect")
@click.argument("tag")
def concurrency_limit_inspect(tag: str) -> None:
    """Show the limit on TAG with the task runs holding its slots."""
    _dump(_limit(tag))


@concurrency_limit_group.command("reset")
@click.argument("tag")
def concurrency_limit_reset(tag: str) -> None:
    """Free every slot of the limit on TAG."""
    _limit(tag)
    _client().reset_concurrency_limit_by_tag(tag)
    click.echo(f"Freed every slot of the concurrency limit on tag {tag!r}.")


@concurrency_limit_group.command("delete")
@click.argument("tag")
def concurrency_limit_delete(tag: str) -> None:
    """Delete the limit on TAG."""
    try:
        _client().delete_concurrency_limit_by_tag(tag)
    except ObjectNotFound:
        raise click.ClickException(f"No concurrency limit on tag {tag!r}.") from None
    click.echo(f"Deleted the concurrency limit on tag {tag!r}.")


# -- flow runs ------------------------------------------------------------------------------


@click.group("flow-run", cls=ApiGroup)
def flow_run_group() -> None:
    """List, inspect, cancel and delete flow runs, and print their logs."""


_STATE_TYPES = {t.value for t in StateType}


@flow_run_group.command("ls")
@click.option(
    "--state",
    "states",
    multiple=True,
    help="Only runs in this state: a type (RUNNING, failed ...) or a name (Late). "
    "Repeat for several.",
)
@_rows_option("Most runs shown (newest expected start first).")
def flow_run_ls(states: tuple[str, ...], rows: int) -> None:
    """List flow runs, newest first."""
    types = sorted({s.upper() for s in states if s.upper() in _STATE_TYPES})
    names = sorted({s for s in states if s.upper() not in _STATE_TYPES})
    criteria = None
    if types or names:
        state = {}
        if types:
            state["type"] = {"any_": types}
        if names:
            state["name"] = {"any_": names}
        criteria = {"state": dict(state, operator="or_") if types and names else state}
    client = _client()
    runs = client.read_flow_runs(
        flow_run_filter=criteria, sort="EXPECTED_START_TIME_DESC", limit=rows
    )
    flows = {}
    if runs:
        flow_ids = sorted({run.flow_id for run in runs})
        flows = {f.id: f.name for f in client.read_flows(flow_filter={"id": {"any_": flow_ids}})}
    _table(
        ("FLOW", "NAME", "STATE", "EXPECTED START", "ID"),
        [
            (
                flows.get(r.flow_id, "?"),
                r.name,
                r.state_name or "-",
                _time(r.expected_start_time),
                r.id,
            )
            for r in runs
        ],
        "No flow runs.",
    )


@flow_run_group.command("inspect")
@click.argument("flow_run_id")
def flow_run_inspect(flow_run_id: str) -> None:
    """Show a flow run with its current state."""
    try:
        _dump(_client().read_flow_run(_uuid(flow_run_id, "Flow run id")))
    except ObjectNotFound:
        raise click.ClickException(f"Flow run {flow_run_id} not found.") from None


@flow_run_group.command("cancel")
@click.argument("flow_run_id")
def flow_run_cancel(flow_run_id: str) -> None:
    """Cancel a flow run.

    A run that is executing becomes Cancelling until the agent or worker that started it
    stops its process, or, for a flow run started by hand, until the flow reaches its next
    task run and stops itself; a run not started yet is cancelled at once.
    """
    run_id = _uuid(flow_run_id, "Flow run id")
    try:
        result = _client().set_flow_run_state(
            run_id, Cancelling(message="Cancelled from the command line.")
        )
    except ObjectNotFound:
        raise click.ClickException(f"Flow run {flow_run_id} not found.") from None
    state = result.state
    if (
        result.status is SetStateStatus.ABORT
        or state is None
        or state.type not in (StateType.CANCELLING, StateType.CANCELLED)
    ):
        reason = result.details.get("reason") or "the server refused"
        raise click.ClickException(f"Flow run {run_id} was not cancelled: {reason}")
    if state.type is StateType.CANCELLED:
        click.echo(f"Flow run {run_id} is cancelled.")
    else:
        click.echo(
            f"Flow run {run_id} is cancelling: the agent or worker that started it stops it, "
            "or a flow started by hand stops at its next task run."
        )


@flow_run_group.command("delete")
@click.argument("flow_run_id")
def flow_run_delete(flow_run_id: str) -> None:
    """Delete a flow run with its states and task runs."""
    run_id = _uuid(flow_run_id, "Flow run id")
    try:
        _client().delete_flow_run(run_id)
    except ObjectNotFound:
        raise click.ClickException(f"Flow run {flow_run_id} not found.") from None
    click.echo(f"Deleted flow run {run_id}.")


# Log records fetched per request by ``flow-run logs`` (the API's largest page).
_LOG_PAGE = 200
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_LEVEL_NAMES = {value: name for name, value in _LEVELS.items()}


def _log_line(record: APIObject, source: str) -> str:
    """A record as Prefect's CLI prints one: UTC time to the millisecond, level, the run it
    came from, text."""
    when = record.timestamp
    if isinstance(when, str):
        when = datetime.datetime.fromisoformat(when)
    when = when.astimezone(UTC)
    level = _LEVEL_NAMES.get(record.level, f"Level {record.level}")
    stamp = f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond // 1000:03d}"
    return f"{stamp} | {level:<8}| {source} - {record.message}"


class _LogPrinter:
    """Prints a flow run's records, each named by its run: "Flow run 'name'", or "Task run
    'name'" for its tasks' (their names read once per page, for the tasks not yet seen)."""

    def __init__(self, client: OrionClient, flow_run: APIObject):
        self.client = client
        self.flow_run = f"Flow run {flow_run.name!r}"
        self.task_runs: dict[str, str] = {}

    def print(self, records: Sequence[APIObject]) -> None:
        unseen = sorted(
            {str(r.task_run_id) for r in records if r.task_run_id} - self.task_runs.keys()
        )
        if unseen:
            found = self.client.read_task_runs(
                task_run_filter={"id": {"any_": unseen}}, limit=len(unseen)
            )
            self.task_runs.update({str(t.id): f"Task run {t.name!r}" for t in found})
        for record in records:
            source = self.flow_run
            if record.task_run_id:
                task_run = str(record.task_run_id)
                source = self.task_runs.get(task_run, f"Task run {task_run}")
            click.echo(_log_line(record, source))


@flow_run_group.command("logs")
@click.argument("flow_run_id")
@click.option(
    "--level",
    type=click.Choice(list(_LEVELS), case_sensitive=False),
    help="Only records at this level or above.",
)
@click.option(
    "-n",
    "--tail",
    type=click.IntRange(1),
    help="Only the last N records (by default every record, oldest first).",
)
def flow_run_logs(flow_run_id: str, level: str | None, tail: int | None) -> None:
    """Print a flow run's logs (its tasks' included), oldest first."""
    run_id = _uuid(flow_run_id, "Flow run id")
    client = _client()
    try:
        printer = _LogPrinter(client, client.read_flow_run(run_id))
    except ObjectNotFound:
        raise click.ClickException(f"Flow run {flow_run_id} not found.") from None
    criteria: dict[str, Any] = {"flow_run_id": {"any_": [run_id]}}
    if level:
        criteria["level"] = {"ge_": _LEVELS[level.upper()]}
    if tail:
        records: list[APIObject] = []
        while len(records) < tail:
            page = client.read_logs(
                criteria,
                limit=min(_LOG_PAGE, tail - len(records)),
                offset=len(records),
                sort="TIMESTAMP_DESC",
            )
            records.extend(page)
            if len(page) < _LOG_PAGE:
                break
        printer.print(records[::-1])
        return
    offset = 0
    while True:
        page = client.read_logs(criteria, limit=_LOG_PAGE, offset=offset, sort="TIMESTAMP_ASC")
        printer.print(page)
        if len(page) < _LOG_PAGE:
            break
        offset += len(page)


# -- images ---------------------------------------------------------------------------------


@click.group("image")
def image_group() -> None:
    """Build the Docker image flow runs start in (docker-container blocks)."""


@image_group.command("build")
@click.option(
    "-t", "--tag", help="The image's tag [orion-flows:latest, docker-container's default image]."
)
@click.option("--base", help="The base image, with Python [python:3.X-slim, this Python's 3.X].")
@click.option(
    "-r",
    "--requirements",
    type=click.Path(exists=True, dir_okay=False),
    help="The flow's requirements file: the packages it names are copied in as installed here.",
)
@click.option(
    "-p", "--package", "packages", multiple=True, help="Another installed package to copy in."
)
def image_build(
    tag: str | None, base: str | None, requirements: str | None, packages: tuple[str, ...]
) -> None:
    """Build the image: the base, this client and the flow's requirements, copied from this
    Python environment (nothing is downloaded; see client.infrastructure.image)."""
    from client.infrastructure.base import InfrastructureError
    from client.infrastructure.docker import DEFAULT_IMAGE
    from client.infrastructure.image import build_image

    try:
        built = build_image(
            tag or DEFAULT_IMAGE, base=base, packages=packages, requirements=requirements
        )
    except (ValueError, InfrastructureError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Built image {built.tag} ({built.id}) with the client and "
        f"{len(built.distributions)} package(s): {', '.join(built.distributions)}."
    )


# -- agents ---------------------------------------------------------------------------------


@click.group("agent", cls=ApiGroup)
def agent_group() -> None:
    """Run flow runs from work queues or a work pool."""


@agent_group.command("start")
@click.option(
    "-q",
    "--work-queue",
    "queues",
    multiple=True,
    help="A work queue to take runs from (created if missing; with --pool, a queue of the "
    "pool, which must exist); repeat for several.",
)
@click.option(
    "-p",
    "--pool",
    help="Take runs from this work pool, as its worker: from the queues given with -q, or "
    "all of its queues. The pool must exist and be of type process.",
)
@click.option("-l", "--limit", type=click.IntRange(1), help="Most flow runs going at once.")
@click.option("-n", "--name", help="The agent's name in the API [default: agent-<id>].")
@click.option("--run-once", is_flag=True, help="Poll once, wait for those runs, then exit.")
@click.option(
    "--prefetch-seconds",
    type=click.FloatRange(0),
    help="Take runs due this soon [default: ORION_AGENT_PREFETCH_SECONDS or 10].",
)
def agent_start(
    queues: tuple[str, ...],
    pool: str | None,
    limit: int | None,
    name: str | None,
    run_once: bool,
    prefetch_seconds: float | None,
) -> None:
    """Poll work queues (or a work pool) and run their flow runs on their infrastructure,
    until SIGTERM.

    With --run-once, exit status 1 when that poll failed (the server is down, say). Exit
    status 1 at once for a pool that does not exist, is not of type process, or lacks a
    queue named with -q.
    """
    import dataclasses
    import logging

    from client.agent.agent import Agent, AgentSettings, AgentStartError

    if not queues and pool is None:
        raise click.UsageError("Give a work queue (-q) or a work pool (--pool).")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request
    try:
        settings = AgentSettings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if prefetch_seconds is not None:
        settings = dataclasses.replace(settings, prefetch_seconds=prefetch_seconds)
    client = (
        _client() if isinstance(click.get_current_context().find_root().obj, OrionClient) else None
    )
    try:
        Agent(queues, pool=pool, limit=limit, name=name, client=client, settings=settings).start(
            run_once=run_once
        )
    except AgentStartError as error:
        raise click.ClickException(str(error)) from None
    except OrionClientError as error:
        raise click.ClickException(f"The agent's poll failed: {error}") from None


# -- deployments ----------------------------------------------------------------------------


class _DeploymentGroup(ApiGroup):
    """An ApiGroup whose errors stay on one line (a 422's field messages joined by "; ")."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:
            lines = [line.strip() for line in error.message.splitlines() if line.strip()]
            # click types message as Final; rewriting it keeps the error's class and exit code.
            error.message = "; ".join(lines)  # type: ignore[misc]
            raise


@click.group("deployment", cls=_DeploymentGroup)
def deployment_group() -> None:
    """Create, list, run, pause, backfill and delete deployments (NAME: flow/deployment)."""


def _param(values: Iterable[str], schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``k=v`` options as a dict; each value is JSON if it parses (``n=3``, ``xs=[1,2]``),
    else the string itself (``day=monday``). A parameter that ``schema`` (a
    ``parameter_openapi_schema``) types as a string keeps the text as typed (``v=1.0``)."""
    properties = (schema or {}).get("properties") or {}
    parameters: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.ClickException(f"Parameter {item!r} is not KEY=VALUE.")
        if (properties.get(key) or {}).get("type") == "string":
            parameters[key] = raw
            continue
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    return parameters


def _nullable_properties(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    """JSON Schema ``properties``, except that a property the schema does not require may be
    null: pydantic v1 (Prefect 2.7's deployments) writes ``Optional[str] = None`` as
    ``{"type": "string"}``."""
    if not validator.is_type(instance, "object"):
        return
    required = set(schema.get("required") or ())
    for name, subschema in properties.items():
        if name in instance and not (instance[name] is None and name not in required):
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)


def _check_parameters(deployment: APIObject, overrides: Mapping[str, Any]) -> None:
    """Refuse, naming the parameter, ``overrides`` that the deployment's
    ``parameter_openapi_schema`` does not name, or that with its default parameters do not
    match the schema; a deployment without a schema (or without properties) takes anything."""
    schema = deployment.parameter_openapi_schema or {}
    properties = schema.get("properties")
    if not properties:
        return
    unknown = sorted(set(overrides) - set(properties))
    if unknown:
        raise click.ClickException(
            f"Deployment has no parameter {', '.join(map(repr, unknown))}; its parameters: "
            f"{', '.join(sorted(properties))}."
        )
    from jsonschema import Draft7Validator, validators

    checker = validators.extend(Draft7Validator, {"properties": _nullable_properties})(schema)
    parameters = {**(deployment.parameters or {}), **overrides}
    errors = sorted(checker.iter_errors(parameters), key=lambda e: list(map(str, e.path)))
    if not errors:
        return
    error = errors[0]
    if error.validator == "required" and not error.path:
        missing = sorted(set(error.validator_value) - set(parameters))
        raise click.ClickException(
            f"Parameter {missing[0]!r} is required (give -p {missing[0]}=VALUE)."
        )
    name, *inner = error.path
    where = "".join(f"[{part!r}]" for part in inner)
    raise click.ClickException(
        f"Parameter {name!r}{' at ' + where if where else ''}: {error.message}."
    )


def _deployment(name: str) -> APIObject:
    """The deployment named ``flow/deployment``; a clear error if there is none."""
    flow_name, sep, deployment_name = name.partition("/")
    if not sep or not flow_name or not deployment_name or "/" in deployment_name:
        raise click.ClickException(f"Deployment name {name!r} is not FLOW/DEPLOYMENT.")
    try:
        return _client().read_deployment_by_name(name)
    except ObjectNotFound:
        raise click.ClickException(f"Deployment {name!r} not found.") from None


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: str) -> datetime.timedelta:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h`` or ``1d``."""
    text = value.strip().lower()
    factor = _DURATION_UNITS.get(text[-1:], None)
    number = text[:-1] if factor else text
    try:
        seconds = float(number) * (factor or 1)
    except ValueError:
        raise click.ClickException(
            f"Duration {value!r} is not a number of seconds or like 30s, 15m, 2h, 1d."
        ) from None
    if seconds < 0:
        raise click.ClickException(f"Duration {value!r} is negative.")
    return datetime.timedelta(seconds=seconds)


def _when(value: str, label: str, end_of_day: bool = False) -> datetime.datetime:
    """An ISO date or datetime as an aware datetime (UTC when no offset is given). A date
    alone is its first instant, or with ``end_of_day`` its last (the microsecond before the
    next day), so a range ending on a date includes that whole day."""
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise click.ClickException(
            f"{label} {value!r} is not an ISO date or time (2026-01-31T08:00:00+01:00)."
        ) from None
    if end_of_day and _is_date(value):
        moment += datetime.timedelta(days=1, microseconds=-1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_date(value: str) -> bool:
    try:
        datetime.date.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _describe_schedule(schedule: Mapping[str, Any] | None) -> str:
    if not schedule:
        return "-"
    zone = schedule.get("timezone") or "UTC"
    if "interval" in schedule:
        return f"every {datetime.timedelta(seconds=schedule['interval'])} ({zone})"
    if "cron" in schedule:
        return f"cron {schedule['cron']} ({zone})"
    return f"rrule {schedule['rrule']} ({zone})"


@deployment_group.command("create")
@click.argument("entrypoint")
@click.option("-n", "--name", required=True, help="The deployment's name.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A default parameter (VALUE is JSON or a string); repeat for several.",
)
@click.option("--cron", help="Run on this cron schedule (e.g. '0 2 * * *').")
@click.option(
    "--interval", type=click.FloatRange(min=0, min_open=True), help="Run every this many seconds."
)
@click.option("--rrule", help="Run on this iCalendar RRULE (e.g. 'FREQ=WEEKLY;BYDAY=MO').")
@click.option("--timezone", help="Time zone of the schedule (e.g. Europe/Berlin) [UTC].")
@click.option("--anchor-date", help="Interval schedules: the first slot (ISO datetime).")
@click.option("-t", "--tag", "tags", multiple=True, help="A tag of the deployment's runs.")
@click.option(
    "-q",
    "--work-queue",
    help="The work queue agents take its runs from (with --pool: a queue of that pool, "
    "created if missing [the pool's default queue]).",
)
@click.option(
    "--pool",
    help="The work pool whose agents and workers run it (orion agent start --pool).",
)
@click.option("-v", "--version", help="The flow's version.")
@click.option("-d", "--description", help="What the deployment does [the flow's docstring].")
@click.option(
    "--storage",
    help="Upload the flow's folder to this fsspec URL (s3://..., "
    "file:///..., or a local path) and run it from there.",
)
@click.option("--only-file", is_flag=True, help="With --storage: upload only the flow's file.")
@click.option(
    "-sb",
    "--storage-block",
    help="Upload the flow's folder once through this saved "
    "storage block (SLUG/NAME[/FOLDER], e.g. "
    "local-file-system/shared); agents download it.",
)
@click.option(
    "-ib",
    "--infra-block",
    help="Run the flow runs on this saved infrastructure block (SLUG/NAME, e.g. process/default).",
)
@click.option(
    "-i",
    "--infra",
    help="Run the flow runs on a new block of this infrastructure type, with its defaults "
    "(process, docker-container, kubernetes-job).",
)
@click.option(
    "--override",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="An infrastructure override (e.g. image=flows:2, env.FOO=bar); repeat for several.",
)
@click.option("--paused", is_flag=True, help="Create the deployment with its schedule paused.")
def deployment_create(
    entrypoint: str,
    name: str,
    params: tuple[str, ...],
    cron: str | None,
    interval: float | None,
    rrule: str | None,
    timezone: str | None,
    anchor_date: str | None,
    tags: tuple[str, ...],
    work_queue: str | None,
    pool: str | None,
    version: str | None,
    description: str | None,
    storage: str | None,
    only_file: bool,
    storage_block: str | None,
    infra_block: str | None,
    infra: str | None,
    overrides: tuple[str, ...],
    paused: bool,
) -> None:
    """Deploy the flow at ENTRYPOINT (path/to/file.py:flow_function) as NAME.

    Re-running it with the same flow and name updates the deployment. Without --storage the
    deployment runs the code where it is (agents must see the same path).
    """
    from client.agent.run import FlowLoadError
    from client.sdk.deployments import load_entrypoint, upload_code
    from client.sdk.validation import parameter_schema

    if sum(x is not None for x in (cron, interval, rrule)) > 1:
        raise click.ClickException("Give at most one of --cron, --interval and --rrule.")
    if (timezone or anchor_date) and not (cron or interval or rrule):
        raise click.ClickException("--timezone and --anchor-date need a schedule.")
    if anchor_date and not interval:
        raise click.ClickException("--anchor-date is for --interval schedules.")
    if only_file and not storage:
        raise click.ClickException("--only-file needs --storage.")
    if storage and storage_block:
        raise click.ClickException("Give --storage or --storage-block, not both.")
    try:
        flow, folder, relative = load_entrypoint(entrypoint)
    except FlowLoadError as error:
        raise click.ClickException(str(error)) from None
    schedule: dict[str, Any] | None = None
    if cron:
        schedule = {"cron": cron}
    elif interval:
        schedule = {"interval": interval}
        if anchor_date:
            schedule["anchor_date"] = _when(anchor_date, "Anchor date").isoformat()
    elif rrule:
        schedule = {"rrule": rrule}
    if schedule is not None and timezone:
        schedule["timezone"] = timezone
    path: str | None = folder
    if storage:
        try:
            count = upload_code(folder, relative, storage, whole_folder=not only_file)
        except Exception as error:  # fsspec raises what its backend raises
            raise click.ClickException(
                f"Could not upload the flow's code to {storage!r}: {type(error).__name__}: {error}"
            ) from None
        click.echo(f"Uploaded {count} file(s) to {storage}.")
        path = storage
    client = _client()
    blocks: dict[str, str | None] = {}
    if storage_block:
        from client.sdk.deployments import upload_through_block

        try:
            blocks["storage_document_id"], path, count = upload_through_block(
                storage_block, folder, client
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Uploaded {count} file(s) through block {storage_block}.")
    infra_overrides: dict[str, Any] = {}
    if infra_block or infra or overrides:
        from client.sdk.deployments import parse_overrides, save_infrastructure

        try:
            infra_overrides = parse_overrides(overrides)
            blocks["infrastructure_document_id"] = save_infrastructure(
                infra, infra_block, infra_overrides, client
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    flow_id = client.create_flow_from_name(flow.name)
    fields = {
        "schedule": schedule,
        "paused": paused,
        "parameters": _param(params),
        "tags": list(tags),
        "work_queue_name": work_queue,
        "parameter_openapi_schema": parameter_schema(flow.fn),
        "path": path,
        "entrypoint": relative,
        "version": version or flow.version,
        "description": description or flow.description,
        "infra_overrides": infra_overrides,
        **blocks,
    }
    if pool is not None:
        fields["work_pool_name"] = pool
    try:
        deployment = client.create_deployment(flow_id, name, **fields)
    except ObjectNotFound as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Deployment '{flow.name}/{deployment.name}' ({deployment.id}) is ready"
        + (f"; schedule: {_describe_schedule(schedule)}." if schedule else ".")
    )


deployment_group.add_command(deployment_create, "build")


@deployment_group.command("ls")
@click.option("--flow", "flow_name", help="Only deployments of this flow.")
@_rows_option("Most deployments shown.", default=50)
def deployment_ls(flow_name: str | None, rows: int) -> None:
    """List deployments by name."""
    client = _client()
    flow_filter = {"name": {"any_": [flow_name]}} if flow_name else None
    deployments = client.read_deployments(flow_filter=flow_filter, limit=rows)
    flows = {}
    if deployments:
        flow_ids = sorted({d.flow_id for d in deployments})
        flows = {f.id: f.name for f in client.read_flows(flow_filter={"id": {"any_": flow_ids}})}
    named = sorted((f"{flows.get(d.flow_id, '?')}/{d.name}", d) for d in deployments)
    _table(
        ("NAME", "SCHEDULE", "ACTIVE", "WORK POOL", "WORK QUEUE", "ID"),
        [
            (
                full,
                _describe_schedule(d.schedule),
                "yes" if d.is_schedule_active else "no",
                d.get("work_pool_name") or "-",
                d.work_queue_name or "-",
                d.id,
            )
            for full, d in named
        ],
        "No deployments.",
    )


@deployment_group.command("inspect")
@click.argument("name")
def deployment_inspect(name: str) -> None:
    """Show a deployment (FLOW/DEPLOYMENT) as JSON."""
    _dump(_deployment(name))


@deployment_group.command("run")
@click.argument("name")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter over the deployment's (VALUE is JSON or a string).",
)
@click.option("--start-in", help="Schedule the run this much later (90, 30s, 15m, 2h, 1d).")
def deployment_run(name: str, params: tuple[str, ...], start_in: str | None) -> None:
    """Create a flow run of NAME, scheduled now (or --start-in later) for its agents.

    The parameters, over the deployment's, are checked against its parameter schema first:
    an unknown name or a value of the wrong type is refused and no run is created.
    """
    from client.api.states import Scheduled

    delay = _duration(start_in) if start_in else datetime.timedelta(0)
    deployment = _deployment(name)
    parameters = _param(params, deployment.parameter_openapi_schema)
    _check_parameters(deployment, parameters)
    when = datetime.datetime.now(UTC) + delay
    run = _client().create_flow_run_from_deployment(
        deployment.id, state=Scheduled(scheduled_time=when), parameters=parameters
    )
    click.echo(
        f"Created flow run {run.name!r} ({run.id}) of {name}, scheduled for {_time(when)} UTC."
    )


@deployment_group.command("pause-schedule")
@click.argument("name")
def deployment_pause(name: str) -> None:
    """Pause NAME's schedule: its future auto-scheduled runs are deleted."""
    deployment = _deployment(name)
    _client().set_deployment_schedule_active(deployment.id, False)
    click.echo(f"Paused the schedule of {name}.")


@deployment_group.command("resume-schedule")
@click.argument("name")
def deployment_resume(name: str) -> None:
    """Resume NAME's schedule: its next runs are scheduled at once."""
    deployment = _deployment(name)
    _client().set_deployment_schedule_active(deployment.id, True)
    click.echo(f"Resumed the schedule of {name}.")


# Runs scheduled per request of a backfill (each request is one step of the progress bar).
BACKFILL_CHUNK = 200


@deployment_group.command("backfill")
@click.argument("name")
@click.option("--start", required=True, help="First slot to schedule (ISO; UTC if no offset).")
@click.option(
    "--end",
    required=True,
    help="Last slot to schedule (ISO; UTC if no offset; a date alone includes that whole day).",
)
@click.option("--dry-run", is_flag=True, help="Only count and show the slots; write nothing.")
def deployment_backfill(name: str, start: str, end: str, dry_run: bool) -> None:
    """Schedule every slot of NAME's schedule from --start to --end, past or future.

    Slots whose run exists already are left alone, so a backfill can be re-run.
    """
    start_time, end_time = _when(start, "Start"), _when(end, "End", end_of_day=True)
    if end_time < start_time:
        raise click.ClickException("--end is before --start.")
    deployment = _deployment(name)
    if not deployment.schedule:
        raise click.ClickException(f"Deployment {name!r} has no schedule.")
    client = _client()
    span = max((end_time - start_time).total_seconds(), 1e-6)
    total, created, times = 0, 0, []
    cursor = start_time
    label = "Checking" if dry_run else "Scheduling"
    with click.progressbar(length=1000, label=label, file=sys.stderr, show_eta=False) as bar:
        done = 0
        while cursor <= end_time:
            result = client.schedule_deployment(
                deployment.id, cursor, end_time, max_runs=BACKFILL_CHUNK, dry_run=dry_run
            )
            slots = [datetime.datetime.fromisoformat(t) for t in result["scheduled_times"]]
            total += len(slots)
            created += result["created"]
            if dry_run:
                times.extend(slots)
            if len(slots) < BACKFILL_CHUNK:
                break
            cursor = slots[-1] + datetime.timedelta(microseconds=1)
            step = min(1000, int(1000 * (cursor - start_time).total_seconds() / span))
            bar.update(step - done)
            done = step
        bar.update(1000 - done)
    if dry_run:
        for moment in times[:20]:
            click.echo(f"  {_time(moment)} UTC")
        if len(times) > 20:
            click.echo(f"  ... and {len(times) - 20} more")
        click.echo(
            f"Dry run: {total} slot(s) of {name}, {created} of them new; nothing was written."
        )
    else:
        click.echo(
            f"Backfilled {name}: {total} slot(s), {created} new run(s), "
            f"{total - created} existed already."
        )


@deployment_group.command("delete")
@click.argument("name")
def deployment_delete(name: str) -> None:
    """Delete NAME and its future scheduled runs (runs that started are kept)."""
    deployment = _deployment(name)
    _client().delete_deployment(deployment.id)
    click.echo(f"Deleted deployment {name}.")


# -- variables ------------------------------------------------------------------------------


@click.group("variable", cls=ApiGroup)
def variable_group() -> None:
    """Set, read, list and delete variables: named text values flows read at run time."""


def _variable(name: str) -> APIObject:
    variable = _client().read_variable_by_name(name)
    if variable is None:
        raise click.ClickException(f"Variable {name!r} not found.")
    return variable


@variable_group.command("ls")
@_rows_option("Most variables shown (by name).")
def variable_ls(rows: int) -> None:
    """List variables by name."""
    _table(
        ("NAME", "VALUE", "TAGS", "UPDATED"),
        [
            (v.name, _excerpt(v.value), ",".join(v.tags) or "-", _time(v.updated))
            for v in _client().read_variables(limit=rows)
        ],
        "No variables.",
    )


def _excerpt(text: str, most: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"


@variable_group.command("get")
@click.argument("name")
def variable_get(name: str) -> None:
    """Print the value of the variable NAME."""
    click.echo(_variable(name).value)


@variable_group.command("inspect")
@click.argument("name")
def variable_inspect(name: str) -> None:
    """Show the variable NAME as JSON."""
    _dump(_variable(name))


@variable_group.command("set")
@click.argument("name")
@click.argument("value")
@click.option("-t", "--tag", "tags", multiple=True, help="A tag (repeat for several).")
@click.option("--overwrite", is_flag=True, help="Replace the value if NAME exists already.")
def variable_set(name: str, value: str, tags: tuple[str, ...], overwrite: bool) -> None:
    """Create the variable NAME holding VALUE (with --overwrite, or change it)."""
    client = _client()
    try:
        client.create_variable(name, value, tags)
    except ObjectAlreadyExists:
        if not overwrite:
            raise click.ClickException(
                f"Variable {name!r} exists already; add --overwrite to replace its value."
            ) from None
        client.update_variable_by_name(name, value=value, tags=tags)
        click.echo(f"Replaced the value of variable {name!r}.")
        return
    click.echo(f"Set variable {name!r}.")


@variable_group.command("delete")
@click.argument("name")
def variable_delete(name: str) -> None:
    """Delete the variable NAME."""
    _variable(name)
    _client().delete_variable_by_name(name)
    click.echo(f"Deleted variable {name!r}.")


# -- global concurrency limits ----------------------------------------------------------------


@click.group("global-concurrency-limit", cls=ApiGroup)
def global_limit_group() -> None:
    """Create, list, change, enable, disable and delete global concurrency limits: named
    pools of slots flows take with concurrency() and rate_limit()."""


def _global_limit(name: str, call: Callable[..., Any] | None = None, **changes: Any) -> Any:
    """``call(name, **changes)`` (a client method; by default the read of the limit); an
    unknown NAME is one clear error."""
    call = call or _client().read_global_concurrency_limit
    try:
        return call(name, **changes)
    except ObjectNotFound:
        raise click.ClickException(f"Global concurrency limit {name!r} not found.") from None


@global_limit_group.command("ls")
def global_limit_ls() -> None:
    """List global concurrency limits by name, with their slots in use."""
    _table(
        ("NAME", "ACTIVE", "SLOTS IN USE", "LIMIT", "SLOT DECAY/S", "ID"),
        [
            (
                g.name,
                "yes" if g.active else "no",
                g.active_slots,
                g.limit,
                g.slot_decay_per_second,
                g.id,
            )
            for g in _client().read_global_concurrency_limits()
        ],
        "No global concurrency limits.",
    )


@global_limit_group.command("inspect")
@click.argument("name")
def global_limit_inspect(name: str) -> None:
    """Show the global limit NAME as JSON (slots after decay)."""
    _dump(_global_limit(name))


@global_limit_group.command("create")
@click.argument("name")
@click.option("-l", "--limit", type=click.IntRange(0), required=True, help="Slots in the pool.")
@click.option(
    "--slot-decay-per-second",
    type=click.FloatRange(0),
    default=0.0,
    help="Taken slots free themselves at this rate (a rate limit); 0: given back by the taker.",
)
@click.option("--disable", is_flag=True, help="Create it inactive (it limits nothing).")
def global_limit_create(name: str, limit: int, slot_decay_per_second: float, disable: bool) -> None:
    """Create the global limit NAME."""
    try:
        _client().create_global_concurrency_limit(
            name, limit, slot_decay_per_second=slot_decay_per_second, active=not disable
        )
    except ObjectAlreadyExists:
        raise click.ClickException(f"Global concurrency limit {name!r} exists already.") from None
    click.echo(f"Created global concurrency limit {name!r} with {limit} slots.")


@global_limit_group.command("update")
@click.argument("name")
@click.option("-l", "--limit", type=click.IntRange(0), help="Slots in the pool.")
@click.option("--active-slots", type=click.IntRange(0), help="Slots taken now (0 frees them).")
@click.option("--slot-decay-per-second", type=click.FloatRange(0), help="Rate slots free at.")
def global_limit_update(
    name: str, limit: int | None, active_slots: int | None, slot_decay_per_second: float | None
) -> None:
    """Change the global limit NAME."""
    changes = {
        key: value
        for key, value in (
            ("limit", limit),
            ("active_slots", active_slots),
            ("slot_decay_per_second", slot_decay_per_second),
        )
        if value is not None
    }
    if not changes:
        raise click.ClickException(
            "Nothing to change: give --limit, --active-slots or --slot-decay-per-second."
        )
    _global_limit(name, _client().update_global_concurrency_limit, **changes)
    click.echo(f"Updated global concurrency limit {name!r}.")


@global_limit_group.command("enable")
@click.argument("name")
def global_limit_enable(name: str) -> None:
    """Make the global limit NAME active."""
    _global_limit(name, _client().update_global_concurrency_limit, active=True)
    click.echo(f"Enabled global concurrency limit {name!r}.")


@global_limit_group.command("disable")
@click.argument("name")
def global_limit_disable(name: str) -> None:
    """Make the global limit NAME inactive: it limits nothing until enabled."""
    _global_limit(name, _client().update_global_concurrency_limit, active=False)
    click.echo(f"Disabled global concurrency limit {name!r}.")


@global_limit_group.command("delete")
@click.argument("name")
def global_limit_delete(name: str) -> None:
    """Delete the global limit NAME."""
    _global_limit(name, _client().delete_global_concurrency_limit)
    click.echo(f"Deleted global concurrency limit {name!r}.")
