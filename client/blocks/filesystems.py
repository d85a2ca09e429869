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
import contextlib
import fnmatch
import functools
import os
import shutil
import socket
import typing
import urllib.parse
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, field_validator

from client.blocks.core import Block
from client.blocks.system import PREFECT_SYSTEM_SCHEMA_VERSION

__all__ = [
    "WritableFileSystem",
    "WritableDeploymentStorage",
    "LocalFileSystem",
    "RemoteFileSystem",
    "ObjectStorage",
    "S3",
    "GCS",
    "Azure",
    "SMB",
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


class ObjectStorage(WritableFileSystem, WritableDeploymentStorage, abc.ABC):
    """A folder in a bucket of an object store (``bucket_path``: ``bucket/folder``), used
    through its fsspec driver, which is an optional extra (``orion[s3]``, ``orion[gcs]``,
    ``orion[azure]``) imported on first use. Credentials come from the block's secret fields
    when set, else from the driver's usual environment variables and files.

    Writes are all-or-nothing: an object store makes an object visible only once its upload
    has completed (a single PUT, or a multipart upload committed at its end), so a result or
    code file is either all there or absent. Every filesystem is made fresh (no fsspec
    instance or listing cache shared between loads), so an agent downloading a deployment's
    code sees what was last uploaded.

    A store that does not answer fails the call promptly: each request is tried ``ATTEMPTS``
    times in all (refused connections, timeouts, throttling and server errors alike), each
    try waiting at most ``TIMEOUT`` seconds for the connection and then for each next part of
    the answer (the time spent sending an upload's bytes is not counted). A store that
    refuses connections fails in a second or two, one that accepts them and stays silent in
    about ``ATTEMPTS * TIMEOUT`` seconds, with the driver's error (the drivers' own policies
    would wait minutes). An upload is also given up ``TIMEOUT`` seconds after the store
    last took any of its bytes (:func:`_stall_bounded_socket`), so one to a store that stops
    reading ends too, however large.
    """

    ATTEMPTS: typing.ClassVar[int] = 2
    TIMEOUT: typing.ClassVar[int] = 6

    _protocol: typing.ClassVar[str]
    # The pip extra that installs the driver (named in the error when it is missing).
    _extra: typing.ClassVar[str]

    bucket_path: str

    _fs: typing.Any = PrivateAttr(default=None)

    @property
    def basepath(self) -> str:
        """The block's folder as an fsspec URL (``s3://bucket/folder``)."""
        return f"{self._protocol}://{self.bucket_path.strip('/')}"

    @abc.abstractmethod
    def _settings(self) -> dict[str, Any]:
        """The fsspec filesystem's options: credentials and endpoint from the block's fields."""

    def _filesystem_class(self) -> Any:
        """The fsspec filesystem class of ``_protocol`` (ImportError when its driver is not
        installed)."""
        import fsspec

        return fsspec.get_filesystem_class(self._protocol)

    def _remote(self) -> RemoteFileSystem:
        remote = RemoteFileSystem(basepath=self.basepath)
        if self._fs is None:
            try:
                self._fs = self._filesystem_class()(skip_instance_cache=True, **self._settings())
            except ImportError as error:
                raise ImportError(
                    f"The {self.get_block_type_slug()!r} block needs the {self._extra} extra: "
                    f"pip install 'orion[{self._extra}]' ({error})"
                ) from error
        remote._fs = self._fs
        return remote

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem (made on first use)."""
        return self._remote().filesystem

    @contextlib.contextmanager
    def _timeouts_named(self) -> typing.Iterator[None]:
        """fsspec turns a driver's timeout (aiohttp's, for gcsfs) into an FSTimeoutError
        without a message: say which store did not answer, and the driver's words."""
        from fsspec.exceptions import FSTimeoutError

        try:
            yield
        except FSTimeoutError as error:
            cause = error.__cause__
            raise TimeoutError(
                f"{self.basepath}: no answer in {self.ATTEMPTS} tries of {self.TIMEOUT} s "
                f"({type(cause).__name__}: {cause})"
            ) from error

    def read_path(self, path: PathArg) -> bytes:
        with self._timeouts_named():
            return self._remote().read_path(path)

    def write_path(self, path: PathArg, content: bytes) -> str:
        remote = self._remote()
        target = remote._resolve(path)
        with self._timeouts_named():
            remote.filesystem.pipe_file(target, content)  # object stores have no folders
        return target

    def get_directory(
        self, from_path: PathArg | None = None, local_path: PathArg | None = None
    ) -> None:
        remote = self._remote()
        remote.filesystem.invalidate_cache()
        with self._timeouts_named():
            remote.get_directory(from_path, local_path)

    def put_directory(
        self,
        local_path: PathArg | None = None,
        to_path: PathArg | None = None,
        ignore_file: PathArg | None = None,
    ) -> int:
        source = Path(local_path or ".").resolve()
        remote = self._remote()
        destination = remote._resolve(to_path)
        files = code_files(source, ignore_file)
        with self._timeouts_named():
            for relative in files:
                remote.filesystem.put_file(str(source / relative), f"{destination}/{relative}")
        remote.filesystem.invalidate_cache()
        return len(files)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _stall_bounded_socket(timeout: int, addr_info: tuple[Any, ...]) -> socket.socket:
    """A TCP socket for an object store's connection that gives up on a peer which
    acknowledges none of the bytes sent to it for ``timeout`` seconds (``TCP_USER_TIMEOUT``,
    which Linux also applies to a receive window the peer keeps shut); aiohttp's
    ``socket_factory`` with ``timeout`` bound.

    The drivers' read timeouts start once a request's body is sent: a store that takes the
    connection and stops reading (a frozen process, for which the kernel still accepts) lets
    an upload's first megabytes into its socket buffers and holds the rest forever. With this
    the upload fails with a connection error after ``timeout`` seconds without progress,
    however large it is. Where the option does not exist (not Linux), a plain socket.
    """
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, timeout * 1000)
    return sock


