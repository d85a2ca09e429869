"""Prefect 2.20's variables against Orion: ``Variable.set``/``get`` from a script and from a
flow, ``prefect variable ls`` and ``delete``; the server's side read through its API.
(Prefect 2.7 has no variables.)"""

import httpx
import pytest

from tests.compat.conftest import Prefect, ok, prefect_venv
from tests.support import BACKENDS

SCRIPT = """
import sys

from prefect import flow
from prefect.variables import Variable

name = sys.argv[1]
Variable.set(name, "hello", tags=["compat"])
print("GOT=" + Variable.get(name).value)
try:
    Variable.set(name, "again")
except ValueError:
    print("REFUSED")
Variable.set(name, "changed", overwrite=True)
print("MISSING=" + str(Variable.get(name + "_nope", default="fallback")))


@flow
def reads():
    return Variable.get(name).value


print("FLOW=" + reads())
"""


@pytest.fixture(scope="module", params=BACKENDS)
def prefect(request, servers, tmp_path_factory):
    """Prefect 2.20 pointed at the module's server of a backend."""
    server = servers.get(request.param)
    workdir = tmp_path_factory.mktemp("prefect-2.20")
    return Prefect("2.20", prefect_venv("2.20"), server.api_url, server.backend, workdir)


def test_variables_set_in_a_script_are_read_in_a_flow_and_by_the_cli(prefect):
    name = "compat_" + prefect.tag.replace("-", "_")
    output = prefect.script(SCRIPT, name)
    assert "GOT=hello" in output and "REFUSED" in output, output
    assert "MISSING=fallback" in output and "FLOW=changed" in output, output

    with httpx.Client(base_url=prefect.api_url + "/", timeout=30) as api:
        stored = ok(api.get(f"variables/name/{name}"))
        # An overwrite sends the tags it was given (none here), as on Prefect's own server.
        assert (stored["value"], stored["tags"]) == ("changed", [])
        listing = prefect.run("variable", "ls")
        assert name in listing, listing
        prefect.run("variable", "delete", name)
        assert api.get(f"variables/name/{name}").status_code == 404
