"""The one route decorator (chalicelib/endpoint.py): every route is declared once, public routes
need no token, and every endpoint refuses unknown query parameters at the 400 step of the order of
checks (after 401 and 403), ignoring names that start with `_`."""

from __future__ import annotations

import pytest

from chalicelib.endpoint import REGISTRY, public_routes
from tests.factories import auth, json_headers, login, make_site, make_user


@pytest.fixture
def tokens(client):
    site = make_site("Marketing")
    make_user("jdoe", sites={site: "editor"})
    make_user("vera", sites={site: "viewer"})
    return {"editor": login(client, "jdoe")["token"], "viewer": login(client, "vera")["token"]}


def _error(response):
    return (
        response.status_code,
        response.json_body["error"]["code"],
        {d["field"] for d in response.json_body["error"].get("details") or []},
    )


def test_every_chalice_route_is_declared_through_the_decorator(app_module):
    routes = {(path, method) for path, methods in app_module.app.routes.items() for method in methods}
    assert routes == set(REGISTRY)
    assert {
        ("/api/auth/login", "POST"),
        ("/api/health", "GET"),
        ("/api/openapi.json", "GET"),
    } <= public_routes()
    assert ("/api/interactions", "GET") not in public_routes()


@pytest.mark.parametrize(
    "path",
    ["/api/auth/me", "/api/auth/sites", "/api/sites", "/api/interactions/types", "/api/interactions/1"],
)
def test_a_read_without_parameters_refuses_an_unknown_one(client, tokens, path):
    response = client.http.get(f"{path}?verbose=1", headers=auth(tokens["editor"]))
    assert _error(response) == (400, "VALIDATION_ERROR", {"verbose"})


@pytest.mark.parametrize("path", ["/api/health", "/api/openapi.json"])
def test_public_reads_refuse_an_unknown_parameter_too(client, path):
    assert _error(client.http.get(f"{path}?x=1")) == (400, "VALIDATION_ERROR", {"x"})


def test_names_starting_with_an_underscore_are_ignored_everywhere(client, tokens):
    assert client.http.get("/api/auth/me?_=1700000000", headers=auth(tokens["editor"])).status_code == 200
    assert client.http.get("/api/health?_=1").status_code == 200


def test_the_unknown_parameter_comes_after_the_role_check(client, tokens):
    response = client.http.delete("/api/interactions/1?force=yes", headers=auth(tokens["viewer"]))
    assert _error(response)[:2] == (403, "AUTHORIZATION_ERROR")


def test_the_unknown_parameter_comes_after_the_token_check(client):
    response = client.http.get("/api/auth/me?x=1", headers=auth("not-a-token"))
    assert _error(response)[:2] == (401, "AUTHENTICATION_ERROR")


def test_a_body_endpoint_reports_the_parameter_before_reading_the_body(client, tokens):
    response = client.http.post(
        "/api/interactions?dry_run=1", body="{}", headers=json_headers(tokens["editor"])
    )
    assert _error(response) == (400, "VALIDATION_ERROR", {"dry_run"})


def test_the_unknown_parameter_comes_before_404(client, tokens):
    response = client.http.get("/api/interactions/999999?x=1", headers=auth(tokens["editor"]))
    assert _error(response) == (400, "VALIDATION_ERROR", {"x"})
