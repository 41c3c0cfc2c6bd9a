"""API Gateway proxy events for the real Lambda handlers, with the authorizer step as deployed.

A protected request runs the authorizer Lambda's callable first
(`chalicelib.auth.authorizer.jwt_authorizer(token_event, None)`); its context, stringified as API
Gateway does, goes into `requestContext.authorizer` of the event given to `app.app(event, None)`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/api/{method}{path}"
SOURCE_IP = "198.51.100.7"


@dataclass
class Call:
    """One HTTP request, as a client would send it."""

    method: str
    path: str  # with the query string, e.g. /api/interactions?page=2
    resource: str  # the route, e.g. /api/interactions/{interaction_id}
    path_params: dict[str, str] | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    expect: int = 200


def token_event(token: str, method: str, path: str) -> dict[str, Any]:
    return {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {token}",
        "methodArn": METHOD_ARN.format(method=method, path=path),
    }


def stringified(context: dict[str, Any]) -> dict[str, str]:
    """API Gateway hands every authorizer context value to the backend as a string."""
    return {key: "" if value is None else str(value) for key, value in context.items()}


def proxy_event(call: Call, authorizer: dict[str, str] | None) -> dict[str, Any]:
    parts = urlsplit(call.path)
    query = parse_qs(parts.query, keep_blank_values=True) or None
    headers = {"Host": "api.example.com", "User-Agent": "bench", **call.headers}
    body = None
    if call.body is not None:
        body = call.body if isinstance(call.body, str) else json.dumps(call.body)
        headers.setdefault("Content-Type", "application/json")
    if call.token:
        headers["Authorization"] = f"Bearer {call.token}"
    request_context: dict[str, Any] = {
        "httpMethod": call.method,
        "resourcePath": call.resource,
        "path": f"/api{parts.path}",
        "stage": "api",
        "requestId": "bench",
        "identity": {"sourceIp": SOURCE_IP},
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    return {
        "resource": call.resource,
        "path": parts.path,
        "httpMethod": call.method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query,
        "pathParameters": call.path_params,
        "stageVariables": None,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": False,
    }


class Prepared:
    """A call turned into the events API Gateway would build, ahead of time: only the authorizer and
    the API handler run inside the timed region, not the benchmark's own event building."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.token_event = (
            token_event(call.token, call.method, call.resource) if call.token is not None else None
        )
        self.event = proxy_event(call, None)

    def invoke(
        self, app: Any, authorizer_fn: Any, cache: AuthorizerCache | None = None
    ) -> tuple[dict[str, Any], int]:
        """What API Gateway does for one request: the authorizer (protected routes; with a cache,
        only when it holds no answer for the token), then the API. Returns the API's response and
        the nanoseconds the authorizer step took."""
        authorizer_ns = 0
        if self.token_event is not None:
            started = time.perf_counter_ns()

            def authorize() -> dict[str, str]:
                result = authorizer_fn(self.token_event, None)
                context = stringified(result["context"])
                context["principalId"] = str(result["principalId"])
                return context

            context = (
                authorize()
                if cache is None
                else cache.context(self.token_event["authorizationToken"], authorize)
            )
            self.event["requestContext"]["authorizer"] = dict(context)
            authorizer_ns = time.perf_counter_ns() - started
        return app(self.event, None), authorizer_ns


class AuthorizerCache:
    """API Gateway's authorizer result cache (`authorizerResultTtlInSeconds`): one answer per
    identity source (the Authorization header), reused for `ttl_s`; the authorizer Lambda runs only
    on a miss. A failure (the authorizer raising) is not cached. A TTL of 0 caches nothing.
    (devtools/edge.py models the whole edge for local runs; this is the cache alone, so that the
    timed region holds only the two Lambdas.)"""

    def __init__(self, ttl_s: float, clock: Any = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self.invocations = 0
        self._answers: dict[str, tuple[float, dict[str, str]]] = {}

    def context(self, identity: str, authorize: Any) -> dict[str, str]:
        now = self.clock()
        held = self._answers.get(identity)
        if held is not None and now < held[0]:
            return held[1]
        self.invocations += 1
        context = authorize()
        if self.ttl_s > 0:
            self._answers[identity] = (now + self.ttl_s, context)
        return context

    def expire(self) -> None:
        """Every cached answer is gone (the TTL passed, or a new token): the next request invokes."""
        self._answers.clear()

    def clear(self) -> None:
        self.expire()
        self.invocations = 0
