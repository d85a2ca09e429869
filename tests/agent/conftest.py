"""What the agent tests share: agents with test-sized timings (:class:`tests.support.Agents`)
and the flows they run. A module brings its ``server`` (an ``OrionServer``); ``orion``, a
client of it, comes from tests/conftest.py."""

import pytest

from tests.support import Agents, write_flows


@pytest.fixture(scope="module")
def flows_dir(tmp_path_factory):
    """A folder holding :data:`tests.support.FLOWS` as ``flows.py``."""
    return write_flows(tmp_path_factory.mktemp("flows"))


@pytest.fixture
def agents(server, tmp_path):
    """Agents of this test against the module's ``server`` (:data:`tests.support.AGENT_SETTINGS`),
    killed after it."""
    group = Agents(server, tmp_path)
    yield group
    group.kill_all()
