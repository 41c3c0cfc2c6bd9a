"""POST /api/auth/invitations/preview and /accept: only the mailbox's holder has the token. A new
address gets a new account (its holder chooses the username and password); an existing account
joins only with its own password. Written as the attacker would try it."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from chalicelib.db import session_scope
from chalicelib.models import Invitation, SiteMembership, User
from tests import mailbox
from tests.audit.helpers import events
from tests.factories import PASSWORD, login, make_user, post_json
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import error, fields, make_world, send
from tests.support import call_app, json_request
from tests.test_concurrency import _together

NEW_PASSWORD = "my very own password"
PREVIEW, ACCEPT = "/api/auth/invitations/preview", "/api/auth/invitations/accept"


@pytest.fixture
def world():
    return make_world()


def invite(client, world, email="newcomer@example.com", role="editor", token="admin", site=None):
    site = world.site_a if site is None else site
    response = send(
        client, "POST", f"/api/sites/{site}/invitations", world.token(token), {"email": email, "role": role}
    )
    assert response.status_code == 201, response.json_body
    return response.json_body["data"]["invitation"]


def accept(client, token, password=NEW_PASSWORD, **extra):
    return post_json(client, ACCEPT, {"token": token, "password": password, **extra})


def _attempts(invitation_id):
    with session_scope() as session:
        return session.scalar(select(Invitation.refused_attempts).where(Invitation.id == invitation_id))


# --- a new account -----------------------------------------------------------------------------------


def test_preview_tells_the_holder_what_the_invitation_is_for(client, world):
    invite(client, world)
    response = post_json(client, PREVIEW, {"token": mailbox.token_for("newcomer@example.com")})
    assert response.status_code == 200
    assert response.json_body["data"] == {
        "site": {"id": world.site_a, "name": "Marketing"},
        "role": "editor",
        "email": "newcomer@example.com",
        "account_exists": False,
    }


def test_accepting_creates_the_account_and_answers_like_a_login(client, world):
    invitation = invite(client, world)
    token = mailbox.token_for("newcomer@example.com")

    response = accept(client, token, username="NewComer")

    assert response.status_code == 200
    data = response.json_body["data"]
    assert data["user"] == {"id": data["user"]["id"], "username": "NewComer", "email": "newcomer@example.com"}
    site = {"id": world.site_a, "name": "Marketing", "description": "The site", "role": "editor"}
    assert data["sites"] == [site] and data["current_site"] == site
    assert send(client, "GET", "/api/interactions", data["token"]).status_code == 200
    assert login(client, "newcomer", NEW_PASSWORD)["user"]["id"] == data["user"]["id"]
    listed = send(client, "GET", f"/api/sites/{world.site_a}/invitations", world.token("admin")).json_body
    assert listed["data"]["invitations"][0]["status"] == "accepted"
    actions = [(e["action"], e["actor"]["id"], e["site_id"]) for e in events(site_id=world.site_a)][-3:]
    new_id = data["user"]["id"]
    assert actions == [
        ("invitation.accepted", new_id, world.site_a),
        ("user.created", new_id, world.site_a),
        ("membership.added", new_id, world.site_a),
    ]
    accepted = events("invitation.accepted")[0]
    assert accepted["target"] == {"type": "invitation", "id": invitation["id"]}
    assert accepted["changes"] == {"status": {"from": "pending", "to": "accepted"}}
    with session_scope() as session:
        assert session.get(User, new_id).last_login is not None


def test_a_token_works_once(client, world):
    invite(client, world)
    token = mailbox.token_for("newcomer@example.com")
    assert accept(client, token, username="newcomer").status_code == 200
    again = accept(client, token, username="newcomer2")
    assert error(again) == (400, "VALIDATION_ERROR") and fields(again) == {"token"}


@pytest.mark.parametrize(
    "body,bad",
    [
        ({"password": NEW_PASSWORD}, {"username"}),
        ({"username": "ab", "password": NEW_PASSWORD}, {"username"}),
        ({"username": "has space", "password": NEW_PASSWORD}, {"username"}),
        ({"username": "newcomer", "password": "short"}, {"password"}),
        ({"username": "newcomer", "password": "NEWCOMER"}, {"password"}),
        ({"username": "x", "password": "y"}, {"username", "password"}),
    ],
)
def test_a_refused_username_or_password_is_a_400_and_keeps_the_token(client, world, body, bad):
    invitation = invite(client, world)
    token = mailbox.token_for("newcomer@example.com")
    response = post_json(client, ACCEPT, {"token": token, **body})
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == bad
    assert _attempts(invitation["id"]) == 1
    assert accept(client, token, username="newcomer").status_code == 200


def test_a_taken_username_is_a_409_and_keeps_the_token(client, world):
    invite(client, world)
    token = mailbox.token_for("newcomer@example.com")
    before = fingerprint()
    response = accept(client, token, username="EDDIE")
    assert error(response) == (409, "CONFLICT")
    after = fingerprint()
    assert {name for name in before if before[name] != after[name]} == {"invitations"}  # the count only
    assert accept(client, token, username="newcomer").status_code == 200


@pytest.mark.parametrize(
    "body,bad",
    [
        ({}, {"token", "password"}),
        ({"token": 5, "password": NEW_PASSWORD}, {"token"}),
        ({"token": "t", "password": NEW_PASSWORD, "role": "admin"}, {"role"}),
        ({"token": "t", "password": NEW_PASSWORD, "username": None}, {"username"}),
        ({"token": "", "password": NEW_PASSWORD}, {"token"}),
    ],
)
def test_a_malformed_body_is_a_400_before_the_token(client, body, bad):
    response = post_json(client, ACCEPT, body)
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == bad


# --- tokens that cannot be used --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["unknown", "expired", "revoked", "site inactive", "used up"])
def test_an_unusable_token_is_a_400_naming_it_and_changes_nothing(client, world, how):
    invitation = invite(client, world)
    token = mailbox.token_for("newcomer@example.com")
    with session_scope() as session:
        if how == "unknown":
            token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        elif how == "expired":
            session.execute(update(Invitation).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        elif how == "revoked":
            session.execute(update(Invitation).values(status="revoked"))
        elif how == "site inactive":
            from chalicelib.models import Site

            session.execute(update(Site).where(Site.id == world.site_a).values(is_active=False))
        else:
            session.execute(update(Invitation).values(refused_attempts=10))
    before = fingerprint()
    for answer in (post_json(client, PREVIEW, {"token": token}), accept(client, token, username="newcomer")):
        assert error(answer) == (400, "VALIDATION_ERROR") and fields(answer) == {"token"}
    assert fingerprint() == before
    del invitation


def test_ten_refused_attempts_use_the_token_up(client, world):
    invitation = invite(client, world)
    token = mailbox.token_for("newcomer@example.com")
    answers = [accept(client, token, username="x").status_code for _ in range(11)]
    assert answers == [400] * 11
    assert _attempts(invitation["id"]) == 10
    final = accept(client, token, username="newcomer")
    assert error(final) == (400, "VALIDATION_ERROR") and fields(final) == {"token"}
    # A resend gives a new token with ten attempts of its own.
    send(
        client,
        "POST",
        f"/api/sites/{world.site_a}/invitations/{invitation['id']}/resend",
        world.token("admin"),
    )
    assert accept(client, mailbox.token_for("newcomer@example.com"), username="newcomer").status_code == 200


def test_a_deactivated_account_cannot_accept(client, world):
    make_user("dora", email="dora@example.com", active=False)
    invite(client, world, "dora@example.com")
    token = mailbox.token_for("dora@example.com")
    for answer in (post_json(client, PREVIEW, {"token": token}), accept(client, token, password=PASSWORD)):
        assert error(answer) == (400, "VALIDATION_ERROR") and fields(answer) == {"token"}


def test_an_account_that_joined_meanwhile_cannot_accept_again(client, world):
    nora = world.users["nobody"]
    invite(client, world, "nora@example.com")
    token = mailbox.token_for("nora@example.com")
    with session_scope() as session:
        session.add(SiteMembership(user_id=nora, site_id=world.site_a, role="viewer"))
    answer = accept(client, token, password=PASSWORD)
    assert error(answer) == (400, "VALIDATION_ERROR") and fields(answer) == {"token"}


# --- an existing account: consent by its own password ----------------------------------------------


def test_an_existing_account_joins_with_its_own_password_and_keeps_its_other_sites(client, world):
    oscar = world.users["other"]  # admin of site B; his address is oscar@example.com
    invite(client, world, "Oscar@Example.com", "viewer")
    token = mailbox.token_for("oscar@example.com")
    assert post_json(client, PREVIEW, {"token": token}).json_body["data"]["account_exists"] is True

    response = accept(client, token, password=PASSWORD)

    assert response.status_code == 200
    data = response.json_body["data"]
    assert data["user"]["id"] == oscar
    assert [s["name"] for s in data["sites"]] == ["Marketing", "Sales"]
    assert data["current_site"]["id"] == world.site_a and data["current_site"]["role"] == "viewer"
    assert [e["action"] for e in events(site_id=world.site_a)][-2:] == [
        "invitation.accepted",
        "membership.added",
    ]
    assert events("user.created") == []


def test_a_wrong_password_is_a_400_that_counts_towards_the_lockout(client, world, reconfigure):
    invite(client, world, "oscar@example.com")
    token = mailbox.token_for("oscar@example.com")
    answers = [accept(client, token, password="not his password") for _ in range(5)]
    assert all(fields(a) == {"password"} for a in answers)
    locked = accept(client, token, password=PASSWORD)
    assert error(locked) == (429, "ACCOUNT_LOCKED") and int(locked.headers["Retry-After"]) > 0
    login_now = post_json(client, "/api/auth/login", {"username": "oscar", "password": PASSWORD})
    assert error(login_now) == (429, "ACCOUNT_LOCKED")


def test_a_username_sent_for_an_existing_account_is_refused(client, world):
    invite(client, world, "oscar@example.com")
    token = mailbox.token_for("oscar@example.com")
    response = accept(client, token, password=PASSWORD, username="oscar2")
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"username"}
    both = accept(client, token, password="wrong password", username="oscar2")
    assert fields(both) == {"password", "username"}
    assert accept(client, token, password=PASSWORD).status_code == 200


# --- the attack, step by step ----------------------------------------------------------------------


def test_another_tenants_admin_cannot_claim_an_identity(client, world):
    """As the admin of site B: invite jsmith@alpha.example (site A's future hire). No token, no
    account, no password of the attacker's choosing comes of it: step 1 fails."""
    attacker = world.token("other")
    made = send(
        client,
        "POST",
        f"/api/sites/{world.site_b}/invitations",
        attacker,
        {"email": "jsmith@alpha.example", "role": "viewer"},
    )
    assert made.status_code == 201
    visible = json.dumps(made.json_body) + json.dumps(
        send(client, "GET", f"/api/sites/{world.site_b}/invitations", attacker).json_body
    )
    token = mailbox.token_for("jsmith@alpha.example")  # in the mailbox, and nowhere the attacker reads
    assert token not in visible
    # The old ways in are gone.
    gone = [
        send(
            client,
            "POST",
            f"/api/sites/{world.site_b}/users",
            attacker,
            {"username": "jsmith", "email": "jsmith@alpha.example", "role": "viewer"},
        ),
        send(client, "POST", f"/api/sites/{world.site_b}/users/1/setup-token", attacker),
        post_json(client, "/api/auth/setup", {"token": "x" * 43, "password": "attacker's password"}),
    ]
    assert all(g.status_code in (403, 404, 405) for g in gone)
    with session_scope() as session:
        assert (
            session.scalar(select(func.count()).select_from(User).where(User.email == "jsmith@alpha.example"))
            == 0
        )
    # Guessing tokens gets nowhere.
    assert fields(accept(client, "x" * 43, username="jsmith")) == {"token"}
    # Site A's admin invites the real jsmith, who accepts with a password of their own.
    invite(client, world, "jsmith@alpha.example", "viewer")
    real = accept(client, mailbox.token_for("jsmith@alpha.example"), username="jsmith")
    assert real.status_code == 200
    # B's earlier invitation now needs jsmith's own password: the attacker's guesses are refused.
    guessed = accept(client, token, password="attacker's password")
    assert error(guessed) == (400, "VALIDATION_ERROR") and fields(guessed) == {"password"}
    assert [s["id"] for s in login(client, "jsmith", NEW_PASSWORD)["sites"]] == [world.site_a]


# --- races -----------------------------------------------------------------------------------------


def test_two_accepts_of_one_token_make_one_account(app_module, world, client):
    invite(client, world)
    token = mailbox.token_for("newcomer@example.com")
    body = json_request({"token": token, "username": "newcomer", "password": NEW_PASSWORD})
    body2 = json_request({"token": token, "username": "newcomer2", "password": NEW_PASSWORD})
    answers = _together(
        lambda: call_app(app_module.app, "POST", ACCEPT, source_ip="198.51.100.1", **body),
        lambda: call_app(app_module.app, "POST", ACCEPT, source_ip="198.51.100.2", **body2),
    )
    assert sorted(a.status_code for a in answers) == [200, 400]
    with session_scope() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(User).where(User.email_folded == "newcomer@example.com")
            )
            == 1
        )


