"""Delivery: the invitation and its outbox row commit together; the message goes right after the
commit through the sender MAIL_DELIVERY names (Amazon SES, faked by moto, or a directory of .eml
files); what could not be sent stays queued and the scheduled function sends it later, with a new
token. No token reaches a log line, an answer or the outbox."""

from __future__ import annotations

import json
import logging

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
from moto.ses.models import ses_backends
from sqlalchemy import select, update

from chalicelib import mail
from chalicelib.db import session_scope
from chalicelib.kit.secret import digest
from chalicelib.models import Invitation, InvitationOutbox
from chalicelib.sites import invitations
from tests import mailbox
from tests.environment import MAIL_DIRECTORY
from tests.factories import post_json
from tests.interactions.helpers import make_world, send

SENDER = "invitations@dev.example.com"
REGION = "eu-west-1"


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def ses(reconfigure):
    with mock_aws():
        mail.reset()
        reconfigure(MAIL_DELIVERY="ses", MAIL_FROM=f"Interactions <{SENDER}>")
        yield boto3.client("ses", region_name=REGION)
        mail.reset()


def sent_messages():
    return ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages


def invite(client, world, email="newbie@example.com"):
    response = send(
        client,
        "POST",
        f"/api/sites/{world.site_a}/invitations",
        world.token("admin"),
        {"email": email, "role": "viewer"},
    )
    assert response.status_code == 201, response.json_body
    return response.json_body["data"]["invitation"]


def _queued():
    with session_scope() as session:
        return session.execute(select(InvitationOutbox.invitation_id, InvitationOutbox.attempts)).all()


def _due_now():
    with session_scope() as session:
        session.execute(update(InvitationOutbox).values(next_attempt_at=InvitationOutbox.created_at))


def _token_of(message) -> str:
    text = message.body
    return mailbox.LINK.search(text).group(1)


def run_schedule(app_module):
    from chalice.test import Client

    with Client(app_module.app, stage_name="dev") as client:
        result = client.lambda_.invoke(
            "retry_invitations",
            client.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
            ),
        )
    return result.payload


def test_ses_sends_the_message_from_mail_from_to_the_address(client, world, ses):
    ses.verify_email_identity(EmailAddress=SENDER)

    created = invite(client, world, "Jane.Doe@Example.com")

    assert created["delivery"] == "sent"
    [message] = sent_messages()
    assert message.source == f"Interactions <{SENDER}>"
    assert message.destinations["ToAddresses"] == ["Jane.Doe@Example.com"]
    assert message.subject == "You are invited to Marketing"
    token = _token_of(message)
    with session_scope() as session:
        assert session.get(Invitation, created["id"]).token_hash == digest(token)
    assert _queued() == []
    preview = post_json(client, "/api/auth/invitations/preview", {"token": token})
    assert preview.json_body["data"]["email"] == "Jane.Doe@Example.com"


def test_a_refused_send_stays_queued_and_the_schedule_sends_it_with_a_new_token(
    client, world, ses, app_module, caplog
):
    # SES refuses: the sender is not verified yet.
    caplog.set_level(logging.DEBUG)
    created = invite(client, world)

    assert created["delivery"] == "queued"
    assert sent_messages() == []
    [(queued_id, attempts)] = _queued()
    assert queued_id == created["id"] and attempts == 1
    with session_scope() as session:
        unsent = session.get(InvitationOutbox, created["id"])
        assert unsent.last_error == "SES: MessageRejected"
    listed = send(client, "GET", f"/api/sites/{world.site_a}/invitations", world.token("admin")).json_body
    assert listed["data"]["invitations"][0]["delivery"] == "queued"

    # Not yet due: the schedule leaves it alone.
    assert run_schedule(app_module) == {"sent": 0, "queued": 0, "dropped": 0}
    ses.verify_email_identity(EmailAddress=SENDER)
    _due_now()

    assert run_schedule(app_module) == {"sent": 1, "queued": 0, "dropped": 0}

    [message] = sent_messages()
    token = _token_of(message)
    assert post_json(client, "/api/auth/invitations/preview", {"token": token}).status_code == 200
    assert _queued() == []
    got = send(client, "GET", f"/api/sites/{world.site_a}/invitations/{created['id']}", world.token("admin"))
    assert got.json_body["data"]["invitation"]["delivery"] == "sent"
    leaked = [r.name for r in caplog.records if r.levelno >= logging.INFO and token in r.getMessage()]
    assert leaked == []


def test_each_retry_mints_a_new_token_and_the_old_one_stops_working(client, world, app_module):
    created = invite(client, world)
    first = mailbox.token_for("newbie@example.com")
    with session_scope() as session:  # as if the message had been lost before it went
        session.add(InvitationOutbox(invitation_id=created["id"]))
    _due_now()

    assert run_schedule(app_module)["sent"] == 1

    second = mailbox.token_for("newbie@example.com")
    assert second != first
    assert post_json(client, "/api/auth/invitations/preview", {"token": first}).status_code == 400
    assert post_json(client, "/api/auth/invitations/preview", {"token": second}).status_code == 200


def test_the_schedule_drops_the_messages_of_invitations_that_ended(client, world, app_module, reconfigure):
    reconfigure(MAIL_DELIVERY="directory:/proc/no-such-place")  # nothing can be written
    created = invite(client, world)
    assert created["delivery"] == "queued"
    send(client, "DELETE", f"/api/sites/{world.site_a}/invitations/{created['id']}", world.token("admin"))
    assert _queued() == []  # the revocation dropped it
    other = invite(client, world, "late@example.com")
    with session_scope() as session:
        session.execute(
            update(Invitation).where(Invitation.id == other["id"]).values(expires_at=Invitation.created_at)
        )
    assert run_schedule(app_module)["dropped"] == 1
    assert _queued() == []


def test_a_message_another_sender_holds_is_not_sent_twice(client, world, reconfigure):
    reconfigure(MAIL_DELIVERY="directory:/proc/no-such-place")
    created = invite(client, world)
    reconfigure(MAIL_DELIVERY=f"directory:{MAIL_DIRECTORY}")
    _due_now()
    with session_scope(transaction=False) as session:
        # Another sender (the schedule) claims it first and holds its lease while it sends.
        session.execute(invitations._claim(digest("theirs")), {"queued_id": created["id"]})
        assert invitations.deliver(session, invitation_id=created["id"]) == "queued"
    assert mailbox.messages() == []
    _due_now()  # the lease ran out (the other sender died): now it goes
    with session_scope(transaction=False) as session:
        assert invitations.deliver(session, invitation_id=created["id"]) == "sent"
    assert len(mailbox.messages("newbie@example.com")) == 1


def test_no_log_line_carries_a_token(client, world, access_log, caplog, capsys):
    caplog.set_level(logging.INFO)
    invite(client, world)
    token = mailbox.token_for("newbie@example.com")
    post_json(client, "/api/auth/invitations/preview", {"token": token})
    post_json(
        client,
        "/api/auth/invitations/accept",
        {"token": token, "username": "newbie", "password": "a long password"},
    )
    captured = capsys.readouterr()
    everything = "\n".join(
        [*access_log.lines, *(r.getMessage() for r in caplog.records), captured.out, captured.err]
    )
    assert token not in everything and digest(token) not in everything
    assert json.dumps(access_log.records).count("/api/auth/invitations/accept") == 1
