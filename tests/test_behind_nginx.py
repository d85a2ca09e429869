"""Orion behind a real nginx (Debian's ``nginx``; ``scripts/test`` installs it), TLS ended at
nginx, mounted twice: under a sub-path (``https://127.0.0.1:P/orion/``) and at the root of
another port. nginx runs with the config of ``docs/deploy.md`` (rendered by
:func:`nginx_config`, its own pid file, logs and temp folders; never the system service),
``proxy_redirect off`` so every ``Location`` is Orion's own; Orion runs with
``ORION_PROXY_TRUSTED_HOPS=1`` and an API key.

One nginx and one ``orion start`` for the module, on SQLite: what is tested here is how
Orion reads the forwarded headers (scheme, host, prefix), which no database changes. Forged
``X-Forwarded-*`` with the default settings are tested in tests/test_web_security.py.
"""

import datetime
import ipaddress
import os
import re
import shutil
import ssl
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import OrionServer, free_port, sqlite_url

REPO = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PREFECT_2_7 = Path(os.environ.get("ORION_TEST_PREFECT_2_7", REPO / ".venv-prefect-2.7"))
KEY = "nginx-test-key"
BEARER = {"Authorization": f"Bearer {KEY}"}
# Attributes of the dashboard's HTML that hold an address on this site.
_ADDRESS = re.compile(r'\s(?:href|src|action|hx-[a-z]+|data-[a-z-]*url|spec-url)="(/[^"]*)"')


def orion_site(*, listen, orion_port, prefix_port, root_port, certificate, private_key):
    """The nginx sites of docs/deploy.md (what goes in ``http { }``) for Orion on
    ``127.0.0.1:orion_port``: https on ``listen`` + ``prefix_port`` serves it under
    ``/orion/``, https on ``listen`` + ``root_port`` at the root (``listen``: an address and
    colon, or "" for every address). Every ``X-Forwarded-*`` header Orion reads is set here,
    so none a client sends gets through."""
    proxied = textwrap.indent(
        textwrap.dedent(
            """\
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_redirect off;
            client_max_body_size 16m;
            proxy_read_timeout 300s;"""
        ),
        " " * 8,
    ).lstrip()
    tls = textwrap.indent(
        f"ssl_certificate {certificate};\nssl_certificate_key {private_key};\n"
        "ssl_protocols TLSv1.2 TLSv1.3;",
        " " * 4,
    ).lstrip()
    ports = {"orion_port": orion_port, "prefix_port": prefix_port, "root_port": root_port}
    return textwrap.dedent(
        """\
        upstream orion {{
            server 127.0.0.1:{orion_port};
            keepalive 16;
        }}

        # Orion under /orion/: ORION_PROXY_TRUSTED_HOPS=1 reads X-Forwarded-Prefix.
        server {{
            listen {listen}{prefix_port} ssl;
            {tls}
            absolute_redirect off;
            location = /orion {{
                return 301 /orion/;
            }}
            location /orion/ {{
                proxy_pass http://orion/;
                proxy_set_header X-Forwarded-Prefix /orion;
                {proxied}
            }}
        }}

        # Orion at the root of its own site (an empty value drops a client's header).
        server {{
            listen {listen}{root_port} ssl;
            {tls}
            location / {{
                proxy_pass http://orion;
                proxy_set_header X-Forwarded-Prefix "";
                {proxied}
            }}
        }}
        """
    ).format(listen=listen, tls=tls, proxied=proxied, **ports)


