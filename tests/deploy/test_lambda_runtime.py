"""The packaged bundle run as Lambda runs it (deploy/lambda_local.py): unpacked read-only, under the
runtime's own Python (`-I`, only the bundle, then the runtime's packages, on sys.path), the handlers
named by the template, API Gateway proxy events through the authorizer and the API, against this
suite's PostgreSQL and Redis. On python3.12 (the stages' runtime: this must not be skipped where
pyenv or PATH has one) and on python3.13 (the next runtime) where one is installed.

The function's environment is the packaged template's, with the stage's secrets and endpoints
replaced by the test servers and the test key (JWT_SECRET, DATABASE_URL and REDIS_URL come before
their ARNs and REDIS_ENDPOINT, chalicelib/config.py), and mail written as .eml files to a folder
outside the read-only bundle (MAIL_DELIVERY=directory:..., standing in for SES, which needs AWS: the
child runs without AWS_LAMBDA_FUNCTION_NAME, whose presence makes the settings refuse a directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from chalicelib.audit import events as audit
from chalicelib.db import session_scope
from chalicelib.kit.secret import digest
from chalicelib.models import Invitation, InvitationOutbox
from chalicelib.sites import invitations
from deploy import bytecode, lambda_local, package, runtime
from tests import mailbox
from tests.environment import MAIL_DIRECTORY, ROOT_ENV
from tests.factories import PASSWORD, make_site, make_user

pytestmark = pytest.mark.slow

FLOW = [
    ("login", 200),
    ("site", 200),
    ("list", 200),
    ("create", 201),
    ("create again", 201),
    ("update", 200),
    ("update with a stale If-Match", 412),
    ("invite", 201),
    ("accept", 200),
    ("list as the invitee", 200),
    ("logout", 200),
    ("list after logout", 401),
]
INVITEE = "ana.lima@example.com"
# Mail goes to the tests' mailbox folder (tests/mailbox.py), with the tests' accept link.
MAIL_ENV = {"MAIL_DELIVERY": f"directory:{MAIL_DIRECTORY}", "INVITE_URL": ROOT_ENV["INVITE_URL"]}


def _python(version: str) -> str:
    python = bytecode.interpreter(version)
    if python is None and bytecode.pyenv_has(version):
        pytest.fail(f"pyenv has {version} installed but deploy/bytecode.py did not find it")
    if python is None:
        pytest.skip(f"no python{version} here (LAMBDA_PYTHON, PATH, pyenv): the bundle was not run on it")
    return python


def _function_env(sam_template: Path, logical_id: str) -> dict[str, str]:
    template = json.loads(sam_template.read_text())
    variables = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    env = {k: str(v) for k, v in variables.items() if isinstance(v, str | int)}
    env.update(
        DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=os.environ["REDIS_URL"],
        JWT_SECRET=os.environ["JWT_SECRET"],
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_REGION="eu-west-1",
    )
    return env


def _bundle(zip_path: Path, python: str, task: Path) -> tuple[Path, Path]:
    """The bundle unpacked read-only into `task`, and the runtime's packages."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("PIP_",))}
    env["PATH"] = os.environ["PATH"]
    provided = lambda_local.runtime_packages(python, env)
    return lambda_local.unpack(zip_path, task), provided


def _run(
    zip_path: Path, sam_template: Path, python: str, tmp_path: Path, steps: str, **extra: str
) -> dict[str, Any]:
    site = make_site("Marketing")
    make_site("Support")
    make_user("jdoe", sites={site: "admin"})  # the site's admin: it invites
    functions = lambda_local.handlers(sam_template)
    spec = {
        "api": functions["APIHandler"],
        "authorizer": functions["JwtAuthorizer"],
        "username": "jdoe",
        "password": PASSWORD,
        "site_id": site,
        "steps": steps,
        "invite": {
            "email": INVITEE,
            "mail": MAIL_DIRECTORY,
            "username": "ana",
            "password": "a password of her own",
        },
    }
    task, provided = _bundle(zip_path, python, tmp_path / "task")
    env = {**_function_env(sam_template, "APIHandler"), **MAIL_ENV, **extra}
    return lambda_local.run(python, task, provided, spec, env=env)


