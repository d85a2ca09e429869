"""The OpenAPI document and the /docs and /redoc pages, which load only vendored assets."""

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
