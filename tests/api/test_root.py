"""Health, version, hello, the API version header and the optional API key."""

import shutil

import pytest

import app as orion


def test_health_is_true_when_the_database_answers(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.get_json() is True


def test_health_is_503_with_a_reason_when_the_database_is_gone(make_app, tmp_path, db):
    folder = tmp_path / "db"
    broken = make_app(DATABASE_URL=f"sqlite:///{folder}/orion.db")
    shutil.rmtree(folder)
    db.close_all()
    response = broken.test_client().get("/api/health")
    assert response.status_code == 503
    assert "Database unavailable" in response.get_json()["detail"]
    # Every other endpoint says the same instead of a 500.
    response = broken.test_client().post("/api/flows/filter", json={})
    assert response.status_code == 503


def test_version_and_hello(client):
    assert client.get("/api/admin/version").get_json() == orion.__version__
    assert client.get("/api/hello").status_code == 200


@pytest.mark.parametrize("header", ["0.8.0", "0.8.4", "1.0.0", " 0.8.3 "])
def test_supported_api_versions_are_accepted(client, header):
    response = client.get("/api/hello", headers={"X-PREFECT-API-VERSION": header})
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["0.7.9", "banana", "1.2", "0.8.x"])
def test_old_or_malformed_api_versions_are_400(client, header):
    response = client.get("/api/hello", headers={"X-PREFECT-API-VERSION": header})
    assert response.status_code == 400
    assert header.strip() in response.get_json()["detail"]


def test_api_key_is_required_when_configured(make_app, db):
    secured = make_app(API_KEY="s3cret").test_client()
    assert secured.get("/api/hello").status_code == 401
    wrong = secured.get("/api/hello", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = secured.get("/api/hello", headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200


def test_unknown_route_is_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert "detail" in response.get_json()


def test_request_body_too_large_is_413(make_app, db):
    small = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = small.post("/api/flows/", json={"name": "x" * 4096})
    assert response.status_code == 413


def test_limits_follow_settings(make_app):
    narrow = make_app(API_DEFAULT_LIMIT=5).test_client()
    assert narrow.post("/api/flows/filter", json={"limit": 5}).status_code == 200
    response = narrow.post("/api/flows/filter", json={"limit": 6})
    assert response.status_code == 422


def test_openapi_spec_is_public_and_documents_orion_errors(make_app):
    secured = make_app(API_KEY="s3cret").test_client()
    spec = secured.get("/api/openapi.json").get_json()
    error = spec["components"]["schemas"]["Error"]["properties"]
    assert {"detail", "exception_message", "exception_detail", "request_body"} <= set(error)


def test_api_requests_get_no_session_and_the_dashboard_keeps_its_own(client):
    """API calls get Flask's null session (no signed cookie to open or write); the
    dashboard's session, which carries its CSRF token, still works."""
    from flask import session

    with client:
        client.get("/api/hello")
        assert session.__class__.__name__ == "NullSession"
    assert client.get_cookie("session") is None
    page = client.get("/work-queues/new")
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
    assert client.get_cookie("session") is not None
