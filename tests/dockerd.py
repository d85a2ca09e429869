"""A private Docker daemon for the tests, and the base image flows run in.

:class:`Dockerd` starts ``dockerd`` with everything of its own (``--data-root``,
``--exec-root``, a unix socket and pid file in a fresh folder under ``/tmp``: unix socket
paths are short), without touching the host's network (``--iptables=false
--bridge=none``: containers use ``network_mode="host"``, which reaches a test server on
127.0.0.1), with ``--live-restore`` (a daemon that stops leaves its containers running, as
one that crashes does, and finds them again when it starts). ``stop()`` removes its
containers, ends it (SIGTERM, SIGKILL after 20 s), unmounts what it left under its exec root
(an ``nsfs`` mount) and removes the folder (in the background); ``stop(remove=False)`` only
ends the daemon, for a later ``start()``.

:func:`ensure_base_image` gives the daemon :data:`BASE_IMAGE`, a minimal Debian bookworm
with Python 3 (no registry is reachable here, so it is made, not pulled): the first time,
``debootstrap --variant=minbase`` from the Debian mirror the machine's apt uses (about a
minute) + ``docker import``, saved with ``docker save`` as ``<name>-<recipe>.tar`` in the
user's cache (``$XDG_CACHE_HOME/orion-tests/docker``, default ``~/.cache``), where later
runs, from this checkout or a fresh clone, ``docker load`` it (a few seconds); ``<recipe>``
is a digest of how the image is made, so a changed recipe builds a new one. A file lock
keeps two test runs from building it at once.
"""

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orion-tests" / "docker"
BASE_IMAGE = "orion-test-base:bookworm"
_SUITE = "bookworm"
_PACKAGES = "python3,python3-venv,python3-pip"
# What the base image's root file system may do without: docs, locales, apt's caches.
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt")
_RECIPE = hashlib.sha256(repr((_SUITE, _PACKAGES, _TRIM)).encode()).hexdigest()[:12]
_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


class Dockerd:
    """A ``dockerd`` of this test run (see the module docstring); ``url`` is its
    ``unix://`` address, ``env`` what a ``docker`` command or SDK client needs to reach it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="orion-dockerd-"))
        self.socket = self.folder / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.env = {**os.environ, "DOCKER_HOST": self.url}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> "Dockerd":
        log = open(self.folder / "dockerd.log", "wb")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                str(self.folder / "data"),
                "--exec-root",
                str(self.folder / "exec"),
                "--pidfile",
                str(self.folder / "dockerd.pid"),
                "--host",
                self.url,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--live-restore",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log()[-2000:]}")
            if self.docker("info", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not answer in {timeout} s: {self.log()[-2000:]}")

    def log(self) -> str:
        return (self.folder / "dockerd.log").read_text(errors="replace")

    def docker(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run ``docker ARGS`` against this daemon."""
        return subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, check=check, **kwargs
        )

    def stop(self, remove: bool = True) -> None:
        """Stop the daemon and unmount what it left; ``remove=False`` keeps its folder
        (images, containers), so that ``start()`` brings it back as it was."""
        if remove and self.process is not None and self.process.poll() is None:
            leftover = self.docker("ps", "-aq", check=False).stdout.split()
            if leftover:
                self.docker("rm", "-f", *[c.decode() for c in leftover], check=False)
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if remove:
            for mount in reversed(_mounts_under(self.folder)):
                subprocess.run(["umount", "-l", mount], capture_output=True)
            # Removing the image layers takes seconds: a detached rm does it after the tests.
            subprocess.run(["sh", "-c", 'rm -rf "$0" >/dev/null 2>&1 &', str(self.folder)])

    def __enter__(self) -> "Dockerd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    return [point for point in points if point.startswith(prefix)]


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (``URIs`` of its bookworm suite)."""
    if _SOURCES.exists():
        for stanza in _SOURCES.read_text().split("\n\n"):
            if re.search(r"^Suites:(?:.*\s)?bookworm(?:\s|$)", stanza, re.M):
                match = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if match:
                    return match.group(1)
    return "http://deb.debian.org/debian"


def ensure_base_image(dockerd: Dockerd, image: str = BASE_IMAGE) -> str:
    """Make sure ``dockerd`` has ``image`` (see the module docstring); returns its name."""
    if dockerd.docker("image", "inspect", image, check=False).returncode == 0:
        return image
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = CACHE / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', image)}-{_RECIPE}.tar"
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tar.exists():
            _build_base(dockerd, image, tar)
            return image
    dockerd.docker("load", "-i", str(tar))
    return image


def _build_base(dockerd: Dockerd, image: str, tar: Path) -> None:
    rootfs = Path(tempfile.mkdtemp(prefix="orion-rootfs-", dir=CACHE))
    try:
        done = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={_PACKAGES}",
                _SUITE,
                str(rootfs),
                debian_mirror(),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed: {done.stdout[-3000:]}{done.stderr[-3000:]}")
        for part in _TRIM:
            shutil.rmtree(rootfs / part, ignore_errors=True)
        for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        # The context closes tar's pipe and waits for it (an open pipe is a ResourceWarning).
        with subprocess.Popen(
            ["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        ) as packer:
            subprocess.run(
                ["docker", "import", "--change", 'CMD ["python3"]', "-", image],
                stdin=packer.stdout,
                env=dockerd.env,
                capture_output=True,
                check=True,
            )
        if packer.returncode != 0:
            raise RuntimeError("tar of the base image's root file system failed")
        partial = tar.with_suffix(".tar.partial")
        dockerd.docker("save", "-o", str(partial), image)
        partial.rename(tar)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
