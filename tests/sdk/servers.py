"""Flow scripts run by Python in their own processes, for SDK tests (their servers:
tests.support.OrionServer)."""

import subprocess
import sys
import textwrap


def start_script(tmp_path, name, source, env):
    """Write ``source`` (dedented) to ``<tmp>/<name>.py`` and run it; returns the Popen."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    out = open(tmp_path / f"{name}.out", "ab")
    process = subprocess.Popen(
        [sys.executable, str(path)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=str(tmp_path),
    )
    out.close()
    return process


def run_script(tmp_path, name, source, env, timeout=120):
    """Run a script to its end; returns (exit code, its output)."""
    process = start_script(tmp_path, name, source, env)
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, (tmp_path / f"{name}.out").read_text()
