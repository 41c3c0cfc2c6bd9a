"""The operator's commands leave a trail and touch nothing they were not asked to: `unlock` records
`user.unlocked`; `prune-audit` records `audit.pruned` and refuses a date less than
AUDIT_MIN_RETENTION_DAYS ago (an operator's `--before <now>` deleted the recent trail); re-running
`seed-demo` leaves existing accounts exactly as they are (password, sessions, active flag, sites);
over the API a command-line event's operator is the label OPERATOR_LABEL for the site's admins and
null for anyone else — never the operating-system account."""

from __future__ import annotations

import getpass
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from chalicelib import config
from chalicelib.db import session_scope
from chalicelib.models import AuditEvent, Interaction, Site, SiteMembership, User
from tests.audit.helpers import event_count, events
from tests.audit.test_cli_events import run
from tests.factories import PASSWORD, auth, login, make_site, make_user, post_json
from tests.faults.locks import role_statement_timeout, side_connection

OS_ACCOUNT = getpass.getuser()


def _lock(client, username="jdoe", times=5):
    for _ in range(times):
        post_json(client, "/api/auth/login", {"username": username, "password": "wrong"})


# --- unlock --------------------------------------------------------------------------------------


def test_unlock_lifts_the_lock_and_records_it_for_each_site(capsys, client):
    a, b = make_site("Marketing"), make_site("Sales")
    user_id = make_user("jdoe", sites={a: "viewer", b: "editor"})
    _lock(client)
    assert post_json(client, "/api/auth/login", {"username": "jdoe", "password": PASSWORD}).status_code == 429

    code, out, _ = run(capsys, "unlock", "JDoe")

    assert code == 0 and "jdoe may log in again" in out
    unlocked = events("user.unlocked")
    assert sorted(e["site_id"] for e in unlocked) == [a, b]
    for event in unlocked:
        assert event["target"] == {"type": "user", "id": user_id}
        assert (event["via"], event["actor"], event["operator"], event["changes"]) == (
            "cli",
            None,
            OS_ACCOUNT,
            {},
        )
    assert login(client)


def test_unlock_of_an_account_without_failures_records_nothing(capsys):
    make_user("jdoe", sites={make_site(): "viewer"})

    code, out, _ = run(capsys, "unlock", "jdoe")

    assert code == 0 and "unchanged" in out
    assert event_count() == 0


def test_unlock_of_an_unknown_user_fails_and_records_nothing(capsys):
    code, _, err = run(capsys, "unlock", "nobody")

    assert code != 0 and "nobody" in err
    assert event_count() == 0


def test_unlock_with_redis_down_records_nothing(capsys, client, reconfigure):
    make_user("jdoe", sites={make_site(): "viewer"})
    _lock(client)
    reconfigure(REDIS_URL="redis://127.0.0.1:1/0")

    assert run(capsys, "unlock", "jdoe")[0] != 0

    assert event_count() == 0


# --- prune-audit ---------------------------------------------------------------------------------


@pytest.fixture
def trail(capsys):
    """Three events today, two of them moved 400 days back."""
    run(capsys, "create-site", "Marketing")
    run(capsys, "create-site", "Sales")
    run(capsys, "deactivate-site", "Sales")
    old = datetime.now(UTC) - timedelta(days=400)
    with session_scope() as session:
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        session.execute(update(AuditEvent).where(AuditEvent.action == "site.created").values(occurred_at=old))
        session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
    return old


