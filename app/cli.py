"""The ``orion`` command line: serve the API, run the RQ worker and cron, manage the database.

The work queue, concurrency limit and flow run commands talk to the API over HTTP instead
(:mod:`app.cli_api`).

``orion_cli`` is both the ``orion`` console script and ``flask orion`` (``create_app`` adds it).
Inside a Flask app context (``flask --app wsgi orion ...``) commands use that app's settings and
its database binding; otherwise they read the settings with ``load_config()`` and bind the
database themselves. Expected failures (a database newer than this Orion, an unknown migration,
an unreachable database) print one ``Error:`` line and exit with status 1, without a traceback.
"""
import gc
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import click
from flask import current_app, has_app_context
from peewee import DatabaseError, InterfaceError
from playhouse.migrations import MigrationError

from app import migrations
from app.cli_api import API_GROUPS
from app.config import load_config
from app.db import database, init_database
from app.exceptions import OrionError


class _OrionGroup(click.Group):
    """A click group that turns Orion's expected errors into one-line messages."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (OrionError, MigrationError) as error:
            raise click.ClickException(str(error)) from None
        except (DatabaseError, InterfaceError) as error:
            raise click.ClickException(f"database error: {error}".strip()) from None


@click.group("orion", cls=_OrionGroup)
def orion_cli():
    """Orion: a workflow orchestration server."""


for _group in API_GROUPS:
    orion_cli.add_command(_group)


@orion_cli.command()
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

    Applies pending migrations (unless ORION_DATABASE_MIGRATE_ON_START is false, in which case
    it only refuses a database newer than this Orion), then runs gunicorn until stopped, with
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
    with database.connection_context():
        if config["DATABASE_MIGRATE_ON_START"]:
            _echo_applied(migrations.upgrade(database))
        else:
            migrations.check_schema(database)
    if has_app_context():
        app = current_app._get_current_object()
    else:
        from app import create_app

        app = create_app()
    # Forked workers must not inherit the master's pooled connections.
    database.close_all()
    # Everything built so far (modules, the app) lives as long as the process. Frozen, it is
    # skipped by every garbage collection in the workers, which otherwise walk it all on each
    # full collection (one every few large responses), and its pages stay shared after fork.
    gc.collect()
    gc.freeze()

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
    }
    children = []
    if config["REDIS_URL"]:
        # `orion worker` and `orion cron` restart their rq process if it dies (Redis down).
        children = [subprocess.Popen([sys.executable, "-m", "app", command])
                    for command in ("worker", "cron")]
        click.echo(f"Services:   RQ worker (pid {children[0].pid}) and rq cron "
                   f"(pid {children[1].pid}) on {_display_url(config['REDIS_URL'])}")
    else:
        options["post_worker_init"] = _start_embedded_services
        click.echo("Services:   embedded (set ORION_REDIS_URL to run them on RQ workers)")
    try:
        _serve(app, options)
    finally:
        _stop(children)


def _start_embedded_services(worker):
    """gunicorn hook, in each worker after fork: start the embedded services thread (one
    process among all runs the services; see app.embedded)."""
    from app.embedded import ServiceThread

    ServiceThread(worker.wsgi.config, logger=worker.log).start()


def rq_command(kind, config, burst=False):
    """The argv of an ``rq worker`` (``kind="worker"``) or ``rq cron`` process for Orion.

    Both import ``workers`` by dotted path (the app never imports it) and read the same
    ORION_* environment as this process.
    """
    url = config["REDIS_URL"]
    if kind == "cron":
        return [sys.executable, "-m", "rq.cli", "cron", "--url", url, "workers.cron_config"]
    argv = [sys.executable, "-m", "rq.cli", "worker", "--url", url]
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


@orion_cli.command()
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
def worker(burst):
    """Run an RQ worker for Orion's service jobs (needs ORION_REDIS_URL).

    The rq worker is restarted if it exits on an error (e.g. Redis unreachable at start),
    until this command is stopped; with --burst it runs once.
    """
    config = _redis_settings()
    _supervise(rq_command("worker", config, burst=burst), restart=not burst)


@orion_cli.command()
def cron():
    """Run the one ``rq cron`` process that enqueues the periodic service jobs (needs
    ORION_REDIS_URL). Run exactly one per Redis.

    rq cron exits when Redis goes away; it is restarted (after 1 s, doubling up to 30 s)
    until this command is stopped, so the ticks resume when Redis is back.
    """
    _supervise(rq_command("cron", _redis_settings()), restart=True)


def _redis_settings():
    config = current_app.config if has_app_context() else load_config()
    if not config["REDIS_URL"]:
        raise click.ClickException("ORION_REDIS_URL is not set: the services run embedded in "
                                   "`orion start`, no RQ worker or cron is needed.")
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


@orion_cli.group("db")
def db_group():
    """Inspect and migrate the database schema."""


@db_group.command("upgrade")
@click.option("--target", help="Stop after applying this migration.")
def db_upgrade(target):
    """Apply pending migrations."""
    config = _settings()
    click.echo(f"Upgrading {_display_url(config['DATABASE_URL'])}")
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


@orion_cli.command("reset-db")
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


@orion_cli.group("block")
def block_group():
    """The key that encrypts block document data (secrets) at rest."""


@block_group.command("generate-key")
def block_generate_key():
    """Print a new encryption key (for ORION_ENCRYPTION_KEY)."""
    from app.services import block_crypto

    click.echo(block_crypto.generate_key().decode())


@block_group.command("rotate-key")
@click.option("--new-key", help="The new key [default: a generated one, written to the key "
                                "file]. Required when ORION_ENCRYPTION_KEY is set.")
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
        raise click.UsageError("ORION_ENCRYPTION_KEY is set: pass the new key with --new-key "
                               "(make one with `orion block generate-key`).")
    block_crypto.configure(block_crypto.load_key(config))
    new_key = block_crypto.parse_key(new_key, "--new-key") if new_key else (
        block_crypto.generate_key())
    with database.connection_context():
        count = block_crypto.rotate_key(new_key)
    if not config["ENCRYPTION_KEY"]:
        path = block_crypto.key_file_path(config["HOME"])
        block_crypto.write_key_file(path, new_key)
        click.echo(f"New key written to {path}")
    else:
        click.echo("Set ORION_ENCRYPTION_KEY to the new key before starting the servers.")
    click.echo(f"Re-encrypted {count} block document(s); key fingerprint now "
               f"{block_crypto.fingerprint(new_key)[:19]}...")


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

