"""The SDK that runs flows and tasks: ``@flow`` (:mod:`client.sdk.flows`), ``@task``
(:mod:`client.sdk.tasks`), the engine that orchestrates their runs (:mod:`client.sdk.engine`),
futures and task runners (:mod:`client.sdk.futures`), run contexts (:mod:`client.sdk.context`),
cache keys (:mod:`client.sdk.caching`), results storage (:mod:`client.sdk.results`), run logs
(:mod:`client.sdk.logs`), parameter checks (:mod:`client.sdk.validation`), calling a function
with bound parameters (:mod:`client.sdk.callables`) and building deployments from flow code
(:mod:`client.sdk.deployments`). It talks to the API through :mod:`client.api`."""
