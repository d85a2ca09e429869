"""``orion work-queue``, ``concurrency-limit``, ``flow-run`` and ``agent``: API commands.

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
import uuid

import click

from client import OrionClient, get_client
from client.exceptions import ObjectNotFound, OrionClientError
from client.states import Cancelling, SetStateStatus, StateType

UTC = datetime.timezone.utc
# Rows `ls` commands show unless told otherwise.
DEFAULT_ROWS = 15


class ApiGroup(click.Group):
    """A command group whose client errors become one ``Error:`` line and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OrionClientError as error:
            raise click.ClickException(str(error) or type(error).__name__) from None


def _client():
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


def _uuid(value, label):
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise click.ClickException(f"{label} {value!r} is not a valid id.") from None


def _time(value):
    """A datetime (or ISO string) as ``YYYY-MM-DD HH:MM:SS`` UTC; "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers, rows, empty):
    """Print ``rows`` under ``headers`` in aligned columns, or ``empty`` when there are none."""
    if not rows:
        click.echo(empty)
        return
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _dump(document):
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


# -- work queues ----------------------------------------------------------------------------

@click.group("work-queue", cls=ApiGroup)
def work_queue_group():
    """Create, inspect, pause and limit work queues."""


def _queue(name_or_id):
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
@click.option("-l", "--limit", type=click.IntRange(0),
              help="Most runs PENDING or RUNNING at once.")
@click.option("-t", "--tag", "tags", multiple=True,
              help="Match runs by tag instead of by queue name (deprecated Orion 2.0 queues).")
@click.option("-d", "--description", help="What the queue is for.")
def work_queue_create(name, limit, tags, description):
    """Create a work queue called NAME."""
    queue = _client().create_work_queue(name, description=description, concurrency_limit=limit,
                                        tags=tags or None)
    click.echo(f"Created work queue {queue.name!r} ({queue.id}).")


@work_queue_group.command("ls")
@click.option("--match", "prefix", help="Only queues whose name starts with this.")
def work_queue_ls(prefix):
    """List work queues."""
    criteria = {"name": {"startswith_": [prefix]}} if prefix else None
    queues = _client().read_work_queues(criteria)
    rows = [(q.name, "unlimited" if q.concurrency_limit is None else q.concurrency_limit,
             "yes" if q.is_paused else "no", _time(q.last_polled), q.id) for q in queues]
    _table(("NAME", "CONCURRENCY LIMIT", "PAUSED", "LAST POLLED", "ID"), rows,
           "No work queues.")


@work_queue_group.command("inspect")
@click.argument("name_or_id")
def work_queue_inspect(name_or_id):
    """Show a work queue (by name or id) and its health."""
    queue = _queue(name_or_id)
    _dump(dict(queue, status=_client().read_work_queue_status(queue.id)))


@work_queue_group.command("pause")
@click.argument("name_or_id")
def work_queue_pause(name_or_id):
    """Pause a work queue: agents get no runs from it."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, is_paused=True)
    click.echo(f"Paused work queue {queue.name!r}.")


@work_queue_group.command("resume")
@click.argument("name_or_id")
def work_queue_resume(name_or_id):
    """Resume a paused work queue."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, is_paused=False)
    click.echo(f"Resumed work queue {queue.name!r}.")


@work_queue_group.command("set-concurrency-limit")
@click.argument("name_or_id")
@click.argument("limit", type=click.IntRange(0))
def work_queue_set_limit(name_or_id, limit):
    """Allow at most LIMIT runs of the queue PENDING or RUNNING at once."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, concurrency_limit=limit)
    click.echo(f"Work queue {queue.name!r} now runs at most {limit} flow runs at once.")


@work_queue_group.command("clear-concurrency-limit")
@click.argument("name_or_id")
def work_queue_clear_limit(name_or_id):
    """Remove a work queue's concurrency limit."""
    queue = _queue(name_or_id)
    _client().update_work_queue(queue.id, concurrency_limit=None)
    click.echo(f"Work queue {queue.name!r} has no concurrency limit now.")


