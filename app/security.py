"""Request hardening, set up by ``create_app`` before anything else sees a request.

- **Proxies** (``PROXY_TRUSTED_HOPS``): werkzeug's ``ProxyFix`` believes that many hops of
  ``X-Forwarded-For/-Proto/-Host/-Port/-Prefix``. At 0 (the default) nothing is wrapped, so
  a client's own forwarded headers change neither its address, the scheme nor the host.
- **Host check** (``TRUSTED_HOSTS``): a request whose ``Host`` is not one of the trusted
  names gets a 400 naming the setting to change, before anything else runs (no API key
  check, no throttle count, no session). By default a server bound to a loopback address
  answers only to loopback names, which stops a web page from driving it through DNS
  rebinding. A request without a ``Host`` (HTTP/1.0) names no site and is let through.
- **Throttling** (:class:`Throttle`, on ``limits``): failed API keys (a 401 under
  ``/api/``) and failed sign-ins (a 401 from ``POST /login``) are counted per client address;
  once an address has used its allowance, every request it makes to the API (or to the
  sign-in form) is a 429 with ``Retry-After`` until the window ends, the right key included
  (a guess must not be told apart by its answer). Successful requests only read the count.
  Counts are kept in ``THROTTLE_STORAGE_URL``, else in ``REDIS_URL`` (shared by every
  process), else in this process's memory. If that storage stops answering the counts move
  to memory until it is back; a request is never refused for the storage's sake.
- **Headers** on every response: a Content-Security-Policy whose scripts come only from
  this site (no inline script, no eval; styles may be inline: Swagger UI and ReDoc inject
  theirs), ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``, ``nosniff``, a
  Referrer-Policy, and HSTS on requests that came over https.
"""

import ipaddress
import logging
import time

from flask import current_app, request
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from app.exceptions import InvalidSetting

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
SIGN_IN_ENDPOINT = "ui.login"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        # ReDoc's search index runs in a worker made from a blob.
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# ReDoc's sidebar shows Redocly's logo from its CDN (offline it fails and hides itself).
_REDOC_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self' data:", "img-src 'self' data: https://cdn.redoc.ly"
)
# Prefect's UI (served under its own path, app/prefect_ui.py) shows block types' logos from
# their logo_url, which name images on the web, and draws a run's graph with pixi.js, which
# compiles its shaders with eval. Its scripts still come only from this site, none inline.
PREFECT_UI_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self' data:", "img-src 'self' data: https:"
).replace("script-src 'self'", "script-src 'self' 'unsafe-eval'")
_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)
HSTS = "max-age=31536000"


def init_security(app):
    """Wire the proxy fix, Host check, throttling and headers into ``app`` (call this before
    registering any other ``before_request`` function: the Host check and the throttle must
    run first). Raises :class:`InvalidSetting` for a setting it cannot use."""
    hops = app.config["PROXY_TRUSTED_HOPS"]
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise InvalidSetting(f"ORION_PROXY_TRUSTED_HOPS must be a whole number >= 0, not {hops!r}")
    if hops:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )
    app.extensions["orion.trusted_hosts"] = trusted_hosts(app.config)
    # Orion checks the Host itself (see the module docstring); Flask's check stays off.
    app.config["TRUSTED_HOSTS"] = None
    app.before_request(_check_host)
    throttle = app.extensions["orion.throttle"] = Throttle(app.config)
    app.before_request(throttle.check)
    app.after_request(throttle.count)
    app.after_request(_security_headers)


def trusted_hosts(config):
    """The host names served (lower case, ports dropped), or None for any.

    ``TRUSTED_HOSTS`` when set (a list, or one name); otherwise the loopback names when
    ``SERVER_HOST`` is a loopback address, else None."""
    names = config.get("TRUSTED_HOSTS")
    if names is None:
        return LOOPBACK_NAMES if _is_loopback(str(config["SERVER_HOST"])) else None
    if isinstance(names, str):
        names = [names]
    if (
        not isinstance(names, list | tuple)
        or not names
        or not all(isinstance(n, str) and n.strip() for n in names)
    ):
        raise InvalidSetting(
            'ORION_TRUSTED_HOSTS must be a JSON list of host names, e.g. ["orion.example"]'
        )
    if "*" in names:
        return None
    return tuple(_host_name(name) for name in names)


def _is_loopback(host):
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host):
    """``host`` without its port, in lower case (``[::1]:4200`` -> ``[::1]``; a bare IPv6
    address gets its brackets: ``::1`` -> ``[::1]``)."""
    host = host.strip().lower()
    if host.count(":") > 1 and not host.startswith("["):
        return f"[{host}]"
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0]


def host_allowed(host, trusted):
    """True if the Host header value ``host`` names one of ``trusted`` (None: any)."""
    if trusted is None:
        return True
    name = _host_name(host)
    return any(name == t or (t.startswith(".") and name.endswith(t)) for t in trusted)


def _check_host():
    host = request.environ.get("HTTP_HOST")
    trusted = current_app.extensions["orion.trusted_hosts"]
    if host is None or host_allowed(host, trusted):
        return None
    message = (
        f"This server does not answer to the host name {_host_name(host)!r}: it serves "
        f"{', '.join(trusted)} only. Add the name to ORION_TRUSTED_HOSTS (a JSON list, "
        'e.g. ["orion.example"]) to serve it.'
    )
    if request.path.startswith("/api/"):
        return {"detail": message}, 400
    return message, 400, {"Content-Type": "text/plain; charset=utf-8"}


