"""How long the storage blocks wait for a store that does not answer
(client/blocks/filesystems.py: ``ObjectStorage.ATTEMPTS`` and ``TIMEOUT``,
``SMB.CONNECT_TIMEOUT``), against a real listener on 127.0.0.1 that takes every connection and
request and never answers (tests.storage.emulators.SilentListener); no emulator is needed.

Each object store's block tries a request ``ATTEMPTS`` times, each try waiting ``TIMEOUT``
seconds (made 1 s here) for the answer, then fails with its driver's timeout error: for a
read, a write and a listing (what an agent's download starts with). gcsfs fixes its retries
where its class is defined, so the GCS block re-decorates the methods that retry: the test of
which methods those are fails when a gcsfs release retries elsewhere.
"""

import inspect
import time

import pytest

from client.blocks import GCS, S3, SMB, Azure, filesystems
from client.blocks.filesystems import ObjectStorage
from tests.storage.emulators import AZURITE_ACCOUNT, AZURITE_KEY, SilentListener

TIMEOUT = 1
# Each driver's words for a try that got no answer in time.
TIMED_OUT = {
    "s3": "Read timeout on endpoint URL",
    "gcs": "SocketTimeoutError: Timeout on reading data from socket",
    "azure": "Timeout on reading data from socket",
}


def silent_block(kind, endpoint, monkeypatch):
    """A block of the object store ``kind`` whose store is at ``endpoint``."""
    if kind == "s3":
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return S3(
            bucket_path="orion/x",
            aws_access_key_id="key",
            aws_secret_access_key="secret",
            endpoint_url=endpoint,
        )
    if kind == "azure":
        return Azure(
            bucket_path="orion/x",
            azure_storage_connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
            ),
        )
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    return GCS(bucket_path="orion/x", project="orion-test")


OPERATIONS = {
    "read": lambda block, tmp_path: block.read_path("result"),
    "write": lambda block, tmp_path: block.write_path("result", b"x" * 300_000),
    "list": lambda block, tmp_path: block.get_directory(local_path=tmp_path),
}


# Every operation on every store; S3's write was unbounded until the block stopped sending
# "Expect: 100-continue" (aiohttp waits for the "100 Continue" with no timeout).
CASES = [(kind, operation) for kind in TIMED_OUT for operation in OPERATIONS]

# Each driver's words for a connection the kernel gave up on (TCP_USER_TIMEOUT).
STALLED = {
    "s3": "Could not connect to the endpoint URL",
    "gcs": "Connection timed out",
    "azure": "Connection timed out",
}


@pytest.mark.parametrize("kind, operation", CASES)
def test_a_silent_object_store_gets_ATTEMPTS_tries_of_TIMEOUT_seconds(
    kind, operation, monkeypatch, tmp_path
):
    monkeypatch.setattr(ObjectStorage, "TIMEOUT", TIMEOUT)
    with SilentListener() as silent:
        block = silent_block(kind, silent.endpoint, monkeypatch)
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            OPERATIONS[operation](block, tmp_path)
        took = time.monotonic() - started
        tries = silent.connections
    error = f"{type(raised.value).__name__}: {raised.value}"
    assert TIMED_OUT[kind] in error, error
    # Each request tried ATTEMPTS times (adlfs's listing makes two requests), waiting TIMEOUT
    # for each try and up to two seconds between tries (Azure's backoff is 1 s +- 1 s), with a
    # second more per try for a loaded machine (a full run at load 10 once took 6.06 s of 6).
    assert tries in (ObjectStorage.ATTEMPTS, 2 * ObjectStorage.ATTEMPTS), error
    assert tries * TIMEOUT <= took < tries * (TIMEOUT + 3), took
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", STALLED)
# gcsfs and adlfs hand aiohttp the 20 MB as bytes, which it warns about (only that).
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes")
def test_an_upload_to_a_store_that_stops_reading_gives_up_after_TIMEOUT_without_progress(
    kind, monkeypatch
):
    """A frozen store: the kernel takes the connection and the first megabytes, nobody reads
    them. Each connection is given up ``TIMEOUT`` seconds after its last progress, however
    large the upload (the drivers' read timeouts start only once the body is sent)."""
    monkeypatch.setattr(ObjectStorage, "TIMEOUT", TIMEOUT)
    with SilentListener(reads=False) as frozen:
        block = silent_block(kind, frozen.endpoint, monkeypatch)
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            block.write_path("result", b"x" * 20_000_000)
        took = time.monotonic() - started
        tries = frozen.connections
    error = f"{type(raised.value).__name__}: {raised.value}"
    assert STALLED[kind] in error, error
    # Up to ATTEMPTS tries of each request (an upload may be two: adlfs, s3fs's multipart).
    assert 1 <= tries <= 2 * ObjectStorage.ATTEMPTS, error
    assert TIMEOUT <= took < tries * (TIMEOUT + 2), took


def test_a_silent_smb_server_gets_one_try_of_CONNECT_TIMEOUT_seconds(monkeypatch):
    monkeypatch.setattr(SMB, "CONNECT_TIMEOUT", TIMEOUT)
    with SilentListener() as silent:
        block = SMB(share_path="/orion/x", smb_host="127.0.0.1", smb_port=silent.port)
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            block.write_path("result", b"x")
        took = time.monotonic() - started
        tries = silent.connections
    assert "timeout" in str(raised.value).lower(), repr(raised.value)
    assert tries == 1
    assert TIMEOUT <= took < TIMEOUT + 4, took


def test_gcsfs_retries_only_in_the_methods_the_gcs_block_bounds():
    """The GCS block bounds gcsfs's tries by decorating GCSFS_RETRIED again: a gcsfs release
    that retries in other methods (or no longer with ``retry_request``) fails here."""
    import gcsfs.core
    from gcsfs.retry import retry_request

    caller = retry_request.__wrapped__

    def retried(namespace):
        return {
            name
            for name, value in vars(namespace).items()
            if inspect.isfunction(value)
            and name != "retry_request"
            and any(cell.cell_contents is caller for cell in value.__closure__ or ())
        }

    assert retried(gcsfs.core.GCSFileSystem) == set(filesystems.GCSFS_RETRIED)
    assert retried(gcsfs.core.GCSFile) == set() and retried(gcsfs.core) == set()
    bounded = filesystems._bounded_gcs_filesystem(ObjectStorage.ATTEMPTS, ObjectStorage.TIMEOUT)
    assert retried(bounded) == set(filesystems.GCSFS_RETRIED)
