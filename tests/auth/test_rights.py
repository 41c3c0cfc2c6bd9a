"""Rights are read from the database on every request: membership, role, site and user changes
take effect on the next request, whatever the token says. Also the caller's row and its requirements on their own."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, event

from chalicelib import access, cli
from chalicelib.db import get_engine, session_scope
from chalicelib.errors import AuthenticationFailed, Forbidden, SiteContextRequired
from chalicelib.models import Site, SiteMembership, User
from tests.factories import auth, login, make_site, make_user, post_json, select_site

INTERACTIONS = "/api/interactions"


@pytest.fixture
def editor(client):
    site = make_site("Marketing")
    user_id = make_user("jdoe", sites={site: "editor"})
    return {"site": site, "user": user_id, "token": login(client)["token"]}


def _me(client, token):
    return client.http.get("/api/auth/me", headers=auth(token))


def _list(client, token):
    return client.http.get(INTERACTIONS, headers=auth(token))


def _create(client, token):
    return post_json(client, INTERACTIONS, {}, token)  # role is checked before the body


def _set(model, key, **values):
    with session_scope() as s:
        row = s.get(model, key)
        for name, value in values.items():
            setattr(row, name, value)


def test_a_removed_membership_loses_the_site_on_the_next_request(client, editor):
    assert _list(client, editor["token"]).status_code == 200
    with session_scope() as s:
        s.execute(delete(SiteMembership).where(SiteMembership.user_id == editor["user"]))

    assert _me(client, editor["token"]).json_body["data"]["current_site"] is None
    refused = _list(client, editor["token"])
    assert refused.status_code == 403
    assert refused.json_body["error"]["code"] == "SITE_CONTEXT_REQUIRED"
    assert client.http.get("/api/auth/sites", headers=auth(editor["token"])).json_body["data"]["sites"] == []


def test_a_changed_role_applies_on_the_next_request(client, editor):
    assert _create(client, editor["token"]).status_code == 400  # an editor reaches validation

    _set(SiteMembership, (editor["user"], editor["site"]), role="viewer")

    refused = _create(client, editor["token"])
    assert refused.status_code == 403
    assert refused.json_body["error"]["code"] == "AUTHORIZATION_ERROR"
    assert _list(client, editor["token"]).status_code == 200  # still a reader
    assert _me(client, editor["token"]).json_body["data"]["current_site"]["role"] == "viewer"

    _set(SiteMembership, (editor["user"], editor["site"]), role="admin")

    assert _create(client, editor["token"]).status_code == 400


def test_a_deactivated_site_behaves_as_no_membership(client, editor):
    _set(Site, editor["site"], is_active=False)

    assert _me(client, editor["token"]).json_body["data"]["current_site"] is None
    assert _list(client, editor["token"]).json_body["error"]["code"] == "SITE_CONTEXT_REQUIRED"
    assert _create(client, editor["token"]).json_body["error"]["code"] == "SITE_CONTEXT_REQUIRED"
    switched = post_json(client, "/api/auth/site", {"site_id": editor["site"]}, editor["token"])
    assert switched.status_code == 403

    _set(Site, editor["site"], is_active=True)

    assert _list(client, editor["token"]).status_code == 200


def test_a_deactivated_user_gets_401_on_the_next_request(client, editor):
    _set(User, editor["user"], is_active=False)

    for response in (
        _me(client, editor["token"]),
        _list(client, editor["token"]),
        client.http.get("/api/auth/sites", headers=auth(editor["token"])),
        post_json(client, "/api/auth/site", {"site_id": editor["site"]}, editor["token"]),
    ):
        assert response.status_code == 401
        assert response.json_body["error"]["code"] == "AUTHENTICATION_ERROR"


def test_a_deleted_user_gets_401(client, editor):
    with session_scope() as s:
        s.execute(delete(User).where(User.id == editor["user"]))

    assert _me(client, editor["token"]).status_code == 401


# --- the same through the operator's commands -------------------------------------------------


def test_cli_revoke_applies_on_the_next_request(client, editor, capsys):
    assert cli.main(["revoke", "JDOE", "Marketing"]) == 0

    assert _list(client, editor["token"]).json_body["error"]["code"] == "SITE_CONTEXT_REQUIRED"
    assert _me(client, editor["token"]).json_body["data"]["current_site"] is None


def test_cli_grant_changes_a_role_on_the_next_request(client, editor, capsys):
    assert cli.main(["grant", "jdoe", "Marketing", "viewer"]) == 0

    assert _create(client, editor["token"]).json_body["error"]["code"] == "AUTHORIZATION_ERROR"


def test_cli_deactivate_user_applies_on_the_next_request(client, editor, capsys):
    assert cli.main(["deactivate-user", "jdoe"]) == 0

    assert _me(client, editor["token"]).status_code == 401
    assert (
        post_json(
            client, "/api/auth/login", {"username": "jdoe", "password": "correct horse battery staple"}
        ).status_code
        == 401
    )


def test_cli_deactivate_site_applies_on_the_next_request(client, editor, capsys):
    assert cli.main(["deactivate-site", "Marketing"]) == 0

    assert _list(client, editor["token"]).json_body["error"]["code"] == "SITE_CONTEXT_REQUIRED"


def test_cli_set_password_ends_every_session_of_the_user(client, monkeypatch, capsys):
    alpha, beta = make_site("Alpha"), make_site("Beta")
    make_user("jdoe", sites={alpha: "editor", beta: "editor"})
    make_user("alice", sites={alpha: "editor"})
    first = login(client)["token"]
    switched = select_site(client, first, alpha)
    other_device = login(client)["token"]
    alice = login(client, "alice")["token"]

    monkeypatch.setattr(sys, "stdin", io.StringIO("a brand new password\n"))
    assert cli.main(["set-password", "JDoe", "--password-stdin"]) == 0

    for token in (first, switched, other_device):
        assert _me(client, token).status_code == 401
    assert _me(client, alice).status_code == 200  # other users are untouched
    assert (
        post_json(
            client, "/api/auth/login", {"username": "jdoe", "password": "correct horse battery staple"}
        ).status_code
        == 401
    )
    # A login straight after the change (same second) starts a session that stays valid.
    fresh = login(client, password="a brand new password")["token"]
    assert _me(client, fresh).status_code == 200
    assert _me(client, select_site(client, fresh, beta)).status_code == 200


def test_set_password_revocation_lasts_as_long_as_a_session(
    client, editor, monkeypatch, redis_client, capsys
):
    monkeypatch.setattr(sys, "stdin", io.StringIO("a brand new password\n"))
    assert cli.main(["set-password", "jdoe", "--password-stdin"]) == 0

    ttl = redis_client.ttl(f"revoked:user-before:{editor['user']}")
    assert 86400 <= ttl <= 86400 + 60


def test_a_site_switch_cannot_outlive_a_password_change(client, monkeypatch, capsys):
    """Revocation goes by when the session began, not when its latest token was issued."""
    alpha, beta = make_site("Alpha"), make_site("Beta")
    make_user("jdoe", sites={alpha: "editor", beta: "editor"})
    first = login(client)["token"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("a brand new password\n"))
    assert cli.main(["set-password", "jdoe", "--password-stdin"]) == 0

    # A token issued now for the old session (as a switch racing the change would be) is dead too.
    from chalicelib.auth import tokens

    claims = tokens.verify(first)
    late, _ = tokens.issue(
        user_id=claims.user_id,
        site_id=beta,
        session_id=claims.session_id,
        expires_at=claims.expires_at,
        auth_time_ms=claims.auth_time_ms,
    )
    assert _me(client, late).status_code == 401


# --- the caller's row, held to what an endpoint requires ------------------------------------------


def _load(session, request, *, site_required=False, write=False):
    """The caller as a route declared `SiteRole` (`site_required`, `write`) or `Token` admits it."""
    token = access.token_context(request)
    rows = access.read(session, token, access.RIGHTS, site_id=token.site_id)
    needs = access.SiteRole(write=write) if site_required or write else access.Token()
    return access.admit(needs, token, access.rights(rows.head))


def _request(user_id, site_id=None, **extra):
    context = {
        "auth": "ok",
        "user_id": str(user_id),
        "session_id": "s" * 32,
        "site_id": "" if site_id is None else str(site_id),
        "expires_at": "4102444800",
        "issued_at": "1700000000",
        "auth_time_ms": "1700000000000",
        **extra,
    }
    return SimpleNamespace(context={"authorizer": context})


def test_principal_load_reads_role_and_site():
    site = make_site()
    user_id = make_user(sites={site: "admin"})
    with session_scope() as s:
        caller = _load(s, _request(user_id, site), site_required=True, write=True)

    assert (caller.user_id, caller.site_id, caller.role, caller.can_write) == (user_id, site, "admin", True)
    assert caller.auth_time_ms == 1700000000000 and caller.expires_at == 4102444800


def test_principal_load_is_one_query():
    site = make_site()
    user_id = make_user(sites={site: "viewer"})
    statements = []

    def count(*args):
        statements.append(args[2])

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope() as s:
            _load(s, _request(user_id, site), site_required=True)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


@pytest.mark.parametrize("case", ["no site in token", "not a member", "inactive site", "no such site"])
def test_principal_without_a_usable_site(case):
    site, other, closed = make_site("A"), make_site("B"), make_site("C", active=False)
    user_id = make_user(sites={site: "editor", closed: "admin"})
    token_site = {
        "no site in token": None,
        "not a member": other,
        "inactive site": closed,
        "no such site": 999,
    }[case]
    with session_scope() as s:
        caller = _load(s, _request(user_id, token_site))
        assert caller.site_id is None and caller.role is None
        with pytest.raises(SiteContextRequired):
            _load(s, _request(user_id, token_site), site_required=True)
        with pytest.raises(SiteContextRequired):
            _load(s, _request(user_id, token_site), write=True)


def test_principal_viewer_may_not_write():
    site = make_site()
    user_id = make_user(sites={site: "viewer"})
    with session_scope() as s:
        assert _load(s, _request(user_id, site), site_required=True).role == "viewer"
        with pytest.raises(Forbidden):
            _load(s, _request(user_id, site), write=True)


@pytest.mark.parametrize("case", ["unknown", "inactive"])
def test_principal_unknown_or_inactive_user_is_401(case):
    user_id = make_user(active=case != "inactive")
    with session_scope() as s, pytest.raises(AuthenticationFailed):
        _load(s, _request(user_id + 100 if case == "unknown" else user_id))


@pytest.mark.parametrize(
    "context",
    [
        {"auth": "invalid"},
        {"auth": "False"},
        {"user_id": "x"},
        {"site_id": "None"},
        {"expires_at": ""},
    ],
)
def test_principal_refuses_a_context_it_cannot_trust(context):
    user_id = make_user()
    request = _request(user_id)
    request.context["authorizer"].update(context)
    with session_scope() as s, pytest.raises(AuthenticationFailed):
        _load(s, request)