def _stall_bounded_connector(timeout: int) -> Any:
    """An aiohttp connector whose sockets are :func:`_stall_bounded_socket` ones, giving up
    after ``timeout`` seconds without progress (made in the running loop, as aiohttp
    requires)."""
    import aiohttp

    return aiohttp.TCPConnector(socket_factory=functools.partial(_stall_bounded_socket, timeout))


@functools.cache
def _bounded_s3_filesystem() -> type:
    """s3fs's filesystem, leaving the tries to botocore (:meth:`S3._settings`) and sending
    uploads without ``Expect: 100-continue``.

    s3fs makes up to ``retries`` (its class attribute, 5) calls to botocore for a request
    that times out, each one botocore's tries; here one. botocore asks every S3 PUT and POST
    with a body to wait for ``100 Continue`` (its ``add_expect_header`` handler), and aiohttp
    waits for it with no timeout (its read timeout starts once the body is sent), so a store
    that takes the connection and never answers held an upload forever. Without the header
    the body goes at once and the read timeout bounds the wait for the answer; what is lost
    is only the early refusal of a large body by a store that would refuse it anyway.
    """
    from botocore.handlers import add_expect_header  # type: ignore[import-untyped]
    from s3fs import S3FileSystem  # type: ignore[import-untyped]

    class BoundedS3FileSystem(S3FileSystem):
        retries = 1

        async def set_session(self, refresh: bool = False, kwargs: Any = None) -> Any:
            client = await super().set_session(refresh=refresh, kwargs=kwargs or {})
            client.meta.events.unregister("before-call.s3", add_expect_header)
            return client

    return BoundedS3FileSystem


# gcsfs's methods that retry a failed request (decorated with its ``retry_request``).
GCSFS_RETRIED = ("_request", "_get_file_request", "_get_file_concurrent")


