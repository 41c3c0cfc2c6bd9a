"""Error codes and their statuses are defined once (chalicelib/errors.py): the OpenAPI document,
the middleware's rewriting of Chalice's own answers and API Gateway's Gateway Responses all use
that one list, so none of them can name a code the others do not know."""

from __future__ import annotations

from chalicelib import errors, openapi
from deploy.gateway_responses import RESPONSES


def test_every_code_is_listed_once_with_a_described_status():
    codes = errors.codes()
    assert len(codes) == len(set(codes))
    assert {error.status for error in errors.CATALOG} <= set(errors.STATUS_DESCRIPTIONS)


def test_the_gateway_responses_use_the_catalogs_codes_and_statuses():
    by_code = {error.code: error.status for error in errors.CATALOG}
    for name, (status, code, _message) in RESPONSES.items():
        assert code in by_code, name
        assert status is None or int(status) == by_code[code], name


def test_the_openapi_error_envelope_lists_exactly_the_catalog(app_module):
    schema = openapi.build()["components"]["schemas"]["ErrorBody"]["properties"]["code"]
    assert schema["enum"] == errors.codes()


def test_chalices_own_answers_map_onto_the_catalog():
    assert errors.for_status(405) is errors.MethodNotAllowed
    assert errors.for_status(403) is errors.Forbidden  # the first listed for a shared status
    assert errors.for_status(418) is errors.InternalError
