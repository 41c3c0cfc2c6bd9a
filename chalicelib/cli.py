"""The operator's commands: `python -m chalicelib.cli COMMAND ...`.

Each command runs in one transaction: it succeeds whole or writes nothing. Every command that
changes something records its audit events in that transaction (`via: "cli"`, the operating-system
account that ran it as `operator`); a command that changes nothing records nothing. Failures print
one line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chalicelib.audit import events as audit
from chalicelib.config import ConfigError, get_settings
from chalicelib.errors import ApiError
from chalicelib.models import INVITATION_STATUSES, ROLES, AuditEvent, Site, SiteMembership, User

ROOT = Path(__file__).resolve().parent.parent


class CommandError(Exception):
    """A failure worth one line to the operator."""


# --- helpers ------------------------------------------------------------------------------------


def _session() -> AbstractContextManager[Session]:
    from chalicelib.db import session_scope

    return session_scope()


def _user(session: Session, username: str) -> User:
    from chalicelib.kit.usernames import same_name

    user = session.scalars(select(User).where(same_name(User.username, username))).first()
    if user is None:
        raise CommandError(f"no user named {username!r}")
    return user


def _site(session: Session, name: str) -> Site:
    site = session.scalars(select(Site).where(Site.name == name.strip())).first()
    if site is None:
        raise CommandError(f"no site named {name!r}")
    return site


def _record(session: Session, **event: Any) -> None:
    """One audit event of this command, in its transaction."""
    session.execute(audit.record(None, origin=audit.by_cli(), **event))


def _record_for_account(session: Session, user_id: int, **event: Any) -> None:
    """An event about an account: once per site it belongs to, or once without a site."""
    session.execute(audit.account_event(user_id, origin=audit.by_cli(), **event))


def _read_password(args: argparse.Namespace, username: str) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise CommandError("no terminal to prompt on: use --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise CommandError("the passwords do not match")
    from chalicelib.auth.passwords import problem

    refused = problem(password, username=username)
    if refused:
        raise CommandError(f"the password {refused}")
    return password


# --- commands -----------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    command.upgrade(config, "head")
    print("schema is at the newest migration")


def cmd_role_settings(args: argparse.Namespace) -> None:
    """The API's connection settings (statement_timeout from DB_STATEMENT_TIMEOUT_MS, TimeZone UTC)
    on a database role in this database: the connecting role by default (as the migration does),
    or --role, the one the API connects as when it is not the one that migrates."""
    from chalicelib.db import apply_role_settings, get_engine

    statement_ms = get_settings().db_statement_timeout_ms
    with get_engine().begin() as connection:
        apply_role_settings(connection, statement_ms=statement_ms, role=args.role)
    who = args.role or "the connecting role"
    print(f"{who}: statement_timeout {statement_ms} ms, TimeZone UTC (new connections)")


def cmd_create_site(args: argparse.Namespace) -> None:
    from chalicelib.kit import names

    name = args.name.strip()
    if not 1 <= len(name) <= 100:
        raise CommandError("a site name must have 1 to 100 characters")
    try:
        names.check_strict(name)
    except ValueError as exc:
        raise CommandError(f"a site name {exc}") from None
    with _session() as session:
        site = Site(name=name, name_skeleton=names.skeleton(name), description=args.description)
        session.add(site)
        session.flush()
        _record(
            session,
            action="site.created",
            target_type="site",
            target_id=site.id,
            site_id=site.id,
            changes=audit.created({"name": name, "description": args.description}, audit.SITE_FIELDS),
        )
        print(site.id)


def cmd_create_user(args: argparse.Namespace) -> None:
    from chalicelib.auth.passwords import hash_password
    from chalicelib.kit import emails
    from chalicelib.kit.usernames import check_new, same_name

    username, email = args.username.strip(), _email(args.email)
    try:
        check_new(username)
    except ValueError as exc:
        raise CommandError(f"the username {exc}") from None
    password = _read_password(args, username)
    with _session() as session:
        if session.scalars(select(User.id).where(same_name(User.username, username))).first():
            raise CommandError(f"a user named {username!r} already exists")
        if session.scalars(select(User.id).where(User.email_folded == emails.fold(email))).first():
            raise CommandError(
                f"an account with the address {email!r} already exists (one address, one account)"
            )
        user = User(username=username, email=email, password_hash=hash_password(password))
        session.add(user)
        session.flush()
        _record_for_account(
            session,
            user.id,
            action="user.created",
            changes=audit.created({"username": username, "email": email}, audit.ACCOUNT_FIELDS),
        )
        print(user.id)


def _email(raw: str) -> str:
    from chalicelib.kit import emails

    try:
        return emails.check_new(raw.strip())
    except ValueError as exc:
        raise CommandError(f"{raw.strip()!r} {exc}") from None


def cmd_grant(args: argparse.Namespace) -> None:
    from chalicelib.sites.members import grant

    with _session() as session:
        user, site = _user(session, args.username), _site(session, args.site_name)
        changed = grant(session, user_id=user.id, site_id=site.id, role=args.role, origin=audit.by_cli())
    print(f"{user.username} is {args.role} of {site.name}" + ("" if changed else " (unchanged)"))


def cmd_revoke(args: argparse.Namespace) -> None:
    with _session() as session:
        user, site = _user(session, args.username), _site(session, args.site_name)
        role = session.scalar(
            delete(SiteMembership)
            .where(SiteMembership.user_id == user.id, SiteMembership.site_id == site.id)
            .returning(SiteMembership.role)
        )
        if role is None:
            raise CommandError(f"{user.username} is not a member of {site.name}")
        _record(
            session,
            action="membership.removed",
            target_type="user",
            target_id=user.id,
            site_id=site.id,
            changes=audit.diff({"role": role}, {"role": None}),
        )
        if role == "admin":  # no longer an admin of the site: their pending invitations there end
            from chalicelib.sites import invitations

            invitations.revoke_where(session, invitations.by_inviter(user.id, site.id), origin=audit.by_cli())
    print(f"{user.username} is no longer a member of {site.name}")


def _set_user_active(active: bool) -> Callable[[argparse.Namespace], None]:
    def command(args: argparse.Namespace) -> None:
        with _session() as session:
            user = _user(session, args.username)
            if user.is_active != active:
                user.is_active = active
                session.flush()
                _record_for_account(
                    session,
                    user.id,
                    action="user.activated" if active else "user.deactivated",
                    changes=audit.diff({"is_active": not active}, {"is_active": active}),
                )
                if not active:  # no longer an active admin anywhere: their pending invitations end
                    from chalicelib.sites import invitations

                    invitations.revoke_where(session, invitations.by_inviter(user.id), origin=audit.by_cli())
        print(f"{user.username} is {'active' if active else 'inactive'}")

    return command


def _set_site_active(active: bool) -> Callable[[argparse.Namespace], None]:
    def command(args: argparse.Namespace) -> None:
        with _session() as session:
            site = _site(session, args.site_name)
            if site.is_active != active:
                site.is_active = active
                session.flush()
                _record(
                    session,
                    action="site.activated" if active else "site.deactivated",
                    target_type="site",
                    target_id=site.id,
                    site_id=site.id,
                    changes=audit.diff({"is_active": not active}, {"is_active": active}),
                )
                if not active:  # the site's pending invitations end with it
                    from chalicelib.sites import invitations

                    invitations.revoke_where(session, invitations.of_site(site.id), origin=audit.by_cli())
        print(f"{site.name} is {'active' if active else 'inactive'}")

    return command


def cmd_platform_admin(args: argparse.Namespace) -> None:
    with _session() as session:
        user = _user(session, args.username)
        if user.platform_admin != args.on:
            before, user.platform_admin = user.platform_admin, args.on
            session.flush()
            _record_for_account(
                session,
                user.id,
                action="user.platform_admin_changed",
                changes=audit.diff({"platform_admin": before}, {"platform_admin": args.on}),
            )
    print(f"{user.username} {'may' if args.on else 'may not'} create sites")


def cmd_set_password(args: argparse.Namespace) -> None:
    from chalicelib.auth.passwords import hash_password
    from chalicelib.auth.sessions import revoke_all_sessions

    password = _read_password(args, args.username.strip())
    with _session() as session:
        user = _user(session, args.username)
        user.password_hash = hash_password(password)
        session.flush()
        _record_for_account(session, user.id, action="user.password_changed")
        # Inside the transaction: if Redis is down nothing changes; if the commit then fails,
        # the sessions are ended anyway, which errs on the safe side.
        revoke_all_sessions(user.id)
    # Again after the commit: a login that read the old hash just before the commit began its
    # session after the first revocation, and must end too.
    revoke_all_sessions(user.id)
    print(f"password changed; every session of {user.username} has ended")


def cmd_unlock(args: argparse.Namespace) -> None:
    """Lift a login lockout (the failure count, which also reaches the lock), recording
    `user.unlocked`. The count goes inside the transaction: Redis down, nothing is recorded; a
    count of none changes nothing and records nothing."""
    from chalicelib.auth.limits import clear_login_failures, login_failures
    from chalicelib.kit.usernames import fold

    with _session() as session:
        user = _user(session, args.username)
        name = fold(args.username)
        failures = login_failures(name)
        if failures:
            _record_for_account(session, user.id, action="user.unlocked")
            clear_login_failures(name)
    if failures:
        print(f"{user.username} may log in again ({failures} failed attempts forgotten)")
    else:
        print(f"{user.username} was not locked out (unchanged)")


def cmd_seed_demo(args: argparse.Namespace) -> None:
    from chalicelib import demo

    demo.seed(sites=args.sites, interactions=args.interactions, password=args.password)


def cmd_invite(args: argparse.Namespace) -> None:
    """An operator's invitation: the same rules and delivery as an admin's; prints its id only."""
    from chalicelib.db import commit_now
    from chalicelib.errors import Conflict
    from chalicelib.sites import invitations

    email = _email(args.email)
    with _session() as session:
        site = _site(session, args.site_name)
        if not site.is_active:
            raise CommandError(f"the site {site.name!r} is inactive")
        try:
            invitation = invitations.create(
                session, site_id=site.id, caller_id=None, origin=audit.by_cli(), email=email, role=args.role
            )
        except Conflict as exc:
            raise CommandError(str(exc)) from None
        commit_now(session)
        delivery = invitations.deliver(session, invitation_id=invitation["id"])
    print(invitation["id"])
    if delivery != "sent":
        print("the message could not be sent yet: it is queued and will be retried", file=sys.stderr)


def cmd_invitations(args: argparse.Namespace) -> None:
    from chalicelib.db import session_scope
    from chalicelib.sites import invitations

    with session_scope(transaction=False) as session:
        site = _site(session, args.site_name)
        condition = invitations.STATUS_FILTERS.get(args.status) if args.status else None
        stmt = invitations.listing(site.id, condition)
        for row in session.execute(stmt):
            print(json.dumps(invitations.representation(row), ensure_ascii=False))


def cmd_setup_accounts(args: argparse.Namespace) -> None:
    """Accounts whose password was set through a setup token, with the issuing site and their
    sites now, as JSON lines."""
    from chalicelib.db import session_scope
    from chalicelib.kit.timestamps import isoformat
    from chalicelib.models import SetupTokenAccount

    issuing = Site.__table__.alias("issuing")
    with session_scope(transaction=False) as session:
        rows = session.execute(
            select(
                User.id,
                User.username,
                User.email,
                User.is_active,
                SetupTokenAccount.completed_at,
                issuing.c.name.label("issuing_site"),
            )
            .join(SetupTokenAccount, SetupTokenAccount.user_id == User.id)
            .outerjoin(issuing, issuing.c.id == SetupTokenAccount.issuing_site_id)
            .order_by(User.id)
        ).all()
        for row in rows:
            sites = session.execute(
                select(Site.name, SiteMembership.role)
                .join(SiteMembership, SiteMembership.site_id == Site.id)
                .where(SiteMembership.user_id == row.id)
                .order_by(Site.name)
            ).all()
            print(
                json.dumps(
                    {
                        "id": row.id,
                        "username": row.username,
                        "email": row.email,
                        "is_active": row.is_active,
                        "issuing_site": row.issuing_site,
                        "completed_at": isoformat(row.completed_at),
                        "sites": [{"name": name, "role": role} for name, role in sites],
                    },
                    ensure_ascii=False,
                )
            )


def _bound(value: str, *, end_of_day: bool = False) -> Any:
    from chalicelib.kit.timestamps import parse_bound

    try:
        return parse_bound(value, end_of_day=end_of_day)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} {exc}") from None


def _action(value: str) -> tuple[str, ...]:
    from chalicelib.audit.schemas import _actions

    try:
        return _actions(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_audit(args: argparse.Namespace) -> None:
    from chalicelib.audit.service import serialize
    from chalicelib.db import session_scope

    with session_scope(transaction=False) as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(args.limit)
        if args.site:
            stmt = stmt.where(AuditEvent.site_id == _site(session, args.site).id)
        if args.since:
            stmt = stmt.where(AuditEvent.occurred_at >= args.since)
        if args.action:
            stmt = stmt.where(AuditEvent.action.in_(args.action))
        for event in session.scalars(stmt):
            print(json.dumps(serialize(event), ensure_ascii=False))


def cmd_prune_audit(args: argparse.Namespace) -> None:
    """Delete events older than --before, recording `audit.pruned` (`before`, `deleted`; no site,
    its target the newest event deleted) in the same transaction. A date less than
    AUDIT_MIN_RETENTION_DAYS ago (on the database's clock, the events' own) is refused."""
    from datetime import timedelta

    from sqlalchemy import func

    from chalicelib.config import get_settings
    from chalicelib.interactions.seed import no_read_timeout

    days = get_settings().audit_min_retention_days
    with _session() as session:
        latest = session.execute(select(func.now())).scalar_one() - timedelta(days=days)
        if args.before > latest:
            raise CommandError(
                f"--before must be at least {days} days ago (AUDIT_MIN_RETENTION_DAYS): {audit.json_value(latest)} "
                "or earlier; nothing was deleted"
            )
        gone = (
            delete(AuditEvent)
            .where(AuditEvent.occurred_at < args.before)
            .returning(AuditEvent.id)
            .cte("gone")
        )
        # A year of events can take longer to delete than the API's statement timeout (the
        # role's): lifted for this transaction, and the socket's read timeout with it.
        connection = session.connection()
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        with no_read_timeout(connection.connection.driver_connection):
            deleted, newest = session.execute(select(func.count(), func.max(gone.c.id))).one()
        if deleted:
            _record(
                session,
                action="audit.pruned",
                target_type="audit",
                target_id=newest,
                site_id=None,
                changes=audit.diff({}, {"before": args.before, "deleted": deleted}),
            )
    print(deleted)


# --- parser -------------------------------------------------------------------------------------


def _positive(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _at_least_one(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", value) or int(value) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of 1 or more")
    return int(value)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are failures too: one line on stderr (the usage is under --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]  # it exits, as argparse's does
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m chalicelib.cli", description="Operate the Interaction Management API.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    add("migrate", cmd_migrate, "upgrade the schema to the newest migration (idempotent)")
    p = add(
        "role-settings",
        cmd_role_settings,
        "set the API's connection settings (statement timeout, time zone) on a database role",
    )
    p.add_argument("--role", help="the role the API connects as (default: the connecting role)")
    p = add("create-site", cmd_create_site, "create a site and print its id")
    p.add_argument("name")
    p.add_argument("--description")
    p = add("create-user", cmd_create_user, "create a user and print its id")
    p.add_argument("username")
    p.add_argument("email")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    p = add("grant", cmd_grant, "create or change a membership")
    p.add_argument("username")
    p.add_argument("site_name")
    p.add_argument("role", choices=ROLES)
    p = add("revoke", cmd_revoke, "remove a membership")
    p.add_argument("username")
    p.add_argument("site_name")
    for name, active in (("deactivate-user", False), ("activate-user", True)):
        add(name, _set_user_active(active), f"{name.split('-')[0]} a user").add_argument("username")
    for name, active in (("deactivate-site", False), ("activate-site", True)):
        add(name, _set_site_active(active), f"{name.split('-')[0]} a site").add_argument("site_name")
    p = add("set-password", cmd_set_password, "set a new password and end the user's sessions")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    add("unlock", cmd_unlock, "lift a login lockout (records user.unlocked)").add_argument("username")
    p = add("seed-demo", cmd_seed_demo, "create demo sites, users and interactions")
    p.add_argument("--sites", type=_positive, default=3)
    p.add_argument("--interactions", type=_positive, default=300)
    p.add_argument("--password", help="the demo users' password (default: a new random one)")
    p = add("invite", cmd_invite, "invite an e-mail address to a site with a role; print the invitation's id")
    p.add_argument("email")
    p.add_argument("site_name")
    p.add_argument("role", choices=ROLES)
    p = add("invitations", cmd_invitations, "list a site's invitations as JSON lines, newest first")
    p.add_argument("site_name")
    p.add_argument("--status", choices=INVITATION_STATUSES, help="only invitations with this status")
    add(
        "setup-accounts",
        cmd_setup_accounts,
        "list the accounts whose password was set through a setup token (issuing site, sites now)",
    )
    p = add("platform-admin", cmd_platform_admin, "allow or forbid a user to create sites over the API")
    p.add_argument("username")
    on_off = p.add_mutually_exclusive_group(required=True)
    on_off.add_argument("--on", dest="on", action="store_true", help="may create sites")
    on_off.add_argument("--off", dest="on", action="store_false", help="may not")
    p = add("audit", cmd_audit, "print audit events as JSON lines, newest first")
    p.add_argument("--site", help="only this site's events (its name)")
    p.add_argument(
        "--since", type=_bound, help="only events at or after this ISO date or date and time (UTC)"
    )
    p.add_argument(
        "--action", type=_action, help="an action, or a family followed by '.' (e.g. interaction.)"
    )
    p.add_argument("--limit", type=_at_least_one, default=100, help="at most this many (default 100)")
    p = add(
        "prune-audit",
        cmd_prune_audit,
        "delete audit events older than a date, at least AUDIT_MIN_RETENTION_DAYS ago; print how many "
        "(records audit.pruned)",
    )
    p.add_argument(
        "--before",
        type=_bound,
        required=True,
        help="ISO date (00:00 UTC) or date and time: events before it are deleted",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except IntegrityError as exc:
        print(f"error: the change conflicts with existing data ({_constraint(exc)})", file=sys.stderr)
        return 1
    except (ConfigError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # still one line: the operator needs the cause, not a traceback
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 3
    return 0


def _constraint(exc: IntegrityError) -> str:
    orig: Any = exc.orig
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], dict):
        return str(args[0].get("n") or args[0].get("M", "constraint"))
    return "constraint"


if __name__ == "__main__":
    sys.exit(main())
