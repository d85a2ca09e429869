"""Storage budget (issue 17): a 1 MB result to and from S3 through an ``S3`` block, against
bare s3fs doing the same put and get, in the same run.

Starts moto's S3 server (``moto_server``, from ``pip install 'moto[server]'``) on
127.0.0.1:``--port`` and saves an ``S3`` block (endpoint: that server) in the ephemeral API of
a temporary ``ORION_HOME``. Then, alternating, ``--rounds`` times each:

- **bare**: ``s3fs.S3FileSystem.pipe_file`` of 1 MB of random bytes, then ``cat_file`` of it;
- **orion**: ``persist_result`` of the same bytes through ``"s3/bench"`` (pickled, written
  through the block), then ``load_result`` of the reference it returned (read, unpickled).

Reports the median put, get and round trip of each and the ratio orion / bare. Budget: the
round trip ≤ 3x bare. Usage: python bench/bench_storage.py [--rounds 30] [--port 4470]
(needs ``pip install -e '.[s3]' 'moto[server]'``). Prints a Markdown table.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = 1024 * 1024


def start_moto(port: int) -> subprocess.Popen:
    moto = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit(f"moto_server did not answer on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--port", type=int, default=4470)
    args = parser.parse_args()
    endpoint = f"http://127.0.0.1:{args.port}"
    os.environ.pop("ORION_API_URL", None)
    os.environ["ORION_HOME"] = tempfile.mkdtemp(prefix="orion-bench-storage-")
    moto = start_moto(args.port)
    try:
        import s3fs

        from client.blocks import S3
        from client.sdk.results import load_result, persist_result

        key, secret = "bench", "bench"
        bare = s3fs.S3FileSystem(key=key, secret=secret, endpoint_url=endpoint)
        bare.mkdir("bench")
        block = S3(
            bucket_path="bench/results",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            endpoint_url=endpoint,
        )
        block.save("bench")
        payload = os.urandom(SIZE)
        load_result(persist_result(payload, "s3/bench"))  # warm: block loaded, client made
        bare.pipe_file("bench/bare/warm", payload)

        figures: dict[str, list[float]] = {
            "bare put": [],
            "bare get": [],
            "orion put": [],
            "orion get": [],
        }
        for i in range(args.rounds):
            path = f"bench/bare/{i}"
            start = time.perf_counter()
            bare.pipe_file(path, payload)
            middle = time.perf_counter()
            bare.cat_file(path)
            end = time.perf_counter()
            figures["bare put"].append(middle - start)
            figures["bare get"].append(end - middle)
            start = time.perf_counter()
            reference = persist_result(payload, "s3/bench")
            middle = time.perf_counter()
            value = load_result(reference)
            end = time.perf_counter()
            figures["orion put"].append(middle - start)
            figures["orion get"].append(end - middle)
            assert value == payload
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(10)

    med = {name: statistics.median(values) * 1000 for name, values in figures.items()}
    bare_trip = med["bare put"] + med["bare get"]
    orion_trip = med["orion put"] + med["orion get"]
    print(f"load average: {os.getloadavg()[0]:.2f}; {args.rounds} rounds; medians in ms\n")
    print("| figure | bare s3fs | S3 block (results) | ratio | budget |")
    print("|---|---|---|---|---|")
    for what in ("put", "get"):
        b, o = med[f"bare {what}"], med[f"orion {what}"]
        print(f"| 1 MB {what} | {b:.1f} | {o:.1f} | {o / b:.2f}x | |")
    print(
        f"| round trip | {bare_trip:.1f} | {orion_trip:.1f} | "
        f"**{orion_trip / bare_trip:.2f}x** | ≤ 3x |"
    )


if __name__ == "__main__":
    main()
