"""Request parsing and response helpers shared by every route.

Bodies and query strings are validated with pydantic schemas (imported lazily: the authorizer
Lambda never loads pydantic) and every invalid field is reported at once.
"""
from __future__ import annotations

import json
import math
from datetime import UTC
from typing import Any, TypeVar

from chalice import Response

from chalicelib.errors import ValidationFailed

T = TypeVar("T")

MAX_BODY_BYTES = 256 * 1024


def ok(data: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None,
       meta: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"status": "success", "data": data}
    if meta is not None:
        body["meta"] = meta
    return Response(body=body, status_code=status, headers=headers or {})


def paginated(data: dict[str, Any], *, page: int, per_page: int, total: int) -> Response:
    return ok(data, meta={"pagination": {
        "page": page, "per_page": per_page,
        "total_pages": math.ceil(total / per_page) if total else 0,
        "total_records": total,
    }})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _load_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("The request body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValidationFailed("The request body is nested too deeply") from None
    except ValueError as exc:
        raise ValidationFailed(f"Malformed JSON body: {exc}"[:200]) from None


def json_object(request: Any) -> dict[str, Any]:
    """The request body as a JSON object (size and media type were checked by the middleware)."""
    raw = request.raw_body or b""
    if not raw.strip():
        raise ValidationFailed("A JSON object body is required")
    data = _load_json(raw)
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return data


def error_details(exc: Any) -> list[dict[str, str]]:
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
    from pydantic import ValidationError  # noqa: PLC0415 - lazy on purpose

    try:
        return model.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise ValidationFailed(message, details=error_details(exc)) from None


def parse_body(request: Any, model: type[T]) -> T:
    return validate(model, json_object(request), message="The request body is not valid")


def query_params(request: Any, known: set[str]) -> dict[str, str]:
    """Known query parameters as single strings: unknown ones are ignored (cache-busters),
    a known one given twice is a 400."""
    multi = request.query_params
    params: dict[str, str] = {}
    repeated = []
    for name in list(multi.keys()) if multi is not None else []:
        if name not in known:
            continue
        values = multi.getlist(name)
        if len(values) > 1:
            repeated.append({"field": name, "message": "given more than once"})
        else:
            params[name] = values[0]
    if repeated:
        raise ValidationFailed("Invalid query parameters", details=repeated)
    return params


def parse_query(request: Any, model: type[T]) -> T:
    known = set(model.model_fields)  # type: ignore[attr-defined]
    return validate(model, query_params(request, known), message="Invalid query parameters")


def isoformat(value: Any) -> str | None:
    """A timestamp as ISO 8601 in UTC with a `Z` (fractions of a second only when present)."""
    if value is None:
        return None
    # Called for every timestamp of every row on a page: the driver already hands out UTC values
    # (the session's time zone is UTC), so they are formatted as they are, "+00:00" becoming "Z".
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"


def epoch_isoformat(seconds: int) -> str:
    from datetime import datetime

    return isoformat(datetime.fromtimestamp(seconds, tz=UTC))  # type: ignore[return-value]
