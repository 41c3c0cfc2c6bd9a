"""API Gateway's own errors in the API's error envelope, with the stage's CORS headers and the
gateway's request id: what a client gets when the gateway answers before (or instead of) our code.

They are written into the API's OpenAPI body (`x-amazon-apigateway-gateway-responses`) rather than
as separate AWS::ApiGateway::GatewayResponse resources: a change to a gateway response only takes
effect after a new deployment of the API, and SAM (like Chalice's Terraform) redeploys exactly when
the body changes. Gateway response templates are plain substitution (no VTL); their headers take
static values or mapping expressions. The gateway's request id is in the body as
`error.request_id` ($context.requestId) and in `X-Request-Id` (mapped from `context.requestId`), as
on every answer of the application, besides API Gateway's own `x-amzn-RequestId`; the CORS headers
expose all three.

`render` turns one of them into the response a client receives (status, headers, body), the same
text API Gateway would send: the local run command (devtools/edge.py) answers with it, so a local
answer and a deployed one come from this one table.

Several allowed origins (CORS_ALLOW_ORIGIN a list): a Gateway Response header is either a fixed
value or a copy of a request parameter (`method.request.header.Origin`), with no condition, so it
cannot name "the request's origin if it is listed". Copying the Origin would let every site read
these answers; they name the stage's first origin instead. A frontend on another listed origin
reads the application's own answers (the middleware names its origin) and the preflights (below),
but sees these few (no token, an unknown path, over 10 MB, throttled, the authorizer failing, a
timeout) as CORS failures. The preflights are Chalice's mock OPTIONS integrations, whose integration
response does run a mapping template (VTL): `preflights_name_the_origin` gives them one that puts
a listed request origin into `Access-Control-Allow-Origin` (`$context.responseOverride`), with
`Vary: Origin`; devtools/edge.py answers preflights the same way.
"""

from __future__ import annotations

import json
from typing import Any

from chalice import CORSConfig

from chalicelib import errors

RETRY_NOW = "Try again shortly"
UNKNOWN_OUTCOME = errors.GatewayTimeout.default_message

E = errors
# response type -> (the error it is, message, whether the gateway's own status is kept). The codes
# and statuses are the ones chalicelib/errors.py defines for the application.
_SOURCE: dict[str, tuple[type[errors.ApiError], str, bool]] = {
    # No Authorization header on a protected route (a bad token reaches our middleware: 401 there).
    "UNAUTHORIZED": (E.AuthenticationFailed, "Missing bearer token", False),
    # Our authorizer never denies; kept so a deny could never leak the gateway's canned body.
    "ACCESS_DENIED": (E.Forbidden, "Access denied", False),
    # API Gateway's answer to an unknown path, and to a known path with an unknown method.
    "MISSING_AUTHENTICATION_TOKEN": (E.NotFound, "No such resource", False),
    "RESOURCE_NOT_FOUND": (E.NotFound, "No such resource", False),
    # Over API Gateway's 10 MB; bodies over 256 KiB reach the middleware, which answers 413 too.
    "REQUEST_TOO_LARGE": (E.PayloadTooLarge, "The request body is too large", False),
    "UNSUPPORTED_MEDIA_TYPE": (
        E.UnsupportedMediaType,
        "Send JSON with Content-Type: application/json",
        False,
    ),
    "BAD_REQUEST_BODY": (E.ValidationFailed, "The request body is not valid", False),
    "BAD_REQUEST_PARAMETERS": (E.ValidationFailed, "The request parameters are not valid", False),
    "INVALID_API_KEY": (E.Forbidden, "Access denied", False),
    "INVALID_SIGNATURE": (E.Forbidden, "Access denied", False),
    "EXPIRED_TOKEN": (E.Forbidden, "Access denied", False),
    "WAF_FILTERED": (E.Forbidden, "Access denied", False),
    "THROTTLED": (E.RateLimited, "Too many requests; " + RETRY_NOW.lower(), False),
    "QUOTA_EXCEEDED": (E.RateLimited, "Too many requests; " + RETRY_NOW.lower(), False),
    # The authorizer Lambda failed or could not be invoked: nothing of ours ran, nothing changed.
    "AUTHORIZER_FAILURE": (
        E.ServiceUnavailable,
        "Authentication is unavailable; " + RETRY_NOW.lower(),
        False,
    ),
    "AUTHORIZER_CONFIGURATION_ERROR": (
        E.ServiceUnavailable,
        "Authentication is unavailable; " + RETRY_NOW.lower(),
        False,
    ),
    # The API Lambda did not answer within 29 s, or its invocation failed mid-way.
    "INTEGRATION_TIMEOUT": (E.GatewayTimeout, UNKNOWN_OUTCOME, False),
    "INTEGRATION_FAILURE": (E.GatewayTimeout, UNKNOWN_OUTCOME, False),
    "API_CONFIGURATION_ERROR": (E.InternalError, "Internal error", False),
    # Fallbacks for anything not listed (a crashed or timed-out Lambda is a 502 here). Their status
    # stays the gateway's: setting one would override every unlisted type's status.
    "DEFAULT_4XX": (E.ValidationFailed, "The request was refused", True),
    "DEFAULT_5XX": (
        E.InternalError,
        "Internal error; if it was a create, retry it with the same Idempotency-Key",
        True,
    ),
}
# response type -> (status, error code, message); status None keeps the gateway's own status.
RESPONSES: dict[str, tuple[str | None, str, str]] = {
    name: (None if keep else str(error.status), error.code, message)
    for name, (error, message, keep) in _SOURCE.items()
}
RETRY_AFTER = {
    "THROTTLED": "1",
    "QUOTA_EXCEEDED": "60",
    "AUTHORIZER_FAILURE": "1",
    "AUTHORIZER_CONFIGURATION_ERROR": "1",
}
GATEWAY_REQUEST_ID_HEADER = "x-amzn-RequestId"
# Headers mapped from the request's context rather than static: name -> (mapping expression, the
# context variable `render` substitutes).
MAPPED_HEADERS = {"X-Request-Id": "context.requestId"}


