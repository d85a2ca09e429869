"""app/prefect_ui.py: a built Prefect UI folder served as Prefect serves it (its files, the
SPA fallback to index.html, /ui-settings), and ``orion prefect-ui``'s refusal of a folder that
is not one. The real UI in a browser: tests/browser/test_prefect_ui.py."""

import subprocess

import pytest

from app.prefect_ui import BASE_PLACEHOLDER, create_prefect_ui_app
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
