"""app/prefect_ui.py: a built Prefect UI folder served as Prefect serves it (its files, the
SPA fallback to index.html, /ui-settings), on its own (``orion prefect-ui``, which refuses a
folder that is not one) and by Orion's server itself (``ORION_PREFECT_UI_DIR``). The real UIs
in a browser: tests/browser/test_prefect_ui.py and test_prefect_220_ui.py."""

import json
import re
import subprocess

import pytest

from app.exceptions import InvalidSetting
from app.prefect_ui import BASE_PLACEHOLDER, PREFECT_220_FLAGS, create_prefect_ui_app
from tests.compat.conftest import prefect_venv
from tests.support import ORION, orion_env

API = "http://127.0.0.1:4200/api"


@pytest.fixture
def ui_dir(tmp_path):
    folder = tmp_path / "ui"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<div id=app></div>")
    (folder / "assets" / "index.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not served")
    return folder


@pytest.fixture
def ui(ui_dir):
    return create_prefect_ui_app(str(ui_dir), API).test_client()


def get(ui, path):
    """``(status, body, content type)`` of a GET, the response closed (files are streamed)."""
    with ui.get(path) as response:
        return response.status_code, response.get_data(), response.content_type


def test_ui_settings_name_the_api(ui):
    """A 2.7 build (its assets named from ``/``) is told of no experiments, as Prefect 2.7.12's
    server tells it."""
    assert ui.get("/ui-settings").get_json() == {
        "api_url": API,
        "csrf_enabled": False,
        "flags": [],
    }


def test_files_and_the_spa_fallback(ui):
    status, body, content_type = get(ui, "/assets/index.js")
    assert (status, body) == (200, b"console.log(1)")
    assert "javascript" in content_type
    for route in ("/", "/flow-runs", "/flow-runs/flow-run/1234", "/assets/missing.js"):
        assert get(ui, route)[:2] == (200, b"<div id=app></div>"), route


@pytest.fixture
def ui_220(tmp_path):
    """A folder laid out as Prefect 2.20's build: its base path a placeholder."""
    folder = tmp_path / "ui-220"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(
        f'<script src="{BASE_PLACEHOLDER}/assets/index.js"></script><div id=app></div>'
    )
    (folder / "assets" / "index.js").write_text(f'const base = "{BASE_PLACEHOLDER}/";')
    (folder / "assets" / "other.js").write_text("const plain = 1;")
    (folder / "ico").mkdir()
    (folder / "ico" / "completed.svg").write_text("<svg/>")
    return folder


def test_the_220_base_placeholder_is_replaced_with_the_base_path(ui_220):
    at_root = create_prefect_ui_app(str(ui_220), "/api").test_client()
    for route in ("/", "/flow-runs/flow-run/1234"):
        assert get(at_root, route)[:2] == (
            200,
            b'<script src="/assets/index.js"></script><div id=app></div>',
        )
    status, body, content_type = get(at_root, "/assets/index.js")
    assert (status, body) == (200, b'const base = "/";')
    assert "javascript" in content_type
    assert get(at_root, "/assets/other.js")[1] == b"const plain = 1;"
    assert at_root.get("/ui-settings").get_json()["api_url"] == "/api"

    under = create_prefect_ui_app(str(ui_220), API, base_path="/prefect/").test_client()
    assert get(under, "/prefect/deployments")[1].startswith(
        b'<script src="/prefect/assets/index.js">'
    )
    assert get(under, "/prefect/assets/index.js")[1] == b'const base = "/prefect/";'
    assert under.get("/prefect/ui-settings").get_json()["api_url"] == API
    assert get(under, "/assets/index.js")[0] == 404
    # Its favicons are named from the root, whatever the base path.
    assert get(under, "/ico/completed.svg")[:2] == (200, b"<svg/>")
    assert get(under, "/ico/undefined.svg")[1].startswith(b"<script")  # as any other route


def test_nothing_outside_the_folder(ui):
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        assert b"not served" not in get(ui, path)[1]


