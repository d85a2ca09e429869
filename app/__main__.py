"""``python -m app ARGS`` runs the ``orion`` command line (used to start its own children)."""
from app.cli import orion_cli

orion_cli(prog_name="orion")
