"""API Gateway in miniature, for driving the real Lambda handlers in-process (load runs, concurrency
tests): build the REST proxy event, let devtools/edge.py play the gateway's part (payload limit,
route and method, the token authorizer and its result cache, the context stringified), then call
the app's handler. What the gateway refuses gets the packaged Gateway Responses, as deployed.

The authorizer cache is off unless asked for (`Gateway(cache_seconds=300)`);
`authorizer_invocations` counts the authorizer's runs either way.

`Gateway.threads()` lets several threads call the one app object at once, each standing for its own
Lambda container: Chalice keeps `current_request` on the app object (one request per container at a
time), so while it is active that attribute is made thread-local.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtools.edge import Edge, GatewayAnswer


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: Any
    raw: str


class _ThreadLocalRequest:
    def __init__(self) -> None:
        self._local = threading.local()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        return getattr(self._local, "value", None)

    def __set__(self, obj: Any, value: Any) -> None:
        self._local.value = value


def _result(status: int, headers: dict[str, str], raw: str) -> Result:
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return Result(status, headers, parsed, raw)


class Gateway:
    def __init__(
        self, app: Any = None, *, cache_seconds: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        origins = None  # another app: the origin of its own CORS configuration
        if app is None:
            import app as app_module
            from chalicelib.config import get_settings

            app, origins = app_module.app, get_settings().cors_allow_origins
        self.app = app
        self.edge = Edge(app, cache_seconds=cache_seconds, clock=clock, origins=origins)

    @property
    def authorizer_invocations(self) -> int:
        return self.edge.authorizer_invocations

    def request(
        self,
        method: str,
        target: str,
        token: str | None = None,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        source_ip: str = "127.0.0.1",
    ) -> Result:
        """One request as a client would send it; `body` is JSON-encoded unless str/bytes."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        length = 0
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
            if isinstance(body, bytes):
                length = len(body)
                body = body.decode("utf-8", "surrogateescape")
            else:
                length = len(body.encode("utf-8", "surrogatepass"))
        try:
            admission = self.edge.admit(method, target, sent, length)
        except GatewayAnswer as answer:
            status, out, raw = self.edge.render(answer)
            return _result(status, out, raw)
        if admission.preflight_headers is not None:
            return Result(
                200, {**admission.preflight_headers, "x-amzn-RequestId": admission.request_id}, None, ""
            )
        parts = urlsplit(target)
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        context = {
            "resourcePath": admission.resource,
            "httpMethod": method,
            "path": parts.path,
            **admission.request_context(source_ip=source_ip),
        }
        event = {
            "resource": admission.resource,
            "path": parts.path,
            "httpMethod": method,
            "headers": sent,
            "multiValueHeaders": {k: [v] for k, v in sent.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": admission.params or None,
            "stageVariables": None,
            "requestContext": context,
            "body": body,
            "isBase64Encoded": False,
        }
        response = self.app(event, None)
        out = dict(response.get("headers") or {})
        out["x-amzn-RequestId"] = admission.request_id
        return _result(response["statusCode"], out, response.get("body") or "")

    @contextmanager
    def threads(self) -> Iterator[None]:
        """Make the app's `current_request` thread-local for the duration."""
        original = type(self.app)
        self.app.__class__ = type(
            "ThreadLocalChalice", (original,), {"current_request": _ThreadLocalRequest()}
        )
        try:
            yield
        finally:
            self.app.__class__ = original
            self.app.current_request = None
