"""API Gateway's part as the local run and the in-process gateway play it (devtools/edge.py), on a
small app of its own so that every authorizer behaviour can be staged: the Gateway Responses, the
order of the gateway's checks, the authorizer cache and the context the handler receives. Every
test runs through both fronts: the in-process gateway and the local run's HTTP server."""

from __future__ import annotations

import functools
import http.client
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from chalice import AuthResponse, Chalice, CORSConfig
from chalice.config import Config

from deploy.gateway_responses import gateway_responses
from devtools import edge as edge_module
from devtools.edge import MAX_PAYLOAD_BYTES, Edge, local_cache_seconds
from devtools.gateway import Gateway
from devtools.server import EdgeRequestHandler

ORIGIN = "https://app.example.com"


@dataclass
class Verdicts:
    """What the staged authorizer answers; `calls` counts its invocations."""

    mode: str = "ok"
    calls: int = 0
    seen: list[str] = field(default_factory=list)

    def answer(self, request: Any) -> AuthResponse:
        self.calls += 1
        self.seen.append(request.token)
        if self.mode == "raise":
            raise RuntimeError("the signing key could not be loaded")
        if self.mode == "bad-context":
            return AuthResponse(routes=["*"], principal_id="u1", context={"nested": {"no": "objects"}})  # type: ignore[dict-item]
        if self.mode == "echo-only":
            return AuthResponse(routes=["/api/echo"], principal_id="u1", context={"auth": "ok"})
        context = {"auth": "ok", "user_id": 7, "admin": False, "ratio": 1.5, "token": request.token}
        return AuthResponse(routes=["*"], principal_id="u1", context=context)


def tiny_app(verdicts: Verdicts) -> Chalice:
    app = Chalice(app_name="edge-test")
    app.api.cors = CORSConfig(
        allow_origin=ORIGIN,
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["X-Request-Id"],
        max_age=600,
    )

    @app.authorizer()
    def staged(auth_request):
        return verdicts.answer(auth_request)

    @app.route("/api/echo", methods=["GET", "POST"], authorizer=staged)
    def echo():
        context = app.current_request.context
        return {"authorizer": context.get("authorizer"), "request_id": context.get("requestId")}

    @app.route("/api/other", authorizer=staged)
    def other():
        return {"other": True}

    @app.route("/api/open")
    def open_():
        return {"open": True}

    return app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class InProcess:
    def __init__(self, app: Chalice, edge: Edge) -> None:
        self.gateway = Gateway(app)
        self.gateway.edge = edge

    def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Reply:
        result = self.gateway.request(method, path, body=body, headers=headers)
        return Reply(result.status, {k.lower(): v for k, v in result.headers.items()}, result.body)

    def close(self) -> None:
        pass


class OverHttp:
    """The local run's server (chalice.local's LocalDevServer with the edge's request handler)."""

    def __init__(self, app: Chalice, edge: Edge) -> None:
        from chalice.local import LocalDevServer

        handler = functools.partial(EdgeRequestHandler, edge=edge)
        self.server = LocalDevServer(
            app, Config.create(chalice_stage="dev", app_name="edge-test"), "127.0.0.1", 0, handler_cls=handler
        )
        self.port = self.server.server.server_address[1]
        self.thread = threading.Thread(target=self.server.server.serve_forever, daemon=True)
        self.thread.start()

    def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
            parsed = json.loads(raw) if raw else None
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)
        finally:
            conn.close()

    def close(self) -> None:
        self.server.server.shutdown()
        self.server.server.server_close()


@pytest.fixture(params=["in-process", "http"])
def stage(request):
    """(front factory, verdicts, clock): build(cache_seconds) gives a front over a fresh app."""
    fronts: list[Any] = []
    verdicts = Verdicts()
    clock = Clock()

    def build(cache_seconds: int = 0, origins: tuple[str, ...] | None = None):
        app = tiny_app(verdicts)
        front = (InProcess if request.param == "in-process" else OverHttp)(
            app, Edge(app, cache_seconds=cache_seconds, clock=clock, origins=origins)
        )
        fronts.append(front)
        return front

    yield build, verdicts, clock
    for front in fronts:
        front.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_gateway_response(reply: Reply, response_type: str) -> None:
    """The packaged Gateway Response, as API Gateway would render it for this request."""
    packaged = gateway_responses(ORIGIN)[response_type]
    assert reply.status == int(packaged["statusCode"]), reply.body
    request_id = reply.headers["x-amzn-requestid"]
    expected = json.loads(
        packaged["responseTemplates"]["application/json"].replace("$context.requestId", request_id)
    )
    assert reply.body == expected
    for name, value in packaged["responseParameters"].items():
        expected_value = request_id if value == "context.requestId" else value.strip("'")
        assert reply.headers[name.removeprefix("gatewayresponse.header.").lower()] == expected_value
    assert reply.headers["x-request-id"] == request_id


