"""API Gateway's own errors in the API's error envelope, with the stage's CORS headers and the
gateway's request id: what a client gets when the gateway answers before (or instead of) our code.

They are written into the API's OpenAPI body (`x-amazon-apigateway-gateway-responses`) rather than
as separate AWS::ApiGateway::GatewayResponse resources: a change to a gateway response only takes
effect after a new deployment of the API, and SAM (like Chalice's Terraform) redeploys exactly when
the body changes. Gateway response templates are plain substitution (no VTL), and their headers take
only static values or request parameters, so the request id goes in the body as
`error.request_id` ($context.requestId) and is also API Gateway's own `x-amzn-RequestId` header,
which the CORS headers expose.

`render` turns one of them into the response a client receives (status, headers, body), the same
text API Gateway would send: the local run command (devtools/edge.py) answers with it, so a local
answer and a deployed one come from this one table.
"""
from __future__ import annotations

import json
from typing import Any

from chalice import CORSConfig

RETRY_NOW = "Try again shortly"
UNKNOWN_OUTCOME = ("The request timed out; its outcome is unknown. Retry it with the same Idempotency-Key")

# response type -> (status, error code, message); status None keeps the gateway's own status.
RESPONSES: dict[str, tuple[str | None, str, str]] = {
    # No Authorization header on a protected route (a bad token reaches our middleware: 401 there).
    "UNAUTHORIZED": ("401", "AUTHENTICATION_ERROR", "Missing bearer token"),
    # Our authorizer never denies; kept so a deny could never leak the gateway's canned body.
    "ACCESS_DENIED": ("403", "AUTHORIZATION_ERROR", "Access denied"),
    # API Gateway's answer to an unknown path, and to a known path with an unknown method.
    "MISSING_AUTHENTICATION_TOKEN": ("404", "RESOURCE_NOT_FOUND", "No such resource"),
    "RESOURCE_NOT_FOUND": ("404", "RESOURCE_NOT_FOUND", "No such resource"),
    # Over API Gateway's 10 MB; bodies over 256 KiB reach the middleware, which answers 413 too.
    "REQUEST_TOO_LARGE": ("413", "PAYLOAD_TOO_LARGE", "The request body is too large"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "UNSUPPORTED_MEDIA_TYPE", "Send JSON with Content-Type: application/json"),
    "BAD_REQUEST_BODY": ("400", "VALIDATION_ERROR", "The request body is not valid"),
    "BAD_REQUEST_PARAMETERS": ("400", "VALIDATION_ERROR", "The request parameters are not valid"),
    "INVALID_API_KEY": ("403", "AUTHORIZATION_ERROR", "Access denied"),
    "INVALID_SIGNATURE": ("403", "AUTHORIZATION_ERROR", "Access denied"),
    "EXPIRED_TOKEN": ("403", "AUTHORIZATION_ERROR", "Access denied"),
    "WAF_FILTERED": ("403", "AUTHORIZATION_ERROR", "Access denied"),
    "THROTTLED": ("429", "RATE_LIMITED", "Too many requests; " + RETRY_NOW.lower()),
    "QUOTA_EXCEEDED": ("429", "RATE_LIMITED", "Too many requests; " + RETRY_NOW.lower()),
    # The authorizer Lambda failed or could not be invoked: nothing of ours ran, nothing changed.
    "AUTHORIZER_FAILURE": ("503", "SERVICE_UNAVAILABLE", "Authentication is unavailable; " + RETRY_NOW.lower()),
    "AUTHORIZER_CONFIGURATION_ERROR": ("503", "SERVICE_UNAVAILABLE",
                                       "Authentication is unavailable; " + RETRY_NOW.lower()),
    # The API Lambda did not answer within 29 s, or its invocation failed mid-way.
    "INTEGRATION_TIMEOUT": ("504", "TIMEOUT", UNKNOWN_OUTCOME),
    "INTEGRATION_FAILURE": ("504", "TIMEOUT", UNKNOWN_OUTCOME),
    "API_CONFIGURATION_ERROR": ("500", "INTERNAL_ERROR", "Internal error"),
    # Fallbacks for anything not listed (a crashed or timed-out Lambda is a 502 here). Their status
    # stays the gateway's: setting one would override every unlisted type's status.
    "DEFAULT_4XX": (None, "VALIDATION_ERROR", "The request was refused"),
    "DEFAULT_5XX": (None, "INTERNAL_ERROR", "Internal error; if it was a create, retry it with the same "
                                            "Idempotency-Key"),
}
RETRY_AFTER = {"THROTTLED": "1", "QUOTA_EXCEEDED": "60", "AUTHORIZER_FAILURE": "1",
               "AUTHORIZER_CONFIGURATION_ERROR": "1"}
GATEWAY_REQUEST_ID_HEADER = "x-amzn-RequestId"


def cors_headers(origin: str) -> dict[str, str]:
    """The same CORS headers the application sends (chalicelib/middleware.py), plus the gateway's
    request id header among the exposed ones."""
    from chalicelib.middleware import ALLOW_HEADERS, EXPOSE_HEADERS

    config = CORSConfig(allow_origin=origin, allow_headers=ALLOW_HEADERS,
                        expose_headers=[*EXPOSE_HEADERS, GATEWAY_REQUEST_ID_HEADER], max_age=600)
    return config.get_access_control_headers()


def body_template(code: str, message: str) -> str:
    envelope = {"status": "error", "error": {"code": code, "message": message, "request_id": "$context.requestId"}}
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
        entry: dict[str, Any] = {
            # Static header values are single-quoted in API Gateway's mapping syntax.
            "responseParameters": {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()},
            "responseTemplates": {"application/json": body_template(code, message)},
        }
        if status is not None:
            entry["statusCode"] = status
        out[response_type] = entry
    return out


def render(response_type: str, *, origin: str, request_id: str,
           status: int | None = None) -> tuple[int, dict[str, str], str]:
    """The gateway response `response_type` as API Gateway sends it for one request: its status
    (`status` only for the DEFAULT_* types, which keep the gateway's own), its static headers with
    the quotes of the mapping syntax removed plus `x-amzn-RequestId`, and its body with
    `$context.requestId` substituted."""
    entry = gateway_responses(origin)[response_type]
    code = entry.get("statusCode")
    if code is None and status is None:
        raise ValueError(f"{response_type} keeps the gateway's status: pass it")
    prefix = "gatewayresponse.header."
    headers = {name[len(prefix):]: value[1:-1] for name, value in entry["responseParameters"].items()}
    headers[GATEWAY_REQUEST_ID_HEADER] = request_id
    body = entry["responseTemplates"]["application/json"].replace("$context.requestId", request_id)
    return int(code) if code is not None else int(status), headers, body
