"""``orion image build``: the Docker image flow runs start in (``DockerContainer``'s image).

The image is a base image with Python (``--base``, default ``python:3.X-slim`` for this
interpreter's 3.X) plus, under ``/opt/orion/site-packages`` (on ``PYTHONPATH``):

- the ``client`` package this process imports (the project's client: the agent's runner
  ``python3 -m client.agent.run`` and the SDK), and
- the installed distributions it needs (:data:`CLIENT_DISTRIBUTIONS`) and the flow's
  requirements (``-r requirements.txt`` lines, ``--package NAME``), each with what it
  requires, copied from this Python environment as installed here.

Nothing is downloaded and nothing runs during the build (no ``RUN`` step: it needs no network
and takes seconds): the flow's requirements must be installed where the image is built, and
the base's Python must be this one's minor version (compiled packages are copied as they are).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import pathlib
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable

from client.infrastructure.base import InfrastructureError
from client.infrastructure.docker import (
    DEFAULT_IMAGE,
    _docker_module,
    _failure,
    docker_client,
    docker_errors,
)

__all__ = [
    "CLIENT_DISTRIBUTIONS",
    "ImageBuild",
    "build_image",
    "distributions_for",
    "write_context",
]

#: What the client needs at run time (their own requirements are added).
CLIENT_DISTRIBUTIONS = ("httpx", "pydantic", "fsspec")
#: Where the image keeps the client and the copied distributions.
SITE = "/opt/orion/site-packages"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclasses.dataclass(frozen=True)
class ImageBuild:
    """A built image: its ``tag``, ``id`` and the distributions copied into it."""

    tag: str
    id: str
    distributions: list[str]


def default_base() -> str:
    """``python:3.X-slim`` for this interpreter's 3.X."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(lines: Iterable[str]) -> list[str]:
    """The distribution names of requirement lines (``pkg==1.0``, ``pkg[extra]>=2``);
    comments, blank lines and options (``-r``, ``--index-url``) are skipped."""
    names = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _NAME.match(line)
        if match:
            names.append(match.group(1))
    return names


def distributions_for(names: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``names`` and everything they require (without
    optional extras; markers evaluated for this interpreter). ValueError naming one that is
    not installed."""
    from packaging.requirements import Requirement

    found: dict[str, importlib.metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = _normal(name)
        if key in found:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ValueError(
                f"{name!r} is not installed here: install it where the image is built."
            ) from None
        found[key] = distribution
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return sorted(found.values(), key=lambda d: _normal(d.metadata["Name"]))


def write_context(folder: pathlib.Path, base: str, packages: Iterable[str]) -> list[str]:
    """Write the build context into ``folder``: the Dockerfile and ``site-packages``.
    Returns the names of the distributions copied."""
    site = folder / "site-packages"
    site.mkdir(parents=True)
    import client

    shutil.copytree(
        pathlib.Path(client.__file__).parent,
        site / "client",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    distributions = distributions_for([*CLIENT_DISTRIBUTIONS, *packages])
    for distribution in distributions:
        for file in distribution.files or []:
            relative = pathlib.PurePosixPath(str(file))
            if relative.parts[0] == ".." or "__pycache__" in relative.parts:
                continue  # scripts in bin/, byte code
            source = pathlib.Path(str(distribution.locate_file(file)))
            if not source.is_file():
                continue
            target = site / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (folder / "Dockerfile").write_text(
        f"FROM {base}\n"
        f"COPY site-packages {SITE}\n"
        f"ENV PYTHONPATH={SITE} PYTHONUNBUFFERED=1\n"
        'CMD ["python3"]\n'
    )
    return [str(d.metadata["Name"]) for d in distributions]


def build_image(
    tag: str = DEFAULT_IMAGE,
    base: str | None = None,
    packages: Iterable[str] = (),
    requirements: os.PathLike[str] | str | None = None,
) -> ImageBuild:
    """Build and tag the image (see the module docstring) on the Docker Engine of
    ``DOCKER_HOST``. ValueError for a requirement that is not installed here,
    InfrastructureError when Docker fails (the message says why)."""
    docker = _docker_module()
    names = list(packages)
    if requirements is not None:
        names += requirement_names(pathlib.Path(requirements).read_text().splitlines())
    client = docker_client()
    with contextlib.closing(client), tempfile.TemporaryDirectory(prefix="orion-image-") as scratch:
        folder = pathlib.Path(scratch)
        copied = write_context(folder, base or default_base(), names)
        try:
            image, _ = client.images.build(path=str(folder), tag=tag, rm=True, pull=False)
        except docker.errors.BuildError as error:
            lines = "".join(
                str(item.get("stream") or item.get("error") or "") for item in error.build_log
            )
            raise InfrastructureError(
                f"The image build failed: {error.msg}\n{lines}".strip()
            ) from None
        except docker_errors() as error:
            raise _failure("The image build failed", error) from None
    return ImageBuild(tag, str(image.id), copied)
