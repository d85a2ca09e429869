"""Take the README's screenshots (``docs/screenshots/*.png``) of a real Orion with real runs.

Starts ``orion start`` on a fresh SQLite database in a temporary home, on a free port; runs
a few real flows there through the client (a mapped task, a failing task, a subflow, markdown
and table artifacts), makes a deployment with a parameter schema and a schedule, saves a
block; then opens each page in headless Chromium (``/usr/bin/chromium`` through Playwright)
at 1280 px wide and writes its screenshot. Run it after changing how a page looks:

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORION = str(Path(sys.executable).with_name("orion"))

FLOWS = """
import time

from client import flow, task
from client.sdk.artifacts import create_markdown_artifact, create_table_artifact


@task(retries=1, retry_delay_seconds=0)
def extract(day):
    return list(range(12))


@task
def transform(row):
    time.sleep(0.05)
    if row == 7:
        raise ValueError("row 7 is malformed")
    return row * 10


@task
def load(values):
    create_table_artifact([{"rows": len(values), "total": sum(values)}], key="load-summary")
    return sum(values)


@flow
def quality_checks(values):
    return [transform(v) for v in values[:3]]


@flow(name="nightly-etl")
def nightly_etl(day: str = "2026-12-01", notify: bool = True):
    rows = extract(day)
    values = transform.map(rows)
    done = [f.result() for f in values if f.wait().is_completed()]
    quality_checks(done)
    create_markdown_artifact(
        f"# Nightly ETL {day}\\n\\n{len(done)} of {len(rows)} rows loaded; row 7 was skipped.",
        key="nightly-report",
    )
    return load(done)


if __name__ == "__main__":
    for day in ("2026-12-01", "2026-12-02", "2026-12-03"):
        nightly_etl(day)
"""

PAGES = {
    "dashboard.png": "/",
    "flow-runs.png": "/flow-runs",
    "flow-run.png": "/flow-runs/{run}",
    "deployment.png": "/deployments/{deployment}",
    "custom-run.png": "/deployments/{deployment}/custom-run",
    "blocks-catalog.png": "/blocks/catalog",
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"Orion did not answer at {url} in {timeout} s")


def seed(home, api_url):
    """Run the flows and make the deployment and the block; returns the page addresses' ids."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update(ORION_HOME=str(home), ORION_API_URL=api_url)
    flows = home / "flows"
    flows.mkdir()
    (flows / "etl.py").write_text(textwrap.dedent(FLOWS))
    subprocess.run([sys.executable, "etl.py"], cwd=flows, env=env, check=True)
    subprocess.run(
        [ORION, "deployment", "build", "etl.py:nightly_etl", "-n", "nightly", "-q", "etl",
         "--cron", "0 2 * * *", "--timezone", "Europe/Berlin"],
        cwd=flows, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    sys.path.insert(0, str(REPO))
    os.environ.update(ORION_API_URL=api_url, ORION_HOME=str(home))
    from client import get_client
    from client.blocks.system import Secret

    Secret(value="s3cr3t").save("warehouse-password")
    with get_client() as orion:
        runs = orion.read_flow_runs(sort="EXPECTED_START_TIME_DESC", limit=50)
        run = next(r for r in runs if r.parent_task_run_id is None and r.state_type == "COMPLETED")
        (deployment,) = orion.read_deployments()
    return {"run": run.id, "deployment": deployment.id}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
        env["ORION_HOME"] = str(home)
        server = subprocess.Popen(
            [ORION, "start", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(base + "/api/health")
            ids = seed(home, base + "/api")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                for name, path in PAGES.items():
                    page.goto(base + path.format(**ids))
                    page.wait_for_load_state("networkidle")
                    if "{run}" in path:
                        page.locator("[data-radar][data-drawn]").wait_for()
                        page.locator("[data-action=expand]").first.click()
                        page.locator("#graph-h").scroll_into_view_if_needed()
                    page.screenshot(path=str(Path(args.out) / name))
                    print(f"wrote {Path(args.out) / name}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
