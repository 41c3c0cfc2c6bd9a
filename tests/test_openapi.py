"""GET /api/openapi.json: a valid OpenAPI 3.1 document describing every route, generated from the
schemas the views validate with."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from chalicelib import openapi
from chalicelib.audit.schemas import AuditQuery, HistoryQuery
from chalicelib.auth.schemas import (
    InvitationAcceptRequest,
    InvitationPreviewRequest,
    LoginRequest,
    LogoutRequest,
    PasswordChange,
    SiteSelect,
)
from chalicelib.endpoint import public_routes
from chalicelib.interactions.schemas import InteractionCreate, InteractionQuery
from chalicelib.sites.schemas import (
    InvitationCreate,
    InvitationsQuery,
    MemberUpdate,
    SiteCreate,
    SiteUpdate,
    SiteUsersQuery,
)

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
        InvitationCreate,
        MemberUpdate,
        SiteCreate,
        SiteUpdate,
        InvitationPreviewRequest,
        InvitationAcceptRequest,
        LogoutRequest,
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
        ("/api/sites/{site_id}/invitations", InvitationsQuery),
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
    assert "post" not in paths["/api/sites/{site_id}/users"]
    assert "/api/sites/{site_id}/users/{user_id}/setup-token" not in paths and "/api/auth/setup" not in paths
    invitations = paths["/api/sites/{site_id}/invitations"]
    assert {"201", "409"} <= invitations["post"]["responses"].keys()
    assert "Location" in invitations["post"]["responses"]["201"]["headers"]
    one = paths["/api/sites/{site_id}/invitations/{invitation_id}"]
    assert set(one) >= {"get", "delete"} and "409" in one["delete"]["responses"]
    assert "409" in paths["/api/sites/{site_id}/invitations/{invitation_id}/resend"]["post"]["responses"]
    for public in ("/api/auth/invitations/preview", "/api/auth/invitations/accept"):
        assert paths[public]["post"]["security"] == [] and "429" in paths[public]["post"]["responses"]
    accept = doc["components"]["schemas"]["InvitationAcceptRequest"]
    assert (
        set(accept["required"]) == {"token", "password"} and "default" not in accept["properties"]["username"]
    )
    assert "default" not in doc["components"]["schemas"]["LogoutRequest"]["properties"]["all"]
    assert (
        doc["paths"]["/api/auth/logout"]["post"]["requestBody"]["required"] is False
    )  # no body: this session
    invitation = doc["components"]["schemas"]["InvitationRead"]
    assert set(invitation["required"]) == {
        "id",
        "email",
        "role",
        "status",
        "created_at",
        "expires_at",
        "invited_by",
        "delivery",
    }
    assert invitation["properties"]["email"]["format"] == "email"
    assert "Location" in paths["/api/sites"]["post"]["responses"]["201"]["headers"]
    actions = {p["name"]: p for p in paths["/api/sites/{site_id}/audit"]["get"]["parameters"]}["action"]
    assert "interaction.updated" in actions["schema"]["enum"] and "interaction." in actions["schema"]["enum"]
    me = doc["components"]["schemas"]["UserMe"]
    assert "platform_admin" in me["required"]
    user = doc["components"]["schemas"]["SiteUser"]
    assert "pending" not in user["properties"]


def test_every_paginated_list_declares_cursor_and_its_meta(doc):
    lists = [
        (path, item["get"])
        for path, item in doc["paths"].items()
        if "get" in item and "meta" in str(item["get"]["responses"]["200"])
    ]
    assert {path for path, _ in lists} >= {
        "/api/interactions",
        "/api/sites/{site_id}/users",
        "/api/sites/{site_id}/invitations",
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


# --- written for client generators with their default settings (API.md "GET /api/openapi.json") ----


def _walk(node, path=()):
    """Every (path, schema-ish dict) in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def _operation_items(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_no_component_property_carries_a_default(doc):
    # openapi-typescript makes a property with a default required; sent back in a partial update,
    # what the type demands would clear data.
    for name, schema in doc["components"]["schemas"].items():
        for where, node in _walk(schema):
            properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
            for prop, prop_schema in properties.items():
                assert "default" not in prop_schema, (name, where, prop)


def test_optional_request_properties_are_not_required_and_have_no_default(doc):
    schemas = doc["components"]["schemas"]
    create = schemas["InteractionCreate"]
    for optional in ("end_datetime", "location", "description", "notes"):
        assert optional not in create["required"]
        assert "default" not in create["properties"][optional]
    update = schemas["InteractionUpdate"]
    assert "required" not in update
    assert "required" not in schemas["SiteUpdate"]


def test_error_details_are_optional_request_id_always_there_and_neither_is_null(doc):
    body = doc["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["code", "message", "request_id"]
    assert body["properties"]["details"]["type"] == "array"
    assert body["properties"]["request_id"]["type"] == "string"


def test_properties_absent_for_some_targets_are_not_required(doc):
    target = doc["components"]["schemas"]["Target"]
    assert "version" not in target["required"]
    assert target["properties"]["version"]["type"] == "integer"


def _options(schema):
    """A property's schema, or each of its `anyOf` options (a nullable one)."""
    return schema.get("anyOf", [schema])


def _properties(doc):
    """(schema name, property name, property schema) of every component schema."""
    for name, schema in doc["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            yield name, field, prop


def test_path_ids_are_positive_integers_bounded_by_their_column(doc):
    int32 = {"site_id", "user_id", "invitation_id"}  # `integer` columns; the others are `bigint`
    for path, item in doc["paths"].items():
        for parameter in item.get("parameters", []):
            assert parameter["in"] == "path" and parameter["required"] is True
            schema = parameter["schema"]
            assert schema["type"] == "integer" and schema["minimum"] == 1, (path, parameter)
            assert schema["maximum"] == (2**31 - 1 if parameter["name"] in int32 else 2**63 - 1), path


def test_every_id_in_a_body_is_a_positive_integer_like_a_path_id(doc):
    ids = [
        (name, field, option)
        for name, field, prop in _properties(doc)
        if (field == "id" or field.endswith("_id")) and not field.endswith("request_id")  # a row's id
        for option in _options(prop)
        if option.get("type") != "null"
    ]
    assert {(name, field) for name, field, _ in ids} >= {
        ("InteractionRead", "id"),
        ("SiteSelect", "site_id"),
        ("InvitationRead", "id"),
        ("Inviter", "id"),
        ("InvitationSite", "id"),
    }
    for name, field, option in ids:
        assert option["type"] == "integer" and option["minimum"] == 1, (name, field, option)


def test_timestamps_and_email_addresses_carry_their_format(doc):
    timestamps, emails = set(), set()
    for name, field, prop in _properties(doc):
        formats = {option.get("format") for option in _options(prop) if option.get("type") != "null"}
        if field.endswith("_at") or field == "last_login":
            timestamps.add((name, field))
            assert formats == {"date-time"}, (name, field)
        if field == "email":
            emails.add((name, field))
            assert formats == {"email"}, (name, field)
    assert {
        ("InvitationRead", "expires_at"),
        ("LoginData", "expires_at"),
        ("UserMe", "last_login"),
    } <= timestamps
    assert {
        ("InvitationRead", "email"),
        ("InvitationPreview", "email"),
        ("InvitationCreate", "email"),
    } <= emails
    # An interaction's times are instants when read (sent, they may be local time in `timezone`).
    read = doc["components"]["schemas"]["InteractionRead"]["properties"]
    for field in ("start_datetime", "end_datetime"):
        assert "date-time" in {option.get("format") for option in _options(read[field])}, field


def test_time_zones_are_a_described_string_not_an_enum(doc):
    schemas = doc["components"]["schemas"]
    for model in ("InteractionCreate", "InteractionUpdate", "InteractionRead"):
        zone = schemas[model]["properties"]["timezone"]
        assert zone["type"] == "string" and "enum" not in zone
        assert zone["description"] and "America/New_York" in zone["examples"]


def test_every_time_zone_the_api_accepts_fits_the_documented_pattern():
    import re

    from chalicelib.interactions.schemas import ZONE_PATTERN
    from chalicelib.interactions.times import zone_names

    assert all(ZONE_PATTERN.fullmatch(name) for name in zone_names())
    assert all(len(name) <= 64 for name in zone_names())
    assert re.fullmatch(ZONE_PATTERN, "America/New_York")


def test_every_operation_declares_the_statuses_every_operation_can_answer(doc, app_module):
    public = public_routes()
    for path, method, operation in _operation_items(doc):
        declared = set(operation["responses"])
        assert {"400", "413", "429", "500", "504"} <= declared, (method, path)
        if (path, method.upper()) not in public:
            assert {"401", "503"} <= declared, (method, path)
        if method != "get":
            assert "415" in declared, (method, path)
        assert "405" not in declared


def test_every_answer_declares_x_request_id_and_retry_after_where_it_carries_one(doc):
    responses = doc["components"]["responses"]
    headers = doc["components"]["headers"]
    for name, response in responses.items():
        assert "X-Request-Id" in response["headers"], name
    for status in ("409", "429", "503"):
        ref = responses[f"Error{status}"]["headers"]["Retry-After"]["$ref"].rsplit("/", 1)[-1]
        assert headers[ref]["schema"]["type"] == "integer"
    assert headers["Retry-After"]["required"] is True  # 429: always
    for path, method, operation in _operation_items(doc):
        for status, response in operation["responses"].items():
            if "$ref" not in response:
                assert "X-Request-Id" in response["headers"], (method, path, status)


def test_no_component_is_unused(doc):
    text = json.dumps({k: v for k, v in doc.items() if k != "components"})
    components = doc["components"]
    text += json.dumps(components)
    for kind in ("schemas", "responses", "headers"):
        for name in components[kind]:
            assert f'"#/components/{kind}/{name}"' in text, (kind, name)
    assert "Error405" not in components["responses"]


def test_no_error_description_repeats_its_code(doc):
    for name, response in doc["components"]["responses"].items():
        description = response["description"]
        for code in openapi.ERROR_CODES:
            assert description.count(code) <= 1, (name, description)


def test_every_operation_and_every_tag_has_a_description(doc):
    for path, method, operation in _operation_items(doc):
        assert len(operation["description"]) > 20, (method, path)
        assert operation["description"] != operation["summary"]
    used = {operation["tags"][0] for _, _, operation in _operation_items(doc)}
    assert {tag["name"] for tag in doc["tags"]} == used
    assert all(tag["description"] for tag in doc["tags"])


def test_the_main_operations_have_examples_that_fit_their_schemas(doc):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource(
        "urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012)
    )

    def check(example, pointer):
        validator = Draft202012Validator(
            {"$ref": "urn:doc#" + pointer},
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [error.message for error in validator.iter_errors(example)]
        assert errors == [], (pointer, errors)

    seen = 0
    for path, method, operation in _operation_items(doc):
        escaped = "/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in body:
            check(body["example"], escaped + "/requestBody/content/application~1json/schema")
            seen += 1
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/json", {})
            if "example" in media:
                check(media["example"], f"{escaped}/responses/{status}/content/application~1json/schema")
                seen += 1
    for response in doc["components"]["responses"].values():
        check(response["content"]["application/json"]["example"], "/components/schemas/ErrorEnvelope")
    assert seen >= 8
    for operation_id in ("login", "createInteraction", "updateInteraction", "listInteractions"):
        operation = next(op for _, _, op in _operation_items(doc) if op["operationId"] == operation_id)
        assert "example" in operation["responses"][min(operation["responses"])]["content"]["application/json"]