# --- the gateway's own answers ----------------------------------------------------------------------


def test_no_authorization_header_is_the_unauthorized_response_and_runs_no_authorizer(stage):
    build, verdicts, _ = stage
    front = build()
    reply = front.send("GET", "/api/echo")
    assert_gateway_response(reply, "UNAUTHORIZED")
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert front.send("GET", "/api/echo", {"Authorization": ""}).status == 401
    assert verdicts.calls == 0


def test_unknown_paths_and_methods_are_the_gateway_404(stage):
    build, verdicts, _ = stage
    front = build()
    assert_gateway_response(front.send("GET", "/api/nowhere"), "MISSING_AUTHENTICATION_TOKEN")
    assert_gateway_response(front.send("GET", "/api/nowhere", bearer("t")), "MISSING_AUTHENTICATION_TOKEN")
    assert_gateway_response(front.send("DELETE", "/api/echo", bearer("t")), "MISSING_AUTHENTICATION_TOKEN")
    assert_gateway_response(front.send("PATCH", "/api/open"), "MISSING_AUTHENTICATION_TOKEN")
    assert verdicts.calls == 0


def test_a_body_over_api_gateways_10_mb_is_its_413_before_anything_else(stage):
    build, verdicts, _ = stage
    front = build()
    reply = front.send(
        "POST", "/api/nowhere", {"Content-Type": "application/json"}, b"x" * (MAX_PAYLOAD_BYTES + 1)
    )
    assert_gateway_response(reply, "REQUEST_TOO_LARGE")
    assert (
        front.send(
            "POST",
            "/api/echo",
            {**bearer("t"), "Content-Type": "application/json"},
            b"[" + b" " * (MAX_PAYLOAD_BYTES - 2) + b"]",
        ).status
        == 200
    )  # exactly 10 MB passes
    assert verdicts.calls == 1


def test_a_raising_authorizer_is_the_503_and_is_never_cached(stage):
    build, verdicts, _ = stage
    front = build(cache_seconds=300)
    verdicts.mode = "raise"
    for _ in range(2):
        reply = front.send("GET", "/api/echo", bearer("t"))
        assert_gateway_response(reply, "AUTHORIZER_FAILURE")
        assert reply.headers["retry-after"] == "1"
    assert verdicts.calls == 2
    verdicts.mode = "ok"
    assert front.send("GET", "/api/echo", bearer("t")).status == 200
    assert verdicts.calls == 3


def test_an_answer_api_gateway_cannot_use_is_a_503_and_is_never_cached(stage):
    build, verdicts, _ = stage
    front = build(cache_seconds=300)
    verdicts.mode = "bad-context"
    assert_gateway_response(front.send("GET", "/api/echo", bearer("t")), "AUTHORIZER_CONFIGURATION_ERROR")
    assert_gateway_response(front.send("GET", "/api/echo", bearer("t")), "AUTHORIZER_CONFIGURATION_ERROR")
    assert verdicts.calls == 2


# --- the authorizer cache ---------------------------------------------------------------------------


def test_an_answer_is_reused_per_authorization_header_until_the_ttl_ends(stage):
    build, verdicts, clock = stage
    front = build(cache_seconds=300)
    for _ in range(3):
        assert front.send("GET", "/api/echo", bearer("one")).status == 200
    assert front.send("GET", "/api/other", bearer("one")).status == 200  # one answer serves every route
    assert verdicts.calls == 1
    assert front.send("GET", "/api/echo", bearer("two")).status == 200
    assert verdicts.calls == 2
    clock.now += 299.9
    front.send("GET", "/api/echo", bearer("one"))
    assert verdicts.calls == 2
    clock.now += 0.1
    front.send("GET", "/api/echo", bearer("one"))
    assert verdicts.calls == 3
    assert verdicts.seen == ["Bearer one", "Bearer two", "Bearer one"]  # the header, as sent


def test_with_the_cache_off_every_request_invokes_the_authorizer(stage):
    build, verdicts, _ = stage
    front = build(cache_seconds=0)
    for _ in range(3):
        assert front.send("GET", "/api/echo", bearer("one")).status == 200
    assert verdicts.calls == 3