def _check(report: dict[str, Any], version: str, provided_cache: Path = lambda_local.CACHE) -> None:
    assert report["python"].startswith(version + ".")
    steps = {s["step"]: s for s in report["steps"]}
    assert [(s["step"], s["status"]) for s in report["steps"]] == FLOW, report["steps"]
    assert steps["site"]["current_site"] is not None
    assert steps["list"]["total"] == 0
    # The same Idempotency-Key and body: the first answer replayed, nothing created twice.
    assert steps["create again"]["id"] == steps["create"]["id"]
    assert steps["create again"]["etag"] == steps["create"]["etag"]
    assert steps["update"]["version"] == 2 and steps["update"]["etag"] != steps["create"]["etag"]
    assert steps["update with a stale If-Match"]["code"] == "PRECONDITION_FAILED"
    # The invitation: sent at once (the directory sender), its link INVITE_URL's, accepted as a new
    # account on the site, which then reads the site's one interaction.
    site = steps["site"]["current_site"]
    invite, accept = steps["invite"], steps["accept"]
    assert invite["delivery"] == "sent"
    # Location as the client reached it: behind the stage's /api prefix.
    assert invite["location"] == f"/api/api/sites/{site}/invitations/{invite['id']}"
    assert accept["to"] == INVITEE and accept["link"] == ROOT_ENV["INVITE_URL"]
    assert accept["username"] == "ana" and accept["current_site"] == site
    assert steps["list as the invitee"]["total"] == 1
    # Every module of the bundle came with its bytecode; nothing came from outside the bundle,
    # the runtime's packages and the standard library; boto3 is the runtime's.
    assert report["from_source"] == []
    assert report["foreign"] == []
    assert report["boto3"].startswith(str(provided_cache))


def _queued_invitation(site: int, email: str) -> int:
    """An invitation whose message waits in the outbox (made, never sent), due now."""
    with session_scope() as session:
        made = invitations.create(
            session, site_id=site, caller_id=None, origin=audit.by_cli(), email=email, role="viewer"
        )
    return int(made["id"])


def _run_schedule(zip_path: Path, sam_template: Path, python: str, tmp_path: Path) -> dict[str, Any]:
    """The scheduled function alone, as its own Lambda: its handler imported from the bundle and
    invoked with a schedule's event, in its function's environment."""
    spec = {"schedule": lambda_local.handlers(sam_template)["RetryInvitations"], "steps": "schedule"}
    task, provided = _bundle(zip_path, python, tmp_path / "schedule-task")
    env = {**_function_env(sam_template, "RetryInvitations"), **MAIL_ENV}
    return lambda_local.run(python, task, provided, spec, env=env)


def _check_schedule(report: dict[str, Any], version: str, invitation_id: int) -> None:
    """The queued message sent (a new token, its hash stored), the outbox empty."""
    assert report["python"].startswith(version + ".")
    assert report["answer"] == {"sent": 1, "queued": 0, "dropped": 0}
    token = mailbox.token_for("queued@example.com")
    with session_scope() as session:
        assert session.get(Invitation, invitation_id).token_hash == digest(token)
        assert session.scalars(select(InvitationOutbox)).all() == []
    assert report["from_source"] == [] and report["foreign"] == []


def test_the_bundle_serves_the_flow_on_python_3_12_as_lambda_runs_it(packaged, tmp_path):
    python = _python(runtime.LAMBDA.version)
    built = packaged["dev"]["cloudformation"]
    report = _run(built / "deployment.zip", built / "sam.json", python, tmp_path, "flow")
    _check(report, runtime.LAMBDA.version)


def test_a_snapstart_init_registers_its_hooks_and_the_restored_copy_serves(packaged, tmp_path):
    """AWS_LAMBDA_INITIALIZATION_TYPE=snap-start: the init primes, registers its hooks with the
    runtime's `snapshot_restore_py`; the runtime runs them around the snapshot; then the flow."""
    python = _python(runtime.LAMBDA.version)
    built = packaged["dev"]["cloudformation"]
    report = _run(
        built / "deployment.zip",
        built / "sam.json",
        python,
        tmp_path,
        "snapshot",
        AWS_LAMBDA_INITIALIZATION_TYPE="snap-start",
    )
    assert report["hooks"] == {"before_snapshot": ["before_snapshot"], "after_restore": ["after_restore"]}
    _check(report, runtime.LAMBDA.version)


def test_the_bundle_for_the_next_runtime_serves_the_flow_and_the_schedule(tmp_path):
    """python3.13, Lambda's next runtime: its wheels, its bytecode, the same flow, then the
    scheduled function sending a queued message."""
    python = _python(runtime.NEXT.version)
    built = package.package(
        "dev", out=tmp_path / "next", formats=("cloudformation",), compile_with=python, target=runtime.NEXT
    )["cloudformation"]
    report = _run(built / "deployment.zip", built / "sam.json", python, tmp_path, "flow")
    _check(report, runtime.NEXT.version)
    site = next(step["current_site"] for step in report["steps"] if step["step"] == "site")
    invitation_id = _queued_invitation(site, "queued@example.com")
    report = _run_schedule(built / "deployment.zip", built / "sam.json", python, tmp_path)
    _check_schedule(report, runtime.NEXT.version, invitation_id)


def test_the_scheduled_function_sends_a_queued_invitation_from_the_bundle(packaged, tmp_path):
    python = _python(runtime.LAMBDA.version)
    built = packaged["dev"]["cloudformation"]
    invitation_id = _queued_invitation(make_site("Marketing"), "queued@example.com")
    report = _run_schedule(built / "deployment.zip", built / "sam.json", python, tmp_path)
    _check_schedule(report, runtime.LAMBDA.version, invitation_id)
