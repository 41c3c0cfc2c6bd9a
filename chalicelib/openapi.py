"""The OpenAPI 3.1 document, built from the same pydantic schemas the views validate with.

Request bodies and query parameters come from the request schemas (`model_json_schema`); the
success shapes from the read schemas and the small documentation models below; every operation
lists the error envelope for the statuses it can answer. Built once per container.
"""
from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_document: dict[str, Any] | None = None

REF = "#/components/schemas/{model}"

# --- documentation models (shapes the views build as dicts) ----------------------------------------


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Doc):
    field: str = Field(description="the invalid field or query parameter")
    message: str


class ErrorBody(_Doc):
    code: str = Field(description="VALIDATION_ERROR, AUTHENTICATION_ERROR, AUTHORIZATION_ERROR, "
                                  "SITE_CONTEXT_REQUIRED, RESOURCE_NOT_FOUND, METHOD_NOT_ALLOWED, "
                                  "CONFLICT, PRECONDITION_FAILED, PAYLOAD_TOO_LARGE, "
                                  "UNSUPPORTED_MEDIA_TYPE, IDEMPOTENCY_KEY_REUSED, RATE_LIMITED, "
                                  "ACCOUNT_LOCKED, SERVICE_UNAVAILABLE, TIMEOUT, INTERNAL_ERROR")
    message: str
    details: list[ErrorDetail] | None = Field(
        None, description="present on validation errors: every invalid field, not only the first")
    request_id: str | None = Field(
        None, description="deployed, on errors API Gateway answers itself (its Gateway Responses): "
                          "the gateway's request id")


class ErrorEnvelope(_Doc):
    status: Literal["error"]
    error: ErrorBody


class PaginationMeta(_Doc):
    page: int
    per_page: int
    total_pages: int = Field(description="0 when nothing matches")
    total_records: int


class ListMeta(_Doc):
    pagination: PaginationMeta


class UserRef(_Doc):
    id: int
    username: str
    email: str


class UserMe(UserRef):
    last_login: str | None


class TokenData(_Doc):
    # A base for allOf (login, site switch): additionalProperties false here would forbid the
    # fields the composed schemas add (current_site, user, sites).
    model_config = ConfigDict(extra="ignore")

    token: str = Field(description="a JWT for `Authorization: Bearer <token>`")
    expires_at: str = Field(description="ISO 8601 in UTC with a Z suffix")


# --- schema helpers --------------------------------------------------------------------------------


