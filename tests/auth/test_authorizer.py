"""The authorizer verifies signature and claims only (no network I/O), so API Gateway may cache its
answer; it always allows and records a verdict. Deployed, API Gateway turns every context value into
a string, so the middleware accepts exactly `auth == "ok"` with a complete context and nothing else
("False", "None", a missing flag...). It raises only when the signing keys cannot be loaded."""

from __future__ import annotations

import pytest
import redis

from chalicelib import config
from chalicelib.auth import authorizer, sessions, tokens
from chalicelib.endpoint import public_routes
from tests.factories import login, make_site, make_user
from tests.support import GatewayResponse, call_app, gateway_context, proxy_event, run_authorizer, token_event

ME = "/api/auth/me"


@pytest.fixture
def editor(client):
    site = make_site()
    user_id = make_user(sites={site: "editor"})
    return {"site": site, "user": user_id, "token": login(client)["token"]}


def test_the_authorizer_context_is_all_strings(editor):
    result = run_authorizer(f"Bearer {editor['token']}")

    context = result["context"]
    assert all(isinstance(v, str) for v in context.values())
    assert context["auth"] == "ok"
    assert context["user_id"] == str(editor["user"])
    assert context["site_id"] == str(editor["site"])
    claims = tokens.verify(editor["token"])
    assert context["session_id"] == claims.session_id
    assert context["expires_at"] == str(claims.expires_at)
    assert context["auth_time_ms"] == str(claims.auth_time_ms)
    assert context["kid"] == tokens.key_id(config.get_settings().signing_key())
    assert result["principalId"] == str(editor["user"])


def test_the_authorizer_allows_every_route_so_our_middleware_answers(editor):
    for header in (f"Bearer {editor['token']}", "Bearer nonsense", None):
        result = run_authorizer(header)
        statement = result["policyDocument"]["Statement"][0]
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "execute-api:Invoke"
        assert statement["Resource"] == ["arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/api/*/*"]


def test_the_code_leaves_the_cache_time_to_the_packaged_template(app_module):
    assert authorizer.jwt_authorizer.config.ttl_seconds == 0
    assert authorizer.jwt_authorizer.config.handler_string == "chalicelib.auth.authorizer.jwt_authorizer"


def test_a_token_without_a_site_gives_an_empty_site_id():
    make_user()
    token, _ = tokens.issue(user_id=1, site_id=None)

    assert authorizer.evaluate(f"Bearer {token}")["site_id"] == ""


def test_the_verdict_depends_on_the_token_alone(editor, monkeypatch):
    """No Redis, no database: a revoked session still gets `ok` here (the API refuses it), and the
    verdict is the same with Redis gone."""
    sessions.revoke_session(tokens.verify(editor["token"]).session_id, 4102444800)
    before = authorizer.evaluate(f"Bearer {editor['token']}")

    def no_redis(*args, **kwargs):
        raise AssertionError("the authorizer asked Redis")

    monkeypatch.setattr(redis.Redis, "execute_command", no_redis)
    assert authorizer.evaluate(f"Bearer {editor['token']}") == before
    assert before["auth"] == "ok"


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer a b", "Bearer not.a.jwt"])
def test_a_header_that_is_no_token_of_ours_is_invalid(header):
    assert authorizer.evaluate(header)["auth"] == "invalid"


def test_the_authorizer_raises_when_the_signing_key_cannot_be_loaded(editor, reconfigure, monkeypatch):
    """API Gateway never caches a failure and answers it with the 503 Gateway Response; a cached
    `unavailable` verdict would outlive the outage."""
    reconfigure(
        JWT_SECRET=None, JWT_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone-AbC123"
    )

    def unreachable(arn):
        raise ConnectionError("Secrets Manager is unreachable")

    monkeypatch.setattr(config, "fetch_secret", unreachable)
    with pytest.raises(tokens.KeysUnavailable):
        run_authorizer(f"Bearer {editor['token']}")


def test_an_unexpected_error_while_verifying_is_invalid_not_a_crash(editor, monkeypatch):
    def bug(token):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tokens, "verify", bug)

    result = run_authorizer(f"Bearer {editor['token']}")
    assert result["context"]["auth"] == "invalid"


# --- through the API handler, as deployed -------------------------------------------------------


def test_a_stringified_context_from_the_real_authorizer_is_accepted(app_module, editor):
    response = call_app(app_module.app, "GET", ME, token=editor["token"])

    assert response.status_code == 200, response.json_body
    assert response.json_body["data"]["current_site"]["id"] == editor["site"]


