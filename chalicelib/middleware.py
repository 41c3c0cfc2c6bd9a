"""The one HTTP middleware: body limits, the error envelope, CORS headers, `X-Request-Id` and one
JSON log line per request. A route's own checks (the token's, the rights) are `chalicelib.endpoint`'s.

Chalice answers some errors itself (bad JSON, 405, 415, uncaught exceptions) with `{"Code",
"Message"}` bodies before middleware sees them; they are rewritten here, so no client ever sees
a body that is not our envelope.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.config import get_settings
from chalicelib.endpoint import REGISTRY, authenticate
from chalicelib.errors import (
    ApiError,
    InternalError,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    for_status,
)
from chalicelib.http import MAX_BODY_BYTES, RequestIds, gateway_request_id

ALLOW_HEADERS = ["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Request-Id"]
EXPOSE_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-Id"]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

access_log = logging.getLogger("interactions.access")
error_log = logging.getLogger("interactions.error")


def _configure_logging() -> None:
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


_configure_logging()


def cors_config() -> Any:
    """Chalice's CORS configuration (the preflights it deploys, the headers it adds around a view),
    naming the first allowed origin: a listed origin of the request is put in by `cors_headers`."""
    from chalice import CORSConfig

    return CORSConfig(
        allow_origin=get_settings().cors_allow_origin,
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        max_age=600,
    )


_cors_headers: tuple[Any, dict[str, str]] | None = None  # (the settings they were made for, headers)


def cors_headers(request_origin: str | None = None) -> dict[str, str]:
    """The CORS headers of a response to a request with this `Origin`: with several allowed
    origins, the request's own when it is one of them (else the first, which the browser refuses)
    and `Vary: Origin`, since the answer then depends on it."""
    global _cors_headers
    settings = get_settings()
    if _cors_headers is None or _cors_headers[0] is not settings:
        _cors_headers = (settings, cors_config().get_access_control_headers())
    headers = _cors_headers[1]
    if not settings.cors_varies:
        return headers
    return {
        **headers,
        "Access-Control-Allow-Origin": settings.allowed_origin(request_origin),
        "Vary": "Origin",
    }


def request_id_for(headers: Any) -> str:
    supplied = headers.get("x-request-id")
    if isinstance(supplied, str) and _REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def error_response(error: ApiError) -> Response:
    return Response(body=error.body(), status_code=error.status, headers=dict(error.headers))


def _check_body(request: Any) -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request body is over {MAX_BODY_BYTES // 1024} KiB")
    if raw:
        media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaType()


def _body_refusal(request: Any) -> ApiError | None:
    """The body's size and type (413, 415), checked before anything else reads the request."""
    try:
        _check_body(request)
    except ApiError as refused:
        return refused
    return None


def _ignore_media_type_without_body(request: Any) -> None:
    """Chalice refuses any Content-Type but JSON even on a request without a body (a GET from a
    client that sets the header everywhere); our 415 is for bodies only, checked above."""
    if not (request.raw_body or b"") and "content-type" in request.headers:
        from chalice.app import CaseInsensitiveMapping

        request.headers = CaseInsensitiveMapping(
            {k: v for k, v in request.headers.items() if k.lower() != "content-type"}
        )


def _rewrite_chalice_error(response: Response, method: str) -> Response:
    """Chalice's own `{"Code", "Message"}` answers become our envelope."""
    body = response.body
    if response.status_code < 400 or not (isinstance(body, dict) and "Code" in body):
        return response
    error_class = for_status(response.status_code)
    if error_class is RateLimited:
        error: ApiError = RateLimited(retry_after=60)
    elif response.status_code == 405:
        error = error_class(f"Method {method} is not allowed here")
    elif response.status_code == 400 and "JSON" in str(body.get("Message", "")):
        error = error_class("Malformed JSON body")
    else:
        error = error_class()
    headers = {k: v for k, v in response.headers.items() if k.lower() == "allow"}
    headers.update(error.headers)
    return Response(body=error.body(), status_code=error.status, headers=headers)


def _name_the_request(response: Response, request_id: str) -> None:
    """Every error envelope carries its request's id (`error.request_id`, the `X-Request-Id`), as
    API Gateway's own answers carry the gateway's: a client can quote it from the body alone."""
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        response.body = {**body, "error": {**body["error"], "request_id": request_id}}


def for_app(app: Any) -> Callable[[Any, Callable[[Any], Response]], Response]:
    """The middleware bound to the app's route table (to tell a protected route from a 405)."""

    def middleware(request: Any, get_response: Callable[[Any], Response]) -> Response:
        return handle(request, get_response, routes=app.routes)

    return middleware


def handle(
    request: Any, get_response: Callable[[Any], Response], *, routes: dict[str, dict[str, Any]]
) -> Response:
    started = time.perf_counter()
    context = request.context or {}
    route = context.get("resourcePath") or request.path
    method = request.method
    request_id = request_id_for(request.headers)
    ids = request.ids = RequestIds(request_id, gateway_request_id(context))  # audit events record both
    auth = context.get("authorizer") or {}
    user_id = auth.get("user_id") if auth.get("auth") == "ok" else None
    try:
        declared = REGISTRY.get((route, method))
        refusal = _body_refusal(request)
        if refusal is not None:
            if declared is not None and not declared.public:
                authenticate(request, declared)  # a 413 or 415 comes after every 401
            raise refusal
        _ignore_media_type_without_body(request)
        # The route's own checks (the token's, the rights, the order of checks) are the
        # endpoint's: chalicelib.endpoint.
        response = get_response(request)
    except ApiError as exc:
        response = error_response(exc)
    except Exception:
        error_log.exception("unhandled error in request %s", request_id)
        response = error_response(InternalError())
    response = _rewrite_chalice_error(response, method)
    _name_the_request(response, request_id)
    if response.status_code >= 500 and response.status_code != 503:
        error_log.error("request %s answered %s", request_id, response.status_code)
    for name, value in cors_headers(request.headers.get("origin")).items():
        response.headers[name] = value  # over Chalice's own around a view, which name the first origin
    response.headers["X-Request-Id"] = request_id
    response.headers.setdefault("Content-Type", "application/json")
    access_log.info(
        json.dumps(
            {
                "event": "request",
                "request_id": request_id,
                "gateway_request_id": ids.gateway_request_id,
                "method": method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user_id": int(user_id) if user_id and str(user_id).isdigit() else None,
            }
        )
    )
    return response