@work_queue_group.command("preview")
@click.argument("name_or_id")
@click.option("--hours", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Show runs due within this many hours.")
@click.option("--limit", "rows", type=click.IntRange(1), default=10, show_default=True,
              help="Most runs shown.")
def work_queue_preview(name_or_id, hours, rows):
    """Show the queue's scheduled runs due in the next hours, earliest first.

    Read with a flow run filter, so the look is not recorded as a poll (the queue's health is
    unchanged); agents get these runs as the queue's pause and concurrency limit allow.
    """
    queue = _queue(name_or_id)
    until = datetime.datetime.now(UTC) + datetime.timedelta(hours=hours)
    criteria = {"state": {"type": {"any_": [StateType.SCHEDULED.value]}},
                "next_scheduled_start_time": {"before_": until.isoformat()}}
    if queue.filter is None:
        criteria["work_queue_name"] = {"any_": [queue.name]}
    else:
        if queue.filter.get("tags"):
            criteria["tags"] = {"all_": queue.filter["tags"]}
        if queue.filter.get("deployment_ids"):
            criteria["deployment_id"] = {"any_": queue.filter["deployment_ids"]}
    runs = _client().read_flow_runs(flow_run_filter=criteria,
                                    sort="NEXT_SCHEDULED_START_TIME_ASC", limit=rows)
    _table(("SCHEDULED FOR", "NAME", "STATE", "ID"),
           [(_time(r.next_scheduled_start_time), r.name, r.state_name, r.id) for r in runs],
           f"No runs due in the next {hours:g} hour(s).")
    if queue.is_paused:
        click.echo(f"Work queue {queue.name!r} is paused: agents get none of these runs.")


@work_queue_group.command("delete")
@click.argument("name_or_id")
def work_queue_delete(name_or_id):
    """Delete a work queue (its flow runs are kept)."""
    queue = _queue(name_or_id)
    _client().delete_work_queue_by_id(queue.id)
    click.echo(f"Deleted work queue {queue.name!r}.")


# -- concurrency limits ---------------------------------------------------------------------

@click.group("concurrency-limit", cls=ApiGroup)
def concurrency_limit_group():
    """Limit how many task runs with a tag may run at once."""


def _limit(tag):
    try:
        return _client().read_concurrency_limit_by_tag(tag)
    except ObjectNotFound:
        raise click.ClickException(f"No concurrency limit on tag {tag!r}.") from None


@concurrency_limit_group.command("create")
@click.argument("tag")
@click.argument("limit", type=click.IntRange(0))
def concurrency_limit_create(tag, limit):
    """Allow at most LIMIT task runs tagged TAG to run at once (updates an existing limit)."""
    limit_id = _client().create_concurrency_limit(tag, limit)
    click.echo(f"Concurrency limit on tag {tag!r} set to {limit} ({limit_id}).")


@concurrency_limit_group.command("ls")
@click.option("--limit", "rows", type=click.IntRange(1), default=DEFAULT_ROWS, show_default=True,
              help="Most limits shown.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Limits skipped.")
def concurrency_limit_ls(rows, offset):
    """List concurrency limits with their active slots."""
    limits = _client().read_concurrency_limits(limit=rows, offset=offset)
    _table(("TAG", "LIMIT", "ACTIVE SLOTS", "ID"),
           [(x.tag, x.concurrency_limit, len(x.active_slots), x.id) for x in limits],
           "No concurrency limits.")


@concurrency_limit_group.command("inspect")
@click.argument("tag")
def concurrency_limit_inspect(tag):
    """Show the limit on TAG with the task runs holding its slots."""
    _dump(_limit(tag))


@concurrency_limit_group.command("reset")
@click.argument("tag")
def concurrency_limit_reset(tag):
    """Free every slot of the limit on TAG."""
    _limit(tag)
    _client().reset_concurrency_limit_by_tag(tag)
    click.echo(f"Freed every slot of the concurrency limit on tag {tag!r}.")


@concurrency_limit_group.command("delete")
@click.argument("tag")
def concurrency_limit_delete(tag):
    """Delete the limit on TAG."""
    try:
        _client().delete_concurrency_limit_by_tag(tag)
    except ObjectNotFound:
        raise click.ClickException(f"No concurrency limit on tag {tag!r}.") from None
    click.echo(f"Deleted the concurrency limit on tag {tag!r}.")


# -- flow runs ------------------------------------------------------------------------------

@click.group("flow-run", cls=ApiGroup)
def flow_run_group():
    """List, inspect, cancel and delete flow runs."""


_STATE_TYPES = {t.value for t in StateType}


@flow_run_group.command("ls")
@click.option("--state", "states", multiple=True,
              help="Only runs in this state: a type (RUNNING, failed ...) or a name (Late). "
                   "Repeat for several.")
@click.option("--limit", "rows", type=click.IntRange(1), default=DEFAULT_ROWS, show_default=True,
              help="Most runs shown (newest expected start first).")
def flow_run_ls(states, rows):
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
    runs = client.read_flow_runs(flow_run_filter=criteria, sort="EXPECTED_START_TIME_DESC",
                                 limit=rows)
    flows = {}
    if runs:
        flow_ids = sorted({run.flow_id for run in runs})
        flows = {f.id: f.name for f in client.read_flows(flow_filter={"id": {"any_": flow_ids}})}
    _table(("FLOW", "NAME", "STATE", "EXPECTED START", "ID"),
           [(flows.get(r.flow_id, "?"), r.name, r.state_name or "-",
             _time(r.expected_start_time), r.id) for r in runs],
           "No flow runs.")


@flow_run_group.command("inspect")
@click.argument("flow_run_id")
def flow_run_inspect(flow_run_id):
    """Show a flow run with its current state."""
    try:
        _dump(_client().read_flow_run(_uuid(flow_run_id, "Flow run id")))
    except ObjectNotFound:
        raise click.ClickException(f"Flow run {flow_run_id} not found.") from None


@flow_run_group.command("cancel")
@click.argument("flow_run_id")
def flow_run_cancel(flow_run_id):
    """Cancel a flow run.

    A run that is executing becomes Cancelling until its agent stops the process and reports
    it Cancelled; a run not started yet is cancelled at once.
    """
    run_id = _uuid(flow_run_id, "Flow run id")
    try:
        result = _client().set_flow_run_state(
            run_id, Cancelling(message="Cancelled from the command line."))
    except ObjectNotFound:
        raise click.ClickException(f"Flow run {flow_run_id} not found.") from None
    state = result.state
    if result.status is SetStateStatus.ABORT or state is None or state.type not in (
            StateType.CANCELLING, StateType.CANCELLED):
        reason = result.details.get("reason") or "the server refused"
        raise click.ClickException(f"Flow run {run_id} was not cancelled: {reason}")
    if state.type is StateType.CANCELLED:
        click.echo(f"Flow run {run_id} is cancelled.")
    else:
        click.echo(f"Flow run {run_id} is cancelling; its agent will stop it.")


@flow_run_group.command("delete")
@click.argument("flow_run_id")
def flow_run_delete(flow_run_id):
    """Delete a flow run with its states and task runs."""
    run_id = _uuid(flow_run_id, "Flow run id")
    try:
        _client().delete_flow_run(run_id)
    except ObjectNotFound:
        raise click.ClickException(f"Flow run {flow_run_id} not found.") from None
    click.echo(f"Deleted flow run {run_id}.")


# -- agents ---------------------------------------------------------------------------------

@click.group("agent", cls=ApiGroup)
def agent_group():
    """Run flow runs from work queues."""


@agent_group.command("start")
@click.option("-q", "--work-queue", "queues", multiple=True, required=True,
              help="A work queue to take runs from (created if missing); repeat for several.")
@click.option("-l", "--limit", type=click.IntRange(1), help="Most flow runs going at once.")
@click.option("-n", "--name", help="The agent's name in the API [default: agent-<id>].")
@click.option("--run-once", is_flag=True, help="Poll once, wait for those runs, then exit.")
@click.option("--prefetch-seconds", type=click.FloatRange(0),
              help="Take runs due this soon [default: ORION_AGENT_PREFETCH_SECONDS or 10].")
def agent_start(queues, limit, name, run_once, prefetch_seconds):
    """Poll work queues and run their flow runs, each in a subprocess, until SIGTERM."""
    import dataclasses
    import logging

    from client.agent import Agent, AgentSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request
    try:
        settings = AgentSettings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if prefetch_seconds is not None:
        settings = dataclasses.replace(settings, prefetch_seconds=prefetch_seconds)
    client = _client() if isinstance(click.get_current_context().find_root().obj,
                                     OrionClient) else None
    Agent(queues, limit=limit, name=name, client=client, settings=settings).start(
        run_once=run_once)


API_GROUPS = (work_queue_group, concurrency_limit_group, flow_run_group, agent_group)
