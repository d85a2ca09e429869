"""Object stores as real local processes on 127.0.0.1, for the storage tests: S3 (moto's
server), Azure Blob Storage (azurite, from npm), Google Cloud Storage
(gcp-storage-emulator), and an SMB share served by Samba's own ``smbd`` (Debian's ``samba``;
it runs as root, as scripts/test does). Each takes a port of this worker
(tests.support.free_port), starts in its own session (so stopping it takes it whole) and is
ready when its port accepts a connection.

Every emulator gives the blocks of :mod:`client.blocks.filesystems` that reach it
(:meth:`block`), the environment variables a process needs to reach it the way a user's
would (:attr:`env`), and a way to make a bucket (:meth:`make_bucket`).

Samba checks its one user's password (``SMBServer.USER``), and has one share, ``orion``. The
S3 server checks credentials (moto's IAM mode): the first requests, unauthenticated,
make a user with full access and its key, which :meth:`S3Emulator.block` uses; any other key
is refused as AWS refuses it. Azurite checks its well-known account key. The GCS emulator
takes no credentials.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from client.blocks import GCS, S3, SMB, Azure
from tests.support import free_port

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (public: it opens nothing but the emulator).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
BIN = Path(sys.executable).parent


def _listening(port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Emulator:
    """One emulator process; ``kind`` is the block type slug it serves."""

    kind = ""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.env = {}

    def argv(self):
        raise NotImplementedError

    def start(self, timeout=60):
        log = open(self.folder / f"{self.kind}.log", "ab")
        self.process = subprocess.Popen(
            self.argv(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            env={**os.environ, **self.process_env()},
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} emulator did not start:\n{self.output()}")
            time.sleep(0.1)
        self.ready()
        return self

    def process_env(self):
        return {}

    def ready(self):
        """Called once the port answers (set-up through the store's API)."""

    def output(self):
        path = self.folder / f"{self.kind}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def block(self, bucket_path, **fields):
        raise NotImplementedError

    def make_bucket(self, name):
        self.block(name).filesystem.mkdir(name)


class S3Emulator(Emulator):
    kind = "s3"

    def argv(self):
        return [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def process_env(self):
        # IAM checks on, after the three requests that make the test user and its key.
        return {"INITIAL_NO_AUTH_ACTION_COUNT": "3"}

    def ready(self):
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="orion-test")
        iam.put_user_policy(
            UserName="orion-test",
            PolicyName="all-of-s3",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "s3:*", "Resource": "*"}]}',
        )
        key = iam.create_access_key(UserName="orion-test")["AccessKey"]
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.env = {"AWS_DEFAULT_REGION": "us-east-1"}

    def block(self, bucket_path, **fields):
        values = {
            "aws_access_key_id": self.key,
            "aws_secret_access_key": self.secret,
            "endpoint_url": self.endpoint,
        }
        return S3(bucket_path=bucket_path, **{**values, **fields})


def s3_with_bucket(folder, bucket):
    """moto's S3 server started in ``folder``, with ``bucket`` made: a generator for a module
    fixture to ``yield from`` (the server stops when the fixture is torn down)."""
    emulator = S3Emulator(folder).start()
    try:
        emulator.make_bucket(bucket)
        yield emulator
    finally:
        emulator.stop()


class AzureEmulator(Emulator):
    kind = "azure"

    def argv(self):
        azurite = shutil.which("azurite-blob")
        if azurite is None:
            raise RuntimeError("azurite-blob is not installed: scripts/test installs it (npm)")
        return [
            azurite,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--location",
            str(self.folder / "data"),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ]

    def connection_string(self, key=AZURITE_KEY, endpoint=None):
        """The connection string to this emulator (or to ``endpoint``, with its account)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={endpoint or self.endpoint}/{AZURITE_ACCOUNT};"
        )

    def block(self, bucket_path, **fields):
        values = {"azure_storage_connection_string": self.connection_string()}
        return Azure(bucket_path=bucket_path, **{**values, **fields})


class GCSEmulator(Emulator):
    kind = "gcs"

    def argv(self):
        return [
            str(BIN / "gcp-storage-emulator"),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--in-memory",
        ]

    def ready(self):
        # How Google's clients (and gcsfs) are pointed at an emulator; this process's blocks
        # need it too, until stop().
        self.env = {"STORAGE_EMULATOR_HOST": self.endpoint}
        os.environ.update(self.env)

    def stop(self):
        super().stop()
        for name in self.env:
            os.environ.pop(name, None)

    def block(self, bucket_path, **fields):
        return GCS(bucket_path=bucket_path, project="orion-test", **fields)


class SMBServer(Emulator):
    kind = "smb"
    USER = "root"  # a Unix user Samba maps the share's files to; its SMB password is ours
    PASSWORD = "orion-smb-test"

    def config(self):
        folder = self.folder
        for sub in ("share", "private", "state", "cache", "lock", "run"):
            (folder / sub).mkdir(exist_ok=True)
        conf = folder / "smb.conf"
        conf.write_text(
            f"""[global]
server role = standalone server
smb ports = {self.port}
interfaces = lo
bind interfaces only = yes
private dir = {folder}/private
state directory = {folder}/state
cache directory = {folder}/cache
lock directory = {folder}/lock
pid directory = {folder}/run
log file = {folder}/smbd.log
passdb backend = tdbsam:{folder}/private/passdb.tdb
load printers = no
disable spoolss = yes
server min protocol = SMB2

[orion]
path = {folder}/share
read only = no
valid users = {self.USER}
"""
        )
        return conf

    def argv(self):
        smbd = shutil.which("smbd") or "/usr/sbin/smbd"
        if not os.path.exists(smbd):
            raise RuntimeError("smbd is not installed: scripts/test installs it (samba)")
        conf = self.config()
        subprocess.run(
            ["smbpasswd", "-c", str(conf), "-s", "-a", self.USER],
            input=f"{self.PASSWORD}\n{self.PASSWORD}\n",
            text=True,
            check=True,
            capture_output=True,
        )
        return [smbd, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)]

    def block(self, bucket_path, **fields):
        values = {
            "smb_host": "127.0.0.1",
            "smb_port": self.port,
            "smb_username": self.USER,
            "smb_password": self.PASSWORD,
        }
        return SMB(share_path=f"/{bucket_path}", **{**values, **fields})

    def stop(self):
        # smbclient keeps this process's connections in a pool of its own: close them.
        import smbclient

        smbclient.reset_connection_cache()
        super().stop()

    def make_bucket(self, name):
        if name != "orion":
            raise ValueError("the SMB server has one share, orion")


class SilentListener:
    """A store that takes connections and never answers: a port of this worker on which a
    thread accepts every connection and reads whatever is sent, writing nothing back (so a
    client's request goes out whole and its wait for the answer is what times out). With
    ``reads=False``, a frozen store: connections are taken and nothing is ever read, so an
    upload stops once the socket buffers are full. Use as a context manager; ``port`` and
    ``endpoint`` name it."""

    def __init__(self, reads=True):
        self.reads = reads
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", self.port))
        self._socket.listen(16)
        self._connections = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # shut down by __exit__
                return
            self._connections.append(connection)
            if self.reads:
                threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    @staticmethod
    def _drain(connection):
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass

    @property
    def connections(self):
        """How many connections it has taken so far."""
        return len(self._connections)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        # shutdown() wakes the threads blocked in accept() and recv() (close() alone does not).
        for sock in (self._socket, *self._connections):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._thread.join(5)


EMULATORS = {e.kind: e for e in (S3Emulator, AzureEmulator, GCSEmulator, SMBServer)}
