"""The in-process gateway (devtools/gateway.py) in front of the real app: the gateway's refusals are
the packaged Gateway Responses, its authorizer cache is off unless asked for and counts every
authorizer invocation, and a cached answer still leaves every check of the API's own to it."""

from __future__ import annotations

import json

import pytest

from deploy.gateway_responses import gateway_responses
from devtools.edge import MAX_PAYLOAD_BYTES
from devtools.gateway import Gateway
from tests.interactions.helpers import VALID, make_world

PATH = "/api/interactions"


@pytest.fixture
def world():
    return make_world()


def assert_gateway_response(result, response_type: str, origin: str) -> None:
    packaged = gateway_responses(origin)[response_type]
    assert result.status == int(packaged["statusCode"]), result.raw
    request_id = result.headers["x-amzn-RequestId"]
    template = packaged["responseTemplates"]["application/json"]
    assert result.body == json.loads(template.replace("$context.requestId", request_id))
    assert result.headers["Access-Control-Allow-Origin"] == origin


def test_the_gateways_own_refusals_are_the_packaged_gateway_responses(world):
    from chalicelib.config import get_settings

    origin = get_settings().cors_allow_origin
    gateway = Gateway()
    assert_gateway_response(gateway.request("GET", "/api/auth/me"), "UNAUTHORIZED", origin)
    assert_gateway_response(
        gateway.request("GET", "/api/nowhere", world.token("editor")), "MISSING_AUTHENTICATION_TOKEN", origin
    )
    # Deployed, a method the path does not have is the gateway's 404, not the app's 405.
    assert_gateway_response(
        gateway.request("PATCH", PATH, world.token("editor"), {}), "MISSING_AUTHENTICATION_TOKEN", origin
    )
    assert_gateway_response(
        gateway.request("POST", PATH, world.token("editor"), "x" * (MAX_PAYLOAD_BYTES + 1)),
        "REQUEST_TOO_LARGE",
        origin,
    )
    assert gateway.authorizer_invocations == 0


def test_the_authorizer_cache_is_off_by_default_and_counts_invocations(world):
    gateway = Gateway()
    for _ in range(3):
        assert gateway.request("GET", "/api/auth/me", world.token("editor")).status == 200
    assert gateway.authorizer_invocations == 3


def test_with_the_cache_on_one_token_costs_one_authorizer_invocation(world):
    gateway = Gateway(cache_seconds=300)
    for _ in range(3):
        assert gateway.request("GET", "/api/auth/me", world.token("editor")).status == 200
    assert gateway.request("GET", PATH, world.token("editor")).status == 200
    assert gateway.authorizer_invocations == 1
    assert gateway.request("GET", PATH, world.token("admin")).status == 200
    assert gateway.authorizer_invocations == 2


def test_a_cached_answer_leaves_the_role_check_to_the_api(world):
    """The role is read from the database on every request, so a viewer's cached answer still
    gets the API's 403 on a write, whatever the cache holds."""
    gateway = Gateway(cache_seconds=300)
    assert gateway.request("GET", PATH, world.token("viewer")).status == 200
    refused = gateway.request("POST", PATH, world.token("viewer"), VALID)
    assert refused.status == 403
    assert refused.body["error"]["code"] == "AUTHORIZATION_ERROR"
    assert gateway.authorizer_invocations == 1


def test_with_the_cache_on_a_logged_out_token_is_still_refused(world):
    """The authorizer only verifies the token; revocation is the API's check on every request, so
    a cached "ok" for a token cannot outlive its logout."""
    from tests.factories import PASSWORD, make_site, make_user

    site = make_site("Elsewhere")
    make_user("cachey", sites={site: "editor"})
    gateway = Gateway(cache_seconds=300)
    login = gateway.request("POST", "/api/auth/login", body={"username": "cachey", "password": PASSWORD})
    assert login.status == 200, login.raw
    token = login.body["data"]["token"]
    assert gateway.request("GET", "/api/auth/me", token).status == 200
    assert gateway.request("POST", "/api/auth/logout", token).status == 200
    refused = gateway.request("GET", "/api/auth/me", token)
    assert refused.status == 401
    assert refused.body["error"]["code"] == "AUTHENTICATION_ERROR"
    assert gateway.authorizer_invocations == 1  # me, logout, me: one invocation


def test_an_unquoted_if_match_gets_a_412_that_says_entity_tags_are_quoted(world):
    gateway = Gateway()
    created = gateway.request("POST", PATH, world.token("editor"), VALID)
    assert created.status == 201
    path = f"{PATH}/{created.body['data']['interaction']['id']}"
    for method, body in (("PUT", {"title": "New"}), ("DELETE", None)):
        refused = gateway.request(method, path, world.token("editor"), body, headers={"If-Match": "1"})
        assert refused.status == 412
        assert refused.body["error"]["code"] == "PRECONDITION_FAILED"
        assert "entity tags are quoted" in refused.body["error"]["message"]
        assert 'If-Match: "1"' in refused.body["error"]["message"]
    stale = gateway.request("PUT", path, world.token("editor"), {"title": "New"}, headers={"If-Match": '"9"'})
    assert stale.status == 412
    assert stale.body["error"]["message"] == 'If-Match does not match the current version "1"'
