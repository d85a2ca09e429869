"""The server's commands of ``orion``: serve the API, run the RQ worker and cron, manage the
database.

``server_cli`` holds them; the ``orion`` command (:mod:`orion_cli`) joins them with the
client's commands (work queues, deployments, flow runs, agents: :mod:`client.cli`), which talk
to the API over HTTP. This module never imports the client.

Run as ``flask orion ...`` (Flask's ``flask.commands`` entry point), a command pushes the
context of the app Flask loads (``--app``, or ``wsgi.py``) and uses that app's settings and its
database binding; otherwise it reads the settings with ``load_config()`` and binds the database
itself. Expected failures (a database newer than this Orion, an unknown migration, an
unreachable database, a PostgreSQL database that does not exist and cannot be created here)
print one ``Error:`` line and exit with status 1, without a traceback.
"""

import datetime
import glob
import os
import re
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import click
from flask import current_app, has_app_context
from flask.cli import ScriptInfo
from peewee import DatabaseError, InterfaceError
from playhouse.migrations import MigrationError

from app import migrations
from app.clock import utcnow
from app.config import load_config
from app.db import database, ensure_database, init_database
from app.exceptions import OrionError
from app.logformat import gunicorn_logconfig
from app.services import retention


class _ServerCommandMixin:
    """Runs a server command in the Flask app's context under ``flask orion`` and turns
    Orion's expected errors into one-line messages.

    Each command does this itself, not only the group: under ``orion`` the server commands
    hang from the joint group of :mod:`orion_cli`, not from ``server_cli``.
    """

    def invoke(self, ctx):
        _push_flask_app_context(ctx)
        try:
            return super().invoke(ctx)
        except (OrionError, MigrationError) as error:
            raise click.ClickException(str(error)) from None
        except (DatabaseError, InterfaceError) as error:
            raise click.ClickException(f"database error: {error}".strip()) from None


class _ServerCommand(_ServerCommandMixin, click.Command):
    """A server command (see :class:`_ServerCommandMixin`)."""


class _ServerGroup(_ServerCommandMixin, click.Group):
    """A group of server commands; its commands and subgroups are server commands too."""

    command_class = _ServerCommand
    group_class = type


def _push_flask_app_context(ctx):
    """Under ``flask orion``, push the context of the app Flask loads.

    Flask pushes an app context only for the commands of ``app.cli``; commands from the
    ``flask.commands`` entry point find Flask's ``ScriptInfo`` as the context object and load
    the app from it (Flask's own ``with_appcontext`` does the same). Outside Flask there is no
    ``ScriptInfo`` and nothing is pushed.
    """
    if has_app_context():
        return
    info = ctx.find_object(ScriptInfo)
    if info is not None:
        ctx.with_resource(info.load_app().app_context())


@click.group("orion", cls=_ServerGroup)
def server_cli():
    """Orion: a workflow orchestration server."""


