"""Client fixtures: the real client over the real app, in-process (WSGITransport).

``orion`` runs on both backends through the shared ``app`` fixture, on clean tables.
"""
import os
import socket
import types

import pytest

from client import OrionClient
from client.api.settings import Settings
from tests.test_cli import free_port


@pytest.fixture
def orion(app, db):
    """An OrionClient talking to the test app in-process, with quick retries."""
    with OrionClient(app, settings=Settings(api_retries=2, api_retry_delay_seconds=0.01)) as c:
        yield c


def make_task(task_key="etl.extract", **attrs):
    """A stand-in for the SDK's task object: what create_task_run reads from it."""
    return types.SimpleNamespace(task_key=task_key, **attrs)


def free_port_in_range():
    """A free TCP port for servers tests start: from ``ORION_TEST_PORTS`` ("4320-4329") if
    set (machines shared by several test runs give each its own range), else any free one."""
    spec = os.environ.get("ORION_TEST_PORTS")
    if not spec:
        return free_port()
    low, high = (int(part) for part in spec.split("-"))
    for port in range(low, high + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port in ORION_TEST_PORTS={spec}")
