"""SDK fixtures: flows run through the real client against the real app in-process.

``orion`` is an OrionClient on the shared test ``app`` (both backends, clean tables), made the
SDK's client for the test; results go to a temporary folder.
"""

import pytest

from client import OrionClient, using_client
from client.api.settings import Settings


@pytest.fixture
def orion(app, db, tmp_path, monkeypatch):
    """The SDK's client for this test: the real client on the test app, quick retries."""
    monkeypatch.setenv("ORION_RESULTS_STORAGE", str(tmp_path / "results"))
    settings = Settings(api_retries=2, api_retry_delay_seconds=0.01, heartbeat_seconds=0.2)
    with OrionClient(app, settings=settings) as orion_client, using_client(orion_client):
        yield orion_client