def nginx_config(folder, **site):
    """A whole nginx config running :func:`orion_site` (``site``: its arguments but
    ``listen``) on 127.0.0.1, with its pid file, logs and temp folders in ``folder``."""
    sites = textwrap.indent(orion_site(listen="127.0.0.1:", **site), " " * 4)
    return (
        f"worker_processes 1;\n"
        f"pid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"    access_log {folder}/access.log;\n"
        + "".join(
            f"    {kind}_temp_path {folder}/temp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + sites
        + "}\n"
    )


DOCS_SITE = {
    "listen": "",
    "orion_port": 4200,
    "prefix_port": 443,
    "root_port": 8443,
    "certificate": "/etc/ssl/certs/orion.example.pem",
    "private_key": "/etc/ssl/private/orion.example.key",
}


def test_docs_deploy_shows_the_tested_config():
    """docs/deploy.md shows :func:`orion_site` as rendered with :data:`DOCS_SITE`."""
    text = (REPO / "docs" / "deploy.md").read_text()
    assert orion_site(**DOCS_SITE) in text


# What the test CA's key may do: sign (certificates, revocation lists), nothing else.
CA_KEY_USAGE = dict.fromkeys(
    (
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "encipher_only",
        "decipher_only",
    ),
    False,
) | dict.fromkeys(("digital_signature", "key_cert_sign", "crl_sign"), True)


def _certificates(folder):
    """A CA and a certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)

    def make(subject, issuer, key, signing_key, ca):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(**CA_KEY_USAGE),
                critical=True,
            ).add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                critical=False,
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make("Orion test CA", "Orion test CA", ca_key, ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make("127.0.0.1", "Orion test CA", key, ca_key, False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class Proxy:
    """The running nginx: ``url(mount)`` is its https root for mount "/orion" or ""."""

    def __init__(self, ca, prefix_port, root_port, folder):
        self.ca = ca
        self.ports = {"/orion": prefix_port, "": root_port}
        self.folder = folder

    def url(self, mount):
        return f"https://127.0.0.1:{self.ports[mount]}{mount}"

    def client(self, mount, **kwargs):
        """An httpx client for ``mount`` that trusts the test CA and follows no redirect."""
        return httpx.Client(base_url=self.url(mount), verify=self.tls(), timeout=30, **kwargs)

    def tls(self):
        """An SSL context that trusts the test CA (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def orion(tmp_path_factory):
    folder = tmp_path_factory.mktemp("orion-behind-nginx")
    server = OrionServer(
        folder,
        database_url=sqlite_url(folder),
        api_key=KEY,
        PROXY_TRUSTED_HOPS=1,
        SCHEDULER_ENABLED=False,
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def proxy(orion, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nginx")
    (folder / "temp").mkdir()
    ca, certificate, private_key = _certificates(folder)
    prefix_port, root_port = free_port(), free_port()
    while root_port == prefix_port:
        root_port = free_port()
    config = folder / "nginx.conf"
    config.write_text(
        nginx_config(
            folder,
            orion_port=orion.port,
            prefix_port=prefix_port,
            root_port=root_port,
            certificate=certificate,
            private_key=private_key,
        )
    )
    argv = [NGINX, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
    subprocess.run([*argv, "-t"], check=True, capture_output=True)
    process = subprocess.Popen([*argv, "-g", "daemon off;"], start_new_session=True)
    running = Proxy(ca, prefix_port, root_port, folder)
    try:
        deadline = time.monotonic() + 20
        while not _answers(running):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not answer:\n{(folder / 'error.log').read_text()}")
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        process.wait(20)


def _answers(proxy):
    try:
        with proxy.client("") as client:
            return client.get("/api/health", headers=BEARER).status_code == 200
    except httpx.HTTPError:
        return False


MOUNTS = pytest.mark.parametrize("mount", ["/orion", ""], ids=["sub-path", "root"])


def _login_next(location):
    """(path, ``next`` parameter) of a redirect to the sign-in page."""
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    return parts.path, parse_qs(parts.query)["next"][0]


def _sign_in(client, mount):
    """Sign ``client`` in to the dashboard through ``mount``; the sign-in's response."""
    first = client.get("/flow-runs?state=FAILED")
    assert first.status_code == 303
    assert _login_next(first.headers["Location"]) == (
        f"{mount}/login",
        f"{mount}/flow-runs?state=FAILED",
    )
    form = client.get(first.headers["Location"].removeprefix(mount))
    assert form.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    next_page = re.search(r'name="next" value="([^"]+)"', form.text).group(1)
    assert next_page == f"{mount}/flow-runs?state=FAILED".replace("&", "&amp;")
    signed = client.post("/login", data={"csrf_token": token, "next": next_page, "api_key": KEY})
    return signed


@MOUNTS
def test_api_and_its_errors_through_nginx(proxy, mount):
    with proxy.client(mount) as client:
        assert client.get("/api/health").status_code == 401
        assert client.get("/api/health", headers=BEARER).status_code == 200
        name = f"nginx-{uuid.uuid4().hex[:8]}"
        flow = client.post("/api/flows/", json={"name": name}, headers=BEARER)
        assert flow.status_code == 201, flow.text
        run = client.post("/api/flow_runs/", json={"flow_id": flow.json()["id"]}, headers=BEARER)
        assert run.status_code == 201, run.text
        assert client.get(f"/api/flow_runs/{run.json()['id']}", headers=BEARER).json()["id"]
        bad = client.post("/api/flows/", json={"name": 5}, headers=BEARER)
        assert bad.status_code == 422
        # Over https the app knows it: HSTS is sent.
        assert (
            "max-age"
            in client.get("/api/health", headers=BEARER).headers["Strict-Transport-Security"]
        )


@MOUNTS
def test_sign_in_keeps_the_prefix_and_sets_a_secure_cookie(proxy, mount):
    with proxy.client(mount) as client:
        signed = _sign_in(client, mount)
        assert signed.status_code == 303
        assert signed.headers["Location"] == f"{mount}/flow-runs?state=FAILED"
        cookie = signed.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
        assert f"Path={mount}/;" in cookie or cookie.endswith(f"Path={mount}/")
        assert client.get("/flow-runs?state=FAILED").status_code == 200
        signed_out = client.post(
            "/logout",
            data={
                "csrf_token": re.search(
                    r'name="csrf_token" value="([^"]+)"', client.get("/").text
                ).group(1)
            },
        )
        assert signed_out.status_code == 303
        assert signed_out.headers["Location"] == f"{mount}/login"


@MOUNTS
def test_htmx_requests_and_their_sign_in_redirect(proxy, mount):
    with proxy.client(mount) as anonymous:
        page = proxy.url(mount) + "/flow-runs?state=RUNNING"
        refused = anonymous.get(
            "/flow-runs", headers={"HX-Request": "true", "HX-Current-URL": page}
        )
        assert refused.status_code == 401
        assert _login_next(refused.headers["HX-Redirect"]) == (
            f"{mount}/login",
            f"{mount}/flow-runs?state=RUNNING",
        )
    with proxy.client(mount) as client:
        _sign_in(client, mount)
        flow = client.post("/api/flows/", json={"name": "nginx-htmx"}, headers=BEARER).json()
        client.post("/api/flow_runs/", json={"flow_id": flow["id"]}, headers=BEARER)
        fragment = client.get("/flow-runs?page=1", headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert "<html" not in fragment.text
        _assert_addresses_under(mount, fragment.text)


def _assert_addresses_under(mount, html):
    """Every address on this site that ``html`` holds starts with ``mount``/, and returns
    them."""
    found = _ADDRESS.findall(html)
    assert found
    wrong = [a for a in found if not a.startswith(f"{mount}/") or a.startswith(f"{mount}//")]
    if mount:
        wrong += [a for a in found if a.startswith(mount + mount + "/")]
    assert not wrong, f"addresses outside {mount or 'the root'}/: {wrong}"
    return found


@MOUNTS
def test_dashboard_pages_links_and_static_files_stay_under_the_mount(proxy, mount):
    with proxy.client(mount) as client:
        _sign_in(client, mount)
        flow = client.post("/api/flows/", json={"name": "nginx-pages"}, headers=BEARER)
        run = client.post(
            "/api/flow_runs/",
            json={"flow_id": flow.json()["id"], "name": "through-nginx"},
            headers=BEARER,
        ).json()
        task = client.post(
            "/api/task_runs/",
            json={"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0", "name": "t-0"},
            headers=BEARER,
        )
        assert task.status_code == 201, task.text
        pages = [
            "/",
            "/flow-runs",
            "/flows",
            "/deployments",
            "/work-queues",
            "/blocks",
            "/variables",
            f"/flow-runs/{run['id']}",
        ]
        static = set()
        for path in pages:
            page = client.get(path)
            assert page.status_code == 200, (path, page.status_code)
            found = _assert_addresses_under(mount, page.text)
            static.update(a for a in found if a.startswith(f"{mount}/static/"))
            assert f'href="{mount}/docs"' in page.text
        assert any(a.endswith(".js") for a in static) and any(a.endswith(".css") for a in static)
        for address in static:
            asset = client.get(address.removeprefix(mount))
            assert asset.status_code == 200, address
        # The radar fetches its data from the address the page gives it, under the mount.
        run_page = client.get(f"/flow-runs/{run['id']}").text
        radar_url = re.search(r'data-radar-url="([^"]+)"', run_page).group(1)
        assert radar_url.startswith(f"{mount}/flow-runs/")
        radar = client.get(
            radar_url.replace("{id}", run["id"]).removeprefix(mount),
            headers={"HX-Request": "true"},
        )
        assert radar.status_code == 200, radar.text


@MOUNTS
def test_a_form_posted_from_a_list_returns_to_it_under_the_mount(proxy, mount):
    """The deployments list's pause form carries the list's address (``next``) under the
    mount, and the POST redirects back there."""
    with proxy.client(mount) as client:
        _sign_in(client, mount)
        flow = client.post("/api/flows/", json={"name": "nginx-form"}, headers=BEARER).json()
        name = f"nginx-{uuid.uuid4().hex[:8]}"
        deployment = client.post(
            "/api/deployments/",
            json={
                "name": name,
                "flow_id": flow["id"],
                "schedule": {"interval": 3600},
                "is_schedule_active": True,
            },
            headers=BEARER,
        )
        assert deployment.status_code in (200, 201), deployment.text
        listing = client.get(f"/deployments?name={name}").text
        action = f"{mount}/deployments/{deployment.json()['id']}/pause"
        form = listing[listing.index(f'action="{action}"') :]
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        back = re.search(r'name="next" value="([^"]+)"', form).group(1).replace("&amp;", "&")
        assert back == f"{mount}/deployments?name={name}"
        paused = client.post(action.removeprefix(mount), data={"csrf_token": token, "next": back})
        assert paused.status_code == 303
        assert paused.headers["Location"] == back


@MOUNTS
def test_docs_and_their_spec_through_nginx(proxy, mount):
    with proxy.client(mount) as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200
            found = _assert_addresses_under(mount, page.text)
            assert f"{mount}/api/openapi.json" in found
            for address in found:
                assert client.get(address.removeprefix(mount)).status_code == 200, address
        spec = client.get("/api/openapi.json")
        assert spec.status_code == 200 and spec.json()["paths"]


@MOUNTS
def test_forged_forwarded_headers_do_not_get_through_nginx(proxy, mount):
    forged = {
        "X-Forwarded-Prefix": "/elsewhere",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Port": "1",
    }
    with proxy.client(mount) as client:
        response = client.get("/flow-runs", headers=forged)
        assert response.status_code == 303
        assert _login_next(response.headers["Location"]) == (
            f"{mount}/login",
            f"{mount}/flow-runs",
        )
        assert "Strict-Transport-Security" in response.headers


def test_sub_path_without_its_slash_redirects(proxy):
    with httpx.Client(verify=proxy.tls()) as client:
        response = client.get(proxy.url("/orion"))
        assert response.status_code == 301
        assert response.headers["Location"] == "/orion/"


# client label -> (python, import line, settings naming the API and its key)
CLIENTS = {
    "prefect-2.7": (
        str(PREFECT_2_7 / "bin" / "python"),
        "from prefect import flow, task",
        ("PREFECT_API_URL", "PREFECT_API_KEY"),
    ),
    "orion-client": (
        sys.executable,
        "from client import flow, task",
        ("ORION_API_URL", "ORION_API_KEY"),
    ),
}


@pytest.mark.parametrize("label", list(CLIENTS))
def test_a_client_runs_a_flow_through_nginx_under_a_sub_path(proxy, tmp_path, label):
    """A real Prefect 2.7.12 client and Orion's own, API at https://127.0.0.1:P/orion/api,
    trusting the test's CA through SSL_CERT_FILE (httpx reads it)."""
    python, imports, (url_setting, key_setting) = CLIENTS[label]
    script = tmp_path / "flow.py"
    name = f"nginx-{label}-{uuid.uuid4().hex[:8]}"
    script.write_text(
        textwrap.dedent(
            f"""\
            {imports}

            @task
            def double(x):
                return 2 * x

            @flow(name={name!r})
            def through_nginx():
                return double(21)

            assert through_nginx() == 42
            """
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORION_", "PREFECT_", "VIRTUAL_ENV", "SSL_", "REQUESTS_"))
    }
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "ORION_HOME": str(tmp_path / "orion-home"),
            url_setting: proxy.url("/orion") + "/api",
            key_setting: KEY,
            "SSL_CERT_FILE": str(proxy.ca),
        }
    )
    if label != "orion-client":
        env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [python, str(script)],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with proxy.client("/orion") as client:
        flows = client.post(
            "/api/flow_runs/filter", json={"flows": {"name": {"any_": [name]}}}, headers=BEARER
        ).json()
        assert [run["state"]["type"] for run in flows] == ["COMPLETED"]
        tasks = client.post(
            "/api/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [flows[0]["id"]]}}},
            headers=BEARER,
        ).json()
        assert [t["state"]["type"] for t in tasks] == ["COMPLETED"]