@server_cli.command()
@click.option("--host", help="Address to listen on [default: ORION_SERVER_HOST or 127.0.0.1].")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port [default: ORION_SERVER_PORT or 4200]."
)
@click.option(
    "--workers", type=click.IntRange(1), help="Worker processes [default: ORION_SERVER_WORKERS]."
)
@click.option(
    "--threads", type=click.IntRange(1), help="Threads per worker [default: ORION_SERVER_THREADS]."
)
def start(host, port, workers, threads):
    """Migrate the database, then serve Orion.

    Creates a PostgreSQL database that does not exist yet and applies pending migrations
    (unless ORION_DATABASE_MIGRATE_ON_START is false, in which case it only refuses a database
    that is missing or newer than this Orion), then runs gunicorn until stopped, with
    app.serving's worker (gthread, keep-alive requests served back to back). The app is built
    once in the gunicorn master and forked into the workers (preload), so a broken app fails
    here, before gunicorn starts.

    Services (scheduling deployments, marking late runs): without ORION_REDIS_URL they run
    on a thread of one gunicorn worker (see app.embedded); with it, one RQ worker and the
    rq cron process are started as children and stopped when the server stops.
    """
    config = _settings()
    host = host or config["SERVER_HOST"]
    port = port or config["SERVER_PORT"]
    try:
        logconfig = gunicorn_logconfig(config["LOG_FORMAT"])
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    _prepare_metrics(config, port)
    migrate = config["DATABASE_MIGRATE_ON_START"]
    _ensure_database(config, create=migrate)
    with database.connection_context():
        if migrate:
            _echo_applied(migrations.upgrade(database))
        else:
            migrations.check_schema(database)
    if has_app_context():
        app = current_app._get_current_object()
    else:
        from app import create_app

        # The address bound decides the default Host check (app.security): --host counts.
        app = create_app({"SERVER_HOST": host})
    # Forked workers must not inherit the master's pooled connections.
    database.close_all()
    from app.serving import freeze_loaded_app  # gunicorn, imported only to serve

    freeze_loaded_app()

    base = f"http://{_url_host(host)}:{port}"
    click.echo(f"Orion API:  {base}/api   (set ORION_API_URL={base}/api to use this server)")
    click.echo(f"Dashboard:  {base}/")
    click.echo(f"API docs:   {base}/docs")
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers or config["SERVER_WORKERS"],
        "threads": threads or config["SERVER_THREADS"],
        # gthread, with a keep-alive connection's requests served back to back.
        "worker_class": "app.serving.KeepAliveThreadWorker",
        "preload_app": True,
        "proc_name": "orion",
        # gunicornc's socket defaults to one path per user, which two servers would share.
        "control_socket_disable": True,
        "child_exit": _worker_exited,
    }
    if logconfig is not None:
        options["logconfig_dict"] = logconfig
    children = []
    if config["REDIS_URL"]:
        # `orion worker` and `orion cron` restart their rq process if it dies (Redis down).
        # Without the metrics folder: rq forks a process per job, and each would leave its
        # own value files there for good (the scrape-time gauges cover the services' work).
        env = {name: value for name, value in os.environ.items() if name != MULTIPROC_ENV}
        children = [
            subprocess.Popen([sys.executable, "-m", "app", command], env=env)
            for command in ("worker", "cron")
        ]
        click.echo(
            f"Services:   RQ worker (pid {children[0].pid}) and rq cron "
            f"(pid {children[1].pid}) on {_display_url(config['REDIS_URL'])}"
        )
    else:
        options["post_worker_init"] = _start_embedded_services
        click.echo("Services:   embedded (set ORION_REDIS_URL to run them on RQ workers)")
    try:
        _serve(app, options)
    finally:
        _stop(children)


# prometheus_client's multiprocess folder variable (see app.metrics).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _prepare_metrics(config, port):
    """Share ``/metrics`` values between the gunicorn workers: a folder
    of value files, ``PROMETHEUS_MULTIPROC_DIR`` if set, else ``HOME/metrics/<port>`` (one per
    server), emptied now so a previous server's counts are not reported as this one's."""
    # prometheus_client picks its value store when imported: the variable must be set first.
    if "prometheus_client" in sys.modules and not os.environ.get(MULTIPROC_ENV):
        click.echo("Metrics:    per worker (the app was built before `orion start` ran)")
        return
    path = os.environ.get(MULTIPROC_ENV) or os.path.join(config["HOME"], "metrics", str(port))
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    os.environ[MULTIPROC_ENV] = path


def _worker_exited(server, worker):
    """gunicorn hook, in the master when a worker exits: drop its live gauges."""
    from app.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def _start_embedded_services(worker):
    """gunicorn hook, in each worker after fork: start the embedded services thread (one
    process among all runs the services; see app.embedded)."""
    from app.embedded import ServiceThread

    ServiceThread(worker.wsgi.config, logger=worker.log).start()


def rq_command(kind, config, burst=False):
    """The argv of an ``rq worker`` (``kind="worker"``) or ``rq cron`` process for Orion.

    Both import ``workers`` by dotted path (the app never imports it) and read the same
    ORION_* environment as this process. The worker's class (:mod:`workers.worker`) loads
    the jobs before it forks a work-horse per job, so no job imports them again.
    """
    url = config["REDIS_URL"]
    if kind == "cron":
        return [sys.executable, "-m", "rq.cli", "cron", "--url", url, "workers.cron_config"]
    argv = [sys.executable, "-m", "rq.cli", "worker", "--url", url]
    argv += ["--worker-class", "workers.worker.Worker"]
    if burst:
        argv.append("--burst")
    return argv + [config["REDIS_QUEUE"]]


