"""Retries and error mapping against a tiny real HTTP server that answers from a script."""

import email.utils
import http.server
import json
import time

import pytest

from client import OrionClient
from client.api.exceptions import (
    ObjectNotFound,
    OrionHTTPError,
    ServerError,
    ServerUnreachable,
    ServiceUnavailable,
)
from client.api.settings import Settings
from tests.support import free_port, serving_in_thread

DROP = "drop"  # close the connection without answering


class ScriptedServer(http.server.ThreadingHTTPServer):
    """Answers each request with the next scripted ``(status, body, headers)`` (the last one
    repeats) and records the requests it saw."""

    daemon_threads = True

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), _Handler)
        self.script = []
        self.seen = []


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        server.seen.append((self.command, self.path, dict(self.headers), body))
        step = server.script.pop(0) if len(server.script) > 1 else server.script[0]
        if step == DROP:
            self.close_connection = True
            self.connection.close()
            return
        status, payload, headers = step
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with serving_in_thread(ScriptedServer(free_port())) as srv:
        yield srv


def client_for(server, **settings):
    values = {
        "api_retries": 3,
        "api_retry_delay_seconds": 0.01,
        "api_retry_max_delay_seconds": 0.05,
        "api_timeout": 5.0,
    }
    values.update(settings)
    return OrionClient(f"http://127.0.0.1:{server.server_port}/api/", settings=Settings(**values))


OK = (200, "👋", None)


def test_sends_version_and_api_key_headers(server):
    server.script = [OK]
    with client_for(server, api_key="sesame") as orion:
        assert orion.hello() == "👋"
    method, path, headers, _ = server.seen[0]
    assert (method, path) == ("GET", "/api/hello")
    assert headers["X-PREFECT-API-VERSION"] == "0.8.4"
    assert headers["Authorization"] == "Bearer sesame"


def test_cookies_a_proxy_sets_are_sent_back_and_paths_join_the_api_url(server):
    # A load balancer's affinity cookie: the client only hands responses that set a cookie
    # to its jar, and must still keep this one. Paths join the API URL as httpx joins them.
    server.script = [(200, "👋", {"Set-Cookie": "affinity=node-2; Path=/"}), OK]
    with client_for(server) as orion:
        assert orion.hello() == "👋"
        assert orion.request("GET", "/flows/some%20name").status_code == 200
    (_, first_path, first, _), (_, second_path, second, _) = server.seen
    assert "Cookie" not in first
    assert second["Cookie"] == "affinity=node-2"
    assert (first_path, second_path) == ("/api/hello", "/api/flows/some%20name")


def test_429_honours_retry_after_seconds(server):
    server.script = [(429, {"detail": "slow down"}, {"Retry-After": "1"}), OK]
    with client_for(server) as orion:
        started = time.monotonic()
        assert orion.hello() == "👋"
        assert time.monotonic() - started >= 0.95
    assert len(server.seen) == 2


def test_503_honours_retry_after_as_an_http_date(server):
    later = email.utils.formatdate(time.time() + 2, usegmt=True)
    server.script = [(503, {"detail": "busy"}, {"Retry-After": later}), OK]
    with client_for(server) as orion:
        started = time.monotonic()
        assert orion.hello() == "👋"
        assert time.monotonic() - started >= 0.5
    assert len(server.seen) == 2


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_transient_statuses_are_retried(server, status):
    server.script = [(status, {"detail": "transient"}, None)] * 2 + [OK]
    with client_for(server) as orion:
        assert orion.hello() == "👋"
    assert len(server.seen) == 3


def test_a_dropped_connection_is_retried(server):
    server.script = [DROP, DROP, OK]
    with client_for(server) as orion:
        assert orion.hello() == "👋"
    assert len(server.seen) == 3


def test_retries_run_out_with_the_server_message(server):
    server.script = [(503, {"detail": "Database unavailable: gone"}, None)]
    with client_for(server) as orion:
        with pytest.raises(ServiceUnavailable, match="Database unavailable: gone") as error:
            orion.hello()
    assert error.value.status_code == 503 and len(server.seen) == 4
    server.seen.clear()
    server.script = [(500, {"exception_message": "Internal Server Error"}, None)]
    with client_for(server, api_retries=1) as orion:
        with pytest.raises(ServerError, match="Internal Server Error"):
            orion.hello()
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "status, error", [(404, ObjectNotFound), (501, ServerError), (418, OrionHTTPError)]
)
def test_other_errors_are_not_retried(server, status, error):
    server.script = [(status, {"detail": f"no: {status}"}, None)]
    with client_for(server) as orion:
        with pytest.raises(error, match=f"no: {status}"):
            orion.hello()
    assert len(server.seen) == 1


def test_a_non_json_error_body_is_the_message(server):
    server.script = [(400, "plain words", None)]
    with client_for(server) as orion:
        with pytest.raises(OrionHTTPError, match="plain words"):
            orion.hello()


def test_a_delete_retried_after_a_lost_answer_is_done(server):
    server.script = [DROP, (404, {"detail": "Flow run x not found."}, None)]
    with client_for(server) as orion:
        orion.delete_flow_run("x")
    assert [s[0] for s in server.seen] == ["DELETE", "DELETE"]
    server.seen.clear()
    with client_for(server) as orion:
        with pytest.raises(ObjectNotFound):
            orion.delete_flow_run("x")
    # An answered failure did nothing: the 404 that follows it is real.
    server.script = [(503, {"detail": "busy"}, None), (404, {"detail": "gone"}, None)]
    with client_for(server) as orion:
        with pytest.raises(ObjectNotFound, match="gone"):
            orion.delete_flow_run("x")
    server.script = [(504, {"detail": "gateway"}, None), (404, {"detail": "gone"}, None)]
    with client_for(server) as orion:
        orion.delete_flow_run("x")


def test_retried_writes_resend_the_same_keys(server):
    """The idempotency key, transition id and log ids are chosen once per call."""
    from client.api.states import Running

    run = {"id": "r", "state": None}
    server.script = [DROP, (200, run, None)]
    with client_for(server) as orion:
        orion.create_flow_run("f")
        server.script = [DROP, (200, {"status": "ACCEPT", "state": None, "details": {}}, None)]
        orion.set_flow_run_state("r", Running())
        server.script = [DROP, (201, None, None)]
        orion.create_logs(
            [
                {
                    "name": "n",
                    "level": 20,
                    "message": "m",
                    "timestamp": "2030-01-01T00:00:00Z",
                    "flow_run_id": "r",
                }
            ]
        )
    bodies = [json.loads(body) for *_, body in server.seen]
    assert bodies[0]["idempotency_key"] and bodies[0] == bodies[1]
    assert bodies[2]["state"]["state_details"]["transition_id"] and bodies[2] == bodies[3]
    assert bodies[4][0]["id"] and bodies[4] == bodies[5]


def test_an_unreachable_server_raises_after_the_retries():
    port = free_port()
    settings = Settings(api_retries=2, api_retry_delay_seconds=0.01)
    with OrionClient(f"http://127.0.0.1:{port}/api", settings=settings) as orion:
        with pytest.raises(ServerUnreachable, match="after 3 attempt"):
            orion.hello()
        assert isinstance(orion.api_healthcheck(), ServerUnreachable)
