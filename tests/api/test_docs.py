"""The OpenAPI document and the /docs and /redoc pages, which load only vendored assets."""

import re
import threading
from html.parser import HTMLParser

import pytest

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
JAVASCRIPT_TYPES = {"text/javascript", "application/javascript"}


class ReferenceCollector(HTMLParser):
    """Collects the URLs a page makes the browser fetch: script src, link href, redoc spec-url."""

    def __init__(self):
        super().__init__()
        self.scripts = []
        self.stylesheets = []
        self.spec_urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.stylesheets.append(attrs["href"])
        elif tag == "redoc" and attrs.get("spec-url"):
            self.spec_urls.append(attrs["spec-url"])


def references(html):
    collector = ReferenceCollector()
    collector.feed(html)
    return collector


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def test_openapi_document_is_3_1_with_a_summary_for_every_operation(client):
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == "Orion"
    found = list(operations(spec))
    assert found, "the spec lists no operations"
    missing = [
        f"{method} {path}" for method, path, op in found if not op.get("summary", "").strip()
    ]
    assert missing == [], "operations without a summary (give the view a docstring)"


@pytest.mark.parametrize(
    "page, scripts, stylesheets",
    [
        (
            "/docs",
            [
                "/static/vendor/swagger-ui/swagger-ui-standalone-preset.js",
                "/static/vendor/swagger-ui/swagger-ui-bundle.js",
                # The page's start-up script, a file so the CSP needs no inline script.
                "/static/ui/swagger-init.js",
            ],
            ["/static/vendor/swagger-ui/swagger-ui.css"],
        ),
        ("/redoc", ["/static/vendor/redoc/redoc.standalone.js"], ["/static/ui/redoc.css"]),
    ],
)
def test_docs_page_loads_only_vendored_assets(client, page, scripts, stylesheets):
    response = client.get(page)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    refs = references(response.get_data(as_text=True))
    assert refs.scripts == scripts
    assert refs.stylesheets == stylesheets
    for url in refs.spec_urls:
        assert url.startswith("/") and not url.startswith("//"), url
    for url in scripts + stylesheets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        expected = {"text/css"} if url.endswith(".css") else JAVASCRIPT_TYPES
        assert asset.mimetype in expected, (url, asset.mimetype)
        asset.close()


@pytest.mark.parametrize(
    "url, licence",
    [
        ("/static/vendor/swagger-ui/LICENSE", "Apache License"),
        ("/static/vendor/redoc/LICENSE", "MIT License"),
    ],
)
def test_vendored_assets_ship_their_licences(client, url, licence):
    response = client.get(url)

    assert response.status_code == 200
    assert licence in response.get_data(as_text=True)
    response.close()


def api_paths(app):
    """The OpenAPI form (``<uuid:id>`` as ``{id}``) of every route of the app's API
    blueprints."""
    api_blueprints = set(app.extensions["flask-smorest"]["blp_name_to_api"])
    return {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in api_blueprints
    }


def test_the_document_built_on_first_request_covers_every_api_route(make_app):
    """The document is built when first asked for, not with the app: it still holds every
    route of every API blueprint, and a second app's document is the same."""
    first = make_app()
    spec = first.test_client().get("/api/openapi.json").get_json()

    assert api_paths(first) <= set(spec["paths"])
    assert len(spec["paths"]) > 100
    second = make_app()
    assert second.test_client().get("/api/openapi.json").get_json() == spec


def test_the_document_is_built_once_under_concurrent_first_requests(make_app):
    """Requests racing for a new app's first document each get the whole of it (each
    blueprint is documented once: twice would be a duplicate-component error, a 500)."""
    reference = make_app().test_client().get("/api/openapi.json").get_json()
    app = make_app()
    start = threading.Barrier(6)
    answers = []

    def read():
        client = app.test_client()
        start.wait()
        response = client.get("/api/openapi.json")
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _ in answers] == [200] * 6
    assert all(spec == reference for _, spec in answers)