# -- throttling -----------------------------------------------------------------------------


def client_address():
    """The client's address: the socket's peer, or the proxy's X-Forwarded-For when trusted."""
    return request.remote_addr or "unknown"


def _api_key_checked():
    """Under the API key count: a key is set and the request is a checked API call (the
    OpenAPI document and CORS preflights need no key; ``/metrics`` takes the key too)."""
    return (
        bool(current_app.config.get("API_KEY"))
        and (request.path.startswith("/api/") or request.path == "/metrics")
        and request.path != "/api/openapi.json"
        and request.method != "OPTIONS"
    )


def _sign_in():
    return request.method == "POST" and request.endpoint == SIGN_IN_ENDPOINT


def _limit(config, name):
    """The setting ``name`` as a rate, checked now (``InvalidSetting`` if unusable)."""
    value = config[name]
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return parse(value)
    except ValueError:
        raise InvalidSetting(
            f'ORION_{name} must be a rate such as "20/minute" or "5/second", not {value!r}'
        ) from None


def storage_url(config):
    """Where the throttle's counts live (see the module docstring)."""
    return config.get("THROTTLE_STORAGE_URL") or config.get("REDIS_URL") or "memory://"


class Throttle:
    """The two failure counts, per client address, in fixed windows of ``limits``.

    ``check`` runs before every request a count concerns and answers 429 once the address
    has used its allowance; ``count`` runs after it and deducts a 401. A request reads the
    count once (one ``GET`` with Redis) and a failure adds one write. Everything else (the
    dashboard, every request when no API key is set) costs a path test. When the storage
    fails, the counts move to this process's memory for ``RETRY_SECONDS``, then the storage
    is tried again: a request is never refused for the storage's sake."""

    RETRY_SECONDS = 10
    PREFIX = "orion-throttle"

    def __init__(self, config):
        self.scopes = (
            (
                "failed-api-key",
                _limit(config, "THROTTLE_FAILED_API_KEYS"),
                _api_key_checked,
                "Too many failed API keys from this address.",
            ),
            (
                "failed-sign-in",
                _limit(config, "THROTTLE_FAILED_SIGN_INS"),
                _sign_in,
                "Too many failed sign-ins from this address.",
            ),
        )
        url = storage_url(config)
        # A storage that stops answering costs a request at most this long (redis-py waits
        # forever by default); memory takes no options.
        options = (
            {}
            if url.startswith("memory://")
            else {"socket_connect_timeout": 1, "socket_timeout": 1, "key_prefix": self.PREFIX}
        )
        self._shared = FixedWindowRateLimiter(
            storage_from_string(url, wrap_exceptions=True, **options)
        )
        self._memory = FixedWindowRateLimiter(MemoryStorage())
        self._shared_again_at = 0.0

    def _counts(self):
        if self._shared_again_at and time.monotonic() < self._shared_again_at:
            return self._memory
        return self._shared

    def _call(self, method, *args):
        """``method`` of the shared counts, or of memory's while the storage is failing."""
        counts = self._counts()
        try:
            return getattr(counts, method)(*args)
        except StorageError:
            log.warning(
                "throttle storage %s unreachable; counting in memory for %d s",
                storage_url(current_app.config),
                self.RETRY_SECONDS,
                exc_info=True,
            )
            self._shared_again_at = time.monotonic() + self.RETRY_SECONDS
            return getattr(self._memory, method)(*args)

    def _applying(self):
        return [scope for scope in self.scopes if scope[2]()]

    def check(self):
        """Before a request: a 429 with ``Retry-After`` if a count it falls under is used up."""
        applying = self._applying()
        if not applying:
            return None
        address = client_address()
        for name, rate, _applies, message in applying:
            if not self._call("test", rate, name, address):
                stats = self._call("get_window_stats", rate, name, address)
                return _too_many(message, max(1, int(stats.reset_time - time.time())))
        return None

    def count(self, response):
        """After a request: a 401 is deducted from every count the request falls under."""
        if response.status_code == 401:
            address = client_address()
            for name, rate, _applies, _message in self._applying():
                self._call("hit", rate, name, address)
        return response


def _too_many(message, retry_after):
    """429 with Retry-After (seconds to the end of the window) and what was exceeded."""
    message = f"{message} Try again in {retry_after} s."
    headers = {"Retry-After": str(retry_after)}
    if request.path.startswith("/api/"):
        return {"detail": message}, 429, headers
    return message, 429, {**headers, "Content-Type": "text/plain; charset=utf-8"}


# -- headers --------------------------------------------------------------------------------


def _security_headers(response):
    req = request._get_current_object()  # the proxy resolves the context on every access
    headers = response.headers
    policy = _REDOC_POLICY if req.path == "/redoc" else CONTENT_SECURITY_POLICY
    # A view that set a policy of its own (see PREFECT_UI_POLICY) keeps it.
    headers.setdefault("Content-Security-Policy", policy)
    for name, value in _HEADERS:
        headers[name] = value
    if req.is_secure:
        headers["Strict-Transport-Security"] = HSTS
    return response
