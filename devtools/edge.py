"""API Gateway's own part in front of the Lambda handlers, as deployed: the one model of it that the
local run command (devtools/server.py), the in-process gateway (devtools/gateway.py), the fuzzer and
the smoke test share.

- The answers the gateway gives before (or instead of) any code of ours, in the gateway's order:
  a body over 10 MB (413), no resource for the path or no method for it (404), no `Authorization`
  header on a protected route (401), an authorizer that raises (503) or answers something API
  Gateway cannot use (503), a policy that does not allow the request (403). Each is the packaged
  Gateway Response, rendered by deploy/gateway_responses.py: the envelope, the CORS headers, the
  request id in the body, in `X-Request-Id` (as on every answer of the application) and in
  `x-amzn-RequestId`.
- The token authorizer step: its answer (policy, principal, context) cached per `Authorization`
  header value for `AUTHORIZER_CACHE_SECONDS` — a raised error or an unusable answer never — and the
  cached policy checked against every request's method ARN (API Gateway applies one cached answer to
  every route). The context reaches the handler with every value a string, as deployed.
- CORS preflights on known paths: the mock OPTIONS integration Chalice deploys for each resource,
  naming the request's origin when it is one of several allowed (as packaging makes it do).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice.app import ChaliceAuthorizer
from chalice.local import ARNMatcher, LocalARNBuilder, RouteMatcher

from chalicelib.config import pick_origin

# API Gateway's payload limit for REST APIs (the app's own limit, 256 KiB, is the middleware's).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
CACHE_VARIABLE = "AUTHORIZER_CACHE_SECONDS"
DEFAULT_CACHE_SECONDS = 300  # API Gateway's default result TTL
MAX_CACHE_SECONDS = 3600  # API Gateway's maximum

log = logging.getLogger("devtools.edge")


class GatewayAnswer(Exception):
    """API Gateway answers the request itself with the Gateway Response `response_type`."""

    def __init__(self, response_type: str, reason: str = "", *, status: int | None = None) -> None:
        super().__init__(f"{response_type}: {reason}" if reason else response_type)
        self.response_type = response_type
        self.reason = reason
        self.status = status
        self.request_id = ""


@dataclass
class Admission:
    """A request the gateway lets through: to the handler, or answered as a CORS preflight."""

    request_id: str
    resource: str
    params: dict[str, str]
    route: Any = None  # the RouteEntry, None for a preflight
    authorizer_context: dict[str, str] | None = None
    preflight_headers: dict[str, str] | None = None
    cached: bool = False  # the authorizer's answer came from the cache

    def request_context(self, *, source_ip: str = "127.0.0.1") -> dict[str, Any]:
        """What API Gateway adds to the event's requestContext."""
        context: dict[str, Any] = {
            "requestId": self.request_id,
            "stage": "api",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
        }
        if self.authorizer_context is not None:
            context["authorizer"] = dict(self.authorizer_context)
        return context


def cache_seconds_from_environment(environ: Mapping[str, str] | None = None) -> int | None:
    """AUTHORIZER_CACHE_SECONDS as API Gateway would take it (0-3600), or None when unset.
    Anything else is refused: a typo must not silently turn the cache off."""
    raw = (os.environ if environ is None else environ).get(CACHE_VARIABLE)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip()
    if not value.isdigit() or int(value) > MAX_CACHE_SECONDS:
        raise ValueError(
            f"{CACHE_VARIABLE} must be a whole number of seconds from 0 to "
            f"{MAX_CACHE_SECONDS} (0 turns the cache off), not {raw!r}"
        )
    return int(value)


def local_cache_seconds(environ: Mapping[str, str] | None = None, *, stage: str = "dev") -> tuple[int, str]:
    """(seconds, why) for the local run: AUTHORIZER_CACHE_SECONDS when set, else what packaging
    gives the stage (deploy/stages.py; 300, API Gateway's default, for a stage it does not know).
    The `ttl_seconds` on the authorizer's decorator is not it: the packaged template overrides it."""
    explicit = cache_seconds_from_environment(environ)
    if explicit is not None:
        return explicit, f"{CACHE_VARIABLE}={explicit}"
    from deploy import stages

    if stage in stages.AUTHORIZER_CACHE_SECONDS:
        seconds = stages.authorizer_cache_seconds(stage)
        return seconds, f"the {stage} stage's packaged value, deploy/stages.py"
    return DEFAULT_CACHE_SECONDS, f"{CACHE_VARIABLE} unset: API Gateway's default"


