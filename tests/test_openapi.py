"""GET /api/openapi.json: a valid OpenAPI 3.1 document describing every route, generated from the
schemas the views validate with."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from chalicelib import openapi
from chalicelib.audit.schemas import AuditQuery, HistoryQuery
from chalicelib.auth.schemas import LoginRequest, PasswordChange, SetupRequest, SiteSelect
from chalicelib.endpoint import public_routes
from chalicelib.interactions.schemas import InteractionCreate, InteractionQuery
from chalicelib.sites.schemas import MemberAdd, MemberUpdate, SiteCreate, SiteUpdate, SiteUsersQuery

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def doc(client):
    response = client.http.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json_body


def _operations(doc):
    return {
        (path, method.upper()) for path, item in doc["paths"].items() for method in item if method in METHODS
    }


def test_the_document_is_served_without_a_token_and_is_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_chalice_route_is_documented(doc, app_module):
    routes = {(path, method) for path, methods in app_module.app.routes.items() for method in methods}
    assert routes - _operations(doc) == set()


def test_every_documented_operation_is_a_route(doc, app_module):
    routes = {(path, method) for path, methods in app_module.app.routes.items() for method in methods}
    assert _operations(doc) - routes == set()


def test_request_bodies_are_the_schemas_the_views_validate_with(doc):
    schemas = doc["components"]["schemas"]
    for model in (
        InteractionCreate,
        LoginRequest,
        SiteSelect,
        MemberAdd,
        MemberUpdate,
        SiteCreate,
        SiteUpdate,
        SetupRequest,
        PasswordChange,
    ):
        assert schemas[model.__name__]["properties"].keys() == model.model_json_schema()["properties"].keys()
        assert schemas[model.__name__].get("additionalProperties") is False
    assert set(schemas["InteractionCreate"]["required"]) == {
        "title",
        "type",
        "lead",
        "start_datetime",
        "timezone",
    }
    body = doc["paths"]["/api/interactions"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/InteractionCreate"}


def test_a_partial_update_requires_nothing_and_offers_no_null_for_required_fields(doc):
    update = doc["components"]["schemas"]["InteractionUpdate"]
    assert not update.get("required")
    assert "default" not in update["properties"]["title"]
    assert {"type": "null"} in update["properties"]["location"]["anyOf"]


@pytest.mark.parametrize(
    "path,model",
    [
        ("/api/interactions", InteractionQuery),
        ("/api/sites/{site_id}/users", SiteUsersQuery),
        ("/api/sites/{site_id}/audit", AuditQuery),
        ("/api/interactions/{interaction_id}/history", HistoryQuery),
    ],
)
def test_query_parameters_come_from_the_query_schema(doc, path, model):
    parameters = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"] if p["in"] == "query"}
    assert parameters.keys() == model.model_fields.keys()
    assert parameters["per_page"]["schema"]["maximum"] == 100
    if model is InteractionQuery:
        assert parameters["sort_by"]["schema"]["enum"][0] == "start_datetime"
        assert parameters["sort_direction"]["schema"]["enum"] == ["asc", "desc"]


def test_bearer_security_everywhere_except_the_public_routes(doc):
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert doc["security"] == [{"bearer": []}]
    public = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS and op.get("security") == []
    }
    assert public == public_routes()


def test_errors_are_described_with_the_envelope(doc):
    envelope = doc["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["status", "error"]
    put = doc["paths"]["/api/interactions/{interaction_id}"]["put"]["responses"]
    for status in ("400", "401", "403", "404", "412", "415", "503"):
        ref = put[status]["$ref"].rsplit("/", 1)[-1]
        content = doc["components"]["responses"][ref]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert "Retry-After" in doc["components"]["responses"]["Error429"]["headers"]


def test_etag_location_if_match_and_idempotency_key_are_described(doc):
    item = doc["paths"]["/api/interactions/{interaction_id}"]
    created = doc["paths"]["/api/interactions"]["post"]
    assert {"ETag", "Location"} <= created["responses"]["201"]["headers"].keys()
    assert "ETag" in item["get"]["responses"]["200"]["headers"]
    assert "ETag" in item["put"]["responses"]["200"]["headers"]
    for method in ("put", "delete"):
        assert any(p["name"] == "If-Match" and p["in"] == "header" for p in item[method]["parameters"])
    assert any(p["name"] == "Idempotency-Key" for p in created["parameters"])


def test_the_document_is_built_once_per_container(monkeypatch):
    first = openapi.document()
    monkeypatch.setattr(openapi, "build", lambda: pytest.fail("built twice"))
    assert openapi.document() is first


def test_every_operation_that_takes_a_body_documents_413_and_415(doc):
    for path, item in doc["paths"].items():
        for method in ("post", "put", "delete"):
            if method in item:
                assert {"413", "415"} <= item[method]["responses"].keys(), (method, path)


def test_the_administration_routes_are_described(doc):
    paths = doc["paths"]
    assert set(paths["/api/sites/{site_id}/users/{user_id}"]) >= {"put", "delete", "parameters"}
    assert "409" in paths["/api/sites/{site_id}/users"]["post"]["responses"]
    assert "201" in paths["/api/sites/{site_id}/users/{user_id}/setup-token"]["post"]["responses"]
    assert paths["/api/auth/setup"]["post"]["security"] == []
    assert "Location" in paths["/api/sites"]["post"]["responses"]["201"]["headers"]
    actions = {p["name"]: p for p in paths["/api/sites/{site_id}/audit"]["get"]["parameters"]}["action"]
    assert "interaction.updated" in actions["schema"]["enum"] and "interaction." in actions["schema"]["enum"]
    me = doc["components"]["schemas"]["UserMe"]
    assert "platform_admin" in me["required"]
    user = doc["components"]["schemas"]["SiteUser"]
    assert "pending" in user["required"]


def test_every_paginated_list_declares_cursor_and_its_meta(doc):
    lists = [
        (path, item["get"])
        for path, item in doc["paths"].items()
        if "get" in item and "meta" in str(item["get"]["responses"]["200"])
    ]
    assert {path for path, _ in lists} >= {
        "/api/interactions",
        "/api/sites/{site_id}/users",
        "/api/sites/{site_id}/audit",
        "/api/interactions/{interaction_id}/history",
    }
    for path, operation in lists:
        assert {"page", "per_page", "cursor"} <= {p["name"] for p in operation["parameters"]}, path
    meta = doc["components"]["schemas"]["PaginationMeta"]
    assert set(meta["required"]) == {"per_page", "total_records", "total_exact", "next_cursor"}
    assert meta["properties"]["total_exact"]["type"] == "boolean"
    assert {"type": "null"} in meta["properties"]["next_cursor"]["anyOf"]


def test_optional_query_parameters_carry_no_default(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []) if method in METHODS else []:
                assert "default" not in parameter["schema"], (path, method, parameter["name"])
