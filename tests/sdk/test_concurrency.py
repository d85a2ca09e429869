"""``client.sdk.concurrency``: global concurrency and rate limits from flows, through the real
client on the real app (both backends), and from real processes talking to it over HTTP:
two flows under a limit of 1 run one after the other, and a killed holder's slot comes back
once its lease expires and the liveness pass runs."""

import os
import re
import signal
import time

import pytest
from werkzeug.serving import make_server

from app.services import periodic
from client import OrionClient, flow, using_client
from client.api.exceptions import ValidationError
from client.api.settings import Settings
from client.sdk.concurrency import concurrency, rate_limit
from tests.sdk.servers import start_script
from tests.support import free_port, orion_env, serving_in_thread


def test_concurrency_holds_and_gives_back_slots_in_a_flow(orion):
    orion.create_global_concurrency_limit("warehouse", 3)

    @flow
    def load():
        with concurrency("warehouse", occupy=2):
            return orion.read_global_concurrency_limit("warehouse")["active_slots"]

    assert load() == 2
    assert orion.read_global_concurrency_limit("warehouse")["active_slots"] == 0
    with concurrency("warehouse", occupy=3), pytest.raises(TimeoutError, match="warehouse"):
        with concurrency("warehouse", timeout_seconds=0.3):
            pass
    assert orion.read_global_concurrency_limit("warehouse")["active_slots"] == 0


def test_rate_limit_waits_for_slots_to_decay(orion):
    orion.create_global_concurrency_limit("api", 1, slot_decay_per_second=5.0)
    started = time.monotonic()
    for _ in range(3):
        rate_limit("api")
    # Three slots at 5 per second with one free at the start: at least 2/5 s.
    assert time.monotonic() - started >= 0.35
    orion.create_global_concurrency_limit("plain", 1)
    with pytest.raises(ValidationError, match="decay"):
        rate_limit("plain")


@pytest.fixture
def served(app, db, tmp_path):
    """The test app over HTTP on a thread; returns the environment of a flow process
    talking to it."""
    with serving_in_thread(make_server("127.0.0.1", free_port(), app, threaded=True)) as server:
        api_url = f"http://127.0.0.1:{server.server_port}/api"
        yield (
            orion_env(
                tmp_path / "home",
                ORION_API_URL=api_url,
                ORION_RESULTS_STORAGE=tmp_path / "results",
                PYTHONPATH=os.environ.get("PYTHONPATH", ""),
            ),
            api_url,
        )


SERIAL = """
    import os
    import pathlib
    import time
    from client import flow
    from client.sdk.concurrency import concurrency

    @flow
    def hold():
        # Both processes ask at about the same time: each waits until both are ready.
        pathlib.Path(f"ready{os.getpid()}").touch()
        while len(list(pathlib.Path(".").glob("ready*"))) < 2:
            time.sleep(0.01)
        asked = time.time()
        with concurrency("serial"):
            start = time.time()
            time.sleep(0.8)
            end = time.time()
        print(f"SPAN {asked} {start} {end}", flush=True)

    hold()
"""


def test_a_limit_of_one_serialises_two_flow_processes(served, tmp_path):
    env, api_url = served
    with OrionClient(api_url, settings=Settings(api_retries=2)) as api:
        api.create_global_concurrency_limit("serial", 1)
        processes = [start_script(tmp_path, f"serial{i}", SERIAL, env) for i in range(2)]
        for process in processes:
            assert process.wait(120) == 0, (tmp_path / "serial0.out").read_text()
        spans = sorted(
            (float(start), float(end), float(asked))
            for i in range(2)
            for asked, start, end in re.findall(
                r"SPAN (\S+) (\S+) (\S+)", (tmp_path / f"serial{i}.out").read_text()
            )
        )
        assert len(spans) == 2, spans
        (_, first_end, _), (second_start, _, second_asked) = spans
        # The second asked while the first held its slot, and got it only after.
        assert second_asked < first_end <= second_start, spans
        limit = api.read_global_concurrency_limit("serial")
        assert limit["active_slots"] == 0


HOLDER = """
    import time
    from client.sdk.concurrency import concurrency

    with concurrency("gpu", lease_seconds=2):
        print("HELD", flush=True)
        time.sleep(600)
"""


def test_a_killed_holders_slot_comes_back_after_its_lease(app, served, tmp_path):
    env, api_url = served
    with OrionClient(api_url, settings=Settings(api_retries=2)) as api:
        api.create_global_concurrency_limit("gpu", 1)
        holder = start_script(tmp_path, "holder", HOLDER, env)
        try:
            deadline = time.monotonic() + 60
            while "HELD" not in (tmp_path / "holder.out").read_text():
                assert holder.poll() is None, (tmp_path / "holder.out").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.05)
            # Renewed while it lives: past the first lease, the liveness pass keeps it.
            time.sleep(2.5)
            assert periodic.check_liveness(app.config)["released_leases"] == 0
            assert api.read_global_concurrency_limit("gpu")["active_slots"] == 1
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        time.sleep(2.2)
        assert periodic.check_liveness(app.config)["released_leases"] == 1
        assert api.read_global_concurrency_limit("gpu")["active_slots"] == 0
        with using_client(api), concurrency("gpu", timeout_seconds=5):
            assert api.read_global_concurrency_limit("gpu")["active_slots"] == 1
