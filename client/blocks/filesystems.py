"""File system blocks: where flow code is uploaded and results are written.

``LocalFileSystem(basepath=...)`` is a folder on this machine (or a share every machine mounts
at the same path); ``RemoteFileSystem(basepath="s3://bucket/folder", settings={...})`` is any
fsspec URL, ``settings`` going to the fsspec filesystem (credentials, endpoint ...), which
works once that filesystem's fsspec driver is installed. Both are Prefect 2.7.12's
``local-file-system`` and ``remote-file-system`` types (same fields and schema checksums) with
its methods: ``read_path``/``write_path`` for single files and ``get_directory``/
``put_directory`` for a flow's code. Paths are relative to ``basepath``; a path that escapes it
is a ValueError.
"""

import abc
import fnmatch
import os
import shutil
import typing
import urllib.parse
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from client.blocks.core import Block
from client.blocks.system import PREFECT_SYSTEM_SCHEMA_VERSION

__all__ = [
    "WritableFileSystem",
    "WritableDeploymentStorage",
    "LocalFileSystem",
    "RemoteFileSystem",
    "code_files",
]

# Folders and files never uploaded with a flow's code.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".venv", "venv", "node_modules"})
SKIPPED_SUFFIXES = (".pyc",)
# A file or folder path, as the block methods take them.
PathArg = str | os.PathLike[str]


def code_files(folder: PathArg, ignore_file: PathArg | None = None) -> list[str]:
    """The files of ``folder`` to upload, as paths relative to it ("/"-separated, sorted):
    caches, VCS folders and virtual environments left out, and the glob patterns listed in
    ``ignore_file`` (one a line, ``#`` comments; e.g. a ``.prefectignore``) when it exists."""
    patterns: list[str] = []
    if ignore_file and os.path.isfile(ignore_file):
        with open(ignore_file) as handle:
            patterns = [
                line.strip()
                for line in handle
                if line.strip() and not line.lstrip().startswith("#")
            ]
    found: list[str] = []
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS)
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(directory, name), folder).replace(os.sep, "/")
            if name.endswith(SKIPPED_SUFFIXES) or any(
                fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns
            ):
                continue
            found.append(relative)
    return found


class WritableFileSystem(Block, abc.ABC):
    """A file system whose files can be read and written (``read_path``, ``write_path``)."""

    _block_schema_capabilities: typing.ClassVar[list[str]] = ["read-path", "write-path"]

    @abc.abstractmethod
    def read_path(self, path: PathArg) -> bytes:
        """The bytes of the file ``path``; FileNotFoundError if there is none."""

    @abc.abstractmethod
    def write_path(self, path: PathArg, content: bytes) -> str:
        """Write the bytes ``content`` as the file ``path`` (folders made as needed); returns
        where it was written."""


class WritableDeploymentStorage(Block, abc.ABC):
    """Where a deployment's code is uploaded once and downloaded on every run."""

    _block_schema_capabilities: typing.ClassVar[list[str]] = ["get-directory", "put-directory"]

    @abc.abstractmethod
    def get_directory(
        self, from_path: PathArg | None = None, local_path: PathArg | None = None
    ) -> None:
        """Copy the folder ``from_path`` (default: the base path) into ``local_path``."""

    @abc.abstractmethod
    def put_directory(
        self,
        local_path: PathArg | None = None,
        to_path: PathArg | None = None,
        ignore_file: PathArg | None = None,
    ) -> int:
        """Upload the folder ``local_path`` to ``to_path``; returns the number of files."""