@functools.cache
def _bounded_gcs_filesystem(attempts: int, timeout: int) -> type:
    """gcsfs's plain JSON-API filesystem (the default one, for ``gs://``, first asks the
    storage-control gRPC API for the bucket's layout, which emulators do not serve), trying
    each request ``attempts`` times in all, on sockets that give up after ``timeout`` seconds
    without progress.

    gcsfs tries a failed request 6 times, waiting 1, 2, 4, 8 and 16 s in between (half a
    minute for a refused connection, and six timeouts for a silent store): a count fixed when
    its class is defined, by decorating the methods of ``GCSFS_RETRIED`` with
    ``retry_request(retries=6)``; no setting changes it. This subclass decorates the same
    methods, undecorated (``__wrapped__``, which the ``decorator`` package gcsfs uses sets),
    with gcsfs's own ``retry_request`` and ``attempts``. tests/storage/test_store_bounds.py
    fails when gcsfs retries elsewhere or otherwise.
    """
    from gcsfs.core import GCSFileSystem  # type: ignore[import-untyped]
    from gcsfs.retry import retry_request  # type: ignore[import-untyped]

    methods: dict[str, Any] = {
        name: retry_request(retries=attempts)(getattr(GCSFileSystem, name).__wrapped__)
        for name in GCSFS_RETRIED
    }

    async def _set_session(self: Any) -> Any:
        # gcsfs makes its aiohttp session here, in the loop a connector needs.
        if self._session is None:
            connector = _stall_bounded_connector(timeout)
            self.session_kwargs = {**self.session_kwargs, "connector": connector}
        return await GCSFileSystem._set_session(self)

    methods["_set_session"] = _set_session
    return type("BoundedGCSFileSystem", (GCSFileSystem,), methods)


@functools.cache
def _bounded_azure_filesystem(attempts: int, timeout: int) -> type:
    """adlfs's filesystem whose blob service client tries each request ``attempts`` times in
    all, a second or so apart, and waits at most ``timeout`` seconds for a connection and for
    each next part of an answer.

    adlfs makes that client (in ``do_connect``) with Azure's defaults: 4 tries 15, 18 and
    24 s apart, waiting 20 s for a connection and 60 s for an answer; its own timeout settings
    reach only uploads and downloads, not listings. This subclass's ``do_connect`` makes the
    same client again (its URL, credential and secondary host) with these options.
    """
    import aiohttp
    from adlfs import AzureBlobFileSystem  # type: ignore[import-untyped]
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

    class _StallBoundedAzureTransport(AioHttpTransport):
        async def open(self) -> None:
            # Azure's transport makes its aiohttp session on first use (in the loop a
            # connector needs); the same session with a connector of stall-bounded sockets.
            opened = self._has_been_opened
            if self.session is None and self._session_owner and not opened:  # type: ignore[has-type]
                self.session = aiohttp.ClientSession(
                    trust_env=self._use_env_settings,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    auto_decompress=False,
                    connector=_stall_bounded_connector(timeout),
                )
            await super().open()

    class BoundedAzureBlobFileSystem(AzureBlobFileSystem):
        def do_connect(self) -> None:
            super().do_connect()
            made: BlobServiceClient = self.service_client  # type: ignore[has-type]
            self.service_client = BlobServiceClient(
                made.url,
                credential=made.credential,
                secondary_hostname=made.secondary_hostname,
                retry_policy=ExponentialRetry(
                    initial_backoff=1,
                    increment_base=2,
                    retry_total=attempts - 1,
                    random_jitter_range=1,
                ),
                transport=_StallBoundedAzureTransport(
                    connection_timeout=timeout, read_timeout=timeout
                ),
            )

    return BoundedAzureBlobFileSystem