def test_a_cached_policy_is_checked_against_every_route_it_is_reused_for(stage):
    build, verdicts, _ = stage
    front = build(cache_seconds=300)
    verdicts.mode = "echo-only"  # allows GET/POST /api/echo only, as a non-wildcard policy would
    assert front.send("GET", "/api/echo", bearer("t")).status == 200
    assert_gateway_response(front.send("GET", "/api/other", bearer("t")), "ACCESS_DENIED")
    assert verdicts.calls == 1


def test_the_context_reaches_the_handler_stringified_with_the_gateways_request_id(stage):
    build, _, _ = stage
    front = build()
    reply = front.send("GET", "/api/echo", bearer("tok"))
    assert reply.body["authorizer"] == {
        "auth": "ok",
        "user_id": "7",
        "admin": "false",
        "ratio": "1.5",
        "token": "Bearer tok",
        "principalId": "u1",
    }
    assert reply.body["request_id"] == reply.headers["x-amzn-requestid"]


def test_public_routes_pass_without_a_token_and_preflights_answer_on_known_paths(stage):
    build, verdicts, _ = stage
    front = build()
    assert front.send("GET", "/api/open").body == {"open": True}
    preflight = front.send(
        "OPTIONS", "/api/echo", {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 200
    assert preflight.headers["access-control-allow-methods"] == "GET,POST,OPTIONS"
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert_gateway_response(front.send("OPTIONS", "/api/nowhere"), "MISSING_AUTHENTICATION_TOKEN")
    assert verdicts.calls == 0


def test_with_two_origins_a_preflight_names_the_requests_and_gateway_responses_the_first(stage):
    """As packaging makes the deployed preflights answer (deploy/gateway_responses.py); a Gateway
    Response cannot choose, so it names the first origin whatever the request's."""
    build, verdicts, _ = stage
    second = "http://localhost:5173"
    front = build(origins=(ORIGIN, second))
    for origin, named in ((second, second), (ORIGIN, ORIGIN), ("https://elsewhere.example", ORIGIN)):
        preflight = front.send(
            "OPTIONS", "/api/echo", {"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status == 200
        assert preflight.headers["access-control-allow-origin"] == named
        assert preflight.headers["vary"] == "Origin"
    assert_gateway_response(front.send("GET", "/api/echo", {"Origin": second}), "UNAUTHORIZED")
    assert verdicts.calls == 0


def test_with_one_origin_a_preflight_does_not_vary(stage):
    build, _, _ = stage
    preflight = build().send(
        "OPTIONS",
        "/api/echo",
        {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "vary" not in preflight.headers


def test_the_http_front_answers_methods_chalice_local_does_not_know():
    verdicts = Verdicts()
    app = tiny_app(verdicts)
    front = OverHttp(app, Edge(app))
    try:
        for method in ("TRACE", "QUERY", "PROPFIND"):
            assert_gateway_response(front.send(method, "/api/echo"), "MISSING_AUTHENTICATION_TOKEN")
    finally:
        front.close()


# --- how long the local run caches -----------------------------------------------------------------


def test_local_cache_seconds_follow_the_environment_else_the_stages_packaged_value():
    from deploy import stages

    assert local_cache_seconds({}) == (
        stages.authorizer_cache_seconds("dev"),
        "the dev stage's packaged value, deploy/stages.py",
    )
    assert local_cache_seconds({}, stage="elsewhere")[0] == 300  # API Gateway's default
    assert local_cache_seconds({"AUTHORIZER_CACHE_SECONDS": "0"})[0] == 0
    assert local_cache_seconds({"AUTHORIZER_CACHE_SECONDS": " 60 "})[0] == 60
    for wrong in ("-1", "3601", "5m", "1.5"):
        with pytest.raises(ValueError, match="AUTHORIZER_CACHE_SECONDS"):
            local_cache_seconds({"AUTHORIZER_CACHE_SECONDS": wrong})


def test_context_values_are_stringified_as_api_gateway_does():
    assert edge_module.stringify_context({"a": True, "b": 0, "c": "x", "d": 2.5}) == {
        "a": "true",
        "b": "0",
        "c": "x",
        "d": "2.5",
    }
    for unusable in ({"a": None}, {"a": [1]}, {"a": {"b": 1}}):
        with pytest.raises(edge_module.GatewayAnswer) as raised:
            edge_module.stringify_context(unusable)
        assert raised.value.response_type == "AUTHORIZER_CONFIGURATION_ERROR"