class LocalFileSystem(WritableFileSystem, WritableDeploymentStorage):
    """A folder of this machine's file system (default: the working directory)."""

    _block_type_name = "Local File System"
    _description = "Store data as a file on a local file system."
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    basepath: str | None = Field(
        default=None, description="Default local path for this block to write to."
    )

    def _resolve(self, path: PathArg | None) -> Path:
        base = Path(self.basepath).expanduser().resolve() if self.basepath else Path(".").resolve()
        if path is None:
            return base
        target = Path(path).expanduser()
        target = (base / target).resolve() if not target.is_absolute() else target.resolve()
        if target != base and base not in target.parents:
            raise ValueError(f"Path {str(path)!r} is outside of the base path {str(base)!r}.")
        return target

    def read_path(self, path: PathArg) -> bytes:
        return self._resolve(path).read_bytes()

    def write_path(self, path: PathArg, content: bytes) -> str:
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return str(target)

    def get_directory(
        self, from_path: PathArg | None = None, local_path: PathArg | None = None
    ) -> None:
        source = self._resolve(from_path)
        destination = Path(local_path or ".").resolve()
        if source == destination:
            return
        shutil.copytree(source, destination, dirs_exist_ok=True)

    def put_directory(
        self,
        local_path: PathArg | None = None,
        to_path: PathArg | None = None,
        ignore_file: PathArg | None = None,
    ) -> int:
        source = Path(local_path or ".").resolve()
        destination = self._resolve(to_path)
        files = code_files(source, ignore_file)
        if source == destination:
            return len(files)
        for relative in files:
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, target)
        return len(files)


class RemoteFileSystem(WritableFileSystem, WritableDeploymentStorage):
    """A folder on any fsspec file system, named by URL (``s3://bucket/folder``,
    ``memory://x``, ``file:///srv/x`` ...); ``settings`` are the filesystem's options."""

    _block_type_name = "Remote File System"
    _description = (
        "Store data as a file on a remote file system.\n\nSupports any remote "
        "file system supported by `fsspec`. The file system is specified\nusing a "
        'protocol. For example, "s3://my-bucket/my-folder/" will use S3.'
    )
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    basepath: str = Field(
        description="Default path for this block to write to.",
        json_schema_extra={"example": "s3://my-bucket/my-folder/"},
    )
    settings: dict = Field(
        default_factory=dict, description="Additional settings to pass through to fsspec."
    )

    _fs: typing.Any = PrivateAttr(default=None)

    @field_validator("basepath")
    @classmethod
    def _basepath_is_url(cls, value: str) -> str:
        if not urllib.parse.urlsplit(value).scheme:
            raise ValueError(
                f"basepath {value!r} is not a URL with a scheme "
                "(s3://bucket/folder, memory://x, file:///srv/x ...)"
            )
        return value

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem (made on first use)."""
        if self._fs is None:
            import fsspec

            scheme = urllib.parse.urlsplit(self.basepath).scheme
            self._fs = fsspec.filesystem(scheme, **self.settings)
        return self._fs

    def _resolve(self, path: PathArg | None) -> str:
        base = self.basepath.rstrip("/")
        if path is None:
            return base
        path = str(path)
        if urllib.parse.urlsplit(path).scheme:
            if not (path == base or path.startswith(base + "/")):
                raise ValueError(f"Path {path!r} is outside of the base path {base!r}.")
            return path
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise ValueError(f"Path {path!r} is outside of the base path {base!r}.")
        return "/".join([base, *parts])

    def read_path(self, path: PathArg) -> bytes:
        return self.filesystem.cat_file(self._resolve(path))

    def write_path(self, path: PathArg, content: bytes) -> str:
        target = self._resolve(path)
        self.filesystem.makedirs(target.rpartition("/")[0], exist_ok=True)
        self.filesystem.pipe_file(target, content)
        return target

    def get_directory(
        self, from_path: PathArg | None = None, local_path: PathArg | None = None
    ) -> None:
        source = self._resolve(from_path).rstrip("/") + "/"
        destination = str(Path(local_path or ".").resolve())
        self.filesystem.get(source, destination.rstrip("/") + "/", recursive=True)

    def put_directory(
        self,
        local_path: PathArg | None = None,
        to_path: PathArg | None = None,
        ignore_file: PathArg | None = None,
    ) -> int:
        source = Path(local_path or ".").resolve()
        destination = self._resolve(to_path)
        files = code_files(source, ignore_file)
        for relative in files:
            target = f"{destination}/{relative}"
            self.filesystem.makedirs(target.rpartition("/")[0], exist_ok=True)
            self.filesystem.put_file(str(source / relative), target)
        return len(files)