def test_two_sites_invitations_of_one_address_accepted_at_once_make_one_account(app_module, world, client):
    invite(client, world, "twin@example.com")
    first = mailbox.token_for("twin@example.com")
    invite(client, world, "twin@example.com", token="other", site=world.site_b)
    second = mailbox.token_for("twin@example.com")
    answers = _together(
        lambda: call_app(
            app_module.app,
            "POST",
            ACCEPT,
            source_ip="198.51.100.1",
            **json_request({"token": first, "username": "twin", "password": NEW_PASSWORD}),
        ),
        lambda: call_app(
            app_module.app,
            "POST",
            ACCEPT,
            source_ip="198.51.100.2",
            **json_request({"token": second, "username": "twin2", "password": NEW_PASSWORD}),
        ),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    with session_scope() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(User).where(User.email_folded == "twin@example.com")
            )
            == 1
        )
    # The refused one's token still works, now with the account's password.
    loser = first if answers[0].status_code == 409 else second
    assert accept(client, loser, password=NEW_PASSWORD).status_code == 200


# --- rate limits -----------------------------------------------------------------------------------


def test_preview_and_accept_share_a_per_ip_limit_of_their_own(app_module, reconfigure, world, client):
    reconfigure(LOGIN_RATE_PER_MINUTE="3")
    invite(client, world)
    token = mailbox.token_for("newcomer@example.com")
    junk = json_request({"token": "not-a-real-token", "password": NEW_PASSWORD, "username": "x"})
    answers = [
        call_app(
            app_module.app, "POST", PREVIEW, source_ip="198.51.100.7", **json_request({"token": "nope"})
        ),
        call_app(app_module.app, "POST", ACCEPT, source_ip="198.51.100.7", **junk),
        call_app(
            app_module.app,
            "POST",
            ACCEPT,
            source_ip="198.51.100.7",
            headers={"Content-Type": "application/json"},
            body="{",
        ),
        call_app(
            app_module.app,
            "POST",
            ACCEPT,
            source_ip="198.51.100.7",
            **json_request({"token": token, "username": "newcomer", "password": NEW_PASSWORD}),
        ),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert answers[-1].json_body["error"]["code"] == "RATE_LIMITED"
    assert 0 <= int(answers[-1].headers["Retry-After"]) <= 60
    # Logins from that client are not held back by it, nor is another client.
    login_ok = call_app(
        app_module.app,
        "POST",
        "/api/auth/login",
        source_ip="198.51.100.7",
        **json_request({"username": "eddie", "password": PASSWORD}),
    )
    assert login_ok.status_code == 200
    other = call_app(
        app_module.app, "POST", PREVIEW, source_ip="198.51.100.8", **json_request({"token": token})
    )
    assert other.status_code == 200


def test_accept_ignores_an_authorization_header(client, world):
    invite(client, world)
    response = post_json(
        client,
        ACCEPT,
        {
            "token": mailbox.token_for("newcomer@example.com"),
            "username": "newcomer",
            "password": NEW_PASSWORD,
        },
        Authorization="Bearer not-a-token",
    )
    assert response.status_code == 200


@pytest.mark.parametrize("change", ["revoke", "resend"])
def test_a_revoke_or_resend_racing_an_accept_waits_for_it_and_then_finds_nothing_pending(
    client, world, change
):
    """The accept holds the invitation's row (as its first statement does); the admin's change waits
    on it, and once the accept has committed answers as if it came later: 409."""
    from sqlalchemy import text

    from tests.faults.locks import side_connection, wait_for_lock_waiters

    invitation = invite(client, world)
    path = f"/api/sites/{world.site_a}/invitations/{invitation['id']}" + (
        "/resend" if change == "resend" else ""
    )
    answers = []
    with side_connection() as accepting:
        accepting.execute(
            text("SELECT id FROM invitations WHERE id = :id FOR UPDATE"), {"id": invitation["id"]}
        )
        racing = threading.Thread(
            target=lambda: answers.append(
                send(client, "DELETE" if change == "revoke" else "POST", path, world.token("admin"))
            )
        )
        racing.start()
        wait_for_lock_waiters(1)
        accepting.execute(
            text(
                "UPDATE invitations SET status = 'accepted', token_hash = NULL, ended_at = now() WHERE id = :id"
            ),
            {"id": invitation["id"]},
        )
        accepting.commit()
    racing.join(10)
    assert [error(a) for a in answers] == [(409, "CONFLICT")]
    assert len(mailbox.messages("newcomer@example.com")) == 1  # nothing sent again
