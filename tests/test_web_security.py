"""Host checks, proxy headers, throttled failures and security headers (app/security.py).

Every app here is a real ``create_app`` on the test database (both backends); the throttle
counts in memory or in the real test Redis (``redis_db``), never a stand-in.
"""

import http.client
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis as redis_lib

from app.exceptions import InvalidSetting
from app.security import CONTENT_SECURITY_POLICY, Throttle, _host_name, host_allowed
from tests.support import ORION, REDIS_URL, OrionServer, ServerProcess, free_port, orion_env

KEY = "the-key"
WRONG = {"Authorization": "Bearer wrong"}
RIGHT = {"Authorization": f"Bearer {KEY}"}
TEMPLATES = Path(__file__).resolve().parents[1] / "app" / "templates"


def csrf_of(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


# -- Host checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:4200", "127.0.0.1:4200", "[::1]:4200", "LocalHost"]
)
def test_a_loopback_server_answers_loopback_names(make_app, host):
    client = make_app(REDIS_URL=None).test_client()
    assert client.get("/api/health", headers={"Host": host}).status_code == 200
    assert client.get("/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:4200", "127.0.0.1.evil.example", "localhost.evil"]
)
def test_a_loopback_server_refuses_other_names_naming_the_setting(make_app, host):
    client = make_app(REDIS_URL=None, API_KEY=KEY).test_client()
    # Refused before the API key check: no key needed to learn it, nothing else runs.
    api = client.get("/api/flows/", headers={"Host": host})
    assert api.status_code == 400
    assert "ORION_TRUSTED_HOSTS" in api.get_json()["detail"]
    page = client.get("/flow-runs", headers={"Host": host})
    assert page.status_code == 400
    assert "ORION_TRUSTED_HOSTS" in page.get_data(as_text=True)
    assert "Set-Cookie" not in page.headers


