"""client.agent.run: fetching a deployment's code (local or fsspec URL) and loading its flow."""

import pytest

from client.agent.run import FlowLoadError, fetch_code, load_flow, main
from client.sdk.flows import Flow

FLOW = "from client.sdk.flows import flow\n\n\n@flow\ndef hi():\n    return 1\n\n\nplain = 3\n"


@pytest.fixture
def code(tmp_path):
    folder = tmp_path / "code"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg" / "hi.py").write_text(FLOW)
    return folder


def test_a_local_path_is_used_in_place(code, tmp_path):
    assert fetch_code(str(code), str(tmp_path / "scratch")) == str(code)


def test_an_fsspec_url_is_copied(code, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    folder = fetch_code(f"file://{code}", str(scratch))
    assert (scratch / "pkg" / "hi.py").read_text() == FLOW
    assert isinstance(load_flow(folder, "pkg/hi.py:hi"), Flow)


def test_an_unreachable_url_is_a_load_error(tmp_path):
    with pytest.raises(FlowLoadError, match="Could not fetch the flow's code"):
        fetch_code(f"file://{tmp_path}/nowhere", str(tmp_path))


@pytest.mark.parametrize(
    "entrypoint, message",
    [
        ("pkg/hi.py", "is not 'path/to/file.py:flow_function'"),
        ("pkg/nope.py:hi", "is not in"),
        ("pkg/hi.py:plain", "is not a @flow"),
        ("pkg/hi.py:absent", "is not a @flow"),
    ],
)
def test_bad_entrypoints_are_load_errors(code, entrypoint, message):
    with pytest.raises(FlowLoadError, match=message):
        load_flow(str(code), entrypoint)


def test_a_module_that_fails_to_import_is_a_load_error(code):
    (code / "bad.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(FlowLoadError, match=r"Importing 'bad\.py' failed: RuntimeError: boom"):
        load_flow(str(code), "bad.py:x")


def test_usage(capsys):
    assert main([]) == 2
    assert "usage: python -m client.agent.run FLOW_RUN_ID" in capsys.readouterr().err