def _stop(children, timeout=10):
    """Ask child processes to stop (SIGTERM: rq finishes the current job), then kill them."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@server_cli.command("prefect-ui")
@click.argument("ui_dir", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=4201, show_default=True, help="Port."
)
@click.option(
    "--api-url",
    help="Orion's API as the browser reaches it "
    "[default: http://ORION_SERVER_HOST:ORION_SERVER_PORT/api].",
)
@click.option(
    "--base-path",
    default="/",
    show_default=True,
    help="Path to serve a Prefect 2.20 UI at (Prefect 2.7's is served at /).",
)
def prefect_ui(ui_dir, host, port, api_url, base_path):
    """Serve Prefect 2's web UI from UI_DIR against Orion's API.

    UI_DIR is the built app in a Prefect wheel: .../site-packages/prefect/server/ui (Prefect
    2.20) or .../site-packages/prefect/orion/ui (Prefect 2.7). It is served as Prefect serves it
    (its files, 2.20's base path placeholder replaced, index.html for every other path,
    /ui-settings naming the API) from an origin of its own: allow that origin on the Orion
    server, ORION_CORS_ALLOWED_ORIGINS='["http://HOST:PORT"]'.
    """
    from app.prefect_ui import create_prefect_ui_app, ui_folder_problem

    problem = ui_folder_problem(ui_dir)
    if problem:
        raise click.BadParameter(problem, param_hint="UI_DIR")
    if api_url is None:
        config = _settings_without_database()
        api_url = f"http://{_url_host(config['SERVER_HOST'])}:{config['SERVER_PORT']}/api"
    origin = f"http://{_url_host(host)}:{port}"
    base = "/" + base_path.strip("/")
    click.echo(f"Prefect UI: {origin}{base.rstrip('/')}/   (its API: {api_url})")
    click.echo(f"Allow it on the Orion server: ORION_CORS_ALLOWED_ORIGINS='[\"{origin}\"]'")
    _serve(
        create_prefect_ui_app(ui_dir, api_url, base),
        {
            "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "workers": 1,
            "threads": 4,
            "worker_class": "gthread",
            "proc_name": "orion-prefect-ui",
            "control_socket_disable": True,
        },
    )


@server_cli.command()
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
def worker(burst):
    """Run an RQ worker for Orion's service jobs (needs ORION_REDIS_URL).

    The rq worker is restarted if it exits on an error (e.g. Redis unreachable at start),
    until this command is stopped; with --burst it runs once.
    """
    config = _redis_settings()
    _supervise(rq_command("worker", config, burst=burst), restart=not burst)


@server_cli.command()
def cron():
    """Run the one `rq cron` process that enqueues the periodic service jobs (needs
    ORION_REDIS_URL). Run exactly one per Redis.

    rq cron exits when Redis goes away; it is restarted (after 1 s, doubling up to 30 s)
    until this command is stopped, so the ticks resume when Redis is back.
    """
    _supervise(rq_command("cron", _redis_settings()), restart=True)


def _redis_settings():
    config = current_app.config if has_app_context() else load_config()
    if not config["REDIS_URL"]:
        raise click.ClickException(
            "ORION_REDIS_URL is not set: the services run embedded in "
            "`orion start`, no RQ worker or cron is needed."
        )
    return config


# Seconds between restarts of a failing rq process: doubling from the first to the last.
RESTART_DELAYS = (1, 30)


def _supervise(argv, restart):
    """Run ``argv`` in the foreground; exit with its status once it exits cleanly, or when
    this process is asked to stop (SIGTERM is passed on; Ctrl-C reaches the child through
    the terminal). Otherwise, if ``restart``, start it again after a growing delay."""
    stopping = threading.Event()
    child = None

    def stop(signum, frame):
        stopping.set()
        if signum == signal.SIGTERM and child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = RESTART_DELAYS[0]
    while True:
        started = time.monotonic()
        child = subprocess.Popen(argv)
        status = child.wait()
        if status == 0 or stopping.is_set() or not restart:
            raise SystemExit(status)
        if time.monotonic() - started > RESTART_DELAYS[1]:
            delay = RESTART_DELAYS[0]
        click.echo(f"{argv[3]} exited with status {status}; restarting in {delay} s", err=True)
        if stopping.wait(delay):
            raise SystemExit(status)
        delay = min(delay * 2, RESTART_DELAYS[1])


@server_cli.group("db")
def db_group():
    """Inspect and migrate the database schema."""


@db_group.command("upgrade")
@click.option("--target", help="Stop after applying this migration.")
def db_upgrade(target):
    """Apply pending migrations."""
    config = _settings()
    click.echo(f"Upgrading {_display_url(config['DATABASE_URL'])}")
    _ensure_database(config)
    with database.connection_context():
        _echo_applied(migrations.upgrade(database, target))


@db_group.command("downgrade")
@click.option("--target", help="Keep this migration; revert the ones after it [default: all].")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_downgrade(target, yes):
    """Revert migrations, newest first (all of them unless --target is given)."""
    config = _settings()
    url = _display_url(config["DATABASE_URL"])
    if not yes:
        what = f"the migrations after {target}" if target else "every migration"
        click.confirm(
            f"This reverts {what} in {url}; data in the tables and columns they drop is lost. "
            "Continue?",
            abort=True,
        )
    with database.connection_context():
        reverted = migrations.downgrade(database, target)
    for name in reverted:
        click.echo(f"Reverted {name}")
    if not reverted:
        click.echo("Nothing to revert.")


@db_group.command("status")
def db_status():
    """List migrations and whether each is applied; fails if the database is newer."""
    config = _settings()
    click.echo(f"Database: {_display_url(config['DATABASE_URL'])}")
    _ensure_database(config, create=False)
    with database.connection_context():
        rows = migrations.status(database)
        for name, applied in rows:
            click.echo(f"[{'x' if applied else ' '}] {name}")
        migrations.check_schema(database)
    pending = sum(1 for _, applied in rows if not applied)
    if pending:
        click.echo(f"{pending} pending migration(s): run `orion db upgrade`.")
    else:
        click.echo("Schema is up to date.")


class Duration(click.ParamType):
    """A duration written as a whole number of days or hours: ``30d``, ``12h``."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime.timedelta):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*([dh])\s*", str(value).lower())
        if match is None or int(match[1]) == 0:
            self.fail(
                f"{value!r} is not a duration: write a whole number of days or hours, "
                "more than 0, such as 30d or 12h",
                param,
                ctx,
            )
        unit = "days" if match[2] == "d" else "hours"
        return datetime.timedelta(**{unit: int(match[1])})


