"""An invitation's token, used by the holder of the mailbox it went to: preview and accept.

Accept's order of checks (API.md): the client's rate limit (a window of its own, shared with
preview), the body's shape, then the token — unknown, used, revoked, expired, used up, its site or
the address's account inactive, or already a member: a 400 naming `token`. Then, when an account
has the address: its login lockout (429), its password (a wrong one counts towards the lockout),
and a `username` sent is refused; when none has it: the username and password rules, then a taken
username (409). Every refusal after the token was recognised counts against it (10 use it up) and
leaves it usable otherwise; a locked account's 429 does not count (no password was checked).

The invitation's row is locked (`FOR UPDATE`) by the first statement and the account is looked up
in the same statement, inside the accept's transaction: of two accepts of one token the second
waits and then finds the token gone; two invitations of one address accepted at once cannot make
two accounts (one address, one account: a unique index), the second gets a 409 and may try again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, bindparam, case, delete, exists, func, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from chalicelib import access
from chalicelib.audit import events as audit
from chalicelib.auth import limits, passwords, tokens
from chalicelib.auth.service import signed_in
from chalicelib.errors import ApiError, Conflict, ValidationFailed
from chalicelib.kit import usernames
from chalicelib.kit.secret import digest
from chalicelib.models import Invitation, InvitationOutbox, Site, SiteMembership, User

MAX_REFUSED_ATTEMPTS = 10


def unusable() -> ValidationFailed:
    """The one answer for every token that cannot be used (nothing tells the cases apart)."""
    return ValidationFailed(
        "The invitation cannot be used",
        details=[
            {
                "field": "token",
                "message": "is unknown, used, revoked or expired, or the invitation can no longer be accepted",
            }
        ],
    )


_ACCOUNT = User.email_folded == Invitation.email_folded
_MEMBER = exists().where(SiteMembership.site_id == Invitation.site_id, SiteMembership.user_id == User.id)
# A token's invitation, still pending and not used up, with its site and the address's account (if
# any), read under the invitation's row lock.
_FOUND = (
    select(
        Invitation.id,
        Invitation.site_id,
        Invitation.email,
        Invitation.role,
        Site.name.label("site_name"),
        Site.description.label("site_description"),
        Site.is_active.label("site_active"),
        User.id.label("user_id"),
        User.username,
        User.email.label("user_email"),
        User.password_hash,
        User.is_active.label("user_active"),
        _MEMBER.label("member"),
        exists()
        .where(usernames.folded(User.__table__.alias("taken").c.username) == bindparam("folded_username"))
        .label("username_taken"),
    )
    .join(Site, Site.id == Invitation.site_id)
    .outerjoin(User, _ACCOUNT)
    .where(
        Invitation.token_hash == bindparam("digest"),
        Invitation.status == "pending",
        Invitation.expires_at > func.now(),
        Invitation.refused_attempts < MAX_REFUSED_ATTEMPTS,
    )
)
FOUND_FOR_ACCEPT = _FOUND.with_for_update(of=Invitation)


def _usable(row: Any) -> bool:
    return (
        row is not None and row.site_active and (row.user_id is None or (row.user_active and not row.member))
    )


def _find(session: Session, token: str, *, username: str | None = None, lock: bool = False) -> Any:
    row = session.execute(
        FOUND_FOR_ACCEPT if lock else _FOUND,
        {"digest": digest(token), "folded_username": usernames.fold(username or "")},
    ).first()
    if not _usable(row):
        raise unusable()
    return row


def preview(session: Session, *, token: str) -> dict[str, Any]:
    """What the invitation is for; `account_exists` tells the mailbox's holder whether to accept with
    their password or to choose a username."""
    row = _find(session, token)
    return {
        "site": {"id": row.site_id, "name": row.site_name},
        "role": row.role,
        "email": row.email,
        "account_exists": row.user_id is not None,
    }


@dataclass
class Refused(Exception):
    """An accept refused after its token was recognised: the refusal counts against the token
    (`count_refusal`, committed by the route) before `error` is answered."""

    invitation_id: int
    error: ApiError


def count_refusal(session: Session, invitation_id: int) -> None:
    """One more refused attempt; the tenth uses the token up."""
    attempts = Invitation.refused_attempts + 1
    session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.status == "pending")
        .values(
            refused_attempts=attempts,
            token_hash=case((attempts >= MAX_REFUSED_ATTEMPTS, None), else_=Invitation.token_hash),
        )
    )


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def accept(session: Session, *, token: str, username: str | None, password: str, ids: Any) -> dict[str, Any]:
    """Accept an invitation (the request's rate limit and body shape were checked): a login's answer
    scoped to the inviting site. Raises `Refused` for a refusal that counts against the token."""
    row = _find(session, token, username=username, lock=True)
    started_ms = tokens.now_ms()
    if row.user_id is not None:
        return _join_existing(
            session, row, username=username, password=password, ids=ids, started_ms=started_ms
        )
    return _create_account(session, row, username=username, password=password, ids=ids, started_ms=started_ms)


def _join_existing(
    session: Session, row: Any, *, username: str | None, password: str, ids: Any, started_ms: int
) -> dict[str, Any]:
    limits.reserve_password_attempt(row.username)  # 429 when locked; counts as a failure until it succeeds
    problems = []
    right = passwords.verify_password(row.password_hash, password)
    if not right:
        problems.append(_problem("password", "is not the password of the account with this address"))
    if username is not None:
        problems.append(_problem("username", "must not be sent: an account has this address already"))
    if problems:
        if right:
            limits.release_login_attempt(row.username)  # the password was right: not a failure
        raise Refused(row.id, ValidationFailed("The invitation was not accepted", details=problems))
    origin = audit.by_api(user_id=row.user_id, username=row.username, ids=ids)
    account = (
        update(User)
        .where(User.id == row.user_id, User.is_active)
        .values(last_login=func.now())
        .returning(User.id, User.username, User.email)
        .cte("account")
    )
    return _finish(session, row, account, origin=origin, created=False, started_ms=started_ms)


def _create_account(
    session: Session, row: Any, *, username: str | None, password: str, ids: Any, started_ms: int
) -> dict[str, Any]:
    problems = []
    if username is None:
        problems.append(_problem("username", "field required: no account has this address yet"))
    else:
        try:
            usernames.check_new(username)
        except ValueError as exc:
            problems.append(_problem("username", str(exc)))
    refused = passwords.problem(password, username=username or "")
    if refused:
        problems.append(_problem("password", refused))
    if problems:
        raise Refused(row.id, ValidationFailed("The invitation was not accepted", details=problems))
    assert username is not None
    if row.username_taken:
        raise Refused(row.id, Conflict("This username is taken: choose another"))
    account = (
        pg_insert(User)
        .from_select(
            ["username", "email", "password_hash", "last_login"],
            select(
                literal(username, String),
                literal(row.email, String),
                literal(passwords.hash_password(password), String),
                func.now(),
            ),
        )
        .on_conflict_do_nothing()
        .returning(User.id, User.username, User.email)
        .cte("account")
    )
    origin = audit.by_api(user_id=account.c.id, username=account.c.username, ids=ids)
    return _finish(session, row, account, origin=origin, created=True, started_ms=started_ms)


def _finish(
    session: Session, row: Any, account: Any, *, origin: audit.Origin, created: bool, started_ms: int
) -> dict[str, Any]:
    """One statement: the membership, the invitation accepted (its token gone, its message
    dropped), the events with the invitee as actor, and the account's active sites."""
    joined = (
        pg_insert(SiteMembership)
        .from_select(
            ["user_id", "site_id", "role"],
            select(account.c.id, literal(row.site_id, Integer), literal(row.role, String)),
        )
        .on_conflict_do_nothing()
        .returning(SiteMembership.user_id, SiteMembership.role)
        .cte("joined")
    )
    done = (
        update(Invitation)
        .where(Invitation.id == row.id, Invitation.status == "pending", exists(select(joined.c.user_id)))
        .values(status="accepted", ended_at=func.now(), token_hash=None)
        .returning(Invitation.id)
        .cte("done")
    )
    dropped = (
        delete(InvitationOutbox)
        .where(InvitationOutbox.invitation_id.in_(select(done.c.id)))
        .returning(InvitationOutbox.invitation_id)
        .cte("dropped")
    )
    accepted = done.join(account, true())
    event_rows = [
        audit.rows(
            accepted,
            origin=origin,
            action="invitation.accepted",
            target_type="invitation",
            target_id=done.c.id,
            site_id=row.site_id,
            changes=func.jsonb_build_object(
                "status", func.jsonb_build_object("from", "pending", "to", "accepted")
            ),
        )
    ]
    if created:
        event_rows.append(
            audit.rows(
                accepted,
                origin=origin,
                action="user.created",
                target_type="user",
                target_id=account.c.id,
                site_id=row.site_id,
                changes=func.jsonb_build_object(
                    "username",
                    func.jsonb_build_object("from", None, "to", account.c.username),
                    "email",
                    func.jsonb_build_object("from", None, "to", account.c.email),
                ),
            )
        )
    event_rows.append(
        audit.rows(
            done.join(joined, true()).join(account, true()),
            origin=origin,
            action="membership.added",
            target_type="user",
            target_id=joined.c.user_id,
            site_id=row.site_id,
            changes=func.jsonb_build_object(
                "role", func.jsonb_build_object("from", None, "to", joined.c.role)
            ),
        )
    )
    events = audit.as_cte(audit.insert_all(*event_rows), "events")
    active = access.memberships().subquery("active")
    rows = session.execute(
        select(
            account.c.id,
            account.c.username,
            account.c.email,
            active.c.id.label("site_id"),
            active.c.name,
            active.c.description,
            active.c.role,
        )
        .select_from(done.join(account, true()).outerjoin(active, active.c.user_id == account.c.id))
        .order_by(active.c.name, active.c.id)
        .add_cte(dropped)
        .add_cte(events)
    ).all()
    if not rows:
        if created:  # the username, or the address, was taken meanwhile
            raise Refused(row.id, Conflict("This username or this address was taken meanwhile: try again"))
        raise unusable()  # the account joined the site meanwhile, or was deactivated
    # The statement's snapshot does not see the membership it adds: the inviting site joins the list.
    joined_site = {
        "id": row.site_id,
        "name": row.site_name,
        "description": row.site_description,
        "role": row.role,
    }
    member_of = sorted(
        [
            {"id": r.site_id, "name": r.name, "description": r.description, "role": r.role}
            for r in rows
            if r.site_id is not None and r.site_id != row.site_id
        ]
        + [joined_site],
        key=lambda site: (site["name"], site["id"]),
    )
    limits.clear_login_failures(rows[0].username)
    return signed_in(rows[0], member_of, started_ms, site_id=row.site_id)
