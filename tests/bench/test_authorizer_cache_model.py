"""The benchmark's model of API Gateway's authorizer result cache (bench/events.py): the authorizer
Lambda runs once per token per TTL, a cached answer reaches the API Lambda unchanged, failures are
never cached, and a TTL of 0 caches nothing."""

from __future__ import annotations

import pytest

from bench.events import AuthorizerCache, Call, Prepared


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _counting_authorizer(calls: list[str]):
    def authorizer(event, _context):
        calls.append(event["authorizationToken"])
        return {"principalId": "7", "context": {"auth": "ok", "user_id": 7, "site_id": None}}

    return authorizer


def _app(seen: list[dict]):
    def app(event, _context):
        seen.append(dict(event["requestContext"]["authorizer"]))
        return {"statusCode": 200, "body": "{}"}

    return app


def test_one_token_is_authorized_once_per_ttl():
    clock, calls = Clock(), []
    cache = AuthorizerCache(300, clock=clock)
    prepared = Prepared(Call("GET", "/api/interactions", "/api/interactions", token="t1"))
    for _ in range(100):
        prepared.invoke(_app([]), _counting_authorizer(calls), cache)
    assert (len(calls), cache.invocations) == (1, 1)

    clock.now += 300
    prepared.invoke(_app([]), _counting_authorizer(calls), cache)

    assert (len(calls), cache.invocations) == (2, 2)


def test_each_token_has_its_own_answer():
    calls = []
    cache = AuthorizerCache(300, clock=Clock())
    for token in ("a", "b", "a", "b"):
        Prepared(Call("GET", "/api/auth/me", "/api/auth/me", token=token)).invoke(
            _app([]), _counting_authorizer(calls), cache
        )

    assert calls == ["Bearer a", "Bearer b"]


def test_a_cached_answer_reaches_the_api_as_the_authorizer_gave_it_stringified():
    seen = []
    cache = AuthorizerCache(300, clock=Clock())
    prepared = Prepared(Call("GET", "/api/auth/me", "/api/auth/me", token="t"))
    for _ in range(2):
        prepared.invoke(_app(seen), _counting_authorizer([]), cache)

    assert seen[0] == seen[1] == {"auth": "ok", "user_id": "7", "site_id": "", "principalId": "7"}


def test_a_failing_authorizer_is_not_cached():
    cache = AuthorizerCache(300, clock=Clock())
    attempts = []

    def failing(event, _context):
        attempts.append(1)
        raise RuntimeError("keys unavailable")

    prepared = Prepared(Call("GET", "/api/auth/me", "/api/auth/me", token="t"))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            prepared.invoke(_app([]), failing, cache)

    assert len(attempts) == 2 == cache.invocations


def test_a_ttl_of_zero_runs_the_authorizer_every_time_and_public_routes_never():
    calls = []
    cache = AuthorizerCache(0, clock=Clock())
    protected = Prepared(Call("GET", "/api/auth/me", "/api/auth/me", token="t"))
    public = Prepared(Call("GET", "/api/health", "/api/health"))
    for _ in range(3):
        protected.invoke(_app([]), _counting_authorizer(calls), cache)
        public.invoke(lambda event, _c: {"statusCode": 200}, _counting_authorizer(calls), cache)

    assert len(calls) == 3 == cache.invocations


def test_expire_starts_a_new_session_and_clear_also_resets_the_count():
    cache = AuthorizerCache(300, clock=Clock())
    prepared = Prepared(Call("GET", "/api/auth/me", "/api/auth/me", token="t"))
    prepared.invoke(_app([]), _counting_authorizer([]), cache)
    cache.expire()
    prepared.invoke(_app([]), _counting_authorizer([]), cache)
    assert cache.invocations == 2

    cache.clear()

    assert cache.invocations == 0
