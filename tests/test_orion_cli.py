"""The ``orion`` command (orion_cli.py): one group of the client's commands and the server's,
each side imported only when one of its commands is used."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from app.cli import server_cli
from client.cli import commands
from orion_cli import CLIENT_COMMANDS


def test_help_lists_every_command_of_both_sides():
    script = shutil.which("orion", path=os.path.dirname(sys.executable))
    done = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=60, check=True
    )

    listed = [
        line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()
    ]
    client_side = [getattr(commands, attribute).name for attribute in CLIENT_COMMANDS.values()]
    assert sorted(client_side) == sorted(CLIENT_COMMANDS)
    assert listed == sorted([*client_side, *server_cli.commands])


def _commands(group, path=()):
    """``(path, command)`` of every command under ``group``, groups included."""
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_commands_help_is_plain_text():
    """Help is read in a terminal: no reStructuredText markup from the docstrings."""
    everything = click.Group(
        commands={
            **server_cli.commands,
            **{n: getattr(commands, a) for n, a in CLIENT_COMMANDS.items()},
        }
    )
    runner = CliRunner()
    marked = []
    for path, _ in _commands(everything):
        result = runner.invoke(everything, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        if "``" in result.output or ":func:" in result.output or ":class:" in result.output:
            marked.append(" ".join(path))
    assert marked == []


def loaded_after(args):
    """The packages of ours and the server's libraries imported by ``orion ARGS``."""
    code = textwrap.dedent(f"""
        import json, sys
        from orion_cli import orion_cli
        try:
            orion_cli({args!r}, prog_name="orion")
        except SystemExit:
            pass
        print(json.dumps(sorted({{m for m in sys.modules
                                  if m.split(".")[0] in ("app", "flask", "peewee")
                                  or m.startswith("client.cli")}})))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["work-queue", "--help"], ["agent", "start", "--help"]])
def test_a_client_command_imports_no_server_code(args):
    loaded = loaded_after(args)

    assert "client.cli.commands" in loaded
    assert not [m for m in loaded if not m.startswith("client.")]


def test_a_server_command_imports_no_client_command():
    loaded = loaded_after(["db", "--help"])

    assert "app.cli" in loaded
    assert not [m for m in loaded if m.startswith("client.")]
