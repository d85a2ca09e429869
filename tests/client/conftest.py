"""Client fixtures: the real client over the real app, in-process (WSGITransport).

``orion`` runs on both backends through the shared ``app`` fixture, on clean tables.
"""

import types

import pytest

from client import OrionClient
from client.api.settings import Settings


@pytest.fixture
def orion(app, db):
    """An OrionClient talking to the test app in-process, with quick retries."""
    with OrionClient(app, settings=Settings(api_retries=2, api_retry_delay_seconds=0.01)) as c:
        yield c


def make_task(task_key="etl.extract", **attrs):
    """A stand-in for the SDK's task object: what create_task_run reads from it."""
    return types.SimpleNamespace(task_key=task_key, **attrs)