def test_trusted_hosts_setting_replaces_the_default(make_app):
    client = make_app(
        REDIS_URL=None, TRUSTED_HOSTS=["orion.example", ".corp.example", "[::1]"]
    ).test_client()
    for host in ("orion.example", "ORION.example:443", "a.b.corp.example", "[::1]:80"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    for host in ("localhost", "corp.example.evil", "xcorp.example", "127.0.0.1"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 400, host


def test_a_server_bound_to_every_address_answers_any_name_unless_told(make_app):
    anywhere = make_app(REDIS_URL=None, SERVER_HOST="0.0.0.0").test_client()
    assert anywhere.get("/api/health", headers={"Host": "orion.example"}).status_code == 200
    star = make_app(REDIS_URL=None, TRUSTED_HOSTS=["*"]).test_client()
    assert star.get("/api/health", headers={"Host": "anything.example"}).status_code == 200


@pytest.mark.parametrize("value", [[], "", [""], 42, [1]])
def test_an_unusable_trusted_hosts_setting_is_refused_at_start(make_app, value):
    with pytest.raises(InvalidSetting, match="ORION_TRUSTED_HOSTS"):
        make_app(REDIS_URL=None, TRUSTED_HOSTS=value)


@pytest.mark.parametrize("value", [-1, "1", 1.5, True])
def test_an_unusable_proxy_hops_setting_is_refused_at_start(make_app, value):
    with pytest.raises(InvalidSetting, match="ORION_PROXY_TRUSTED_HOPS"):
        make_app(REDIS_URL=None, PROXY_TRUSTED_HOPS=value)


@pytest.mark.parametrize("name", ["THROTTLE_FAILED_API_KEYS", "THROTTLE_FAILED_SIGN_INS"])
@pytest.mark.parametrize("value", ["", "lots", "20 per fortnight", 20])
def test_an_unusable_throttle_rate_is_refused_at_start(make_app, name, value):
    with pytest.raises(InvalidSetting, match=f"ORION_{name}"):
        make_app(REDIS_URL=None, **{name: value})


def test_host_matching_ignores_ports_and_case():
    assert host_allowed("[::1]:4200", ("[::1]",))
    assert not host_allowed("[::2]", ("[::1]",))
    assert host_allowed("x.Example.com:8080", (".example.com",))
    assert not host_allowed("example.com", (".example.com",))
    assert host_allowed("anything", None)
    # A bare IPv6 address in the setting is bracketed like the Host header's; an empty Host
    # matches nothing.
    assert host_allowed("[::1]:80", (_host_name("::1"),))
    assert not host_allowed("", (_host_name("::1"),))


def _get(port, host, path="/api/health"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_orion_start_checks_the_host_it_is_bound_to(tmp_path):
    # Bound to loopback (the default): only loopback names, over real HTTP through gunicorn.
    with OrionServer(tmp_path / "loopback", workers=1, threads=2) as server:
        status, headers, _ = _get(server.port, f"127.0.0.1:{server.port}")
        assert status == 200
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["X-Frame-Options"] == "DENY"
        assert _get(server.port, f"localhost:{server.port}")[0] == 200
        status, _, body = _get(server.port, "rebound.example")
        assert status == 400 and b"ORION_TRUSTED_HOSTS" in body
    # `--host 0.0.0.0` is what decides: any name is served.
    port = free_port()
    folder = tmp_path / "anywhere"
    folder.mkdir()
    argv = [ORION, "start", "--host", "0.0.0.0", "--port", str(port), "--workers", "1"]
    with ServerProcess(
        argv,
        env=orion_env(folder / "home"),
        cwd=str(folder),
        log_path=folder / "server.log",
        health_url=f"http://127.0.0.1:{port}/api/health",
    ):
        assert _get(port, "orion.example")[0] == 200


# -- proxy headers ----------------------------------------------------------------------------


FORGED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Prefix": "/evil",
}


def test_forged_forwarded_headers_change_nothing_by_default(make_app):
    app = make_app(REDIS_URL=None, API_KEY=KEY, THROTTLE_FAILED_API_KEYS="2/minute", SECRET_KEY="s")
    client = app.test_client()
    page = client.get("/login?next=/flows", headers=FORGED)
    assert page.status_code == 200
    # Not https: no HSTS, no Secure cookie; links and redirects stay on the real host.
    assert "Strict-Transport-Security" not in page.headers
    assert "Secure" not in page.headers["Set-Cookie"]
    assert 'action="/login"' in page.get_data(as_text=True)
    redirect = client.get("/flows", headers=FORGED)
    assert redirect.headers["Location"].startswith("/login")
    # A Host that is refused stays refused whatever X-Forwarded-Host says.
    refused = client.get("/api/health", headers={"Host": "evil.example", **FORGED})
    assert refused.status_code == 400
    # The throttle counts the real address: a new forged address per try changes nothing.
    for n in range(2):
        forged = {**WRONG, "X-Forwarded-For": f"198.51.100.{n}"}
        assert client.get("/api/flows/", headers=forged).status_code == 401
    last = client.get("/api/flows/", headers={**RIGHT, "X-Forwarded-For": "198.51.100.99"})
    assert last.status_code == 429


def test_a_trusted_proxy_sets_address_scheme_and_host(make_app):
    app = make_app(
        REDIS_URL=None,
        API_KEY=KEY,
        SECRET_KEY="s",
        PROXY_TRUSTED_HOPS=1,
        TRUSTED_HOSTS=["orion.example"],
        THROTTLE_FAILED_API_KEYS="2/minute",
    )
    client = app.test_client()
    behind = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "orion.example",
        "X-Forwarded-For": "203.0.113.1",
    }
    page = client.get("/login", headers=behind)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "; Secure" in page.headers["Set-Cookie"]
    # The Host check reads the forwarded host, the throttle the forwarded address.
    assert (
        client.get("/api/health", headers={**behind, "X-Forwarded-Host": "evil"}).status_code == 400
    )
    for _ in range(2):
        assert client.get("/api/flows/", headers={**behind, **WRONG}).status_code == 401
    assert client.get("/api/flows/", headers={**behind, **RIGHT}).status_code == 429
    other = {**behind, "X-Forwarded-For": "203.0.113.2"}
    assert client.post("/api/flows/filter", headers={**other, **RIGHT}).status_code == 200


# -- throttling -------------------------------------------------------------------------------


def test_failed_api_keys_are_throttled_per_address_with_retry_after(make_app):
    app = make_app(REDIS_URL=None, API_KEY=KEY, THROTTLE_FAILED_API_KEYS="3/minute")
    client = app.test_client()
    # Successes only read the count: many of them leave the allowance whole.
    for _ in range(30):
        assert client.post("/api/flows/filter", headers=RIGHT).status_code == 200
    # An unknown path still checks the key first, so it is counted like any other.
    assert client.get("/api/no-such-thing", headers=WRONG).status_code == 401
    for _ in range(2):
        assert client.get("/api/flows/", headers=WRONG).status_code == 401
    refused = client.post("/api/flows/filter", headers=RIGHT)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "failed API keys" in refused.get_json()["detail"]
    # Another address has its own count.
    other = client.post(
        "/api/flows/filter", headers=RIGHT, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert other.status_code == 200


def test_without_an_api_key_nothing_is_counted(make_app):
    client = make_app(REDIS_URL=None, THROTTLE_FAILED_API_KEYS="1/minute").test_client()
    for _ in range(5):
        assert client.post("/api/flows/filter", headers=WRONG).status_code == 200


def test_failed_sign_ins_are_throttled(make_app):
    app = make_app(REDIS_URL=None, API_KEY=KEY, SECRET_KEY="s", THROTTLE_FAILED_SIGN_INS="2/minute")
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    form = {"api_key": "wrong", "next": "/", "csrf_token": token}
    for _ in range(2):
        assert client.post("/login", data=form).status_code == 401
    refused = client.post("/login", data={**form, "api_key": KEY})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "failed sign-ins" in refused.get_data(as_text=True)
    # The form itself still shows; the API key count is separate.
    assert client.get("/login").status_code == 200
    assert client.post("/api/flows/filter", headers=RIGHT).status_code == 200


def test_counts_in_redis_are_shared_by_every_process(make_app, redis_db):
    # Two apps, each with its own limiter and Redis connection, as two gunicorn workers.
    first = make_app(REDIS_URL=REDIS_URL, API_KEY=KEY, THROTTLE_FAILED_API_KEYS="3/minute")
    second = make_app(REDIS_URL=REDIS_URL, API_KEY=KEY, THROTTLE_FAILED_API_KEYS="3/minute")
    assert first.test_client().get("/api/flows/", headers=WRONG).status_code == 401
    assert second.test_client().get("/api/flows/", headers=WRONG).status_code == 401
    assert first.test_client().get("/api/flows/", headers=WRONG).status_code == 401
    refused = second.test_client().post("/api/flows/filter", headers=RIGHT)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert any(b"orion-throttle" in key for key in redis_db.keys("*"))


def test_throttle_storage_setting_wins_over_redis_url(make_app, redis_db):
    app = make_app(
        REDIS_URL=REDIS_URL,
        THROTTLE_STORAGE_URL="memory://",
        API_KEY=KEY,
        THROTTLE_FAILED_API_KEYS="1/minute",
    )
    client = app.test_client()
    assert client.get("/api/flows/", headers=WRONG).status_code == 401
    assert client.get("/api/flows/", headers=WRONG).status_code == 429
    assert redis_db.keys("*") == []


def test_an_unreachable_throttle_storage_never_refuses_requests(make_app):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(
        REDIS_URL=None,
        THROTTLE_STORAGE_URL=dead,
        API_KEY=KEY,
        THROTTLE_FAILED_API_KEYS="2/minute",
    )
    client = app.test_client()
    assert client.post("/api/flows/filter", headers=RIGHT).status_code == 200
    # Counted in memory meanwhile: still throttled.
    for _ in range(2):
        assert client.get("/api/flows/", headers=WRONG).status_code == 401
    assert client.get("/api/flows/", headers=WRONG).status_code == 429
    with pytest.raises(redis_lib.ConnectionError):
        redis_lib.Redis.from_url(dead).ping()


def test_counts_go_back_to_the_storage_once_it_answers_again(make_app, monkeypatch, tmp_path):
    monkeypatch.setattr(Throttle, "RETRY_SECONDS", 0.5)
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = make_app(REDIS_URL=None, THROTTLE_STORAGE_URL=url, API_KEY=KEY)
    client = app.test_client()
    assert client.get("/api/flows/", headers=WRONG).status_code == 401  # counted in memory
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        storage = redis_lib.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                storage.ping()
                break
            except redis_lib.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        time.sleep(0.6)
        assert client.get("/api/flows/", headers=WRONG).status_code == 401
        assert any(b"orion-throttle" in key for key in storage.keys("*"))
    finally:
        server.terminate()
        server.wait(10)


def test_a_storage_that_never_answers_costs_a_request_at_most_seconds(make_app):
    # A Redis that accepts connections and never replies (a listening socket no one reads).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", free_port()))
        silent.listen(16)
        app = make_app(
            REDIS_URL=None,
            THROTTLE_STORAGE_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
            API_KEY=KEY,
        )
        statuses = []
        started = time.monotonic()
        worker = threading.Thread(
            target=lambda: statuses.append(
                app.test_client().post("/api/flows/filter", headers=RIGHT).status_code
            ),
            daemon=True,
        )
        worker.start()
        worker.join(15)
        assert not worker.is_alive(), "the request hung on the silent storage"
        assert statuses == [200]
        assert time.monotonic() - started < 5


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/flow-runs", "/api/health", "/docs", "/static/ui/orion.js"])
def test_every_response_carries_the_security_headers(make_app, path):
    response = make_app(REDIS_URL=None).test_client().get(path)
    response.close()
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in directives["script-src"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_only_over_https(make_app):
    client = make_app(REDIS_URL=None).test_client()
    secure = client.get("/api/health", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/api/health").headers


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
_HANDLER = re.compile(r"\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.I)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/", "/flow-runs", "/login"])
def test_pages_have_no_inline_script_or_handler(make_app, path):
    html = make_app(REDIS_URL=None).test_client().get(path).get_data(as_text=True)
    assert _INLINE_SCRIPT.findall(html) == []
    assert _HANDLER.findall(html) == []


def test_templates_have_no_inline_script_or_handler():
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert _INLINE_SCRIPT.findall(text) == [], template
        assert _HANDLER.findall(text) == [], template


def test_retry_after_counts_down(make_app):
    app = make_app(REDIS_URL=None, API_KEY=KEY, THROTTLE_FAILED_API_KEYS="1/hour")
    client = app.test_client()
    client.get("/api/flows/", headers=WRONG)
    first = int(client.get("/api/flows/", headers=WRONG).headers["Retry-After"])
    time.sleep(1.1)
    second = int(client.get("/api/flows/", headers=WRONG).headers["Retry-After"])
    assert 3000 < second < first <= 3600
