"""The Orion client library: talk to an Orion server from Python.

``from client import get_client`` gives an :class:`OrionClient` (``client.client``) with one
method per API endpoint, configured by ``ORION_*`` environment variables read when it is made
(``client.settings``). With ``ORION_API_URL`` unset it runs the API in-process on
``$ORION_HOME/orion.db`` (``client.ephemeral``). States to propose are built with the
constructors of ``client.states`` (``Running()``, ``Completed()`` ...); errors are in
``client.exceptions``. ``import client`` loads neither httpx nor the server: httpx is imported
when the first client is built, the server only in ephemeral mode.

    from client import get_client
    from client.states import Running

    with get_client() as orion:
        flow_id = orion.create_flow_from_name("etl")
        run = orion.create_flow_run(flow_id, parameters={"day": "2026-11-23"})
        result = orion.set_flow_run_state(run.id, Running())
        print(result.status, result.state, run.expected_start_time)
"""
from client.client import OrionClient, get_client

__all__ = ["OrionClient", "get_client"]
