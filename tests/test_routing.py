"""The app's routes build their URLs lazily (``app.LazyBuilderRule``), exactly as werkzeug's
own rules build them."""

import re
import threading
import uuid

import pytest
from werkzeug.routing import Map, Rule

from app import LazyBuilderRule

# A sample value for each converter the app's routes use (None: the default string one).
SAMPLES = {
    None: "a name/with spaces & é",
    "string": "a name with spaces & é",
    "uuid": uuid.UUID("0b7a3c52-1d8e-4c4f-9a51-2f3e4d5c6b7a"),
    "path": "nested/dir/file name.txt",
}
ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def sample_values(rule):
    return {match.group(2): SAMPLES[match.group(1)] for match in ARGUMENT.finditer(rule.rule)}


def stock_copy(url_map):
    """A map of werkzeug's own Rule with the same routes and converters."""
    stock = Map(converters=url_map.converters)
    for rule in url_map.iter_rules():
        stock.add(Rule(rule.rule, endpoint=rule.endpoint, methods=rule.methods))
    return stock


def test_every_route_builds_the_url_werkzeug_builds(app):
    """With and without extra arguments (which become the query string), every route of the
    app builds the URL a stock werkzeug rule builds."""
    assert all(isinstance(rule, LazyBuilderRule) for rule in app.url_map.iter_rules())
    ours = app.url_map.bind("orion.test", script_name="/orion")
    stock = stock_copy(app.url_map).bind("orion.test", script_name="/orion")
    seen = 0
    for rule in app.url_map.iter_rules():
        values = sample_values(rule)
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        for extra in ({}, {"page": 2, "sort": "NAME_ASC"}):
            for external in (False, True):
                args = (rule.endpoint, {**values, **extra}, method, external)
                assert ours.build(*args) == stock.build(*args)
        seen += 1
    assert seen > 200


def test_a_builder_compiles_once_and_racing_first_calls_agree():
    url_map = Map([LazyBuilderRule("/runs/<uuid:id>/logs", endpoint="logs")])
    run_id = uuid.uuid4()
    adapter = url_map.bind("orion.test")
    start = threading.Barrier(8)
    urls = []

    def build():
        start.wait()
        urls.append(adapter.build("logs", {"id": run_id, "limit": 5}))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert urls == [f"/runs/{run_id}/logs?limit=5"] * 8
    rule = next(url_map.iter_rules())
    builder = rule._build_unknown
    assert adapter.build("logs", {"id": run_id, "q": 1}) == f"/runs/{run_id}/logs?q=1"
    assert rule._build_unknown is builder


@pytest.mark.parametrize("missing", [{}, {"id": "not-a-uuid"}])
def test_a_lazy_rule_refuses_what_werkzeug_refuses(missing):
    lazy = Map([LazyBuilderRule("/runs/<uuid:id>", endpoint="run")]).bind("orion.test")
    stock = Map([Rule("/runs/<uuid:id>", endpoint="run")]).bind("orion.test")
    outcomes = []
    for adapter in (lazy, stock):
        try:
            outcomes.append(("built", adapter.build("run", missing)))
        except Exception as error:  # the two must fail alike
            outcomes.append(("refused", type(error)))
    assert outcomes[0] == outcomes[1]
