"""``python -m app ARGS`` runs the server's commands of ``orion`` (``orion start`` starts its
RQ worker and cron children this way)."""

from app.cli import server_cli

server_cli(prog_name="orion")