def cors_headers(origin: str) -> dict[str, str]:
    """The same CORS headers the application sends (chalicelib/middleware.py), plus the gateway's
    request id header among the exposed ones."""
    from chalicelib.middleware import ALLOW_HEADERS, EXPOSE_HEADERS

    config = CORSConfig(
        allow_origin=origin,
        allow_headers=ALLOW_HEADERS,
        expose_headers=[*EXPOSE_HEADERS, GATEWAY_REQUEST_ID_HEADER],
        max_age=600,
    )
    return config.get_access_control_headers()


def body_template(code: str, message: str) -> str:
    envelope = {
        "status": "error",
        "error": {"code": code, "message": message, "request_id": "$context.requestId"},
    }
    return json.dumps(envelope, separators=(",", ":"))


def gateway_responses(origin: str) -> dict[str, Any]:
    """The `x-amazon-apigateway-gateway-responses` object for a stage whose frontend is `origin`."""
    if "'" in origin:
        raise ValueError(f"a CORS origin cannot contain a quote: {origin!r}")
    static = {"Content-Type": "application/json", **cors_headers(origin)}
    out: dict[str, Any] = {}
    for response_type, (status, code, message) in RESPONSES.items():
        headers = dict(static)
        if response_type in RETRY_AFTER:
            headers["Retry-After"] = RETRY_AFTER[response_type]
        # Static header values are single-quoted in API Gateway's mapping syntax; mapped ones are not.
        parameters = {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()}
        parameters.update(
            {f"gatewayresponse.header.{name}": source for name, source in MAPPED_HEADERS.items()}
        )
        entry: dict[str, Any] = {
            "responseParameters": parameters,
            "responseTemplates": {"application/json": body_template(code, message)},
        }
        if status is not None:
            entry["statusCode"] = status
        out[response_type] = entry
    return out


def render(
    response_type: str, *, origin: str, request_id: str, status: int | None = None
) -> tuple[int, dict[str, str], str]:
    """The gateway response `response_type` as API Gateway sends it for one request: its status
    (`status` only for the DEFAULT_* types, which keep the gateway's own), its static headers with
    the quotes of the mapping syntax removed, its mapped ones (`X-Request-Id`) with the request's
    values, plus `x-amzn-RequestId`, and its body with `$context.requestId` substituted."""
    entry = gateway_responses(origin)[response_type]
    code = entry.get("statusCode")
    if code is None and status is None:
        raise ValueError(f"{response_type} keeps the gateway's status: pass it")
    prefix = "gatewayresponse.header."
    context = {"context.requestId": request_id}
    headers = {
        name[len(prefix) :]: value[1:-1] if value.startswith("'") else context[value]
        for name, value in entry["responseParameters"].items()
    }
    headers[GATEWAY_REQUEST_ID_HEADER] = request_id
    body = entry["responseTemplates"]["application/json"].replace("$context.requestId", request_id)
    return int(code) if code is not None else int(status), headers, body


def preflight_template(origins: tuple[str, ...]) -> str:
    """The preflight's integration-response mapping template: the request's `Origin` when it is one
    of `origins` (the static header names the first otherwise). Whitespace only as its output."""
    listed = " || ".join(f"$origin == '{origin}'" for origin in origins)
    return (
        "#set($origin = $input.params().header.get('Origin'))"
        '#if("$!origin" == "")#set($origin = $input.params().header.get(\'origin\'))#end'
        f"#if({listed})#set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)#end"
    )


def preflights_name_the_origin(swagger: dict[str, Any], origins: tuple[str, ...]) -> int:
    """With several allowed origins, every CORS preflight of the API definition (Chalice's mock
    OPTIONS integrations) names the request's origin when it is listed, and says `Vary: Origin`.
    Returns how many it changed (none for a single origin: the static header is right)."""
    if len(origins) < 2:
        return 0
    for origin in origins:
        if "'" in origin or "\\" in origin:
            raise ValueError(f"a CORS origin cannot contain a quote or a backslash: {origin!r}")
    changed = 0
    for methods in swagger["paths"].values():
        options = methods.get("options")
        integration = (options or {}).get("x-amazon-apigateway-integration", {})
        if integration.get("type") != "mock":
            continue
        options["responses"]["200"]["headers"]["Vary"] = {"type": "string"}
        response = integration["responses"]["default"]
        response["responseParameters"]["method.response.header.Vary"] = "'Origin'"
        response["responseTemplates"] = {"application/json": preflight_template(origins)}
        changed += 1
    return changed
