"""Running deployed flow runs: the agent that polls work queues and starts one process per run
(:mod:`client.agent.agent`), and that process's entry point, ``python -m client.agent.run
FLOW_RUN_ID`` (:mod:`client.agent.run`)."""