def test_a_folder_that_is_not_a_built_ui_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no index\.html"):
        create_prefect_ui_app(str(tmp_path), API)
    done = subprocess.run(
        [ORION, "prefect-ui", str(tmp_path / "missing")],
        env=orion_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "is not a folder" in done.stderr


def test_orion_serves_a_220_build_beside_its_api(make_app, ui_220):
    orion = make_app(PREFECT_UI_DIR=str(ui_220)).test_client()
    assert orion.get("/prefect/ui-settings").get_json() == {
        "api_url": "/api",
        "csrf_enabled": False,
        "flags": list(PREFECT_220_FLAGS),
    }
    status, body, _ = get(orion, "/prefect/flow-runs/flow-run/1234")
    assert (status, body) == (
        200,
        b'<script src="/prefect/assets/index.js"></script><div id=app></div>',
    )
    assert get(orion, "/prefect/assets/index.js")[1] == b'const base = "/prefect/";'
    # Orion's own pages and API are where they were, and its headers cover the UI too.
    assert orion.get("/api/health").status_code == 200
    with orion.get("/prefect/") as response:
        assert response.headers["X-Frame-Options"] == "DENY"
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self' 'unsafe-eval';" in policy
        assert "img-src 'self' data: https:;" in policy
    with orion.get("/") as response:  # the dashboard's images stay on the site
        assert "img-src 'self' data:;" in response.headers["Content-Security-Policy"]
    # Behind a proxy that serves Orion under a prefix, the UI and its API keep the prefix.
    behind = orion.get("/prefect/ui-settings", base_url="http://localhost/orion/")
    assert behind.get_json()["api_url"] == "/orion/api"
    with orion.get("/prefect/", base_url="http://localhost/orion/") as response:
        assert response.get_data().startswith(b'<script src="/orion/prefect/assets/index.js">')


def test_orion_serves_the_ui_at_the_path_it_is_given(make_app, ui_220):
    orion = make_app(PREFECT_UI_DIR=str(ui_220), PREFECT_UI_PATH="/tools/prefect/").test_client()
    assert orion.get("/tools/prefect/ui-settings").get_json()["api_url"] == "/api"
    assert get(orion, "/tools/prefect/")[1].startswith(b'<script src="/tools/prefect/assets/')
    assert orion.get("/prefect/ui-settings").status_code == 404


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"PREFECT_UI_DIR": "/no/such/folder"},
            "ORION_PREFECT_UI_DIR: /no/such/folder is not a folder",
        ),
        ({"PREFECT_UI_PATH": "/api"}, "ORION_PREFECT_UI_PATH=/api: Orion already serves /api/"),
        ({"PREFECT_UI_PATH": "/"}, "ORION_PREFECT_UI_PATH='/': use a path below the root"),
        ({"PREFECT_UI_PATH": "prefect"}, "use a path below the root"),
        ({"PREFECT_UI_PATH": "/a b"}, "use a path below the root"),
    ],
)
def test_orion_refuses_a_ui_it_cannot_serve(make_app, ui_220, settings, message):
    with pytest.raises(InvalidSetting, match=re.escape(message)):
        make_app(**{"PREFECT_UI_DIR": str(ui_220), **settings})


def test_a_27_build_is_refused_with_the_way_to_serve_it(make_app, ui_dir):
    with pytest.raises(InvalidSetting, match=r"Prefect 2\.7 build.*`orion prefect-ui`"):
        make_app(PREFECT_UI_DIR=str(ui_dir))


def test_the_220_flags_are_those_prefect_220s_server_sends_by_default(tmp_path):
    """:data:`PREFECT_220_FLAGS` is what the real Prefect 2.20 reports, all settings at their
    defaults (``enabled_experiments()``, which its server's ``/ui-settings`` returns)."""
    venv = prefect_venv("2.20")
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            (
                "import json; from prefect._internal.compatibility.experimental import "
                "enabled_experiments; print(json.dumps(sorted(enabled_experiments())))"
            ),
        ],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == list(PREFECT_220_FLAGS)
