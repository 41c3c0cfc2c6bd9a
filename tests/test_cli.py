"""The operator's commands (`python -m chalicelib.cli`): each succeeds whole or fails with one line
on stderr, a non-zero status and nothing written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from chalicelib import cli
from chalicelib.auth import passwords
from chalicelib.db import session_scope
from chalicelib.models import Interaction, Invitation, Site, SiteMembership, User
from tests import mailbox
from tests.factories import PASSWORD, auth, login, make_site, make_user, post_json

ROOT = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "a fresh password"


def run(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def counts():
    with session_scope() as s:
        return {
            model.__name__: s.scalar(select(func.count()).select_from(model))
            for model in (User, Site, SiteMembership, Interaction)
        }


def assert_one_line_failure(code, err, *, expected_code=None):
    assert code != 0
    if expected_code is not None:
        assert code == expected_code
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err


def subprocess_cli(*argv, stdin=subprocess.DEVNULL, input=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", *argv],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=None if input is not None else stdin,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- migrate ---------------------------------------------------------------------------------------


def test_migrate_is_idempotent(capsys):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    assert run(capsys, "migrate")[0] == 0
    assert run(capsys, "migrate")[0] == 0

    script = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    with session_scope() as s:
        assert s.scalar(text("SELECT version_num FROM alembic_version")) == script.get_current_head()


# --- sites -----------------------------------------------------------------------------------------


def test_create_site_prints_its_id(capsys):
    code, out, _ = run(capsys, "create-site", "Marketing", "--description", "Campaigns")

    assert code == 0
    with session_scope() as s:
        site = s.get(Site, int(out.strip()))
        assert (site.name, site.description, site.is_active) == ("Marketing", "Campaigns", True)


def test_a_duplicate_site_name_fails_and_writes_nothing(capsys):
    make_site("Marketing")
    before = counts()

    code, out, err = run(capsys, "create-site", "Marketing")

    assert_one_line_failure(code, err)
    assert out == ""
    assert counts() == before


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_bad_site_name_fails(capsys, name):
    code, _, err = run(capsys, "create-site", name)

    assert_one_line_failure(code, err)
    assert counts()["Site"] == 0


def test_deactivate_and_activate_site(capsys):
    site = make_site("Marketing")

    assert run(capsys, "deactivate-site", "Marketing")[0] == 0
    with session_scope() as s:
        assert s.get(Site, site).is_active is False
    assert run(capsys, "activate-site", "Marketing")[0] == 0
    with session_scope() as s:
        assert s.get(Site, site).is_active is True


def test_an_unknown_site_fails(capsys):
    code, _, err = run(capsys, "deactivate-site", "Nowhere")

    assert_one_line_failure(code, err)
    assert "Nowhere" in err


# --- users -----------------------------------------------------------------------------------------


def test_create_user_reads_the_password_from_stdin(capsys, monkeypatch, client):
    code, out, _ = run(
        capsys,
        "create-user",
        "JDoe",
        "JDoe@Example.com",
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )

    assert code == 0
    user_id = int(out.strip())
    with session_scope() as s:
        user = s.get(User, user_id)
        assert (user.username, user.email, user.is_active) == ("JDoe", "JDoe@Example.com", True)
        assert user.password_hash != PASSWORD and passwords.verify_password(user.password_hash, PASSWORD)
    assert login(client, "jdoe")["user"]["id"] == user_id


def test_a_password_keeps_its_inner_and_outer_spaces_but_not_the_newline(capsys, monkeypatch, client):
    run(
        capsys,
        "create-user",
        "jdoe",
        "jdoe@example.com",
        "--password-stdin",
        stdin="  spaced out  \r\n",
        monkeypatch=monkeypatch,
    )

    assert login(client, "jdoe", "  spaced out  ")


@pytest.mark.parametrize(
    "username,email",
    [("JDOE", "other@example.com"), ("other", "JDOE@EXAMPLE.COM")],
    ids=["username", "email"],
)
def test_a_duplicate_user_case_insensitively_fails_and_writes_nothing(capsys, monkeypatch, username, email):
    make_user("jdoe", email="jdoe@example.com")
    before = counts()

    code, out, err = run(
        capsys,
        "create-user",
        username,
        email,
        "--password-stdin",
        stdin=PASSWORD + "\n",
        monkeypatch=monkeypatch,
    )

    assert_one_line_failure(code, err)
    assert out == ""
    assert counts() == before


@pytest.mark.parametrize(
    "args,stdin",
    [
        (["bad name", "x@example.com"], PASSWORD),
        (["x" * 65, "x@example.com"], PASSWORD),
        (["jdoe", "not-an-email"], PASSWORD),
        (["jdoe", "jösé@example.com"], PASSWORD),
        (["jdoe", "jdoe@example.com"], "short"),
        (["jdoe", "jdoe@example.com"], "x" * 1025),
        (["jdoe", "jdoe@example.com"], ""),
    ],
    ids=[
        "space in name",
        "long name",
        "email",
        "non-ASCII email",
        "short password",
        "long password",
        "no password",
    ],
)
def test_create_user_refuses_bad_input(capsys, monkeypatch, args, stdin):
    code, _, err = run(
        capsys, "create-user", *args, "--password-stdin", stdin=stdin + "\n", monkeypatch=monkeypatch
    )

    assert_one_line_failure(code, err)
    assert counts()["User"] == 0


def test_the_interactive_prompt_is_refused_without_a_terminal(capsys, monkeypatch):
    code, _, err = run(
        capsys, "create-user", "jdoe", "jdoe@example.com", stdin=PASSWORD + "\n", monkeypatch=monkeypatch
    )

    assert_one_line_failure(code, err)
    assert "--password-stdin" in err
    assert counts()["User"] == 0


def test_the_interactive_prompt_asks_twice(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter([PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    code, _, err = run(capsys, "create-user", "jdoe", "jdoe@example.com")

    assert_one_line_failure(code, err)
    assert "do not match" in err


def test_deactivate_and_activate_user(capsys, client):
    user_id = make_user("JDoe")

    assert run(capsys, "deactivate-user", "jdoe")[0] == 0
    with session_scope() as s:
        assert s.get(User, user_id).is_active is False
    assert post_json(client, "/api/auth/login", {"username": "jdoe", "password": PASSWORD}).status_code == 401

    assert run(capsys, "activate-user", "JDOE")[0] == 0
    assert login(client)["user"]["id"] == user_id


def test_an_unknown_user_fails(capsys):
    code, _, err = run(capsys, "deactivate-user", "nobody")

    assert_one_line_failure(code, err)


def test_set_password(capsys, monkeypatch, client):
    make_user()
    old = login(client)["token"]

    code, out, _ = run(
        capsys, "set-password", "JDoe", "--password-stdin", stdin=NEW_PASSWORD + "\n", monkeypatch=monkeypatch
    )

    assert code == 0 and "every session" in out
    assert client.http.get("/api/auth/me", headers=auth(old)).status_code == 401
    assert post_json(client, "/api/auth/login", {"username": "jdoe", "password": PASSWORD}).status_code == 401
    assert login(client, "jdoe", NEW_PASSWORD)


def test_set_password_with_redis_down_changes_nothing(capsys, monkeypatch, client, reconfigure):
    user_id = make_user()
    with session_scope() as s:
        before = s.get(User, user_id).password_hash
    reconfigure(REDIS_URL="redis://127.0.0.1:1/0")

    code, _, err = run(
        capsys, "set-password", "jdoe", "--password-stdin", stdin=NEW_PASSWORD + "\n", monkeypatch=monkeypatch
    )

    assert_one_line_failure(code, err)
    with session_scope() as s:
        assert s.get(User, user_id).password_hash == before


# --- memberships -----------------------------------------------------------------------------------


def test_grant_creates_then_changes_a_membership(capsys):
    site, user_id = make_site("Marketing"), make_user("jdoe")

    assert run(capsys, "grant", "JDoe", "Marketing", "viewer")[0] == 0
    assert run(capsys, "grant", "jdoe", "Marketing", "admin")[0] == 0

    with session_scope() as s:
        assert s.get(SiteMembership, (user_id, site)).role == "admin"
        assert s.scalar(select(func.count()).select_from(SiteMembership)) == 1


@pytest.mark.parametrize(
    "argv,usage_error",
    [
        (["grant", "jdoe", "Marketing", "owner"], True),
        (["grant", "jdoe"], True),
        (["grant", "nobody", "Marketing", "viewer"], False),
        (["grant", "jdoe", "Nowhere", "viewer"], False),
    ],
    ids=["bad role", "missing arguments", "unknown user", "unknown site"],
)
def test_grant_failures_are_one_line(capsys, argv, usage_error):
    make_site("Marketing")
    make_user("jdoe")

    code, _, err = _exit(capsys, argv) if usage_error else run(capsys, *argv)

    assert_one_line_failure(code, err)
    assert counts()["SiteMembership"] == 0


def _exit(capsys, argv):
    """argparse refuses by raising SystemExit, as `python -m` would exit."""
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    return exited.value.code, *capsys.readouterr()


def test_revoke_removes_a_membership(capsys):
    site, user_id = make_site("Marketing"), make_user("jdoe")
    run(capsys, "grant", "jdoe", "Marketing", "editor")

    assert run(capsys, "revoke", "jdoe", "Marketing")[0] == 0
    with session_scope() as s:
        assert s.get(SiteMembership, (user_id, site)) is None

    code, _, err = run(capsys, "revoke", "jdoe", "Marketing")
    assert_one_line_failure(code, err)


# --- unlock and demo data --------------------------------------------------------------------------


def test_unlock(capsys, client):
    make_user()
    for _ in range(5):
        post_json(client, "/api/auth/login", {"username": "jdoe", "password": "wrong"})
    assert post_json(client, "/api/auth/login", {"username": "jdoe", "password": PASSWORD}).status_code == 429

    assert run(capsys, "unlock", "jdoe")[0] == 0

    assert login(client)


def test_unlock_with_redis_down_is_one_line(capsys, reconfigure):
    make_user()
    reconfigure(REDIS_URL="redis://127.0.0.1:1/0")

    code, _, err = run(capsys, "unlock", "jdoe")

    assert_one_line_failure(code, err)


def test_seed_demo_without_interactions(capsys, client):
    code, out, _ = run(capsys, "seed-demo", "--sites", "2", "--interactions", "0", "--password", PASSWORD)

    assert code == 0
    assert "demo" in out and PASSWORD in out
    # demo, editor and viewer; two addresses invited to the first site, their messages sent
    assert counts() == {"User": 3, "Site": 2, "SiteMembership": 4, "Interaction": 0}
    with session_scope() as s:
        invited = s.execute(select(Invitation.email, Invitation.status, Invitation.site_id)).all()
    assert sorted(invited) == [
        ("contractor@example.com", "pending", 1),
        ("newhire@example.com", "pending", 1),
    ]
    assert "newhire@example.com" in out and mailbox.messages("newhire@example.com")
    assert len(login(client, "demo")["sites"]) == 2
    assert login(client, "editor")["current_site"]["role"] == "editor"


def test_seed_demo_is_repeatable_and_adds_interactions(capsys):
    assert run(capsys, "seed-demo", "--sites", "1", "--interactions", "0")[0] == 0
    code, out, _ = run(capsys, "seed-demo", "--sites", "1", "--interactions", "7")

    assert code == 0
    assert counts()["User"] == 3 and counts()["Site"] == 1
    assert counts()["Interaction"] == 7
    with session_scope() as s:  # the invitations were not made twice
        assert s.scalar(select(func.count()).select_from(Invitation)) == 2
    assert len(mailbox.messages()) == 2


def test_seed_demo_prints_a_random_password_when_none_is_given(capsys, client):
    code, out, _ = run(capsys, "seed-demo", "--sites", "1", "--interactions", "0")

    password = out.split("password for all: ")[1].split(")")[0]
    assert code == 0 and len(password) >= 12
    assert login(client, "viewer", password)


def test_no_command_is_one_line(capsys):
    code, _, err = _exit(capsys, [])

    assert_one_line_failure(code, err, expected_code=2)


def test_database_unreachable_is_one_line(capsys, reconfigure):
    reconfigure(DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing")

    code, _, err = run(capsys, "create-site", "Marketing")

    assert_one_line_failure(code, err)


def test_database_url_unset_is_one_line(capsys, reconfigure):
    reconfigure(DATABASE_URL=None, DB_SECRET_ARN=None)

    code, _, err = run(capsys, "create-site", "Marketing")

    assert_one_line_failure(code, err)
    assert "DATABASE_URL" in err


# --- as a real process -----------------------------------------------------------------------------


def test_as_a_process_without_a_terminal_the_prompt_is_refused():
    result = subprocess_cli("create-user", "jdoe", "jdoe@example.com")

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["error: no terminal to prompt on: use --password-stdin"]
    assert counts()["User"] == 0


def test_as_a_process_create_user_and_a_duplicate():
    created = subprocess_cli(
        "create-user", "JDoe", "jdoe@example.com", "--password-stdin", input=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    user_id = int(created.stdout.strip())

    duplicate = subprocess_cli(
        "create-user", "jdoe", "second@example.com", "--password-stdin", input=PASSWORD + "\n"
    )

    assert duplicate.returncode != 0
    assert duplicate.stdout == ""
    assert len(duplicate.stderr.strip().splitlines()) == 1, duplicate.stderr
    with session_scope() as s:
        assert [u.id for u in s.scalars(select(User))] == [user_id]


def test_as_a_process_migrate_is_idempotent():
    for _ in range(2):
        result = subprocess_cli("migrate")
        assert result.returncode == 0, result.stderr
        assert "newest migration" in result.stdout