@pytest.mark.parametrize(
    "before",
    [
        lambda: datetime.now(UTC).isoformat(),  # the attack: every event, the recent ones too
        lambda: (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
        lambda: (datetime.now(UTC) - timedelta(days=89)).date().isoformat(),
    ],
    ids=["now", "tomorrow", "89 days ago"],
)
def test_prune_audit_refuses_a_date_within_the_retention(capsys, trail, before):
    code, out, err = run(capsys, "prune-audit", "--before", before())

    assert code != 0 and out == ""
    assert "90 days" in err and "AUDIT_MIN_RETENTION_DAYS" in err and len(err.strip().splitlines()) == 1
    assert event_count() == 3


def test_prune_audit_records_what_it_deleted(capsys, trail):
    with session_scope() as session:
        newest_old = session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == "site.created").order_by(AuditEvent.id.desc())
        )
    before = (datetime.now(UTC) - timedelta(days=90)).replace(microsecond=0)

    code, out, _ = run(capsys, "prune-audit", "--before", before.isoformat())

    assert (code, out.strip()) == (0, "2")
    [pruned] = events("audit.pruned")
    assert pruned["site_id"] is None and pruned["operator"] == OS_ACCOUNT and pruned["actor"] is None
    assert pruned["target"] == {"type": "audit", "id": newest_old}
    assert pruned["changes"] == {
        "before": {"from": None, "to": before.isoformat().replace("+00:00", "Z")},
        "deleted": {"from": None, "to": 2},
    }
    assert [e["action"] for e in events()] == ["site.deactivated", "audit.pruned"]


def test_a_prune_may_take_longer_than_the_apis_statement_timeout(capsys, trail):
    """Deleting a year of events can outlast the API's statement timeout (the database role's):
    the prune lifts it for its own transaction. A lock held past the timeout stands in for the long
    DELETE."""
    before = (datetime.now(UTC) - timedelta(days=90)).date().isoformat()
    with role_statement_timeout(300), side_connection() as holder:
        holder.execute(text("SELECT id FROM audit_events WHERE action = 'site.created' FOR UPDATE"))
        release = threading.Timer(1.0, holder.rollback)
        release.start()
        try:
            code, out, err = run(capsys, "prune-audit", "--before", before)
        finally:
            release.join()

    assert (code, out.strip()) == (0, "2"), err
    assert [e["action"] for e in events()] == ["site.deactivated", "audit.pruned"]


def test_a_prune_that_deletes_nothing_records_nothing(capsys, trail):
    assert run(capsys, "prune-audit", "--before", "2000-01-01")[1].strip() == "0"

    assert events("audit.pruned") == []


def test_the_retention_is_configurable(capsys, trail, reconfigure):
    reconfigure(AUDIT_MIN_RETENTION_DAYS="500")
    code, _, err = run(capsys, "prune-audit", "--before", (trail + timedelta(days=1)).date().isoformat())
    assert code != 0 and "500 days" in err

    reconfigure(AUDIT_MIN_RETENTION_DAYS="1")
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    assert run(capsys, "prune-audit", "--before", two_days_ago)[1].strip() == "2"


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_retention_below_one_day_stops_the_command(capsys, trail, monkeypatch, value):
    monkeypatch.setenv("AUDIT_MIN_RETENTION_DAYS", value)
    config.reset_settings()

    code, _, err = run(capsys, "prune-audit", "--before", "2000-01-01")

    assert code != 0 and "AUDIT_MIN_RETENTION_DAYS" in err
    assert event_count() == 3


# --- seed-demo -----------------------------------------------------------------------------------


def _hash_of(username):
    with session_scope() as session:
        return session.scalar(select(User.password_hash).where(User.username == username))


def test_seeding_again_leaves_existing_accounts_exactly_as_they_are(capsys, client):
    assert run(capsys, "seed-demo", "--sites", "2", "--interactions", "0", "--password", PASSWORD)[0] == 0
    session_token = login(client, "editor")["token"]
    assert run(capsys, "deactivate-user", "viewer")[0] == 0
    hashes = {name: _hash_of(name) for name in ("demo", "editor", "viewer")}
    before = event_count()

    code, out, _ = run(
        capsys, "seed-demo", "--sites", "2", "--interactions", "0", "--password", "another password"
    )

    assert code == 0
    assert "another password" not in out and "left as they were" in out
    assert {name: _hash_of(name) for name in hashes} == hashes  # passwords unchanged
    assert client.http.get("/api/auth/me", headers=auth(session_token)).status_code == 200  # session goes on
    assert (
        post_json(client, "/api/auth/login", {"username": "viewer", "password": PASSWORD}).status_code == 401
    )
    with session_scope() as session:
        assert session.scalar(select(User.is_active).where(User.username == "viewer")) is False
    assert event_count() == before  # nothing changed, nothing recorded
    assert login(client, "demo")["user"]["username"] == "demo"


