"""``/metrics`` (Prometheus text, app.metrics) and JSON log lines (app.logformat).

In-process tests run on both databases; the gunicorn test runs a real ``orion start
--workers 2`` and checks one scrape sums both workers' counts.
"""

import concurrent.futures
import glob
import io
import json
import logging
import os
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.logformat import JsonFormatter, check_log_format
from tests.support import ORION, REDIS_URL, OrionServer, free_port, orion_env


def scrape(client, **headers):
    """``{(name, sorted labels): value}`` of one scrape, parsed by prometheus_client."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return samples(response.get_data(as_text=True))


def samples(text):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_with_requests_and_transitions(client, flow):
    before = scrape(client)
    run = client.post(
        "/api/flow_runs/",
        json={"flow_id": flow["id"], "state": {"type": "SCHEDULED", "name": "Scheduled"}},
    ).get_json()
    for state in ("PENDING", "RUNNING"):
        client.post(
            f"/api/flow_runs/{run['id']}/set_state",
            json={"state": {"type": state, "name": state.title()}},
        )
    task = client.post(
        "/api/task_runs/",
        json={
            "flow_run_id": run["id"],
            "task_key": "t",
            "dynamic_key": "0",
        },
    ).get_json()
    running = client.post(
        f"/api/task_runs/{task['id']}/set_state",
        json={"state": {"type": "RUNNING", "name": "Running"}},
    ).get_json()
    assert running["status"] == "ACCEPT"
    aborted = client.post(
        f"/api/task_runs/{task['id']}/set_state",
        json={"state": {"type": "SCHEDULED", "name": "Scheduled"}},
    ).get_json()
    assert aborted["status"] == "ABORT"  # a running task run cannot go back to SCHEDULED
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    total = "orion_transitions_total"
    assert moved(total, kind="flow_run", type="PENDING", result="ACCEPT") == 1
    assert moved(total, kind="flow_run", type="RUNNING", result="ACCEPT") == 1
    assert moved(total, kind="task_run", type="RUNNING", result="ACCEPT") == 1
    assert moved(total, kind="task_run", type="SCHEDULED", result="ABORT") == 1
    requests = "orion_http_requests_total"
    endpoint = "flow_runs.set_flow_run_state"
    assert moved(requests, endpoint=endpoint, method="POST", status="201") == 2
    assert moved("orion_http_request_duration_seconds_count", endpoint=endpoint) == 2
    # By endpoint name, never by path: no label carries a run id.
    assert not any(run["id"] in str(key) for key in after)
    assert value(after, "orion_flow_runs", state="RUNNING") == 1
    assert value(after, "orion_db_pool_connections", use="open") >= 1


def test_runs_by_state_due_runs_and_scheduler_lag(client, flow):
    for name, offset in (
        ("Scheduled", "2020-01-01T00:00:00+00:00"),
        ("Late", "2021-01-01T00:00:00+00:00"),
        ("Scheduled", "2999-01-01T00:00:00+00:00"),
    ):
        response = client.post(
            "/api/flow_runs/",
            json={
                "flow_id": flow["id"],
                "state": {
                    "type": "SCHEDULED",
                    "name": name,
                    "state_details": {"scheduled_time": offset},
                },
            },
        )
        assert response.status_code == 201, response.get_json()
    client.post("/api/flow_runs/", json={"flow_id": flow["id"]})
    found = scrape(client)
    assert value(found, "orion_flow_runs", state="SCHEDULED") == 3
    assert value(found, "orion_flow_runs", state="PENDING") == 1
    assert value(found, "orion_flow_runs_due") == 2
    assert value(found, "orion_flow_runs_late") == 1
    assert value(found, "orion_scheduler_lag_seconds") > 86400 * 365 * 5  # since 2020


def test_agent_claims_are_counted(client, flow):
    queue = client.post("/api/work_queues/", json={"name": "q"}).get_json()
    client.post(
        "/api/flow_runs/",
        json={
            "flow_id": flow["id"],
            "state": {"type": "SCHEDULED", "name": "Scheduled"},
            "work_queue_name": "q",
        },
    )
    before = value(scrape(client), "orion_agent_claimed_runs_total")
    runs = client.post(f"/api/work_queues/{queue['id']}/get_runs", json={}).get_json()
    assert len(runs) == 1
    assert value(scrape(client), "orion_agent_claimed_runs_total") - before == 1


def test_metrics_behind_the_api_key_not_the_dashboard_session(make_app):
    keyed = make_app(API_KEY="s3cret").test_client()
    assert keyed.get("/metrics").status_code == 401
    assert keyed.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # No session, no redirect to the sign-in page: the bearer key alone opens it.
    assert scrape(keyed, Authorization="Bearer s3cret")


def test_wrong_keys_on_metrics_are_throttled_like_the_apis(make_app):
    keyed = make_app(API_KEY="s3cret", THROTTLE_FAILED_API_KEYS="2/minute").test_client()
    wrong = {"Authorization": "Bearer guess"}
    assert [keyed.get("/metrics", headers=wrong).status_code for _ in range(3)] == [401, 401, 429]


def test_rq_queue_depth_when_redis_is_set(make_app, redis_db):
    served = make_app(REDIS_URL=REDIS_URL).test_client()
    redis_db.rpush("rq:queue:orion", "job-1", "job-2")
    assert value(scrape(served), "orion_rq_queue_depth") == 2
    # Redis gone: the page still answers, without the gauge (/api/ready reports Redis).
    gone = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    found = scrape(gone)
    assert ("orion_rq_queue_depth", ()) not in found
    assert ("orion_scheduler_lag_seconds", ()) in found


def test_json_log_lines_carry_request_id_and_endpoint(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("orion.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning("outside %s", "requests")
        with app.test_request_context("/api/hello", headers={"X-Request-ID": "abc-123"}):
            app.preprocess_request()
            logger.info("inside")
        with app.test_request_context("/api/hello", headers={"X-Request-ID": "bad id; x"}):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["outside requests", "inside", "failed"]
    assert set(lines[0]) == {"time", "level", "logger", "message"}
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "orion.test.json"
    assert lines[1]["request_id"] == "abc-123" and lines[1]["endpoint"] == "root.hello"
    assert len(lines[2]["request_id"]) == 32  # a made-up id: the header was not a token
    assert "RuntimeError: boom" in lines[2]["exception"]


def test_log_format_setting_is_checked(tmp_path):
    assert check_log_format(" JSON ") == "json"
    with pytest.raises(ValueError, match="ORION_LOG_FORMAT='xml': use one of text, json"):
        check_log_format("xml")
    started = subprocess.run(
        [ORION, "start", "--port", str(free_port())],
        env=orion_env(tmp_path, ORION_LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 1
    assert "Error: ORION_LOG_FORMAT='xml': use one of text, json" in started.stderr
    assert "Traceback" not in started.stderr


@pytest.mark.xdist_group("orion-start")
def test_two_gunicorn_workers_report_one_set(tmp_path):
    """A real ``orion start --workers 2``: requests spread over both workers, and every scrape
    (whichever worker answers it) counts all of them; its JSON log lines parse."""
    stderr = tmp_path / "stderr.txt"
    server = OrionServer(tmp_path, workers=2, threads=4, stderr_path=stderr, LOG_FORMAT="json")
    metrics_dir = tmp_path / "home" / "metrics" / str(server.port)
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_1.db").write_bytes(b"a previous server's counts")
    with server:
        assert not (metrics_dir / "counter_1.db").exists()  # emptied at start

        def hello(_):
            with httpx.Client() as one_connection:
                return one_connection.get(f"{server.api_url}/hello").status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(hello, range(200))) == {200}
        pids = {
            os.path.basename(path).split("_")[1].split(".")[0]
            for path in glob.glob(str(metrics_dir / "counter_*.db"))
        }
        assert len(pids) >= 2, pids  # both workers served (and wrote) some
        for _ in range(6):
            text = httpx.get(f"{server.url}/metrics").text
            found = samples(text)
            hellos = value(
                found,
                "orion_http_requests_total",
                endpoint="root.hello",
                method="GET",
                status="200",
            )
            assert hellos == 200
    lines = [line for line in stderr.read_text().splitlines() if line.strip()]
    assert any("Booting worker" in line for line in lines), lines
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(entry)
