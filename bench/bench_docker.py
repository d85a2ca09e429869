"""Docker flow run start overhead (issue 19): from the agent's claim to the run's first log line.

Starts a private ``dockerd`` (tests/dockerd.py: its own data root and socket; the base image
from the cache in ``.cache/docker``, built with debootstrap the first time), builds the flow
image with ``orion image build`` (so the image is present before anything is timed), a real
``orion start`` on SQLite in a temporary ORION_HOME, and one ``orion agent start`` polling
every 0.5 s. A deployment of a flow that prints one line runs on a ``docker-container`` block
(host network, its code folder mounted at the same path). ``--runs`` runs are made due one
after the other, each once the previous one is final. For each run (the server's and the
agent's timestamps, one machine):

- **claim → first log line**: the earliest log record of the run (the engine's, or the
  container's output sent by the agent) minus its PENDING state's timestamp (the claim).
  Budget: ≤ 3 s.
- claim → RUNNING: the engine in the container reporting the run started.
- claim → final: the whole run, container removal excluded.

Every run must end Completed, or the script says which did not.

Usage: python bench/bench_docker.py [--runs 10] [--port 4470]
Needs root (dockerd), ``docker.io`` and ``debootstrap`` (scripts/test installs them) and the
package installed with the docker extra. Prints a Markdown table.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client import OrionClient
from client.api.settings import Settings
from client.api.states import Scheduled
from client.infrastructure import DockerContainer
from tests.dockerd import BASE_IMAGE, Dockerd, ensure_base_image

IMAGE = "orion-flows:bench"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
FLOW = """
from client.sdk.flows import flow


@flow
def hello():
    print("hello from the container", flush=True)
    return 1
"""


def orion_script():
    return os.path.join(os.path.dirname(sys.executable), "orion")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def healthy(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def seconds(later, earlier):
    return (later - earlier).total_seconds()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--port", type=int, default=4470)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="orion-bench-docker-") as scratch, Dockerd() as daemon:
        scratch = Path(scratch)
        os.environ["DOCKER_HOST"] = daemon.url
        ensure_base_image(daemon)
        subprocess.run(
            [orion_script(), "image", "build", "-t", IMAGE, "--base", BASE_IMAGE],
            env=clean_env(),
            check=True,
            capture_output=True,
        )
        code = scratch / "code"
        code.mkdir()
        (code / "flows.py").write_text(FLOW)
        api_url = f"http://127.0.0.1:{args.port}/api"
        home = scratch / "home"
        server = subprocess.Popen(
            [orion_script(), "start", "--port", str(args.port)],
            env=clean_env(ORION_HOME=home, ORION_SCHEDULER_ENABLED="false"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        agent = None
        try:
            wait_until(lambda: healthy(f"{api_url}/health"), 60, "the server")
            orion = OrionClient(api_url, settings=Settings(api_retries=2))
            block = DockerContainer(
                image=IMAGE,
                image_pull_policy="NEVER",
                network_mode="host",
                volumes=[f"{code}:{code}"],
            )
            block.save("bench", client=orion, overwrite=True)
            flow_id = orion.create_flow_from_name("hello")
            deployment = orion.create_deployment(
                flow_id,
                "docker-bench",
                path=str(code),
                entrypoint="flows.py:hello",
                work_queue_name="docker-bench",
                infrastructure_document_id=block._block_document_id,
            )
            agent = subprocess.Popen(
                [orion_script(), "agent", "start", "-q", "docker-bench"],
                env=clean_env(
                    ORION_HOME=home,
                    ORION_API_URL=api_url,
                    ORION_AGENT_QUERY_INTERVAL=0.5,
                    ORION_AGENT_PREFETCH_SECONDS=0,
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            to_log, to_running, to_final, bad = [], [], [], []
            for _ in range(args.runs):
                run = orion.create_flow_run_from_deployment(deployment.id, state=Scheduled())
                wait_until(
                    lambda run_id=run.id: orion.read_flow_run(run_id).state_type in FINAL,
                    120,
                    f"run {run.id}",
                )
                final = orion.read_flow_run(run.id)
                if not (final.infrastructure_pid or "").startswith(daemon.url + ":"):
                    raise SystemExit(f"run {run.id} did not run in a container of {daemon.url}")
                if final.state_type != "COMPLETED":
                    bad.append((run.id, final.state_type, final.state.message))
                    continue
                states = {s.type.value: s.timestamp for s in orion.read_flow_run_states(run.id)}
                logs = orion.read_logs(log_filter={"flow_run_id": {"any_": [run.id]}})
                claimed = states["PENDING"]
                to_log.append(seconds(min(log.timestamp for log in logs), claimed))
                to_running.append(seconds(states["RUNNING"], claimed))
                to_final.append(seconds(states["COMPLETED"], claimed))
        finally:
            for process in (agent, server):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=60)
    if bad:
        raise SystemExit(f"runs that did not complete: {bad}")
    load = os.getloadavg()[0]
    print(f"{len(to_log)} runs, load average {load:.2f}\n")
    print("| figure | budget | median | max |")
    print("|---|---|---|---|")
    for name, values, budget in (
        ("claim → first log line", to_log, "≤ 3 s"),
        ("claim → RUNNING", to_running, ""),
        ("claim → COMPLETED", to_final, ""),
    ):
        print(f"| {name} | {budget} | {statistics.median(values):.2f} s | {max(values):.2f} s |")


if __name__ == "__main__":
    main()
