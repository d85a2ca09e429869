"""Schemathesis over every operation of the OpenAPI document, on SQLite and PostgreSQL.

Two runs per database: schema-valid requests (``POSITIVE``: what the document says the server
takes, so a 5xx is a bound missing from the document or the code) and schema-breaking ones
(``NEGATIVE``: what a fuzzer sends). Every response must be below 500 and match what the
document says of its status (``response_schema_conformance``). The app runs with
``TESTING``, so a server error arrives here as its exception, named in the failure.

Generation is derandomized (the same examples on every run) and bounded per operation
(:data:`EXAMPLES`), which keeps a run of both modes under about a minute and a half per
database on two quiet cores. Operations with nothing to break (no parameters, no body) have
no negative examples; Hypothesis says so with ``Unsatisfiable``, which is not a failure.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as schemathesis_checks

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
CHECKS = [schemathesis_checks.not_a_server_error, schemathesis_checks.response_schema_conformance]


def _documented_operations(client):
    spec = client.get("/api/openapi.json").get_json()
    return {
        f"{method.upper()} {path}"
        for path, methods in spec["paths"].items()
        for method in methods
        if method in ("get", "post", "put", "patch", "delete")
    }


def _fuzz(operation, mode, problems):
    """Run ``operation`` on its generated examples; append what went wrong to ``problems``."""

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case):
        try:
            response = case.call()
            case.validate_response(response, checks=CHECKS)
        except Exception as error:  # a server error (TESTING) or a failed check, reported
            problems.append(f"{operation.label} {case.as_curl_command()}\n  {error!r:.800}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            problems.append(f"{operation.label}: no schema-valid example could be generated")


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda mode: mode.value)
def test_every_operation_survives_the_fuzzer(app, client, mode):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    problems, seen = [], set()
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.add(operation.label)
        _fuzz(operation, mode, problems)
    assert seen == _documented_operations(client)
    assert not problems, "\n".join(problems[:20])
    assert client.get("/api/health").get_json() is True
