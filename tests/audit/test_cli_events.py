"""The command line records its changes (via cli, no actor, the operating-system account as operator)
in the command's transaction, records nothing for a no-op, and reads and prunes the trail."""

from __future__ import annotations

import getpass
import io
import json
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from chalicelib import cli
from chalicelib.db import session_scope
from chalicelib.models import AuditEvent, User
from tests import mailbox
from tests.audit.helpers import event_count, events
from tests.factories import PASSWORD, make_site, make_user
from tests.interactions.helpers import make_world, send


def run(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _cli_event(event, action, *, site_id, target):
    assert (event["action"], event["site_id"], event["target"]) == (action, site_id, target)
    assert event["via"] == "cli" and event["actor"] is None
    assert event["operator"] == getpass.getuser()
    assert event["request_id"] is None and event["gateway_request_id"] is None


def test_create_site_and_create_user_record_their_events(capsys, monkeypatch):
    code, out, _ = run(capsys, "create-site", "Marketing", "--description", "Campaigns")
    site_id = int(out)
    code, out, _ = run(
        capsys,
        "create-user",
        "jdoe",
        "jdoe@example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )
    user_id = int(out)

    site_created, user_created = events()
    _cli_event(site_created, "site.created", site_id=site_id, target={"type": "site", "id": site_id})
    assert site_created["changes"] == {
        "name": {"from": None, "to": "Marketing"},
        "description": {"from": None, "to": "Campaigns"},
    }
    # No membership yet: recorded once, without a site.
    _cli_event(user_created, "user.created", site_id=None, target={"type": "user", "id": user_id})
    assert user_created["changes"] == {
        "username": {"from": None, "to": "jdoe"},
        "email": {"from": None, "to": "jdoe@example.com"},
    }


def test_grant_and_revoke_record_membership_events_and_nothing_for_the_same_role(capsys):
    site, user_id = make_site("Marketing"), make_user("jdoe")
    run(capsys, "grant", "jdoe", "Marketing", "viewer")
    run(capsys, "grant", "jdoe", "Marketing", "viewer")
    run(capsys, "grant", "jdoe", "Marketing", "admin")
    run(capsys, "revoke", "jdoe", "Marketing")

    found = events()
    assert [(e["action"], e["changes"]) for e in found] == [
        ("membership.added", {"role": {"from": None, "to": "viewer"}}),
        ("membership.role_changed", {"role": {"from": "viewer", "to": "admin"}}),
        ("membership.removed", {"role": {"from": "admin", "to": None}}),
    ]
    for event in found:
        _cli_event(event, event["action"], site_id=site, target={"type": "user", "id": user_id})


def test_account_changes_are_recorded_for_each_site_and_no_op_changes_not_at_all(capsys):
    a, b = make_site("Marketing"), make_site("Sales")
    user_id = make_user("jdoe", sites={a: "viewer", b: "editor"})

    assert run(capsys, "activate-user", "jdoe")[0] == 0  # already active
    assert run(capsys, "platform-admin", "jdoe", "--off")[0] == 0  # already off
    assert event_count() == 0
    run(capsys, "deactivate-user", "jdoe")
    run(capsys, "platform-admin", "jdoe", "--on")

    deactivated = events("user.deactivated")
    assert sorted(e["site_id"] for e in deactivated) == [a, b]
    assert deactivated[0]["changes"] == {"is_active": {"from": True, "to": False}}
    granted = events("user.platform_admin_changed")
    assert sorted(e["site_id"] for e in granted) == [a, b]
    assert granted[0]["changes"] == {"platform_admin": {"from": False, "to": True}}
    assert all(e["target"] == {"type": "user", "id": user_id} for e in deactivated + granted)
    with session_scope() as session:
        assert session.get(User, user_id).platform_admin is True


def test_site_activation_is_recorded(capsys):
    site = make_site("Marketing")
    run(capsys, "activate-site", "Marketing")
    run(capsys, "deactivate-site", "Marketing")
    [event] = events()
    _cli_event(event, "site.deactivated", site_id=site, target={"type": "site", "id": site})
    assert event["changes"] == {"is_active": {"from": True, "to": False}}


def test_platform_admin_needs_on_or_off(capsys):
    make_user("jdoe")
    for argv in (["platform-admin", "jdoe"], ["platform-admin", "jdoe", "--on", "--off"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
    assert run(capsys, "platform-admin", "nobody", "--on")[0] != 0
    assert event_count() == 0


def test_a_password_equal_to_the_username_is_refused(capsys, monkeypatch):
    code, _, err = run(
        capsys,
        "create-user",
        "jdoe1234",
        "jdoe@example.com",
        "--password-stdin",
        stdin="JDOE1234\n",
        monkeypatch=monkeypatch,
    )
    assert code != 0 and "username" in err
    assert event_count() == 0


def test_deactivating_a_site_revokes_its_pending_invitations(capsys, client):
    world = make_world()
    made = send(
        client,
        "POST",
        f"/api/sites/{world.site_a}/invitations",
        world.token("admin"),
        {"email": "waiting@example.com", "role": "viewer"},
    ).json_body["data"]["invitation"]
    assert run(capsys, "deactivate-site", "Marketing")[0] == 0
    assert [e["action"] for e in events(via="cli")] == ["site.deactivated", "invitation.revoked"]
    [revoked] = events("invitation.revoked")
    _cli_event(
        revoked, "invitation.revoked", site_id=world.site_a, target={"type": "invitation", "id": made["id"]}
    )


def test_a_failing_command_records_nothing(capsys):
    make_site("Marketing")
    before = event_count()
    assert run(capsys, "create-site", "Marketing")[0] != 0
    assert run(capsys, "grant", "nobody", "Marketing", "viewer")[0] != 0
    assert event_count() == before


# --- audit and prune-audit -------------------------------------------------------------------------


@pytest.fixture
def trail(capsys):
    run(capsys, "create-site", "Marketing")
    run(capsys, "create-site", "Sales")
    make_user("jdoe")
    run(capsys, "grant", "jdoe", "Marketing", "viewer")
    run(capsys, "grant", "jdoe", "Sales", "editor")
    run(capsys, "deactivate-site", "Sales")


def _lines(out):
    return [json.loads(line) for line in out.splitlines()]


def test_audit_prints_json_lines_newest_first(capsys, trail):
    code, out, _ = run(capsys, "audit")
    found = _lines(out)
    assert code == 0
    assert [e["action"] for e in found] == [
        "site.deactivated",
        "membership.added",
        "membership.added",
        "site.created",
        "site.created",
    ]
    assert found == sorted(found, key=lambda e: e["id"], reverse=True)
    assert set(found[0]) == {
        "id",
        "occurred_at",
        "via",
        "actor",
        "operator",
        "site_id",
        "request_id",
        "gateway_request_id",
        "action",
        "target",
        "changes",
    }


def test_audit_filters(capsys, trail):
    marketing = _lines(run(capsys, "audit", "--site", "Marketing")[1])
    assert [e["action"] for e in marketing] == ["membership.added", "site.created"]
    assert [e["action"] for e in _lines(run(capsys, "audit", "--action", "site.")[1])] == [
        "site.deactivated",
        "site.created",
        "site.created",
    ]
    assert len(_lines(run(capsys, "audit", "--limit", "2")[1])) == 2
    assert _lines(run(capsys, "audit", "--since", "2999-01-01")[1]) == []
    assert len(_lines(run(capsys, "audit", "--since", "2000-01-01T00:00:00Z")[1])) == 5


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "--action", "site.bought"],
        ["audit", "--limit", "0"],
        ["audit", "--since", "soon"],
        ["prune-audit"],
        ["prune-audit", "--before", "x"],
    ],
)
def test_bad_arguments_are_one_line(capsys, trail, argv):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_audit_of_an_unknown_site_fails(capsys, trail):
    code, _, err = run(capsys, "audit", "--site", "Nowhere")
    assert code != 0 and "Nowhere" in err


def test_prune_audit_deletes_older_events_and_prints_how_many(capsys, trail):
    old = datetime.now(UTC) - timedelta(days=400)
    with session_scope() as session:
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        session.execute(update(AuditEvent).where(AuditEvent.action == "site.created").values(occurred_at=old))
        session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))

    code, out, _ = run(capsys, "prune-audit", "--before", (old + timedelta(days=1)).date().isoformat())

    assert (code, out.strip()) == (0, "2")
    assert [e["action"] for e in events()] == [
        "membership.added",
        "membership.added",
        "site.deactivated",
        "audit.pruned",
    ]
    with session_scope() as session:
        counts = dict(session.execute(text("SELECT site_id, events FROM site_audit_counts")).all())
    assert sorted(counts.values()) == [1, 2]  # Marketing: one grant; Sales: a grant and the deactivation
    assert run(capsys, "prune-audit", "--before", "2000-01-01")[1].strip() == "0"