def test_seeding_grants_roles_only_in_the_sites_it_creates(capsys, client):
    """An existing site named like a demo site (someone's real Marketing) gets no demo member and
    no invitation; an existing account named like a demo user (a real `editor`) joins nothing."""
    marketing = make_site("Marketing")
    make_user("editor", sites={marketing: "viewer"})

    code, out, _ = run(capsys, "seed-demo", "--sites", "2", "--interactions", "0", "--password", PASSWORD)

    assert code == 0
    with session_scope() as session:
        sales = session.scalar(select(Site.id).where(Site.name == "Sales"))
        members = set(session.execute(select(SiteMembership.site_id, User.username).join(User)).all())
    assert members == {(marketing, "editor"), (sales, "demo")}
    assert events("invitation.created") == []
    assert "editor" not in out.split("Demo users created")[1].split("Existing")[0]


def test_seeding_writes_interactions_only_where_the_writer_may_write(capsys):
    """Someone's real Marketing (its real `editor` a viewer there, `demo` no member) gets no demo
    rows: each row is written by an account that is an editor or admin of the row's site."""
    marketing = make_site("Marketing")
    make_user("editor", sites={marketing: "viewer"})

    code, out, _ = run(capsys, "seed-demo", "--sites", "2", "--interactions", "10", "--password", PASSWORD)

    assert code == 0
    with session_scope() as session:
        sales = session.scalar(select(Site.id).where(Site.name == "Sales"))
        rows = set(session.execute(select(Interaction.site_id, Interaction.created_by)).all())
        writing = set(
            session.execute(
                select(SiteMembership.site_id, SiteMembership.user_id).where(
                    SiteMembership.role.in_(["admin", "editor"])
                )
            ).all()
        )
        count = session.scalar(select(func.count()).select_from(Interaction))
    assert count == 10 and {site for site, _ in rows} == {sales}
    assert rows <= writing
    assert "Marketing 0" not in out and "Sales 10" in out


def test_a_seed_whose_only_site_existed_writes_no_interactions(capsys):
    make_site("Marketing")

    code, out, _ = run(capsys, "seed-demo", "--sites", "1", "--interactions", "10", "--password", PASSWORD)

    assert code == 0 and "No interactions written" in out
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 0


# --- operator over the API -----------------------------------------------------------------------


@pytest.fixture
def seeded(capsys, client):
    """The demo site with interactions the command line created: (admin, editor, viewer) tokens."""
    assert run(capsys, "seed-demo", "--sites", "1", "--interactions", "3", "--password", PASSWORD)[0] == 0
    return {name: login(client, name)["token"] for name in ("demo", "editor", "viewer")}


def _history(client, token):
    with session_scope() as session:
        row = session.scalar(select(AuditEvent.target_id).where(AuditEvent.action == "interaction.created"))
    response = client.http.get(f"/api/interactions/{row}/history", headers=auth(token))
    assert response.status_code == 200, response.json_body
    return response


def test_a_viewer_or_editor_sees_no_operator_in_a_history(client, seeded):
    for name in ("viewer", "editor"):
        response = _history(client, seeded[name])
        found = response.json_body["data"]["events"]
        assert found and {e["via"] for e in found} == {"cli"}
        assert {e["operator"] for e in found} == {None}, name


def test_the_sites_admins_see_the_operators_label_never_the_account(client, seeded, reconfigure):
    response = _history(client, seeded["demo"])
    assert {e["operator"] for e in response.json_body["data"]["events"]} == {"operator"}

    reconfigure(OPERATOR_LABEL="Platform team")
    response = _history(client, seeded["demo"])
    assert {e["operator"] for e in response.json_body["data"]["events"]} == {"Platform team"}
    site = login(client, "demo")["sites"][0]["id"]
    trail = client.http.get(f"/api/sites/{site}/audit?per_page=100", headers=auth(seeded["demo"]))
    assert {e["operator"] for e in trail.json_body["data"]["events"]} == {"Platform team"}


def test_the_command_lines_own_audit_names_the_account(capsys, seeded):
    code, out, _ = run(capsys, "audit", "--limit", "1")

    assert code == 0 and f'"operator": "{OS_ACCOUNT}"' in out