def stringify_context(context: Any) -> dict[str, str]:
    """The authorizer's context as the API Lambda receives it deployed: strings, numbers and
    booleans become strings (`true`/`false` for booleans); an object or a list makes API Gateway
    refuse the whole answer, and so does a null here (AWS documents only those three types)."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise GatewayAnswer("AUTHORIZER_CONFIGURATION_ERROR", "context is not an object")
    out: dict[str, str] = {}
    for key, value in context.items():
        if isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            out[str(key)] = str(value)
        else:
            raise GatewayAnswer(
                "AUTHORIZER_CONFIGURATION_ERROR",
                f"context value {key!r} is {type(value).__name__}, not a string, number or boolean",
            )
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def policy_allows(policy: Any, method_arn: str) -> bool:
    """IAM evaluation of an authorizer's policy for one method ARN: an explicit Deny wins, else
    some Allow must match."""
    if not isinstance(policy, dict):
        raise GatewayAnswer("AUTHORIZER_CONFIGURATION_ERROR", "no policyDocument")
    matcher = ARNMatcher(method_arn)
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, dict):
            raise GatewayAnswer("AUTHORIZER_CONFIGURATION_ERROR", "a policy statement is not an object")
        actions = {str(a) for a in _as_list(statement.get("Action"))}
        if not actions & {"execute-api:Invoke", "execute-api:*", "*"}:
            continue
        if not matcher.does_any_resource_match([str(r) for r in _as_list(statement.get("Resource"))]):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


@dataclass
class _Cached:
    expires: float
    principal: str
    policy: Any
    context: dict[str, str]


@dataclass
class Edge:
    """API Gateway in front of one Chalice app. Thread-safe; `cache_seconds=0` turns the authorizer
    cache off. `authorizer_invocations` counts the authorizer Lambda's invocations."""

    app: Any
    cache_seconds: int = 0
    # The allowed origins (the app's settings); default: the one of the app's CORS configuration.
    # A preflight names the request's origin when it is one of them; the Gateway Responses, static
    # deployed, name the first (`origin`).
    origins: tuple[str, ...] | None = None
    origin: str | None = None
    clock: Callable[[], float] = time.monotonic
    authorizer_invocations: int = 0
    cache_hits: int = 0
    _cache: dict[tuple[str, str], _Cached] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.cache_seconds <= MAX_CACHE_SECONDS:
            raise ValueError(f"cache_seconds must be 0-{MAX_CACHE_SECONDS}")
        if self.origin is None:
            self.origin = self.origins[0] if self.origins else _app_origin(self.app)
        if self.origins is None:
            self.origins = (self.origin,)
        self._matcher = RouteMatcher(list(self.app.routes))
        self._arns = LocalARNBuilder()

    # --- the gateway's checks, in its order ------------------------------------------------------

    def admit(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body_length: int,
        *,
        lambda_context: Any = None,
    ) -> Admission:
        """Let the request through, or raise GatewayAnswer (with its request id set)."""
        request_id = str(uuid.uuid4())
        try:
            if body_length > MAX_PAYLOAD_BYTES:
                raise GatewayAnswer("REQUEST_TOO_LARGE", f"{body_length} bytes")
            try:
                match = self._matcher.match_route(target)
            except ValueError:
                raise GatewayAnswer("MISSING_AUTHENTICATION_TOKEN", "no such resource") from None
            methods = self.app.routes[match.route]
            lower = {k.lower(): v for k, v in headers.items()}
            if method == "OPTIONS" and "OPTIONS" not in methods:
                return Admission(
                    request_id,
                    match.route,
                    match.captured,
                    preflight_headers=self.preflight_headers(match.route, lower.get("origin")),
                )
            route = methods.get(method)
            if route is None:
                # Deployed, a method the resource does not have is API Gateway's answer too (not
                # our 405): MISSING_AUTHENTICATION_TOKEN, which the Gateway Responses make a 404.
                raise GatewayAnswer("MISSING_AUTHENTICATION_TOKEN", f"no {method} on {match.route}")
            path = target.split("?", 1)[0]
            context, cached = self._authorize(route, lower, method, path, lambda_context)
            return Admission(request_id, match.route, match.captured, route, context, cached=cached)
        except GatewayAnswer as answer:
            answer.request_id = request_id
            raise

    def _authorize(
        self, route: Any, headers: dict[str, str], method: str, path: str, lambda_context: Any
    ) -> tuple[dict[str, str] | None, bool]:
        authorizer = route.authorizer
        if not isinstance(authorizer, ChaliceAuthorizer):
            return None, False  # no authorizer (or one this model does not play): straight through
        header = (authorizer.config.header if authorizer.config is not None else "Authorization").lower()
        identity = headers.get(header)
        if not identity:
            raise GatewayAnswer("UNAUTHORIZED", f"no {header} header")
        method_arn = self._arns.build_arn(method, path)
        key = (authorizer.name, identity)
        now = self.clock()
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and entry.expires <= now:
                del self._cache[key]
                entry = None
            if entry is not None:
                self.cache_hits += 1
            else:
                self.authorizer_invocations += 1
        cached = entry is not None
        if entry is None:
            entry = self._invoke(authorizer, identity, method_arn, lambda_context, now)
        if not policy_allows(entry.policy, method_arn):
            raise GatewayAnswer("ACCESS_DENIED", "the policy does not allow " + method_arn)
        return {**entry.context, "principalId": entry.principal}, cached

    def _invoke(
        self, authorizer: Any, identity: str, method_arn: str, lambda_context: Any, now: float
    ) -> _Cached:
        event = {"type": "TOKEN", "authorizationToken": identity, "methodArn": method_arn}
        try:
            output = authorizer(event, lambda_context)
        except Exception as exc:
            # Deployed: an error of the authorizer Lambda. `raise Exception("Unauthorized")` is the
            # documented way for an authorizer to ask for API Gateway's 401; anything else is an
            # AUTHORIZER_FAILURE. Neither is cached.
            if str(exc) == "Unauthorized":
                raise GatewayAnswer("UNAUTHORIZED", "the authorizer raised Unauthorized") from None
            log.exception("the authorizer raised (API Gateway answers AUTHORIZER_FAILURE)")
            raise GatewayAnswer("AUTHORIZER_FAILURE", f"{type(exc).__name__}: {exc}") from None
        if not isinstance(output, dict) or not output.get("principalId"):
            raise GatewayAnswer("AUTHORIZER_CONFIGURATION_ERROR", "no principalId")
        policy = output.get("policyDocument")
        policy_allows(policy, method_arn)  # shape check: an unusable policy is never cached
        entry = _Cached(
            now + self.cache_seconds,
            str(output["principalId"]),
            policy,
            stringify_context(output.get("context")),
        )
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache = {k: v for k, v in self._cache.items() if v.expires > now}
                self._cache[(authorizer.name, identity)] = entry
        return entry

    def forget(self) -> None:
        """Empty the authorizer cache (a new deployment of the stage flushes it too)."""
        with self._lock:
            self._cache.clear()

    # --- what the gateway sends -----------------------------------------------------------------

    def preflight_headers(self, resource: str, request_origin: str | None = None) -> dict[str, str]:
        """The mock OPTIONS integration Chalice deploys on a resource (chalice/deploy/swagger.py),
        as packaging finishes it for several origins (deploy/gateway_responses.py,
        `preflights_name_the_origin`): the request's origin when it is one of them, `Vary: Origin`."""
        methods = self.app.routes[resource]
        with_cors = [m for m, entry in methods.items() if entry.cors is not None]
        if not with_cors:
            return {"Access-Control-Allow-Methods": "OPTIONS"}
        headers = {"Access-Control-Allow-Methods": ",".join([*with_cors, "OPTIONS"])}
        headers.update(methods[with_cors[0]].cors.get_access_control_headers())
        if self.origins and len(self.origins) > 1:
            headers["Access-Control-Allow-Origin"] = pick_origin(self.origins, request_origin)
            headers["Vary"] = "Origin"
        return headers

    def render(self, answer: GatewayAnswer) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) of the packaged Gateway Response for `answer`."""
        return _render(answer.response_type, self.origin or "*", answer.request_id, answer.status)


def _render(
    response_type: str, origin: str, request_id: str, status: int | None
) -> tuple[int, dict[str, str], str]:
    from deploy.gateway_responses import render

    return render(response_type, origin=origin, request_id=request_id, status=status)


def _app_origin(app: Any) -> str:
    """The origin the app's CORS configuration allows: the one the stage's Gateway Responses use."""
    cors = app.api.cors
    return "*" if cors is True or not cors else str(getattr(cors, "allow_origin", "*"))
