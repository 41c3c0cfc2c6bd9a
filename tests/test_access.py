"""The order of checks (API.md: 401, then 403, then 400, then 404), held once for every route by
what the route declares it needs (chalicelib/access.py: `admit`, run by chalicelib/endpoint.py).

Each step is provoked together with every later one, so a check that ran out of order would answer
instead: a refused caller sends an unknown query parameter too (its 400 must not win), and a
caller who is not a member of the path's site sends one (its 400 must win over the 404)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from chalicelib.access import PlatformAdmin, SiteAdmin, SiteRole, Token, at_path
from chalicelib.auth import sessions, tokens
from chalicelib.db import session_scope
from chalicelib.endpoint import REGISTRY
from chalicelib.models import User
from tests.factories import make_site, make_user
from tests.interactions.helpers import token_for
from tests.test_round_trips import SCENARIOS

# Every route but the public ones (SCENARIOS holds every route: tests/test_round_trips.py checks it).
PUBLIC = {("POST", "/api/auth/login"), ("POST", "/api/auth/invitations/preview")}
PUBLIC |= {("POST", "/api/auth/invitations/accept"), ("GET", "/api/health"), ("GET", "/api/openapi.json")}
ROUTES = sorted(key for key in SCENARIOS if key not in PUBLIC)

# A valid body for the changes at a path's site, whose body is read before the 404.
BODIES = {
    ("PUT", "/api/sites/{site_id}"): {"description": "Changed"},
    ("PUT", "/api/sites/{site_id}/users/{user_id}"): {"role": "viewer"},
    ("POST", "/api/sites/{site_id}/invitations"): {"email": "someone@example.com", "role": "viewer"},
}


@pytest.fixture
def people():
    site = make_site("Marketing")
    return {
        "site": site,
        "admin": make_user("alice", sites={site: "admin"}),
        "viewer": make_user("vera", sites={site: "viewer"}),
        "outsider": make_user("otto"),
        "gone": make_user("gina", sites={site: "admin"}),
    }


def _send(client, method, path, token, *, query="", body=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = json.dumps(body) if body is not None else (None if method in ("GET", "DELETE") else "{}")
    response = getattr(client.http, method.lower())(path + query, body=payload, headers=headers)
    error = (response.json_body or {}).get("error") or {}
    return response.status_code, error.get("code"), {d["field"] for d in error.get("details") or []}


def _path(template, site):
    return template.format(site_id=site, interaction_id=1, user_id=1, invitation_id=1)


def test_the_table_names_every_protected_route(app_module):
    assert set(ROUTES) == {(method, path) for (path, method), entry in REGISTRY.items() if not entry.public}


@pytest.mark.parametrize("key", ROUTES, ids=lambda key: f"{key[0]} {key[1]}")
def test_every_route_checks_in_order(client, people, key):
    method, template = key
    needs = REGISTRY[(template, method)].needs
    site = people["site"]
    path = _path(template, site)
    body = BODIES.get(key)
    # A member who passes every 403 of the route (a platform admin, an admin of the token's site).
    passing = token_for(people["admin"], site)
    with session_scope() as session:
        session.execute(update(User).where(User.id == people["admin"]).values(platform_admin=True))

    # 401: a revoked session, with everything else wrong too.
    revoked = token_for(people["admin"], site)
    claims = tokens.verify(revoked)
    sessions.revoke_session(claims.session_id, claims.expires_at)
    assert _send(client, method, path, revoked, query="?zz=1")[:2] == (401, "AUTHENTICATION_ERROR")

    # 401: an account deactivated since its token was issued (read with the route's statement).
    if REGISTRY[(template, method)].session:
        gone = token_for(people["gone"], site)
        with session_scope() as session:
            session.execute(update(User).where(User.id == people["gone"]).values(is_active=False))
        assert _send(client, method, path, gone, query="?zz=1")[:2] == (401, "AUTHENTICATION_ERROR")

    # 403, before the 400 of an unknown parameter.
    if isinstance(needs, SiteRole) and needs.at == "token" and not needs.write:
        no_site = token_for(people["outsider"], None)
        assert _send(client, method, path, no_site, query="?zz=1")[:2] == (403, "SITE_CONTEXT_REQUIRED")
    elif (isinstance(needs, SiteRole) and needs.write) or isinstance(needs, SiteAdmin | PlatformAdmin):
        viewer = token_for(people["viewer"], site)  # may not write, not an admin, not a platform admin
        assert _send(client, method, path, viewer, query="?zz=1")[:2] == (403, "AUTHORIZATION_ERROR")

    if at_path(needs):
        # 400 before the 404 of a caller who is not a member of the path's site ...
        outsider = token_for(people["outsider"], None)
        assert _send(client, method, path, outsider, query="?zz=1") == (400, "VALIDATION_ERROR", {"zz"})
        # ... and the 404 last.
        assert _send(client, method, path, outsider, body=body)[:2] == (404, "RESOURCE_NOT_FOUND")
    else:
        assert isinstance(needs, Token | SiteRole | PlatformAdmin)
        # 400: the caller passes every check before it.
        assert _send(client, method, path, passing, query="?zz=1") == (400, "VALIDATION_ERROR", {"zz"})
