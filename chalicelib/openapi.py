"""The OpenAPI 3.1 document, assembled from what every route declares (`chalicelib.endpoint`) and the
pydantic schemas the views validate with.

Request bodies and query parameters come from the request schemas (`model_json_schema`), success
shapes from each route's `Spec`, and every operation lists the error envelope for the statuses it
can answer; error codes and statuses come from `chalicelib.errors`. Built once per container.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import models_json_schema

from chalicelib import errors
from chalicelib.endpoint import REGISTRY, Endpoint
from chalicelib.kit.docs import schema_of
from chalicelib.kit.schema import Schema

_document: dict[str, Any] | None = None

REF = "#/components/schemas/{model}"
ERROR_CODES = tuple(errors.codes())

# --- shared components -----------------------------------------------------------------------------


class _Doc(Schema):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Doc):
    field: str = Field(description="the invalid field, query parameter or header")
    message: str


class ErrorBody(_Doc):
    code: Literal[ERROR_CODES]  # type: ignore[valid-type]  # the one list, in chalicelib.errors
    message: str
    details: list[ErrorDetail] | None = Field(
        None, description="present on validation errors: every invalid field, not only the first"
    )
    request_id: str | None = Field(
        None,
        description="deployed, on errors API Gateway answers itself (its Gateway Responses): "
        "the gateway's request id",
    )


class ErrorEnvelope(_Doc):
    status: Literal["error"]
    error: ErrorBody


def _absent_not_null(schema: dict[str, Any], _model: Any) -> None:
    """`page` and `total_pages` are absent on a cursor's page, never null: no `default: null`."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


AbsentOrInt = Annotated[int | None, WithJsonSchema({"type": "integer", "minimum": 0})]


class PaginationMeta(_Doc):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_not_null)

    page: AbsentOrInt = Field(None, description="the page's number; absent on a page read with `cursor`")
    per_page: int
    total_pages: AbsentOrInt = Field(
        None,
        description="0 when nothing matches; a lower bound when total_exact is false; absent on a page "
        "read with `cursor`",
    )
    total_records: int = Field(description="exact up to 10 000; beyond, 10 000 with total_exact false")
    total_exact: bool = Field(
        description="false when counting stopped at 10 000 (the unfiltered interactions total is "
        "always exact); with `cursor`, as on the first page"
    )
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same filters and sort) for the next page; null on the last page"
    )


class ListMeta(_Doc):
    pagination: PaginationMeta


HEADERS = {
    "X-Request-Id": {
        "description": "the client's id when sane (<= 128 of A-Za-z0-9._-), else a new one",
        "schema": {"type": "string"},
    },
    "ETag": {"description": 'the strong validator `"<version>"`', "schema": {"type": "string"}},
    "Location": {
        "description": "the new resource's path, as the client reached the API",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "whole seconds until the window or the lock ends",
        "schema": {"type": "integer"},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _error_response(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    if status == 429:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    codes = ", ".join(e.code for e in errors.CATALOG if e.status == status)
    return {
        "description": f"{codes}: {errors.STATUS_DESCRIPTIONS[status]}",
        "headers": headers,
        "content": {"application/json": {"schema": _ref("ErrorEnvelope")}},
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
        _refs, top = models_json_schema(pairs, ref_template=REF)  # type: ignore[arg-type]
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
    words = [w for w in re.split(r"[^A-Za-z0-9]+", f"{entry.method} {entry.path}") if w and w != "api"]
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def _operation(entry: Endpoint, models: _Models) -> dict[str, Any]:
    spec = entry.spec
    common = {500} if entry.public else {401, 429, 500, 503}
    if entry.method != "GET":  # the middleware refuses any body over 256 KiB or not sent as JSON
        common |= {413, 415}
    statuses = set(spec.errors) | common
    if spec.body is not None or spec.query is not None:
        statuses.add(400)
    ok_headers = {
        name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-Id", *spec.response_headers)
    }
    responses: dict[str, Any] = {
        str(spec.status): {
            "description": spec.ok_description,
            "headers": ok_headers,
            "content": {"application/json": {"schema": schema_of(spec.ok, models.resolver("serialization"))}},
        }
    }
    for status in sorted(statuses):
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    operation: dict[str, Any] = {
        "summary": spec.summary,
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
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_of(spec.body, models.resolver("validation"))}},
        }
    return operation


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"the {name.removesuffix('_id').replace('_', ' ')}'s id (a positive integer; "
            "anything else is a 404)",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
        for name in re.findall(r"\{(\w+)\}", path)
    ]


# --- the document ----------------------------------------------------------------------------------


def build(registry: dict[tuple[str, str], Endpoint] | None = None) -> dict[str, Any]:
    registry = REGISTRY if registry is None else registry
    models = _Models()
    paths: dict[str, Any] = {}
    tags: list[str] = []
    for (path, method), entry in sorted(registry.items()):
        item = paths.setdefault(path, {})
        if "{" in path and "parameters" not in item:
            item["parameters"] = _path_parameters(path)
        item[method.lower()] = _operation(entry, models)
        if entry.spec.tag not in tags:
            tags.append(entry.spec.tag)
    statuses = sorted({e.status for e in errors.CATALOG if e.status != 504} | {405})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Interaction Management API",
            "version": "1.0.0",
            "description": "Sites record and find interactions. JSON in and out; every error is "
            '`{"status": "error", "error": {code, message, details?}}`. Order of '
            "checks: 401, 413, 415, 403 site context, 403 role, 400, 404, 412, 400 "
            "across the stored record, 409/422. An unknown query parameter is a 400 "
            "naming it (names starting with `_` are ignored).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": tag} for tag in tags],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": models.components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "headers": HEADERS,
            "responses": {f"Error{status}": _error_response(status) for status in statuses},
        },
    }


def document() -> dict[str, Any]:
    """The document, built on first use and kept for the container's life."""
    global _document
    if _document is None:
        _document = build()
    return _document
