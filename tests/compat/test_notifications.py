"""A real Prefect 2.7.12 client against a real ``orion start``: it saves a SlackWebhook block,
creates a notification policy for tagged runs that fail, runs a failing flow with and
without the tag; the local HTTP receiver gets exactly one notification."""

import os
import subprocess
import time

import pytest

from tests.compat.conftest import prefect_venv
from tests.services.receiver import Receiver
from tests.support import BACKENDS, OrionServer, isolated_database_url

SCRIPT = """
import asyncio
from prefect import flow, tags
from prefect.blocks.notifications import SlackWebhook
from prefect.client import get_client

SlackWebhook(url="{receiver}/services/T/B/C").save("alerts")


async def create_policy():
    async with get_client() as client:
        block = await SlackWebhook.load("alerts")
        await client.create_flow_run_notification_policy(
            block_document_id=block._block_document_id, tags=["prod"],
            state_names=["Failed"])
asyncio.run(create_policy())


@flow(name="doomed")
def doomed():
    raise ValueError("boom")


with tags("prod"):
    doomed(return_state=True)
doomed(return_state=True)
print("flows done")
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_prefect_27_policy_fires_once_for_the_tagged_failed_run(backend, tmp_path):
    python = str(prefect_venv("2.7") / "bin" / "python")
    with Receiver() as receiver:
        home = tmp_path / "server"
        server = OrionServer(
            home,
            database_url=isolated_database_url(backend, home, "compat_notifications"),
            NOTIFICATIONS_LOOP_SECONDS=1,
        )
        server.start()
        try:
            client_env = {
                k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PREFECT_"))
            }
            client_env.update(
                PREFECT_API_URL=server.api_url, PREFECT_HOME=str(tmp_path / "prefect")
            )
            script = tmp_path / "flows.py"
            script.write_text(SCRIPT.format(receiver=receiver.url))
            done = subprocess.run(
                [python, str(script)],
                env=client_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert "flows done" in done.stdout, done.stdout + done.stderr
            deadline = time.monotonic() + 20
            while not receiver.received() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(3)  # a second notification would have arrived by now
        finally:
            server.stop()
        requests = receiver.received()
    assert len(requests) == 1, requests
    text = requests[0]["json"]["text"]
    assert "Flow run doomed/" in text and "entered state `Failed`" in text
    assert requests[0]["path"] == "/services/T/B/C"
