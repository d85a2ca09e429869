"""The SDK's names on the ``client`` package: loaded on first use, not by ``import client``."""

import json
import subprocess
import sys

import pytest


def test_import_client_loads_no_sdk_module_until_a_name_is_used():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            """
import json, sys
import client
before = sorted(m for m in sys.modules if m.startswith("client."))
from client import flow, task, get_run_logger, tags, task_input_hash
print(json.dumps({"before": before, "engine": "client.sdk.engine" in sys.modules,
                  "flows": "client.sdk.flows" in sys.modules}))
""",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout)
    assert "client.sdk.engine" not in loaded["before"]
    assert "client.sdk.flows" not in loaded["before"]
    assert loaded["flows"] and not loaded["engine"]


def test_every_exported_name_resolves_and_unknown_names_fail():
    import client

    for name in client.__all__:
        assert getattr(client, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'flwo'"):
        client.flwo  # noqa: B018  (the lookup is what is tested)