@db_group.command("prune")
@click.option(
    "--older-than",
    "older_than",
    type=Duration(),
    required=True,
    help="Prune finished flow runs that finished longer ago than this (30d, 12h).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def db_prune(older_than, dry_run):
    """Delete finished flow runs older than --older-than, with their task runs, states,
    logs, artifacts and inputs (what ORION_RETENTION_DAYS does periodically).

    A run is finished when its state is COMPLETED, FAILED, CANCELLED or CRASHED; its age is
    the time since it entered that state. Runs that are not finished are never deleted.
    Deletes in batches that each hold their locks about 50 ms, then refreshes the
    dashboard's rollup. --dry-run prints the counts of what would go.
    """
    _settings()
    cutoff = utcnow() - older_than
    batches = []
    with database.connection_context():
        if dry_run:
            counts = retention.count_prunable(cutoff)
            click.echo(f"Would delete (finished before {cutoff:%Y-%m-%d %H:%M} UTC):")
        else:
            result = retention.prune(cutoff)
            counts, batches = result.deleted, result.batches
            click.echo(f"Deleted (finished before {cutoff:%Y-%m-%d %H:%M} UTC):")
    for table, count in counts.items():
        click.echo(f"  {table.replace('_', ' ')}: {count:,}")
    if len(batches) == 1:
        click.echo(f"  in 1 batch, holding its locks {batches[0][1] * 1000:.0f} ms")
    elif batches:
        longest = max(seconds for _, seconds in batches)
        click.echo(
            f"  in {len(batches):,} batches, the longest holding its locks {longest * 1000:.0f} ms"
        )


@server_cli.command("reset-db")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset_db(yes):
    """Drop all Orion tables and data, then recreate the schema."""
    config = _settings()
    url = _display_url(config["DATABASE_URL"])
    if not yes:
        click.confirm(f"This drops all Orion data in {url}. Continue?", abort=True)
    with database.connection_context():
        applied = migrations.reset(database)
    click.echo(f"Dropped all Orion tables in {url}")
    _echo_applied(applied)


@server_cli.group("block")
def block_group():
    """The key that encrypts block document data (secrets) at rest."""


@block_group.command("generate-key")
def block_generate_key():
    """Print a new encryption key (for ORION_ENCRYPTION_KEY)."""
    from app.services import block_crypto

    click.echo(block_crypto.generate_key().decode())


@block_group.command("rotate-key")
@click.option(
    "--new-key",
    help="The new key [default: a generated one, written to the key "
    "file]. Required when ORION_ENCRYPTION_KEY is set.",
)
def block_rotate_key(new_key):
    """Re-encrypt every block document with a new key, in one transaction.

    Stop the servers of this database first, and restart them with the new key: a server
    still holding the old key refuses block document reads and writes. With
    ORION_ENCRYPTION_KEY set, pass the new key and set the variable to it afterwards;
    otherwise the key file in ORION_HOME is replaced once the transaction commits.
    """
    from app.services import block_crypto

    config = _settings()
    if config["ENCRYPTION_KEY"] and not new_key:
        raise click.UsageError(
            "ORION_ENCRYPTION_KEY is set: pass the new key with --new-key "
            "(make one with `orion block generate-key`)."
        )
    block_crypto.configure(block_crypto.load_key(config))
    new_key = (
        block_crypto.parse_key(new_key, "--new-key") if new_key else (block_crypto.generate_key())
    )
    with database.connection_context():
        count = block_crypto.rotate_key(new_key)
    if not config["ENCRYPTION_KEY"]:
        path = block_crypto.key_file_path(config["HOME"])
        block_crypto.write_key_file(path, new_key)
        click.echo(f"New key written to {path}")
    else:
        click.echo("Set ORION_ENCRYPTION_KEY to the new key before starting the servers.")
    click.echo(
        f"Re-encrypted {count} block document(s); key fingerprint now "
        f"{block_crypto.fingerprint(new_key)[:19]}..."
    )


def _serve(app, options):
    """Run gunicorn's master with ``options`` (gunicorn setting names) serving ``app``.

    Never returns: when gunicorn stops, it exits the process with its own status.
    """
    from gunicorn.app.base import BaseApplication

    class OrionServer(BaseApplication):
        """Gunicorn serving an already-built Flask app."""

        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    OrionServer().run()


def _settings():
    """The current Flask app's settings, or the environment's with the database bound."""
    if has_app_context():
        return current_app.config
    config = load_config()
    init_database(config)
    return config


def _settings_without_database():
    """The current Flask app's settings, or the environment's (no database bound)."""
    return current_app.config if has_app_context() else load_config()


def _ensure_database(config, create=True):
    """Create the configured PostgreSQL database if it does not exist yet (``create``), or
    stop with how to create it (see :func:`app.db.ensure_database`)."""
    if ensure_database(config["DATABASE_URL"], create=create):
        click.echo(f"Created the database {_display_url(config['DATABASE_URL'])}")


def _echo_applied(names):
    """Print one progress line per applied migration, or that there was nothing to do."""
    for name in names:
        click.echo(f"Applied {name}")
    if not names:
        click.echo("Database schema is up to date.")


def _display_url(url):
    """``url`` with any password masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, hostinfo = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()


def _url_host(host):
    """How clients on this machine reach a server listening on ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