# --- demo data -------------------------------------------------------------------------------------


def test_seed_demo_records_what_it_writes_and_gives_a_history(capsys, client):
    from chalicelib.interactions import queries
    from chalicelib.interactions.service import serialize
    from tests.factories import login, post_json

    code, out, _ = run(capsys, "seed-demo", "--sites", "2", "--interactions", "20", "--password", PASSWORD)

    assert code == 0
    found = events()
    assert {e["via"] for e in found} == {"cli"} and {e["operator"] for e in found} == {getpass.getuser()}
    created = [e for e in found if e["action"] == "interaction.created"]
    updated = [e for e in found if e["action"] == "interaction.updated"]
    assert len(created) == 20 and len(updated) == 6  # three rows of each site changed once more
    with session_scope() as session:
        rows = {
            row.id: serialize(queries.interaction(row)) for row in session.execute(select(*queries.COLUMNS))
        }
    for event in created:  # what the API would record, had it created them
        row = rows[event["target"]["id"]]
        assert event["site_id"] == row["site_id"]
        changed_since = any(u["target"]["id"] == row["id"] for u in updated)
        expected = {
            name: {"from": None, "to": row[name]}
            for name in (
                "title",
                "type",
                "lead",
                "start_datetime",
                "timezone",
                "end_datetime",
                "location",
                "description",
            )
            if row[name] is not None
        }
        assert {k: v for k, v in event["changes"].items() if k != "notes"} == expected
        if not changed_since:
            assert event["changes"].get("notes", {"to": None})["to"] == row["notes"]
    for event in updated:
        assert event["changes"]["notes"]["to"] == rows[event["target"]["id"]]["notes"] == "Follow-up booked."
        assert event["target"]["version"] == rows[event["target"]["id"]]["version"]
    actions = [e["action"] for e in found]
    assert actions.count("site.created") == 2 and actions.count("invitation.created") == 2
    assert actions.count("user.created") == 3  # demo, editor, viewer

    # An invitation the seed made went to its address and works; the history of a changed row
    # shows both events.
    assert "newhire@example.com" in out
    token = mailbox.token_for("newhire@example.com")
    accepted = post_json(
        client,
        "/api/auth/invitations/accept",
        {"token": token, "username": "newhire", "password": "newhire's own"},
    )
    assert accepted.status_code == 200
    site_token = login(client, "editor", PASSWORD)["token"]
    row_id = next(
        e["target"]["id"]
        for e in updated
        if e["site_id"] == rows[e["target"]["id"]]["site_id"]
        and e["site_id"] == min(r["site_id"] for r in rows.values())
    )
    history = send(client, "GET", f"/api/interactions/{row_id}/history", site_token).json_body["data"][
        "events"
    ]
    assert [e["action"] for e in history] == ["interaction.updated", "interaction.created"]