class S3(ObjectStorage):
    """A folder of an S3 bucket, on AWS or any S3-compatible store (MinIO, Ceph ...) named by
    ``endpoint_url``. Keys from the block, else the AWS environment (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, profiles, instance roles).

    Prefect 2.7.12's ``s3`` type plus ``endpoint_url``: documents either side saves load on
    the other (Prefect's blocks keep unknown fields; this one defaults the missing one).
    """

    _block_type_name = "S3"
    _description = "Store data as a file on AWS S3."
    _logo_url = "https://images.ctfassets.net/gm98wzqotmnx/1jbV4lceHOjGgunX15lUwT/db88e184d727f721575aeb054a37e277/aws.png?h=250"
    _documentation_url = "https://docs.prefect.io/concepts/filesystems/#s3"
    _code_example = 'Load stored S3 config:\n```python\nfrom prefect.filesystems import S3\n\ns3_block = S3.load("BLOCK_NAME")\n```'  # noqa: E501
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION
    _protocol = "s3"
    _extra = "s3"

    bucket_path: str = Field(
        description="An S3 bucket path.",
        json_schema_extra={"example": "my-bucket/a-directory-within"},
    )
    aws_access_key_id: SecretStr | None = Field(
        default=None,
        title="AWS Access Key ID",
        description="Equivalent to the AWS_ACCESS_KEY_ID environment variable.",
        json_schema_extra={"example": "AKIAIOSFODNN7EXAMPLE"},
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        title="AWS Secret Access Key",
        description="Equivalent to the AWS_SECRET_ACCESS_KEY environment variable.",
        json_schema_extra={"example": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
    )
    endpoint_url: str | None = Field(
        default=None,
        title="Endpoint URL",
        description="The URL of an S3-compatible store (e.g. MinIO); empty for AWS. "
        "Equivalent to the AWS_ENDPOINT_URL environment variable.",
        json_schema_extra={"example": "http://127.0.0.1:9000"},
    )

    def _filesystem_class(self) -> Any:
        return _bounded_s3_filesystem()

    def _settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        if self.aws_access_key_id is not None:
            settings["key"] = _secret(self.aws_access_key_id)
        if self.aws_secret_access_key is not None:
            settings["secret"] = _secret(self.aws_secret_access_key)
        if self.endpoint_url:
            settings["endpoint_url"] = self.endpoint_url
        # botocore makes the tries and bounds each (its default waits 60 s for an answer).
        settings["config_kwargs"] = {
            "retries": {"total_max_attempts": self.ATTEMPTS, "mode": "standard"},
            "connect_timeout": self.TIMEOUT,
            "read_timeout": self.TIMEOUT,
            "connector_args": {
                "socket_factory": functools.partial(_stall_bounded_socket, self.TIMEOUT)
            },
        }
        return settings


class GCS(ObjectStorage):
    """A folder of a Google Cloud Storage bucket. Credentials from ``service_account_info``
    (a key file's JSON), else Google's defaults (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud,
    the metadata server); ``STORAGE_EMULATOR_HOST`` points it at an emulator.

    Prefect 2.7.12's ``gcs`` type (same fields and schema checksum).
    """

    _block_type_name = "GCS"
    _description = "Store data as a file on Google Cloud Storage."
    _logo_url = "https://images.ctfassets.net/gm98wzqotmnx/4CD4wwbiIKPkZDt4U3TEuW/c112fe85653da054b6d5334ef662bec4/gcp.png?h=250"
    _documentation_url = "https://docs.prefect.io/concepts/filesystems/#gcs"
    _code_example = 'Load stored GCS config:\n```python\nfrom prefect.filesystems import GCS\n\ngcs_block = GCS.load("BLOCK_NAME")\n```'  # noqa: E501
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION
    _protocol = "gs"
    _extra = "gcs"

    bucket_path: str = Field(
        description="A GCS bucket path.",
        json_schema_extra={"example": "my-bucket/a-directory-within"},
    )
    service_account_info: SecretStr | None = Field(
        default=None, description="The contents of a service account keyfile as a JSON string."
    )
    project: str | None = Field(
        default=None,
        description="The project the GCS bucket resides in. If not provided, the project "
        "will be inferred from the credentials or environment.",
    )

    def _filesystem_class(self) -> Any:
        return _bounded_gcs_filesystem(self.ATTEMPTS, self.TIMEOUT)

    def _settings(self) -> dict[str, Any]:
        import json

        import aiohttp

        # gcsfs hands this to aiohttp for every request (its default: no time limit at all).
        settings: dict[str, Any] = {
            "requests_timeout": aiohttp.ClientTimeout(
                sock_connect=self.TIMEOUT, sock_read=self.TIMEOUT
            )
        }
        if self.service_account_info is not None:
            settings["token"] = json.loads(self.service_account_info.get_secret_value())
        elif os.environ.get("STORAGE_EMULATOR_HOST"):
            settings["token"] = "anon"  # an emulator takes no credentials
        if self.project:
            settings["project"] = self.project
        return settings


class Azure(ObjectStorage):
    """A folder of an Azure Blob Storage (or Data Lake) container: ``bucket_path`` is
    ``container/folder``. Credentials from the block's fields (a connection string, or an
    account name with its key or a service principal), else the ``AZURE_STORAGE_*``
    environment variables.

    Prefect 2.7.12's ``azure`` type (same fields and schema checksum).
    """

    _block_type_name = "Azure"
    _description = "Store data as a file on Azure Datalake and Azure Blob Storage."
    _logo_url = "https://images.ctfassets.net/gm98wzqotmnx/6AiQ6HRIft8TspZH7AfyZg/39fd82bdbb186db85560f688746c8cdd/azure.png?h=250"
    _documentation_url = "https://docs.prefect.io/concepts/filesystems/#azure"
    _code_example = 'Load stored Azure config:\n```python\nfrom prefect.filesystems import Azure\n\naz_block = Azure.load("BLOCK_NAME")\n```'  # noqa: E501
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION
    _protocol = "az"
    _extra = "azure"

    bucket_path: str = Field(
        description="An Azure storage bucket path.",
        json_schema_extra={"example": "my-bucket/a-directory-within"},
    )
    azure_storage_connection_string: SecretStr | None = Field(
        default=None,
        title="Azure storage connection string",
        description="Equivalent to the AZURE_STORAGE_CONNECTION_STRING environment variable.",
    )
    azure_storage_account_name: SecretStr | None = Field(
        default=None,
        title="Azure storage account name",
        description="Equivalent to the AZURE_STORAGE_ACCOUNT_NAME environment variable.",
    )
    azure_storage_account_key: SecretStr | None = Field(
        default=None,
        title="Azure storage account key",
        description="Equivalent to the AZURE_STORAGE_ACCOUNT_KEY environment variable.",
    )
    azure_storage_tenant_id: SecretStr | None = Field(
        default=None,
        title="Azure storage tenant ID",
        description="Equivalent to the AZURE_TENANT_ID environment variable.",
    )
    azure_storage_client_id: SecretStr | None = Field(
        default=None,
        title="Azure storage client ID",
        description="Equivalent to the AZURE_CLIENT_ID environment variable.",
    )
    azure_storage_client_secret: SecretStr | None = Field(
        default=None,
        title="Azure storage client secret",
        description="Equivalent to the AZURE_CLIENT_SECRET environment variable.",
    )

    def _settings(self) -> dict[str, Any]:
        fields = {
            "connection_string": self.azure_storage_connection_string,
            "account_name": self.azure_storage_account_name,
            "account_key": self.azure_storage_account_key,
            "tenant_id": self.azure_storage_tenant_id,
            "client_id": self.azure_storage_client_id,
            "client_secret": self.azure_storage_client_secret,
        }
        settings = {k: _secret(v) for k, v in fields.items() if v is not None}
        if not settings.get("connection_string") and os.environ.get(
            "AZURE_STORAGE_CONNECTION_STRING"
        ):
            settings["connection_string"] = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        return settings

    def _filesystem_class(self) -> Any:
        return _bounded_azure_filesystem(self.ATTEMPTS, self.TIMEOUT)


class SMB(WritableFileSystem, WritableDeploymentStorage):
    """A folder of an SMB (Windows, Samba) share: ``share_path`` is ``/SHARE/folder`` on
    ``smb_host``, through fsspec's SMB driver (smbprotocol, the ``orion[smb]`` extra).

    Writes are all-or-nothing: a file is written under a temporary name at the share's root
    and then renamed over its target in one server-side operation (fsspec's uncommitted
    write), so a result or code file is either all there or absent, and a code file uploaded
    again replaces the old one in place. A server that does not answer fails after one
    connection attempt of ``CONNECT_TIMEOUT`` seconds (the driver would otherwise retry with
    waits of 1, 10 and 100 s).

    Prefect 2.7.12's ``smb`` type (same fields and schema checksum).
    """

    _block_type_name = "SMB"
    _description = "Store data as a file on a SMB share."
    _logo_url = "https://images.ctfassets.net/gm98wzqotmnx/6J444m3vW6ukgBOCinSxLk/025f5562d3c165feb7a5df599578a6a8/samba_2010_logo_transparent_151x27.png?h=250"
    _documentation_url = "https://docs.prefect.io/concepts/filesystems/#smb"
    _code_example = 'Load stored SMB config:\n\n```python\nfrom prefect.filesystems import SMB\nsmb_block = SMB.load("BLOCK_NAME")\n```'  # noqa: E501
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    CONNECT_TIMEOUT: typing.ClassVar[int] = 10

    share_path: str = Field(
        description="SMB target (requires <SHARE>, followed by <PATH>).",
        json_schema_extra={"example": "/SHARE/dir/subdir"},
    )
    smb_username: SecretStr | None = Field(
        default=None,
        title="SMB Username",
        description="Username with access to the target SMB SHARE.",
    )
    smb_password: SecretStr | None = Field(
        default=None, title="SMB Password", description="Password for SMB access."
    )
    # "tile" (sic) is in Prefect's schema, so in its checksum.
    smb_host: str = Field(
        description="SMB server/hostname.", json_schema_extra={"tile": "SMB server/hostname"}
    )
    smb_port: int | None = Field(
        default=None, title="SMB port", description="SMB port (default: 445)."
    )

    _fs: typing.Any = PrivateAttr(default=None)

    @property
    def basepath(self) -> str:
        """The block's folder as an fsspec URL (``smb://host/SHARE/folder``)."""
        return f"smb://{self.smb_host.rstrip('/')}/{self.share_path.strip('/')}"

    def _remote(self) -> RemoteFileSystem:
        remote = RemoteFileSystem(basepath=self.basepath)
        if self._fs is None:
            try:
                from fsspec.implementations.smb import SMBFileSystem
            except ImportError as error:
                raise ImportError(
                    f"The 'smb' block needs the smb extra: pip install 'orion[smb]' ({error})"
                ) from error
            self._fs = SMBFileSystem(
                host=self.smb_host,
                port=self.smb_port,
                username=_secret(self.smb_username),
                password=_secret(self.smb_password),
                timeout=self.CONNECT_TIMEOUT,
                # One try: with 1 retry, fsspec computes its wait as 0 / 0 (ZeroDivisionError).
                register_session_retries=0,
                skip_instance_cache=True,
            )
        remote._fs = self._fs
        return remote

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem (made on first use)."""
        return self._remote().filesystem

    def read_path(self, path: PathArg) -> bytes:
        return self._remote().read_path(path)

    def _write(self, remote: RemoteFileSystem, target: str, content: bytes) -> None:
        fs = remote.filesystem
        path = fs._strip_protocol(target)  # the driver's makedirs takes only a bare path
        fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        pending = fs.open(path, "wb", autocommit=False)
        try:
            pending.write(content)
            pending.close()
        except BaseException:
            pending.discard()
            raise
        pending.commit()

    def write_path(self, path: PathArg, content: bytes) -> str:
        remote = self._remote()
        target = remote._resolve(path)
        self._write(remote, target, content)
        return target

    def get_directory(
        self, from_path: PathArg | None = None, local_path: PathArg | None = None
    ) -> None:
        self._remote().get_directory(from_path, local_path)

    def put_directory(
        self,
        local_path: PathArg | None = None,
        to_path: PathArg | None = None,
        ignore_file: PathArg | None = None,
    ) -> int:
        source = Path(local_path or ".").resolve()
        remote = self._remote()
        destination = remote._resolve(to_path)
        files = code_files(source, ignore_file)
        for relative in files:
            self._write(remote, f"{destination}/{relative}", (source / relative).read_bytes())
        return len(files)
