"""``/metrics``: the Prometheus text page (see :mod:`app.metrics` for what it holds).

Outside ``/api`` and never behind the dashboard's sign-in: a scraper holds no session. When
``ORION_API_KEY`` is set it must send the key as the API's clients do
(``Authorization: Bearer <key>``); without one the page is open, like the API.
"""

import hmac
import logging

from flask import Blueprint, Response, current_app, request

from app import metrics
from app.clock import utcnow
from app.db import database

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus_metrics():
    """The metrics in Prometheus' text format (401 without the API key when one is set)."""
    key = current_app.config.get("API_KEY")
    sent = request.headers.get("Authorization", "")
    if key and not hmac.compare_digest(sent.encode(), f"Bearer {key}".encode()):
        return {"detail": "Missing or invalid API key (send 'Authorization: Bearer <key>')."}, 401
    scrape = metrics.ScrapeCollector(_runs_summary, _queue_depth)
    return Response(metrics.render(scrape), content_type=metrics.CONTENT_TYPE)


def _runs_summary():
    from app.services import admin

    with database.connection_context():
        return admin.flow_run_summary(utcnow())


def _queue_depth():
    """Length of the RQ queue the services' jobs go to, or None without Redis or when Redis
    does not answer (the page leaves the gauge out; ``/api/ready`` reports Redis)."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return client.llen(f"rq:queue:{current_app.config['REDIS_QUEUE']}")
    except redis.RedisError as error:
        log.warning("metrics: RQ queue depth unavailable: %s", error)
        return None
    finally:
        client.close()
