"""Log shipping: batching, flushing, retries, truncation and ordering (a fake API sink)."""

import logging
import threading
import time

from client.sdk.logs import LogShipper, OrionLogHandler, run_logger, truncate_message


class Sink:
    """Stores batches; fails the first ``failures`` calls like an unreachable server."""

    def __init__(self, failures=0):
        self.batches = []
        self.failures = failures
        self.lock = threading.Lock()

    def __call__(self, batch):
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("server unreachable")
            self.batches.append(list(batch))

    @property
    def records(self):
        return [r for b in self.batches for r in b]


def _record(i, size=10):
    return {"message": f"{i}".ljust(size), "i": i}


def test_batches_are_bounded_by_count_and_bytes_and_flush_sends_everything():
    sink = Sink()
    shipper = LogShipper(batch_size=100, batch_bytes=10_000, interval=60)
    for i in range(1050):
        shipper.put(_record(i, size=10 if i < 1000 else 2000), sink)
    assert shipper.flush(timeout=10)
    assert [r["i"] for r in sink.records] == list(range(1050))
    assert all(len(b) <= 100 for b in sink.batches)
    assert all(
        sum(len(r["message"]) + 200 for r in b) <= 10_000 or len(b) == 1 for b in sink.batches
    )
    shipper.close()


def test_records_go_within_the_interval_without_a_flush():
    sink = Sink()
    shipper = LogShipper(batch_size=100, interval=0.1)
    shipper.put(_record(1), sink)
    deadline = time.monotonic() + 5
    while not sink.records and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r["i"] for r in sink.records] == [1]
    shipper.close()


def test_failed_batches_are_retried_in_order_nothing_lost(capsys):
    sink = Sink(failures=2)
    shipper = LogShipper(batch_size=10, interval=0.05)
    for i in range(35):
        shipper.put(_record(i), sink)
    assert shipper.flush(timeout=20)
    assert [r["i"] for r in sink.records] == list(range(35))
    assert "will retry" in capsys.readouterr().err
    shipper.close()


def test_close_gives_up_after_the_exit_timeout_and_says_so(capsys):
    shipper = LogShipper(batch_size=10, interval=0.01, exit_timeout=0.2)
    shipper.put(_record(1), Sink(failures=10**6))
    shipper.close()
    assert "1 log records could not be sent" in capsys.readouterr().err


def test_handler_ships_run_records_truncated_and_strictly_ordered():
    sink = Sink()
    shipper = LogShipper(interval=60)
    handler = OrionLogHandler(shipper, max_message_chars=50)
    logger = logging.getLogger("orion.test_handler")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logging.getLogger("orion.test_handler").info("not a run record")
        adapter = logging.LoggerAdapter(
            logger, {"flow_run_id": "f", "task_run_id": "t", "orion_send": sink}
        )
        for i in range(200):
            adapter.info("line %d", i)
        adapter.warning("x" * 120)
    finally:
        logger.removeHandler(handler)
    shipper.flush(timeout=10)
    records = sink.records
    assert [r["message"] for r in records[:200]] == [f"line {i}" for i in range(200)]
    assert records[-1]["message"] == "x" * 50 + "... [truncated 70 characters]"
    assert records[-1]["level"] == logging.WARNING
    assert {(r["flow_run_id"], r["task_run_id"]) for r in records} == {("f", "t")}
    stamps = [r["timestamp"] for r in records]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len({r["id"] for r in records}) == len(records)
    shipper.close()


def test_records_sent_through_different_clients_go_in_separate_batches():
    first, second = Sink(), Sink()
    shipper = LogShipper(interval=60)
    for i in range(6):
        shipper.put(_record(i), first if i % 3 else second)
    assert shipper.flush(timeout=10)
    assert [[r["i"] for r in b] for b in first.batches] == [[1, 2], [4, 5]]
    assert [[r["i"] for r in b] for b in second.batches] == [[0], [3]]
    shipper.close()


def test_run_logger_carries_the_run_ids():
    orion = type("FakeClient", (), {"create_logs": lambda self, batch: None})()
    adapter = run_logger(orion, {"id": "f", "name": "n"}, {"id": "t", "name": "tn"})
    assert adapter.extra["task_run_id"] == "t" and adapter.extra["flow_run_name"] == "n"
    assert truncate_message("abc", 3) == "abc"
