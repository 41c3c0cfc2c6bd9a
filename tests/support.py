"""Test support for the auth, middleware and configuration tests.

- `proxy_event` / `call_app`: drive the Lambda handler the way API Gateway does (a REST proxy
  event, the authorizer's context with every value turned into a string), which the test client
  cannot do (its client IP is always 127.0.0.1 and it keeps the context's Python types).
- `forge`: tokens built by hand, to attack the token checks one claim at a time.
- `reconfigure`: change the environment and start again with fresh settings and clients.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from chalicelib import cache, config, db
from chalicelib.auth import tokens
from tests.environment import TEST_JWT_SECRET

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/api/GET/api/auth/me"


# --- API Gateway ---------------------------------------------------------------------------------


def token_event(authorization: str | None) -> dict[str, Any]:
    """What API Gateway hands a TOKEN authorizer."""
    return {"type": "TOKEN", "authorizationToken": authorization, "methodArn": METHOD_ARN}


def run_authorizer(authorization: str | None) -> dict[str, Any]:
    """The authorizer Lambda's answer to a TOKEN event (principalId, policyDocument, context)."""
    from chalicelib.auth.authorizer import jwt_authorizer

    return jwt_authorizer(token_event(authorization), None)


def gateway_context(authorizer_result: dict[str, Any]) -> dict[str, str]:
    """requestContext.authorizer as the API Lambda receives it deployed: every value a string."""
    context = {key: str(value) for key, value in authorizer_result["context"].items()}
    context["principalId"] = str(authorizer_result["principalId"])
    return context


def proxy_event(
    method: str,
    resource: str,
    *,
    path: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    source_ip: str = "203.0.113.10",
    authorizer: dict[str, Any] | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """A REST API proxy event with the fields Chalice's handler reads."""
    if isinstance(body, bytes):
        encoded: str | None = base64.b64encode(body).decode("ascii")
        is_base64 = True
    else:
        encoded, is_base64 = body, False
    request_context: dict[str, Any] = {
        "httpMethod": method,
        "resourcePath": resource,
        "path": "/api" + (path or resource),
        "stage": "api",
        "requestId": str(uuid.uuid4()),
        "identity": {"sourceIp": source_ip, "userAgent": "pytest"},
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    return {
        "resource": resource,
        "path": path or resource,
        "httpMethod": method,
        "headers": dict(headers or {}),
        "multiValueQueryStringParameters": query,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": request_context,
        "body": encoded,
        "isBase64Encoded": is_base64,
    }


def refusal(response: Any) -> dict[str, Any]:
    """An error body without the request's own id (`error.request_id`): what two refusals that must
    not be told apart have in common."""
    body = response.json_body
    return {**body, "error": {k: v for k, v in body["error"].items() if k != "request_id"}}


class GatewayResponse:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.status_code: int = raw["statusCode"]
        self.headers: dict[str, str] = dict(raw.get("headers") or {})
        body = raw.get("body")
        if raw.get("isBase64Encoded") and body is not None:
            body = base64.b64decode(body).decode()
        self.body = body
        self.json_body = json.loads(body) if body else None


def call_app(
    app: Any,
    method: str,
    resource: str,
    *,
    token: str | None = None,
    authorizer: dict[str, Any] | None = None,
    **kwargs: Any,
) -> GatewayResponse:
    """One request the deployed way: for a protected route the authorizer runs first (when a
    token is given) and its context reaches the API handler stringified, with the token's
    `Authorization` header (unless `headers` has one). A given `authorizer` context stands for
    the authorizer's answer (a cached one, or one made up)."""
    if token is not None:
        headers = {"Authorization": f"Bearer {token}", **(kwargs.pop("headers", None) or {})}
        kwargs["headers"] = headers
        if authorizer is None:
            header = next(value for name, value in headers.items() if name.lower() == "authorization")
            authorizer = gateway_context(run_authorizer(header))
    return GatewayResponse(app(proxy_event(method, resource, authorizer=authorizer, **kwargs), None))


def json_request(body: Any) -> dict[str, Any]:
    return {"headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


# --- tokens --------------------------------------------------------------------------------------


def claims_for(user_id: int = 1, *, site_id: int | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete, valid payload for the test stage (dev issuer and audience)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "sid": uuid.uuid4().hex,
        "site": site_id,
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "auth_time": now - 1,
        "iss": "interactions-dev",
        "aud": "interactions-api-dev",
    }
    payload.update(overrides)
    return payload


def forge(
    payload: dict[str, Any] | None = None,
    *,
    key: Any = TEST_JWT_SECRET,
    algorithm: str = "HS256",
    kid: str | None = "default",
    drop: tuple[str, ...] = (),
) -> str:
    """A token signed with `key` (the real test key unless told otherwise)."""
    payload = dict(claims_for() if payload is None else payload)
    for name in drop:
        payload.pop(name, None)
    headers = {}
    if kid == "default":
        headers["kid"] = tokens.key_id(TEST_JWT_SECRET)
    elif kid is not None:
        headers["kid"] = kid
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def unsigned(payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """`alg: none`, built by hand (PyJWT will not sign with none and a kid)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    header = header or {"alg": "none", "typ": "JWT", "kid": tokens.key_id(TEST_JWT_SECRET)}
    return f"{part(header)}.{part(payload)}."


def unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- environment ---------------------------------------------------------------------------------


@pytest.fixture
def reconfigure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`reconfigure(NAME=value, OTHER=None)` sets (or, with None, removes) environment variables
    and starts again with settings read from them and fresh clients. Everything is put back
    afterwards."""
    touched_db = False

    def apply(**env: str | None) -> None:
        nonlocal touched_db
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        touched_db = touched_db or any(n in env for n in ("DATABASE_URL", "DB_SECRET_ARN"))
        config.reset_settings()
        cache.reset_redis()
        if touched_db:
            db.reset_engine()
        # Read the settings now, from this environment: the test client lays the dev stage's
        # variables (placeholder secret ARNs among them) over the environment during a request.
        config.get_settings()

    yield apply
    monkeypatch.undo()
    config.reset_settings()
    cache.reset_redis()
    if touched_db:
        db.reset_engine()


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def access_log() -> Iterator[LogCapture]:
    """The JSON access-log lines written during the test."""
    from chalicelib.middleware import access_log as logger

    handler = LogCapture()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
