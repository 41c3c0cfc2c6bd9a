"""Request parsing and response helpers shared by every route.

Bodies and query strings are validated with pydantic schemas, and every invalid field is reported
at once. Query strings are strict: an unknown parameter is a 400 naming it (names starting with `_`
are cache-busters and ignored), and a known one given twice is a 400; so is a key given twice in a
body's JSON object.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice import Response
from pydantic import BaseModel, ValidationError

from chalicelib.errors import ValidationFailed
from chalicelib.kit.answers import Answer
from chalicelib.kit.pagination import Page

T = TypeVar("T", bound=BaseModel)

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class RequestIds:
    """The request's id (its log line's, the client's `X-Request-Id` when sane) and API Gateway's own
    (`requestContext.requestId`, which a client cannot choose; generated where there is none)."""

    request_id: str
    gateway_request_id: str


def gateway_request_id(context: dict[str, Any] | None) -> str:
    supplied = str((context or {}).get("requestId") or "")[:128]
    return supplied or uuid.uuid4().hex


def request_ids(request: Any) -> RequestIds:
    """The ids the middleware gave the request (`request.ids`); fresh ones if it gave none."""
    ids = getattr(request, "ids", None)
    if ids is None:
        ids = request.ids = RequestIds(uuid.uuid4().hex, gateway_request_id(request.context))
    return ids


def location(request: Any, path: str) -> str:
    """`path` (an /api/... path) as the client reached the API: behind the stage or base-path prefix
    deployed (`context.path` is the full request path, `resourcePath` the route's template, filled
    in with the path's parameters before the two are compared)."""
    context = request.context or {}
    full, route = (context.get("path") or "").rstrip("/"), (context.get("resourcePath") or "").rstrip("/")
    for name, value in (getattr(request, "uri_params", None) or {}).items():
        route = route.replace("{" + name + "}", value)
    prefix = full[: -len(route)] if route and full.endswith(route) else ""
    return f"{prefix}{path}"


def envelope(data: dict[str, Any], *, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "success", "data": data}
    if meta is not None:
        body["meta"] = meta
    return body


def ok(
    data: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
) -> Response:
    return Response(body=envelope(data, meta=meta), status_code=status, headers=_headers(headers))


def _headers(headers: Mapping[str, str] | None) -> dict[str, str | list[str]]:
    return dict(headers or {})


def respond(answer: Answer) -> Response:
    return Response(body=answer.body, status_code=answer.status, headers=_headers(answer.headers))


def paginated(name: str, page: Page) -> Response:
    """A list's answer: `{name: [...]}` and `meta.pagination`."""
    return ok({name: page.items}, meta=page.meta)


# json's own messages, in our words (its wording names Python functions and encodings to use).
_JSON_PROBLEMS = {
    "Expecting value": "a value was expected",
    "Expecting property name enclosed in double quotes": "a property name in double quotes was expected",
    "Expecting ':' delimiter": "':' was expected",
    "Expecting ',' delimiter": "',' was expected",
    "Unterminated string starting at": "a string is not terminated",
    "Invalid control character at": "a string holds a raw control character",
    "Invalid \\escape": "a string holds an invalid escape",
    "Invalid \\uXXXX escape": "a string holds an invalid \\u escape",
    "Extra data": "there is more after the JSON value",
}


class _NotJson(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


class _Objects:
    """json's object_pairs_hook: each object as a dict, remembering every key an object gives twice
    (RFC 7493: a duplicate is an error, never "the last one wins")."""

    def __init__(self) -> None:
        self.repeated: list[str] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in self.repeated:
                    self.repeated.append(key)
                seen.add(key)
        return found


def _load_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("The request body is not valid UTF-8") from None
    if text.startswith("\ufeff"):
        raise ValidationFailed("Malformed JSON body: it must not start with a byte order mark")
    objects = _Objects()
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=objects)
    except RecursionError:
        raise ValidationFailed("The request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        problem = _JSON_PROBLEMS.get(exc.msg, "it is not valid JSON")
        raise ValidationFailed(
            f"Malformed JSON body: {problem} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except _NotJson as exc:
        raise ValidationFailed(f"Malformed JSON body: {exc}") from None
    except ValueError:
        # The only other ValueError json raises: an integer beyond Python's conversion limit.
        raise ValidationFailed("Malformed JSON body: a number has too many digits") from None
    if objects.repeated:
        raise ValidationFailed(
            "A key is given more than once in a JSON object",
            details=[{"field": key, "message": "given more than once"} for key in objects.repeated],
        )
    return data


def json_object(request: Any) -> dict[str, Any]:
    """The request body as a JSON object (size and media type were checked by the middleware)."""
    raw = request.raw_body or b""
    if not raw.strip():
        raise ValidationFailed("A JSON object body is required")
    data = _load_json(raw)
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return data


def error_details(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic's ValidationError as our `details`: one entry per invalid field, in order."""
    details = []
    seen = set()
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error.get("loc", ()) if part != "__root__"]
        field = ".".join(loc) or "body"
        kind = error.get("type", "")
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "field required"
        else:
            message = str(error.get("msg", "is invalid"))
            message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if (field, message) not in seen:
            seen.add((field, message))
            details.append({"field": field, "message": message})
    return details


def validate(model: type[T], data: Any, *, message: str = "The request is not valid") -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(message, details=error_details(exc)) from None


def parse_body(request: Any, model: type[T]) -> T:
    return validate(model, json_object(request), message="The request body is not valid")


def _query_strings(request: Any, known: Any) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The query string as single strings, strictly: an unknown name is a problem naming it (a
    misspelt `pageSize` must not silently return the default page), except names starting with
    `_` (cache-busters), which are ignored; a known name given twice is a problem too."""
    multi = request.query_params
    params: dict[str, str] = {}
    problems = []
    for name in list(multi.keys()) if multi is not None else []:
        if name.startswith("_"):
            continue
        if name not in known:
            problems.append({"field": name, "message": "unknown query parameter"})
            continue
        values = multi.getlist(name)
        if len(values) > 1:
            problems.append({"field": name, "message": "given more than once"})
        else:
            params[name] = values[0]
    return params, problems


def parse_query(request: Any, model: type[T], *, session: Any = None) -> T:
    """The query string validated by `model`, whose fields are the known parameters. Every problem
    is reported at once: unknown or repeated names, invalid values, and then the rules across
    parameters that the model states in a `problems()` method. A model may ask for a validation
    context from the database (`validation_context(session, params)`, given a session)."""
    params, problems = _query_strings(request, model.model_fields)
    context_of = getattr(model, "validation_context", None)
    context = context_of(session, params) if context_of is not None and session is not None else None
    try:
        query = model.model_validate(params, context=context)
    except ValidationError as exc:
        problems += error_details(exc)
    else:
        if not problems:
            problems = list(getattr(query, "problems", lambda: [])())
    if problems:
        raise ValidationFailed("Invalid query parameters", details=problems)
    return query
