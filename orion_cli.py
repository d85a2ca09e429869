"""The ``orion`` command: the client's commands and the server's in one lazy click group.

Where this lives, and why: the ``orion`` command belongs to neither layer. The server (``app``)
never imports the client, and the client imports the server only for its ephemeral transport
(DESIGN.md §2), so the group that joins the two is this top-level module, beside ``wsgi.py``:
an entry point that only composes, which both layers' rules leave untouched. The layer test
(tests/test_layers.py) names it as an entry point that may import ``app.cli`` and
``client.cli`` and nothing else of ours.

It is the ``orion`` console script and, through Flask's ``flask.commands`` entry point,
``flask orion`` (setup.py declares both). Commands load on first use: ``orion work-queue ls``
imports the client's commands and never the server (no Flask, no peewee); ``orion start``
imports the server's commands (:mod:`app.cli`) and not the client's; ``orion --help`` imports
both to list every command with its summary.
"""

import click

# The client's command groups: name -> attribute of client.cli.commands. Every other name is
# one of the server's commands (app.cli.server_cli).
CLIENT_COMMANDS = {
    "agent": "agent_group",
    "concurrency-limit": "concurrency_limit_group",
    "deployment": "deployment_group",
    "flow-run": "flow_run_group",
    "global-concurrency-limit": "global_limit_group",
    "image": "image_group",
    "pool": "pool_group",
    "variable": "variable_group",
    "work-queue": "work_queue_group",
}


class LazyOrionGroup(click.Group):
    """A click group whose commands are imported when they are looked up (the imports are
    in the methods on purpose)."""

    def list_commands(self, ctx):
        from app.cli import server_cli

        return sorted({*CLIENT_COMMANDS, *server_cli.list_commands(ctx)})

    def get_command(self, ctx, name):
        if name in CLIENT_COMMANDS:
            from client.cli import commands

            return getattr(commands, CLIENT_COMMANDS[name])
        from app.cli import server_cli

        return server_cli.get_command(ctx, name)


@click.group("orion", cls=LazyOrionGroup)
def orion_cli():
    """Orion: a workflow orchestration server."""
