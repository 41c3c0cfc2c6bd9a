"""The operator's invitation commands (`invite`, `invitations`, `setup-accounts`), one address one
account for `create-user`, and the operator's changes that end pending invitations (`grant`,
`revoke`, `deactivate-user`, `deactivate-site`)."""

from __future__ import annotations

import json

from sqlalchemy import select, text

from chalicelib.db import session_scope
from chalicelib.models import Invitation
from tests import mailbox
from tests.audit.helpers import events
from tests.factories import make_user, post_json
from tests.interactions.helpers import make_world, send
from tests.test_cli import assert_one_line_failure, run


def _status(invitation_id):
    with session_scope() as session:
        return session.scalar(select(Invitation.status).where(Invitation.id == invitation_id))


def _invite_by_api(client, world, email, token="admin", site=None):
    response = send(
        client,
        "POST",
        f"/api/sites/{world.site_a if site is None else site}/invitations",
        world.token(token),
        {"email": email, "role": "viewer"},
    )
    assert response.status_code == 201
    return response.json_body["data"]["invitation"]["id"]


def test_invite_prints_the_id_only_and_the_message_goes_to_the_address(capsys, client):
    world = make_world()
    code, out, err = run(capsys, "invite", "First.Admin@example.com", "Marketing", "admin")
    assert code == 0 and err == ""
    invitation_id = int(out.strip())
    token = mailbox.token_for("first.admin@example.com")
    assert token not in out
    [event] = events("invitation.created")
    assert event["via"] == "cli" and event["actor"] is None and event["target"]["id"] == invitation_id
    accepted = post_json(
        client,
        "/api/auth/invitations/accept",
        {"token": token, "username": "first", "password": "a good password"},
    )
    assert accepted.status_code == 200 and accepted.json_body["data"]["current_site"]["role"] == "admin"
    listed = send(client, "GET", f"/api/sites/{world.site_a}/invitations", world.token("admin")).json_body
    assert listed["data"]["invitations"][0]["invited_by"] is None


def test_invite_refuses_what_the_api_refuses(capsys):
    make_world()
    for argv, message in (
        (("invite", "not-an-address", "Marketing", "viewer"), "e-mail"),
        (("invite", "eddie@example.com", "Marketing", "viewer"), "member"),
        (("invite", "x@example.com", "Nowhere", "viewer"), "no site"),
    ):
        code, _, err = run(capsys, *argv)
        assert_one_line_failure(code, err)
        assert message in err
    assert run(capsys, "invite", "x@example.com", "Marketing", "viewer")[0] == 0
    code, _, err = run(capsys, "invite", "X@example.com", "Marketing", "viewer")
    assert_one_line_failure(code, err)
    assert "pending invitation" in err


def test_invitations_lists_a_sites_invitations_with_a_status_filter(capsys):
    make_world()
    run(capsys, "invite", "a@example.com", "Marketing", "viewer")
    run(capsys, "invite", "b@example.com", "Marketing", "editor")
    with session_scope() as session:
        session.execute(text("UPDATE invitations SET expires_at = created_at WHERE email = 'a@example.com'"))
    code, out, _ = run(capsys, "invitations", "Marketing")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(i["email"], i["status"]) for i in listed] == [
        ("b@example.com", "pending"),
        ("a@example.com", "expired"),
    ]
    code, out, _ = run(capsys, "invitations", "Marketing", "--status", "expired")
    assert [json.loads(line)["email"] for line in out.splitlines()] == ["a@example.com"]
    assert "token" not in out


def test_create_user_refuses_an_address_another_account_has(capsys, monkeypatch):
    make_user("jdoe", email="jdoe@example.com")
    code, _, err = run(
        capsys,
        "create-user",
        "other",
        "JDOE@Example.com",
        "--password-stdin",
        stdin="a long password\n",
        monkeypatch=monkeypatch,
    )
    assert_one_line_failure(code, err)
    assert "one address, one account" in err
    code, _, err = run(
        capsys,
        "create-user",
        "other",
        "ünï@example.com",
        "--password-stdin",
        stdin="a long password\n",
        monkeypatch=monkeypatch,
    )
    assert_one_line_failure(code, err)


def test_grant_revokes_the_sites_pending_invitations_for_the_accounts_address(capsys, client):
    world = make_world()
    invitation = _invite_by_api(client, world, "NORA@example.com")
    elsewhere = _invite_by_api(client, world, "nora@example.com", token="other", site=world.site_b)
    assert run(capsys, "grant", "nora", "Marketing", "viewer")[0] == 0
    assert _status(invitation) == "revoked" and _status(elsewhere) == "pending"
    assert [e["action"] for e in events(via="cli")] == ["membership.added", "invitation.revoked"]


def test_an_admin_the_operator_demotes_removes_or_deactivates_loses_their_invitations(capsys, client):
    world = make_world()
    first = _invite_by_api(client, world, "one@example.com")
    assert run(capsys, "grant", "alice", "Marketing", "editor")[0] == 0
    assert _status(first) == "revoked"
    run(capsys, "grant", "alice", "Marketing", "admin")
    second = _invite_by_api(client, world, "two@example.com")
    assert run(capsys, "revoke", "alice", "Marketing")[0] == 0
    assert _status(second) == "revoked"
    third = _invite_by_api(client, world, "three@example.com", token="other", site=world.site_b)
    assert run(capsys, "deactivate-user", "oscar")[0] == 0
    assert _status(third) == "revoked"


def test_setup_accounts_lists_accounts_set_up_with_a_setup_token(capsys):
    world = make_world()
    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO setup_token_accounts (user_id, issuing_site_id, completed_at) VALUES (:u, :s, now())"
            ),
            {"u": world.users["editor"], "s": world.site_b},
        )
    code, out, _ = run(capsys, "setup-accounts")
    assert code == 0
    [line] = [json.loads(line) for line in out.splitlines()]
    assert line["username"] == "eddie" and line["issuing_site"] == "Sales"
    assert line["sites"] == [{"name": "Marketing", "role": "editor"}]
