"""A site's admins invite e-mail addresses: POST/GET /api/sites/{id}/invitations, GET and DELETE
.../{invitation_id}, POST .../{invitation_id}/resend. The token goes to the address only; the answers
never tell whether an address has an account anywhere."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from chalicelib.db import session_scope
from chalicelib.kit.secret import digest
from chalicelib.kit.text import EMAIL_PATTERN
from chalicelib.models import Invitation, InvitationOutbox, SiteMembership
from tests import mailbox
from tests.audit.helpers import event_count, events
from tests.factories import make_site, make_user
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import error, fields, send

INVITATIONS = "/api/sites/{site}/invitations"


def path(world, site=None, suffix=""):
    return INVITATIONS.format(site=world.site_a if site is None else site) + suffix


def invite(client, world, email="newbie@example.com", role="viewer", token="admin", site=None):
    return send(client, "POST", path(world, site), world.token(token), {"email": email, "role": role})


def invited(client, world, email="newbie@example.com", role="viewer", **kwargs):
    response = invite(client, world, email, role, **kwargs)
    assert response.status_code == 201, response.json_body
    return response.json_body["data"]["invitation"]


def _expire(invitation_id):
    with session_scope() as session:
        session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


# --- creating ------------------------------------------------------------------------------------


def test_an_invitation_is_created_sent_to_the_address_and_recorded(client, world):
    response = invite(client, world, "New.Bie@Example.com", "editor")

    assert response.status_code == 201
    data = response.json_body["data"]["invitation"]
    assert data == {
        "id": data["id"],
        "email": "New.Bie@Example.com",
        "role": "editor",
        "status": "pending",
        "created_at": data["created_at"],
        "expires_at": data["expires_at"],
        "invited_by": {"id": world.users["admin"], "username": "alice"},
        "delivery": "sent",
    }
    assert response.headers["Location"].endswith(f"/api/sites/{world.site_a}/invitations/{data['id']}")
    expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
    assert 604800 - 60 < (expires - datetime.now(UTC)).total_seconds() <= 604800
    [message] = mailbox.messages("new.bie@example.com")
    assert message["Subject"] == "You are invited to Marketing"
    assert message["From"] == "Interactions <invitations@dev.example.com>"
    token = mailbox.token_in(message)
    assert len(token) >= 43  # 256 bits from secrets, URL-safe base64
    with session_scope() as session:
        stored = session.get(Invitation, data["id"])
        assert stored.token_hash == digest(token)  # only the digest is kept
        assert session.get(InvitationOutbox, data["id"]) is None  # sent: nothing left queued
    [event] = events("invitation.created")
    assert event["target"] == {"type": "invitation", "id": data["id"]}
    assert event["site_id"] == world.site_a and event["actor"]["id"] == world.users["admin"]
    assert event["changes"] == {
        "email": {"from": None, "to": "New.Bie@Example.com"},
        "role": {"from": None, "to": "editor"},
    }
    assert token not in json.dumps(response.json_body) and token not in json.dumps(events())


def test_the_admin_never_sees_a_token_anywhere(client, world):
    created = invited(client, world)
    token = mailbox.token_for("newbie@example.com")
    answers = [
        send(client, "GET", path(world), world.token("admin")),
        send(client, "GET", path(world, suffix=f"/{created['id']}"), world.token("admin")),
        send(client, "POST", path(world, suffix=f"/{created['id']}/resend"), world.token("admin")),
        send(client, "GET", f"/api/sites/{world.site_a}/audit", world.token("admin")),
    ]
    for answer in answers:
        assert answer.status_code == 200
        assert token not in answer.body.decode() if isinstance(answer.body, bytes) else answer.body
        assert "token" not in json.dumps(answer.json_body["data"]).replace("token_", "")


@pytest.mark.parametrize(
    "body,bad",
    [
        ({"email": "ab", "role": "viewer"}, {"email"}),
        ({"email": "a@b@c.io", "role": "viewer"}, {"email"}),
        ({"email": "me@", "role": "viewer"}, {"email"}),
        ({"email": "a b@example.com", "role": "viewer"}, {"email"}),
        ({"email": "ünï@example.com", "role": "viewer"}, {"email"}),
        ({"email": "me@exämple.com", "role": "viewer"}, {"email"}),
        ({"email": "x@localhost", "role": "viewer"}, {"email"}),
        ({"email": "x@" + "b" * 64 + ".com", "role": "viewer"}, {"email"}),
        ({"email": "x@example.com", "role": "owner"}, {"role"}),
        ({"email": "x@example.com"}, {"role"}),
        ({"email": 5, "role": "viewer", "username": "x"}, {"email", "username"}),
    ],
)
def test_an_invalid_body_is_a_400_naming_every_field_and_writes_and_sends_nothing(client, world, body, bad):
    before = fingerprint()
    response = send(client, "POST", path(world), world.token("admin"), body)
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == bad
    assert fingerprint() == before and mailbox.messages() == []


def test_an_address_of_254_characters_is_accepted_and_255_refused(client, world):
    longest = f"{'a' * 63}@{'c' * 63}.{'d' * 63}.{'e' * 59}.io"
    assert len(longest) == 254
    assert invite(client, world, longest).status_code == 201
    too_long = f"{'a' * 64}@{'c' * 63}.{'d' * 63}.{'e' * 59}.io"
    assert len(too_long) == 255
    assert fields(invite(client, world, too_long)) == {"email"}


@pytest.mark.parametrize("token", ["editor", "viewer"])
def test_members_who_are_not_admins_get_403_whatever_the_body(client, world, token):
    assert error(invite(client, world, token=token)) == (403, "AUTHORIZATION_ERROR")
    bogus = send(client, "POST", path(world), world.token(token), {"bogus": 1})
    assert error(bogus) == (403, "AUTHORIZATION_ERROR")
    assert error(send(client, "GET", path(world), world.token(token))) == (403, "AUTHORIZATION_ERROR")


def test_a_non_member_gets_400_for_a_bad_body_then_404(client, world):
    bad = send(client, "POST", path(world), world.token("other"), {"bogus": 1})
    assert error(bad) == (400, "VALIDATION_ERROR")
    assert error(invite(client, world, token="other")) == (404, "RESOURCE_NOT_FOUND")
    for site in ("424242", "0", "abc", str(2**31)):
        response = send(
            client,
            "POST",
            f"/api/sites/{site}/invitations",
            world.token("admin"),
            {"email": "x@example.com", "role": "viewer"},
        )
        assert error(response) == (404, "RESOURCE_NOT_FOUND")


def test_a_member_of_this_site_with_the_address_is_a_409(client, world):
    before = fingerprint()
    response = invite(client, world, "EDDIE@example.com")  # eddie's address, in another case
    assert error(response) == (409, "CONFLICT")
    assert fingerprint() == before and mailbox.messages() == []


def test_a_second_pending_invitation_for_one_address_is_a_409_and_resend_is_the_way(client, world):
    invited(client, world, "twice@example.com")
    before = event_count()
    assert error(invite(client, world, "TWICE@example.com")) == (409, "CONFLICT")
    assert event_count() == before and len(mailbox.messages()) == 1


def test_an_expired_invitation_makes_way_for_a_new_one(client, world):
    first = invited(client, world, "late@example.com")
    _expire(first["id"])

    second = invited(client, world, "late@example.com")

    assert second["id"] != first["id"] and second["status"] == "pending"
    listed = send(client, "GET", path(world, suffix="?status=expired"), world.token("admin")).json_body
    assert [i["id"] for i in listed["data"]["invitations"]] == [first["id"]]


def test_other_sites_invitations_for_the_same_address_never_conflict(client, world):
    invited(client, world, "shared@example.com", site=world.site_b, token="other")
    assert invited(client, world, "shared@example.com")["status"] == "pending"


# --- no enumeration --------------------------------------------------------------------------------

_VARIABLE = ("id", "created_at", "expires_at", "email", "request_id")


def _normalised(body):
    """An answer with its ids (the request's own among them), times and the address itself taken out."""

    def scrub(value):
        if isinstance(value, dict):
            return {k: "*" if k in _VARIABLE else scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return json.dumps(scrub(body), sort_keys=True)


def test_every_answer_is_the_same_whether_or_not_the_address_has_an_account_anywhere(client, world):
    """The attacker's probe: invite an address that has an account on another site and one that has
    none, and compare every answer and message byte for byte, ids, times and the address aside."""
    make_user("jsmith", email="jsmith@alpha.example", sites={world.site_b: "editor"})
    transcripts = []
    for address in ("jsmith@alpha.example", "nobody-here@alpha.example"):
        created = invite(client, world, address)
        one = path(world, suffix=f"/{created.json_body['data']['invitation']['id']}")
        answers = [
            created,
            send(client, "GET", one, world.token("admin")),
            send(client, "POST", one + "/resend", world.token("admin")),
            send(client, "DELETE", one, world.token("admin")),
            send(client, "POST", one + "/resend", world.token("admin")),  # 409: not pending
            invite(client, world, address),  # a new one after the revocation
        ]
        mail = [
            re.sub(
                r"\d{4}-\d\d-\d\d \d\d:\d\d", "TIME", mailbox.text(m).replace(mailbox.token_in(m), "TOKEN")
            )
            for m in mailbox.messages(address)
        ]
        transcripts.append(
            (
                [(a.status_code, _normalised(a.json_body)) for a in answers],
                [m["Subject"] for m in mailbox.messages(address)],
                mail,
            )
        )
    assert transcripts[0][0][4][0] == 409
    assert transcripts[0] == transcripts[1]


# --- reading ---------------------------------------------------------------------------------------


def test_the_list_is_newest_first_paginated_and_filtered_by_status(client, world):
    ids = [invited(client, world, f"person{n}@example.com")["id"] for n in range(5)]
    _expire(ids[0])
    send(client, "DELETE", path(world, suffix=f"/{ids[1]}"), world.token("admin"))

    page = send(client, "GET", path(world, suffix="?per_page=2&page=2"), world.token("admin")).json_body
    assert [i["id"] for i in page["data"]["invitations"]] == [ids[2], ids[1]]
    meta = page["meta"]["pagination"]
    assert {k: meta[k] for k in ("page", "per_page", "total_pages", "total_records", "total_exact")} == {
        "page": 2,
        "per_page": 2,
        "total_pages": 3,
        "total_records": 5,
        "total_exact": True,
    }
    # The cursor walks on from there, bound to this site and filter.
    following = send(
        client, "GET", path(world, suffix=f"?per_page=2&cursor={meta['next_cursor']}"), world.token("admin")
    )
    assert [i["id"] for i in following.json_body["data"]["invitations"]] == [ids[0]]
    assert following.json_body["meta"]["pagination"]["next_cursor"] is None
    other_filter = send(
        client,
        "GET",
        path(world, suffix=f"?status=pending&cursor={meta['next_cursor']}"),
        world.token("admin"),
    )
    assert error(other_filter) == (400, "VALIDATION_ERROR") and fields(other_filter) == {"cursor"}
    by_status = {
        status: [
            i["id"]
            for i in send(
                client, "GET", path(world, suffix=f"?status={status}"), world.token("admin")
            ).json_body["data"]["invitations"]
        ]
        for status in ("pending", "expired", "revoked", "accepted")
    }
    assert by_status == {"pending": ids[:1:-1], "expired": [ids[0]], "revoked": [ids[1]], "accepted": []}
    one = send(client, "GET", path(world, suffix=f"/{ids[0]}"), world.token("admin")).json_body
    assert one["data"]["invitation"]["status"] == "expired"


@pytest.mark.parametrize(
    "query", ["status=gone", "page=0", "per_page=101", "sort=id", "status=pending&status=expired"]
)
def test_a_bad_list_query_is_a_400(client, world, query):
    assert error(send(client, "GET", path(world, suffix=f"?{query}"), world.token("admin"))) == (
        400,
        "VALIDATION_ERROR",
    )


def test_another_sites_invitation_is_not_found(client, world):
    theirs = invited(client, world, "b@example.com", site=world.site_b, token="other")
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/resend")):
        response = send(client, method, path(world, suffix=f"/{theirs['id']}{suffix}"), world.token("admin"))
        assert error(response) == (404, "RESOURCE_NOT_FOUND")
    for bad in ("999999", "abc", "0"):
        assert error(send(client, "GET", path(world, suffix=f"/{bad}"), world.token("admin"))) == (
            404,
            "RESOURCE_NOT_FOUND",
        )


# --- resend and revoke -----------------------------------------------------------------------------


def test_resend_replaces_the_token_and_the_expiry(client, world):
    created = invited(client, world)
    first = mailbox.token_for("newbie@example.com")
    soon = datetime.now(UTC) + timedelta(hours=1)
    with session_scope() as session:
        session.execute(update(Invitation).where(Invitation.id == created["id"]).values(expires_at=soon))

    response = send(client, "POST", path(world, suffix=f"/{created['id']}/resend"), world.token("admin"))

    assert response.status_code == 200
    again = response.json_body["data"]["invitation"]
    assert again["delivery"] == "sent" and again["expires_at"] >= created["expires_at"]
    second = mailbox.token_for("newbie@example.com")
    assert second != first and len(mailbox.messages("newbie@example.com")) == 2
    preview = send(client, "POST", "/api/auth/invitations/preview", None, {"token": first})
    assert error(preview) == (400, "VALIDATION_ERROR") and fields(preview) == {"token"}
    assert send(client, "POST", "/api/auth/invitations/preview", None, {"token": second}).status_code == 200
    [event] = events("invitation.resent")
    assert set(event["changes"]) == {"expires_at"}


def test_revoke_ends_the_invitation_and_its_token(client, world):
    created = invited(client, world)
    token = mailbox.token_for("newbie@example.com")

    response = send(client, "DELETE", path(world, suffix=f"/{created['id']}"), world.token("admin"))

    assert response.status_code == 200
    assert response.json_body["data"]["invitation"]["status"] == "revoked"
    preview = send(client, "POST", "/api/auth/invitations/preview", None, {"token": token})
    assert error(preview) == (400, "VALIDATION_ERROR")
    [event] = events("invitation.revoked")
    assert event["changes"] == {"status": {"from": "pending", "to": "revoked"}}
    for method, suffix in (("DELETE", ""), ("POST", "/resend")):
        again = send(client, method, path(world, suffix=f"/{created['id']}{suffix}"), world.token("admin"))
        assert error(again) == (409, "CONFLICT")


def test_an_expired_invitation_cannot_be_resent_or_revoked(client, world):
    created = invited(client, world)
    _expire(created["id"])
    for method, suffix in (("DELETE", ""), ("POST", "/resend")):
        response = send(client, method, path(world, suffix=f"/{created['id']}{suffix}"), world.token("admin"))
        assert error(response) == (409, "CONFLICT")


# --- revoked when the site or the inviter changes ------------------------------------------------


def _status(invitation_id):
    with session_scope() as session:
        return session.scalar(select(Invitation.status).where(Invitation.id == invitation_id))


def test_a_demoted_admin_loses_their_pending_invitations(client, world):
    from tests.interactions.helpers import token_for

    world.tokens["third"] = token_for(make_user("third", sites={world.site_a: "admin"}), world.site_a)
    mine = invited(client, world, "a@example.com")
    theirs = invited(client, world, "b@example.com", token="third")

    demoted = send(
        client,
        "PUT",
        f"/api/sites/{world.site_a}/users/{world.users['admin']}",
        world.token("third"),
        {"role": "viewer"},
    )
    assert demoted.status_code == 200
    assert _status(mine["id"]) == "revoked" and _status(theirs["id"]) == "pending"
    [event] = events("invitation.revoked")
    assert event["actor"]["username"] == "third" and event["target"]["id"] == mine["id"]
    # A demoted admin's next invitation is refused.
    assert error(invite(client, world, "c@example.com")) == (403, "AUTHORIZATION_ERROR")


def test_a_removed_admin_loses_their_pending_invitations(client, world):
    from tests.interactions.helpers import token_for

    third = make_user("third", sites={world.site_a: "admin"})
    world.tokens["third"] = token_for(third, world.site_a)
    theirs = invited(client, world, "b@example.com", token="third")
    other_site = invited(client, world, "c@example.com", site=world.site_b, token="other")

    removed = send(client, "DELETE", f"/api/sites/{world.site_a}/users/{third}", world.token("admin"))

    assert removed.status_code == 200
    assert _status(theirs["id"]) == "revoked" and _status(other_site["id"]) == "pending"
    assert [e["action"] for e in events(site_id=world.site_a)][-2:] == [
        "membership.removed",
        "invitation.revoked",
    ]


def test_an_inviter_who_leaves_is_still_named(client, world):
    from tests.interactions.helpers import token_for

    third = make_user("third", sites={world.site_a: "admin"})
    world.tokens["third"] = token_for(third, world.site_a)
    theirs = invited(client, world, "b@example.com", token="third")
    send(client, "DELETE", f"/api/sites/{world.site_a}/users/{third}", world.token("admin"))
    got = send(client, "GET", path(world, suffix=f"/{theirs['id']}"), world.token("admin")).json_body
    assert got["data"]["invitation"]["invited_by"] == {"id": third, "username": "third"}


def test_a_lonely_site_created_by_the_operator_is_nobodys_to_invite_to(client, world):
    lonely = make_site("Lonely")
    assert error(invite(client, world, site=lonely)) == (404, "RESOURCE_NOT_FOUND")
    with session_scope() as session:
        assert session.scalar(select(SiteMembership).where(SiteMembership.site_id == lonely)) is None


@settings(max_examples=300, deadline=None)
@given(address=st.from_regex(EMAIL_PATTERN, fullmatch=True))
def test_every_address_an_invitation_accepts_is_a_format_email_address(address):
    """The OpenAPI document says `format: email` of every address the API stores: whatever the
    server's rule accepts, JSON Schema's format check (the fuzzer's) accepts too."""
    import jsonschema_rs

    from chalicelib.kit.emails import check_new

    try:
        check_new(address)
    except ValueError:
        return
    assert jsonschema_rs.validator_for({"format": "email"}, validate_formats=True).is_valid(address)