def test_a_stringified_context_without_a_site_means_no_site(app_module, client):
    alpha, beta = make_site("Alpha"), make_site("Beta")
    make_user(sites={alpha: "editor", beta: "editor"})
    token = login(client)["token"]

    response = call_app(app_module.app, "GET", ME, token=token)

    assert response.status_code == 200
    assert response.json_body["data"]["current_site"] is None
    listing = call_app(app_module.app, "GET", "/api/interactions", token=token)
    assert listing.status_code == 403
    assert listing.json_body["error"]["code"] == "SITE_CONTEXT_REQUIRED"


def _real_context(token):
    return gateway_context(run_authorizer(f"Bearer {token}"))


@pytest.mark.parametrize(
    "change",
    [
        {"auth": "False"},
        {"auth": "None"},
        {"auth": "True"},
        {"auth": "true"},
        {"auth": "OK"},
        {"auth": "ok "},
        {"auth": ""},
        {"auth": "1"},
        {"auth": "invalid"},
        {"auth": None},
        {"user_id": None},
        {"user_id": ""},
        {"user_id": "None"},
        {"user_id": "abc"},
        {"session_id": None},
        {"expires_at": None},
        {"expires_at": "None"},
        {"issued_at": None},
        {"auth_time_ms": None},
        {"site_id": "None"},
        {"kid": None},
        {"kid": ""},
        {"kid": "0123456789abcdef"},
    ],
    ids=lambda change: ",".join(f"{k}={v!r}" for k, v in change.items()),
)
def test_anything_but_a_complete_ok_context_is_401(app_module, editor, change):
    context = _real_context(editor["token"])
    for name, value in change.items():
        if value is None:
            context.pop(name, None)
        else:
            context[name] = value

    response = call_app(app_module.app, "GET", ME, token=editor["token"], authorizer=context)

    assert response.status_code == 401, response.json_body
    assert response.json_body["error"]["code"] == "AUTHENTICATION_ERROR"
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


@pytest.mark.parametrize(
    "context",
    [None, {}, {"principalId": "1"}, {"principalId": "1", "user_id": "1"}],
    ids=["no authorizer", "empty", "principal only", "no flag"],
)
def test_a_missing_flag_is_never_success(app_module, editor, context):
    event = proxy_event("GET", ME, headers={"Authorization": f"Bearer {editor['token']}"}, authorizer=context)
    response = GatewayResponse(app_module.app(event, None))

    assert response.status_code == 401


@pytest.mark.parametrize("outcome", ["unavailable", "error"])
def test_an_outcome_the_authorizer_no_longer_gives_is_401(app_module, editor, outcome):
    response = call_app(
        app_module.app,
        "GET",
        ME,
        token=editor["token"],
        authorizer={"auth": outcome, "principalId": "anonymous"},
    )

    assert response.status_code == 401
    assert "Access-Control-Allow-Origin" in response.headers


def test_public_routes_are_exactly_the_routes_without_the_authorizer(app_module):
    unprotected = {
        (path, method)
        for path, methods in app_module.app.routes.items()
        for method, entry in methods.items()
        if entry.authorizer is None
    }

    assert unprotected == public_routes()
    assert public_routes() == {
        ("/api/auth/login", "POST"),
        ("/api/auth/invitations/preview", "POST"),
        ("/api/auth/invitations/accept", "POST"),
        ("/api/health", "GET"),
        ("/api/openapi.json", "GET"),
    }


def test_every_protected_route_uses_our_authorizer(app_module):
    for path, methods in app_module.app.routes.items():
        for method, entry in methods.items():
            if (path, method) not in public_routes():
                assert entry.authorizer is authorizer.jwt_authorizer, (path, method)


def test_the_authorizer_lambda_works_from_its_own_module(editor):
    """Deployed, the authorizer's handler is `chalicelib.auth.authorizer.jwt_authorizer`: its Lambda
    imports that module, not app.py."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import json, sys\n"
        "from chalicelib.auth.authorizer import jwt_authorizer\n"
        "events = json.loads(sys.stdin.read())\n"
        "print(json.dumps([jwt_authorizer(e, None)['context'] for e in events]))\n"
        "print('app' in sys.modules, 'sqlalchemy' in sys.modules)\n"
    )
    events = [token_event(f"Bearer {editor['token']}"), token_event("Bearer forged")]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ),
        input=json.dumps(events),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    contexts, modules = result.stdout.strip().splitlines()
    valid, forged = json.loads(contexts)
    assert valid["auth"] == "ok" and valid["user_id"] == str(editor["user"])
    assert forged["auth"] == "invalid"
    assert modules == "False False"
