"""API Gateway in miniature, for driving the real Lambda handlers in-process (load runs, concurrency
tests): build the REST proxy event, run the token authorizer first and hand its context on with
every value stringified, as API Gateway does, then call the app's handler.

`Gateway.threads()` lets several threads call the one app object at once, each standing for its own
Lambda container: Chalice keeps `current_request` on the app object (one request per container at a
time), so while it is active that attribute is made thread-local.
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit


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


class Gateway:
    def __init__(self, app: Any = None) -> None:
        if app is None:
            import app as app_module

            app = app_module.app
        from chalicelib.auth.authorizer import jwt_authorizer

        self.app = app
        self.authorizer = jwt_authorizer
        self._routes = [
            (re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"), path)
            for path in app.routes
        ]

    def _resource(self, path: str) -> tuple[str | None, dict[str, str]]:
        exact = path if path in self.app.routes else None
        if exact:
            return exact, {}
        for pattern, resource in self._routes:
            match = pattern.match(path)
            if match:
                return resource, match.groupdict()
        return None, {}

    def request(self, method: str, target: str, token: str | None = None, body: Any = None, *,
                headers: dict[str, str] | None = None, source_ip: str = "127.0.0.1") -> Result:
        """One request as a client would send it; `body` is JSON-encoded unless str/bytes."""
        parts = urlsplit(target)
        path = parts.path
        resource, params = self._resource(path)
        if resource is None or method not in self.app.routes[resource]:
            return Result(403 if resource is None else 405, {}, {"message": "Missing Authentication Token"}, "")
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
            if isinstance(body, bytes):
                body = body.decode("utf-8", "surrogateescape")
        lower = {k.lower(): v for k, v in sent.items()}
        context: dict[str, Any] = {
            "resourcePath": resource, "httpMethod": method, "path": path, "stage": "api",
            "requestId": str(uuid.uuid4()), "identity": {"sourceIp": source_ip},
        }
        route = self.app.routes[resource][method]
        if route.authorizer is not None:
            authorization = lower.get("authorization")
            if not authorization:  # API Gateway's own answer; no Lambda runs
                return Result(401, {}, {"message": "Unauthorized"}, "")
            outcome = self.authorizer({"type": "TOKEN", "authorizationToken": authorization,
                                       "methodArn": "arn:aws:execute-api:eu-west-1:1:api/api/" + method + path},
                                      None)
            authorizer_context = {k: str(v) for k, v in (outcome.get("context") or {}).items()}
            authorizer_context["principalId"] = str(outcome.get("principalId"))
            context["authorizer"] = authorizer_context
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            multi_query.setdefault(name, []).append(value)
        event = {
            "resource": resource, "path": path, "httpMethod": method,
            "headers": sent, "multiValueHeaders": {k: [v] for k, v in sent.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None, "stageVariables": None,
            "requestContext": context, "body": body, "isBase64Encoded": False,
        }
        response = self.app(event, None)
        raw = response.get("body") or ""
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        return Result(response["statusCode"], dict(response.get("headers") or {}), parsed, raw)

    @contextmanager
    def threads(self) -> Iterator[None]:
        """Make the app's `current_request` thread-local for the duration."""
        original = type(self.app)
        self.app.__class__ = type("ThreadLocalChalice", (original,),
                                  {"current_request": _ThreadLocalRequest()})
        try:
            yield
        finally:
            self.app.__class__ = original
            self.app.current_request = None