def _schemas(models: list[tuple[type[BaseModel], str]]) -> dict[str, Any]:
    """The models (and the models they nest) as components, referring to each other by $ref."""
    from pydantic.json_schema import models_json_schema

    _refs, top = models_json_schema(models, ref_template=REF)
    return dict(top.get("$defs", {}))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never null: drop the `null` branch."""
    schema = copy.deepcopy(schema)
    options = schema.pop("anyOf", None)
    if options:
        rest = [option for option in options if option.get("type") != "null"]
        if len(rest) == 1:
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest
    if schema.get("default") is None:
        schema.pop("default", None)
    schema.pop("title", None)
    return schema


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    parameters = []
    for name, prop in schema["properties"].items():
        prop = _without_null(prop)
        description = prop.pop("description", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _envelope(data: dict[str, Any], *, paginated: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "required": ["status", "data"] + (["meta"] if paginated else []),
        "properties": {"status": {"const": "success"}, "data": data},
    }
    if paginated:
        schema["properties"]["meta"] = _ref("ListMeta")
    return schema


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": list(properties),
            "properties": properties}


def _array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


# --- responses -------------------------------------------------------------------------------------

ERRORS = {
    "400": "Malformed JSON, invalid or unknown fields, or bad query parameters (every one in `details`)",
    "401": "No valid token: missing, bad signature, expired, revoked, or an inactive user",
    "403": "AUTHORIZATION_ERROR (the role does not allow it) or SITE_CONTEXT_REQUIRED (no active site)",
    "404": "No such resource, or one of a site the caller may not see",
    "409": "CONFLICT: a duplicate, or the same Idempotency-Key still in progress",
    "412": "If-Match does not match the current version (stale, weak or malformed)",
    "413": "The body is over 256 KiB",
    "415": "A body without Content-Type: application/json",
    "422": "IDEMPOTENCY_KEY_REUSED: the same Idempotency-Key with a different body",
    "429": "RATE_LIMITED or ACCOUNT_LOCKED; retry after `Retry-After` seconds",
    "500": "An unexpected error, logged with the request id",
    "503": "The database or Redis is unreachable, or a statement timed out; nothing happened",
}


def _error_response(status: str) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    if status == "429":
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return {"description": ERRORS[status], "headers": headers,
            "content": {"application/json": {"schema": _ref("ErrorEnvelope")}}}


def _success(description: str, schema: dict[str, Any], *, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    all_headers = {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-Id", *headers)}
    return {"description": description, "headers": all_headers,
            "content": {"application/json": {"schema": schema}}}


def _operation(summary: str, ok_status: str, ok: dict[str, Any], errors: tuple[str, ...], *,
               tag: str, public: bool = False, body: dict[str, Any] | None = None,
               parameters: list[dict[str, Any]] | None = None, operation_id: str,
               method: str = "get") -> dict[str, Any]:
    common = {"500"} if public else {"401", "429", "500", "503"}
    if method != "get":  # the middleware refuses any body over 256 KiB or not sent as JSON
        common |= {"413", "415"}
    responses = {ok_status: ok}
    for status in sorted(set(errors) | common):
        responses[status] = {"$ref": f"#/components/responses/Error{status}"}
    operation: dict[str, Any] = {"summary": summary, "operationId": operation_id, "tags": [tag],
                                 "responses": responses}
    if public:
        operation["security"] = []
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        responses.setdefault("400", {"$ref": "#/components/responses/Error400"})
        operation["responses"] = dict(sorted(responses.items()))
    return operation


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "description": f"the {what}'s id (a positive integer; anything else is a 404)",
            "schema": {"type": "string", "pattern": "^[0-9]+$"}}


def _header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


# --- the document ----------------------------------------------------------------------------------


def build() -> dict[str, Any]:
    from chalicelib.auth.schemas import LoginRequest, SiteSelect
    from chalicelib.interactions.schemas import (
        InteractionCreate,
        InteractionQuery,
        InteractionRead,
        InteractionUpdate,
    )
    from chalicelib.models import INTERACTION_TYPES
    from chalicelib.sites.schemas import SiteDetail, SiteSummary, SiteUser, SiteUsersQuery

    models: list[tuple[type[BaseModel], str]] = [
        (LoginRequest, "validation"), (SiteSelect, "validation"),
        (InteractionCreate, "validation"), (InteractionUpdate, "validation"),
        (InteractionRead, "serialization"), (SiteSummary, "serialization"),
        (SiteDetail, "serialization"), (SiteUser, "serialization"),
        (ErrorEnvelope, "serialization"), (ListMeta, "serialization"),
        (UserRef, "serialization"), (UserMe, "serialization"), (TokenData, "serialization"),
    ]
    components = _schemas(models)
    # A partial update: no field is required and the required ones may not be null, so the
    # `default: null` pydantic writes for "not sent" is not a value a client may send.
    for prop in components["InteractionUpdate"]["properties"].values():
        if prop.get("default", "sent") is None and "anyOf" not in prop:
            prop.pop("default")
    components["InteractionCreate"]["description"] = (
        "A new interaction. The server-owned fields (id, site_id, created_by, created_at, "
        "updated_by, updated_at, version) are ignored when sent; any other unknown field is a 400.")

    site = _ref("SiteSummary")
    interaction = _object(interaction=_ref("InteractionRead"))
    message = _object(message={"type": "string"})
    login_data = {"allOf": [_ref("TokenData"), {"type": "object", "required": ["user", "sites", "current_site"],
                                                "properties": {"user": _ref("UserRef"), "sites": _array(site),
                                                               "current_site": _nullable(site)}}]}
    site_token = {"allOf": [_ref("TokenData"), {"type": "object", "required": ["current_site"],
                                                "properties": {"current_site": site}}]}
    if_match = _header("If-Match", 'makes the change conditional: `"<version>"` (strong) or `*`; '
                                   "a stale, weak or malformed value is a 412", {"type": "string"})
    idempotency_key = _header(
        "Idempotency-Key", "at most 255 characters; a retry with the same key and body replays the "
        "first successful answer (kept 24 h, per site and user)", {"type": "string", "maxLength": 255})
    interaction_id = _path_id("interaction_id", "interaction")
    site_id = _path_id("site_id", "site")

    paths: dict[str, Any] = {
        "/api/auth/login": {"post": _operation(
            "Log in", "200", _success("A token; scoped to the site when the user has exactly one",
                                      _envelope(login_data)),
            ("400", "401", "429", "503"), tag="auth", public=True, body=_ref("LoginRequest"),
            operation_id="login", method="post")},
        "/api/auth/me": {"get": _operation(
            "The caller and the token's site", "200",
            _success("The caller", _envelope(_object(user=_ref("UserMe"), current_site=_nullable(site)))),
            (), tag="auth", operation_id="me")},
        "/api/auth/sites": {"get": _operation(
            "The caller's active sites, by name", "200",
            _success("Sites with the caller's role", _envelope(_object(sites=_array(site)))),
            (), tag="auth", operation_id="authSites")},
        "/api/auth/site": {"post": _operation(
            "Choose the active site: a new token for the same session", "200",
            _success("A token scoped to the site, expiring with the session", _envelope(site_token)),
            ("400", "403"), tag="auth", body=_ref("SiteSelect"), operation_id="selectSite", method="post")},
        "/api/auth/logout": {"post": _operation(
            "End the session (every token of it)", "200", _success("Logged out", _envelope(message)),
            (), tag="auth", operation_id="logout", method="post")},
        "/api/interactions": {
            "get": _operation(
                "Find interactions of the active site", "200",
                _success("One page, with meta.pagination",
                         _envelope(_object(interactions=_array(_ref("InteractionRead"))), paginated=True)),
                ("400", "403"), tag="interactions",
                parameters=_query_parameters(InteractionQuery), operation_id="listInteractions"),
            "post": _operation(
                "Create an interaction in the active site (editor, admin)", "201",
                _success("Created", _envelope(interaction), headers=("ETag", "Location")),
                ("400", "403", "409", "422"), tag="interactions", body=_ref("InteractionCreate"),
                parameters=[idempotency_key], operation_id="createInteraction", method="post"),
        },
        "/api/interactions/types": {"get": _operation(
            "The interaction types", "200",
            _success("The types list", _envelope(_object(types=_array(
                {"type": "string", "enum": list(INTERACTION_TYPES)})))),
            (), tag="interactions", operation_id="interactionTypes")},
        "/api/interactions/{interaction_id}": {
            "parameters": [interaction_id],
            "get": _operation(
                "One interaction", "200", _success("The interaction", _envelope(interaction), headers=("ETag",)),
                ("403", "404"), tag="interactions", operation_id="getInteraction"),
            "put": _operation(
                "Partial update (editor, admin): only the fields sent change; null clears", "200",
                _success("The interaction as it is now", _envelope(interaction), headers=("ETag",)),
                ("400", "403", "404", "409", "412"), tag="interactions",
                body=_ref("InteractionUpdate"), parameters=[if_match], operation_id="updateInteraction", method="put"),
            "delete": _operation(
                "Delete (editor, admin)", "200", _success("Deleted", _envelope(message)),
                ("403", "404", "412"), tag="interactions", parameters=[if_match],
                operation_id="deleteInteraction", method="delete"),
        },
        "/api/sites": {"get": _operation(
            "The caller's active sites, by name", "200",
            _success("Sites with the caller's role", _envelope(_object(sites=_array(site)))),
            (), tag="sites", operation_id="listSites")},
        "/api/sites/{site_id}": {
            "parameters": [site_id],
            "get": _operation(
                "One site the caller belongs to, with counts", "200",
                _success("The site", _envelope(_object(site=_ref("SiteDetail")))),
                ("404",), tag="sites", operation_id="getSite")},
        "/api/sites/{site_id}/users": {
            "parameters": [site_id],
            "get": _operation(
                "The site's members, by username (the site's admins only)", "200",
                _success("One page, with meta.pagination",
                         _envelope(_object(users=_array(_ref("SiteUser"))), paginated=True)),
                ("400", "403", "404"), tag="sites",
                parameters=_query_parameters(SiteUsersQuery), operation_id="listSiteUsers")},
        "/api/health": {"get": _operation(
            "Health of the database and Redis", "200",
            _success("Both reachable", _envelope(_object(database={"const": "ok"}, cache={"const": "ok"}))),
            ("503",), tag="service", public=True, operation_id="health")},
        "/api/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi", "tags": ["service"], "security": [],
            "responses": {"200": {"description": "The OpenAPI 3.1 document (not wrapped in the envelope)",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Interaction Management API", "version": "1.0.0",
            "description": "Sites record and find interactions. JSON in and out; every error is "
                           "`{\"status\": \"error\", \"error\": {code, message, details?}}`. Order of "
                           "checks: 401, 413, 415, 403 site context, 403 role, 400, 404, 412, 400 "
                           "across the stored record, 409/422.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": "auth"}, {"name": "interactions"}, {"name": "sites"}, {"name": "service"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "headers": {
                "X-Request-Id": {"description": "the client's id when sane (<= 128 of A-Za-z0-9._-), else a new one",
                                 "schema": {"type": "string"}},
                "ETag": {"description": 'the strong validator `"<version>"`', "schema": {"type": "string"}},
                "Location": {"description": "the new interaction's path, as the client reached the API",
                             "schema": {"type": "string"}},
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
            },
            "responses": {f"Error{status}": _error_response(status) for status in ERRORS},
        },
    }


def document() -> dict[str, Any]:
    """The document, built on first use and kept for the container's life."""
    global _document
    if _document is None:
        _document = build()
    return _document
