"""The OpenAPI 3.1 document, assembled from what every route declares (`chalicelib.endpoint`) and the
pydantic schemas the views validate with.

Request bodies and query parameters come from the request schemas (`model_json_schema`), success
shapes from each route's `Spec`, and every operation lists the error envelope for the statuses it
can answer; error codes and statuses come from `chalicelib.errors`. Built once per container.

It is written for the client generators frontends use with their default settings (openapi-typescript,
openapi-python-client): a property that may be absent is not `required` and carries no `default`
(a generator turns a default into a required field, and a partial update that sends it clears data);
ids are positive integers in paths as in bodies; timestamps, dates and e-mail addresses carry their
`format`; every status an operation can answer is declared, the gateway's own included.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from chalicelib import errors
from chalicelib.endpoint import REGISTRY, Endpoint
from chalicelib.kit.docs import schema_of
from chalicelib.kit.ids import INT64_MAX, PATH_ID_MAXIMUM
from chalicelib.kit.schema import Schema

_document: dict[str, Any] | None = None

REF = "#/components/schemas/{model}"
ERROR_CODES = tuple(errors.codes())

# Every tag with its description, in the document's order.
TAGS = {
    "auth": "Log in, choose the token's site, change a password, log out. Login is public; the rest "
    "need `Authorization: Bearer <token>`.",
    "interactions": "The interactions of the token's active site: find, read, create, update, delete. "
    "Reading needs any role on the site, writing `editor` or `admin`.",
    "audit": "The append-only record of every change: an interaction's history, a site's events.",
    "sites": "The caller's sites, and their administration by the site's admins (members, settings) "
    "and by platform admins (new sites).",
    "service": "Health and this document; public.",
}

# --- shared components -----------------------------------------------------------------------------


class _Doc(Schema):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Doc):
    field: str = Field(description="the invalid field, query parameter or header")
    message: str


class ErrorBody(_Doc):
    code: Literal[ERROR_CODES]  # type: ignore[valid-type]  # the one list, in chalicelib.errors
    message: str
    # Absent on most errors: not required, and (being never null) not nullable either.
    details: list[ErrorDetail] = Field(
        None,  # type: ignore[arg-type]  # documentation only: absent, never null
        description="present on validation errors: every invalid field, not only the first",
    )
    request_id: str = Field(
        description="the id to quote for this request, on every error: the response's `X-Request-Id` "
        "(the id in its log line), or on the answers API Gateway gives itself (its Gateway Responses) the "
        "gateway's request id, as in their `X-Request-Id`",
    )


class ErrorEnvelope(_Doc):
    status: Literal["error"]
    error: ErrorBody


AbsentOrInt = Annotated[int | None, WithJsonSchema({"type": "integer", "minimum": 0})]


class PaginationMeta(_Doc):
    # `page` and `total_pages` are absent on a cursor's page, never null (the document's properties
    # carry no default: not required, not nullable).
    page: AbsentOrInt = Field(None, description="the page's number; absent on a page read with `cursor`")
    per_page: int = Field(json_schema_extra={"minimum": 1, "maximum": 100})
    total_pages: AbsentOrInt = Field(
        None,
        description="0 when nothing matches; a lower bound when total_exact is false; absent on a page "
        "read with `cursor`",
    )
    total_records: int = Field(
        description="exact up to 10 000; beyond, 10 000 with total_exact false",
        json_schema_extra={"minimum": 0},
    )
    total_exact: bool = Field(
        description="false when counting stopped at 10 000 (the unfiltered interactions total is "
        "always exact); with `cursor`, as on the first page"
    )
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same filters and sort) for the next page; null on the last page"
    )


class ListMeta(_Doc):
    pagination: PaginationMeta


class _Generator(GenerateJsonSchema):
    """No `default` on a component's properties. openapi-typescript (by default) makes a property with
    a default required, and a client that sends what its type demands in a partial update clears
    data; the server reads a property that is absent as absent. (Query parameters drop theirs in
    `_without_null`; their descriptions say them.)"""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


HEADERS = {
    "X-Request-Id": {
        "description": "the client's id when sane (<= 128 of A-Za-z0-9._-), else a new one; on the answers "
        "API Gateway gives itself, the gateway's request id",
        "required": True,
        "schema": {"type": "string", "maxLength": 128},
    },
    "ETag": {
        "description": 'the strong validator `"<version>"`, for `If-Match`',
        "required": True,
        "schema": {"type": "string", "examples": ['"3"']},
    },
    "Location": {
        "description": "the new resource's path, as the client reached the API",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference", "examples": ["/api/interactions/42"]},
    },
    "Retry-After": {
        "description": "whole seconds until the window or the lock ends (never more)",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After-Optional": {
        "description": "whole seconds to wait before retrying, when the answer says (the same "
        "Idempotency-Key still in progress; API Gateway unable to run the authorizer)",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    },
}
# The statuses whose answers may carry Retry-After (429: always).
_RETRY_AFTER = {409: "Retry-After-Optional", 429: "Retry-After", 503: "Retry-After-Optional"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _error_example(status: int) -> dict[str, Any]:
    error = next(e for e in errors.CATALOG if e.status == status)
    body: dict[str, Any] = {"code": error.code, "message": error.default_message}
    if status == 400:
        body["details"] = [{"field": "title", "message": "String should have at least 1 character"}]
    body["request_id"] = "c0ffee00-1234-4abc-9def-0123456789ab"  # every error names its request
    return {"status": "error", "error": body}


def _error_response(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": _header("X-Request-Id")}
    if status in _RETRY_AFTER:
        headers["Retry-After"] = _header(_RETRY_AFTER[status])
    codes = " or ".join(e.code for e in errors.CATALOG if e.status == status)
    return {
        "description": f"{codes}: {errors.STATUS_DESCRIPTIONS[status]}",
        "headers": headers,
        "content": {"application/json": {"schema": _ref("ErrorEnvelope"), "example": _error_example(status)}},
    }


# --- operations ------------------------------------------------------------------------------------


class _Models:
    """The models the operations refer to, each with the mode its JSON Schema is generated in."""

    def __init__(self) -> None:
        self.modes: dict[type[BaseModel], str] = {}

    def resolver(self, mode: str) -> Any:
        def ref(model: type[BaseModel]) -> dict[str, str]:
            self.modes.setdefault(model, mode)
            return _ref(model.__name__)

        return ref

    def components(self) -> dict[str, Any]:
        shared = [ErrorEnvelope, ListMeta]
        pairs = [(m, "serialization") for m in shared] + list(self.modes.items())
        # pydantic's signature wants Literal modes; ours are the two strings it takes.
        _refs, top = models_json_schema(
            pairs,  # type: ignore[arg-type]
            ref_template=REF,
            schema_generator=_Generator,
        )
        return dict(sorted(top.get("$defs", {}).items()))


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
    # An optional parameter carries no `default` (a generator would make it a required field and
    # send it always); the default is in its description.
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


def _operation_id(entry: Endpoint) -> str:
    if entry.spec.operation_id:
        return entry.spec.operation_id
    if entry.name:  # list_interactions -> listInteractions
        first, *rest = entry.name.split("_")
        return first + "".join(word.capitalize() for word in rest)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", f"{entry.method} {entry.path}") if w and w != "api"]
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def statuses(entry: Endpoint) -> set[int]:
    """Every status the operation can answer besides its success. Every operation: 400 (an unknown
    query parameter), 413 (API Gateway's payload limit, on any method), 429 (API Gateway's
    throttling), 500, 504 (API Gateway's timeout); with a token, 401 and 503 (the token's checks
    need Redis and the database; API Gateway's authorizer failure); with a database session, 503;
    with a body, 415; and what the route declares."""
    found = set(entry.spec.errors) | {400, 413, 429, 500, 504}
    if not entry.public:
        found |= {401, 503}
    if entry.session:
        found.add(503)
    if entry.method != "GET":  # the middleware refuses a body not sent as JSON
        found.add(415)
    return found


def _operation(entry: Endpoint, models: _Models) -> dict[str, Any]:
    spec = entry.spec
    ok_content: dict[str, Any] = {"schema": schema_of(spec.ok, models.resolver("serialization"))}
    if spec.response_example is not None:
        ok_content["example"] = spec.response_example
    responses: dict[str, Any] = {
        str(spec.status): {
            "description": spec.ok_description,
            "headers": {name: _header(name) for name in ("X-Request-Id", *spec.response_headers)},
            "content": {"application/json": ok_content},
        }
    }
    for status in sorted(statuses(entry)):
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "description": spec.description,
        "operationId": _operation_id(entry),
        "tags": [spec.tag],
        "responses": dict(sorted(responses.items())),
    }
    if entry.public:
        operation["security"] = []
    parameters = [
        {"name": h.name, "in": "header", "required": False, "description": h.description, "schema": h.schema}
        for h in spec.headers
    ]
    if spec.query is not None:
        parameters = _query_parameters(spec.query) + parameters
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        body: dict[str, Any] = {"schema": schema_of(spec.body, models.resolver("validation"))}
        if spec.request_example is not None:
            body["example"] = spec.request_example
        operation["requestBody"] = {"required": not spec.body_optional, "content": {"application/json": body}}
    return operation


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"the {name.removesuffix('_id').replace('_', ' ')}'s id; one that cannot exist "
            "(not a positive whole number, or past the largest id) is a 404 like an unknown one",
            "schema": {"type": "integer", "minimum": 1, "maximum": PATH_ID_MAXIMUM.get(name, INT64_MAX)},
        }
        for name in re.findall(r"\{(\w+)\}", path)
    ]


# --- the document ----------------------------------------------------------------------------------


def build(registry: dict[tuple[str, str], Endpoint] | None = None) -> dict[str, Any]:
    registry = REGISTRY if registry is None else registry
    models = _Models()
    paths: dict[str, Any] = {}
    used: set[int] = set()
    for (path, method), entry in sorted(registry.items()):
        item = paths.setdefault(path, {})
        if "{" in path and "parameters" not in item:
            item["parameters"] = _path_parameters(path)
        item[method.lower()] = _operation(entry, models)
        used |= statuses(entry)
    tags = sorted({entry.spec.tag for entry in registry.values()}, key=list(TAGS).index)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Interaction Management API",
            "version": "1.0.0",
            "description": "Sites record and find interactions. JSON in and out; every error is "
            '`{"status": "error", "error": {code, message, details?, request_id}}` with `X-Request-Id` '
            "(the same id as `request_id`), the answers API Gateway gives itself included. Order of checks: "
            "401, 429, 413, 415, 403 site context, 403 role, 400, 404, 412, 400 across the stored record, "
            "409/422. An unknown query parameter is a 400 naming it (names starting with `_` are ignored).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": tag, "description": TAGS[tag]} for tag in tags],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": models.components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "headers": HEADERS,
            "responses": {f"Error{status}": _error_response(status) for status in sorted(used)},
        },
    }


def document() -> dict[str, Any]:
    """The document, built on first use and kept for the container's life."""
    global _document
    if _document is None:
        _document = build()
    return _document
