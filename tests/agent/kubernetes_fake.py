"""A small fake of the Kubernetes API, enough for the real ``kubernetes`` client to run a
``kubernetes-job`` block against it over HTTP: create and read a Job, list/watch its pods,
read a pod's log, delete a Job. What the pods do is a recorded sequence of watch events (a
*script*); every request is kept in ``requests`` for the tests to look at. A Job whose pod
reached ``Succeeded`` or ``Failed`` in the script has the matching condition (``Complete``,
``Failed``).

A script is a list of pod status dicts (each sent as a watch event for the Job's pod), and
may hold the markers ``HOLD``: the watch then waits until the Job is deleted (and sends the
pod's ``DELETED`` event) or until the request's ``timeoutSeconds`` runs out; ``GONE``: the
watch ends with the API server's ``410 Gone`` error event (the resource version it watched from
has expired). Watches go through the script once: the next watch carries on where the last
one ended."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

HOLD = "HOLD"
GONE = "GONE"


class FakeKubernetes:
    """The fake API server on 127.0.0.1 (``url``), serving ``script`` for every Job."""

    def __init__(self, script=(), log_lines=(), create_error=None):
        self.script = list(script)
        self.log_lines = list(log_lines)
        self.create_error = create_error  # (status, message) to refuse Job creation with
        self.requests: list[tuple[str, str, object]] = []
        self.jobs: dict[str, dict] = {}
        self.deleted = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Streams (watch, log) are chunked as the API server's are: the client's watch
            # reads a chunk at a time, and would wait for the end of a body not chunked.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(("POST", self.path, body))
                if fake.create_error:
                    status, message = fake.create_error
                    return self._json(status, _status(status, message))
                name = body["metadata"]["generateName"] + "x7k2p"
                body["metadata"].update(name=name, uid="uid-" + name, resourceVersion="1")
                fake.jobs[name] = body
                self._json(201, body)

            def do_DELETE(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append(("DELETE", self.path, body))
                name = self.path.rsplit("/", 1)[-1].split("?")[0]
                if fake.jobs.pop(name, None) is None:
                    return self._json(404, _status(404, f'jobs.batch "{name}" not found'))
                fake.deleted.set()
                self._json(200, _status(200, "deleted"))

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append(("GET", self.path, None))
                job_path = re.fullmatch(r"/apis/batch/v1/namespaces/[^/]+/jobs/([^/]+)", url.path)
                if job_path:
                    if job_path[1] not in fake.jobs:
                        return self._json(
                            404, _status(404, f'jobs.batch "{job_path[1]}" not found')
                        )
                    return self._json(200, fake.jobs[job_path[1]])
                if url.path.endswith("/log"):
                    self._start_stream("text/plain")
                    for line in fake.log_lines:
                        self._chunk(line.encode() + b"\n")
                    return self._chunk(b"")
                match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", url.path)
                # The API server reads booleans as Go's ParseBool does: "true" or "True".
                if not match or query.get("watch", [""])[0].lower() != "true":
                    return self._json(404, _status(404, f"not served here: {self.path}"))
                job = query["labelSelector"][0].removeprefix("job-name=")
                timeout = float(query.get("timeoutSeconds", ["30"])[0])
                self._start_stream("application/json")
                while fake.script:
                    step = fake.script[0]
                    if step == HOLD:
                        if fake.deleted.wait(timeout):
                            self._event("DELETED", _pod(match[1], job, {"phase": "Running"}))
                        break
                    fake.script.pop(0)
                    if step == GONE:
                        self._event("ERROR", _status(410, "too old resource version"))
                        break
                    self._event("MODIFIED", _pod(match[1], job, step))
                    if step.get("phase") in ("Succeeded", "Failed") and job in fake.jobs:
                        kind = "Complete" if step["phase"] == "Succeeded" else "Failed"
                        fake.jobs[job]["status"] = {
                            "conditions": [{"type": kind, "status": "True"}]
                        }
                return self._chunk(b"")

            def _start_stream(self, content_type):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

            def _chunk(self, data):
                """One chunk of a streamed body; the empty one ends it."""
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _event(self, kind, pod):
                self._chunk(json.dumps({"type": kind, "object": pod}).encode() + b"\n")

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def kubeconfig(self):
        """A kubectl configuration whose context ``fake`` is this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
            "current-context": "fake",
        }

    def close(self):
        self.deleted.set()
        self.server.shutdown()
        self.server.server_close()


def _pod(namespace, job, status):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": job + "-pod1",
            "namespace": namespace,
            "labels": {"job-name": job},
            "resourceVersion": "2",
        },
        "spec": {"containers": [{"name": "prefect-job", "image": "flows:1"}]},
        "status": status,
    }


def _status(code, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": {404: "NotFound", 410: "Expired", 422: "Invalid"}.get(code, ""),
        "message": message,
    }


def waiting(reason, message=""):
    """A pod status whose container waits for ``reason``."""
    return {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": "prefect-job",
                "image": "flows:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ],
    }


def running():
    return {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "prefect-job",
                "image": "flows:1",
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-12-05T07:00:00Z"}},
            }
        ],
    }


def terminated(phase, exit_code, reason=None):
    state = {"exitCode": exit_code, "reason": reason}
    return {
        "phase": phase,
        "containerStatuses": [
            {
                "name": "prefect-job",
                "image": "flows:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": state},
            }
        ],
    }
