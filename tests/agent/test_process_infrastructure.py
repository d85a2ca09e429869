"""The ``Process`` infrastructure block with real subprocesses: ``run`` waits and reports the
exit code, the environment is layered as documented, and ``kill`` stops the whole process
group (politely first) or refuses what runs on another host."""

import os
import re
import signal
import socket
import sys
import time

import pytest

from client.infrastructure import InfrastructureError, InfrastructureResult, Process

REPORT = (
    "import os, sys; print(os.environ['ORION_FLOW_RUN_ID'], os.environ.get('KEPT'), "
    "os.environ.get('FROM_BLOCK'), os.environ.get('GONE'), os.getcwd()); sys.exit(3)"
)


def test_run_waits_and_layers_the_environment(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("KEPT", "agent")
    monkeypatch.setenv("GONE", "agent")
    block = Process(
        command=[sys.executable, "-c", REPORT],
        working_dir=str(tmp_path),
        env={"FROM_BLOCK": "block", "GONE": None, "KEPT": "block"},
    )
    result = block.run("run-1", env={"KEPT": "caller"})
    assert isinstance(result, InfrastructureResult) and result.status_code == 3 and not result
    host, _, pid = result.identifier.rpartition(":")
    assert host == socket.gethostname() and pid.isdigit()
    assert capfd.readouterr().out.split() == ["run-1", "caller", "block", "None", str(tmp_path)]


def test_output_can_be_silenced(capfd):
    assert (
        Process(command=[sys.executable, "-c", "print('noise')"], stream_output=False)
        .run("run-2")
        .status_code
        == 0
    )
    assert "noise" not in capfd.readouterr().out


def test_a_missing_program_is_an_infrastructure_error(tmp_path):
    with pytest.raises(InfrastructureError, match="the flow run process could not start"):
        Process(command=[str(tmp_path / "nothing")]).start("run-3")


def test_kill_stops_the_process_group_sigterm_first(tmp_path):
    marker = tmp_path / "terminated"
    script = (
        f"import signal, sys, time\n"
        f"def stop(*_):\n    open({str(marker)!r}, 'w').close(); sys.exit(0)\n"
        f"signal.signal(signal.SIGTERM, stop)\nprint('ready', flush=True)\n"
        f"time.sleep(60)\n"
    )
    block = Process(command=[sys.executable, "-c", script], stream_output=False)
    handle = block.start("run-4")
    time.sleep(0.5)  # let it install its handler
    started = time.monotonic()
    block.kill(handle.identifier, grace_seconds=10)
    assert handle.popen.wait(timeout=10) == 0 and marker.exists()
    assert time.monotonic() - started < 10


def test_kill_forces_after_the_grace_period():
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    block = Process(command=[sys.executable, "-c", stubborn], stream_output=False)
    handle = block.start("run-5")
    time.sleep(0.5)
    block.kill(handle.identifier, grace_seconds=0.5)
    assert handle.popen.wait(timeout=10) == -signal.SIGKILL


def test_kill_refuses_other_hosts_and_bad_identifiers():
    with pytest.raises(InfrastructureError, match="not on this one"):
        Process().kill("elsewhere.example:123")
    with pytest.raises(InfrastructureError, match="is not a host:pid identifier"):
        Process().kill(f"{socket.gethostname()}:abc")
    Process().kill(f"{socket.gethostname()}:{2**22 + os.getpid()}")  # gone: nothing to do


def test_overrides_are_dotted_paths_into_a_copy_of_the_block():
    block = Process(env={"KEPT": "1"}, stream_output=True)
    block._block_document_id = "doc-1"
    copy = block.with_overrides(
        {"env.STAGE": "prod", "stream_output": "false", "working_dir": "/srv"}
    )
    assert copy.env == {"KEPT": "1", "STAGE": "prod"} and copy.stream_output is False
    assert str(copy.working_dir) == "/srv" and copy._block_document_id == "doc-1"
    assert block.env == {"KEPT": "1"} and block.stream_output is True  # unchanged
    assert block.with_overrides({}) is block


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"colour": "red"}, "Infrastructure override 'colour': the 'process' block has no such"),
        ({"stream_output.x": "1"}, "'stream_output' is not a mapping"),
        ({"stream_output": "perhaps"}, "Infrastructure overrides {'stream_output': 'perhaps'}"),
    ],
)
def test_an_override_that_does_not_fit_names_itself(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Process().with_overrides(overrides)
