"""The client's commands of ``orion`` (:mod:`client.cli.commands`): work queues, concurrency
limits, flow runs, deployments and agents, all through the API. The ``orion`` command itself,
which joins them with the server's commands, is :mod:`orion_cli`."""
