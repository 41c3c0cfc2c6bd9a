"""A site's invitations, as its admins and operators make them: create, list, read, resend, revoke;
their revocation when the site or the inviter changes; and their delivery through the outbox.

An admin never sees a token and never learns whether an address has an account anywhere: these
statements read no account outside the site (the 409s are for what the admin sees already: a
member of this site with the address, or this site's pending invitation for it).

Each change is one statement after the rights-and-lock statement (`service.LOCKED`, which locks the
site's row for its admins, so one site's changes run one after another); its UPDATE locks the
invitation's row, so a racing accept (chalicelib/auth/invitations.py) either comes first — and the
change finds nothing pending: 409 — or waits and finds its token gone.

Delivery (the transactional outbox): the invitation and an outbox row holding its id commit
together; then `deliver` claims the row (moving its `next_attempt_at` on: a lease, so one sender at
a time), mints the token (`secrets`, 256 bits), stores its SHA-256, sends the message and deletes
the row. A message that could not be sent stays queued; `retry_queued` (the scheduled function)
tries again with a new token until it goes or the invitation ends.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    Integer,
    Interval,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from chalicelib import access, mail
from chalicelib.audit import events as audit
from chalicelib.config import get_settings
from chalicelib.errors import Conflict, NotFound
from chalicelib.kit import emails
from chalicelib.kit.pagination import COUNT_CAP, ListRead, Page, Pagination, capped, open_cursor, settle
from chalicelib.kit.secret import new_secret
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import Invitation, InvitationOutbox, Site, SiteMembership, User
from chalicelib.sites.service import is_admin, one_row, still_admin

log = logging.getLogger(__name__)

INVITATION_NOT_FOUND = "No such invitation of this site"
NOT_PENDING = "The invitation is no longer pending"
LEASE = timedelta(seconds=60)  # a claimed message is another sender's to retry only after this
RETRY_BATCH = 50

_NOW = func.now()
PENDING = and_(Invitation.status == "pending", Invitation.expires_at > _NOW)
# The status as clients see it: a pending invitation past its expiry is expired (the database's clock).
STATUS = case(
    (and_(Invitation.status == "pending", Invitation.expires_at <= _NOW), "expired"),
    else_=Invitation.status,
)
STATUS_FILTERS: dict[str, ColumnElement[bool]] = {
    "pending": PENDING,
    "expired": or_(
        Invitation.status == "expired", and_(Invitation.status == "pending", Invitation.expires_at <= _NOW)
    ),
    "accepted": Invitation.status == "accepted",
    "revoked": Invitation.status == "revoked",
}
_QUEUED = exists().where(InvitationOutbox.invitation_id == Invitation.id)
# What a change's RETURNING gives for its answer (with the inviter's name and the delivery added).
_RETURNED = (
    Invitation.id,
    Invitation.email,
    Invitation.role,
    Invitation.status,
    Invitation.created_at,
    Invitation.expires_at,
    Invitation.invited_by,
)
_INVITER = aliased(User, name="inviter")


def _columns(*extra: Any) -> Any:
    return select(
        Invitation.id,
        Invitation.email,
        Invitation.role,
        STATUS.label("status"),
        Invitation.created_at,
        Invitation.expires_at,
        Invitation.invited_by,
        _INVITER.username.label("inviter_username"),
        _QUEUED.label("queued"),
        *extra,
    ).outerjoin(_INVITER, _INVITER.id == Invitation.invited_by)


def representation(row: Any) -> dict[str, Any]:
    """An invitation as the API shows it (never its token)."""
    return {
        "id": row.id,
        "email": row.email,
        "role": row.role,
        "status": row.status,
        "created_at": isoformat(row.created_at),
        "expires_at": isoformat(row.expires_at),
        "invited_by": (
            {"id": row.invited_by, "username": row.inviter_username} if row.invited_by is not None else None
        ),
        "delivery": "queued" if row.queued else "sent",
    }


# --- reads (folded with the caller's rights at the path's site: one round trip) --------------------

_IN_SITE = Invitation.site_id == bindparam("site_id")


def _newest_first(columns: Any) -> list[Any]:
    return [columns.id.desc()]


_AFTER = Invitation.id < bindparam("after_id")


def _page(condition: ColumnElement[bool] | None, *, keyset: bool) -> Any:
    """A page of the site's invitations, newest first, by number or after a cursor (the last id)."""
    stmt = _columns().where(_IN_SITE)
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.where(_AFTER) if keyset else stmt.offset(bindparam("offset"))
    return access.fold(
        stmt.order_by(Invitation.id.desc()).limit(bindparam("limit")),
        when=access.ADMIN,
        order_by=_newest_first,
    )


def _count(condition: ColumnElement[bool] | None) -> Any:
    stmt = select(Invitation.id).where(_IN_SITE)
    if condition is not None:
        stmt = stmt.where(condition)
    return select(func.count()).select_from(stmt.limit(COUNT_CAP + 1).subquery())


# Built once per container: one statement per `status` filter, by number and after a cursor.
_STATUSES = (None, *STATUS_FILTERS)
PAGES = {
    (status, keyset): _page(STATUS_FILTERS.get(status or ""), keyset=keyset)
    for status in _STATUSES
    for keyset in (False, True)
}
_COUNTS = {status: _count(STATUS_FILTERS.get(status or "")) for status in _STATUSES}
ONE = access.fold(_columns().where(_IN_SITE, Invitation.id == bindparam("invitation_id")), when=access.ADMIN)


def listing(site_id: int, condition: ColumnElement[bool] | None) -> Any:
    """Every invitation of a site (matching `condition`), newest first (the command line's list)."""
    stmt = _columns().where(Invitation.site_id == site_id)
    return (stmt.where(condition) if condition is not None else stmt).order_by(Invitation.id.desc())


def page_read(query: Pagination, *, site_id: int | None, status: str | None) -> ListRead:
    """The first statement of the invitations list at the path's site (a cursor binds the site and
    the status filter: another list's is a 400)."""
    binding = json.dumps(["invitations", site_id, status])
    position = open_cursor(query, binding)
    if position is None:
        return ListRead(PAGES[(status, False)], {"offset": query.offset, "limit": query.limit}, None, binding)
    return ListRead(PAGES[(status, True)], {"after_id": position.id, "limit": query.limit}, position, binding)


def page(session: Session, *, site_id: int, listing: access.Listing[Any]) -> Page:
    """A page of the invitations list and its meta (a total past the page counted up to COUNT_CAP)."""
    query, read, rows, status = listing.query, listing.read, listing.rows, listing.query.status
    found = settle(
        query,
        rows,
        position=read.position,
        count=lambda: capped(session.scalar(_COUNTS[status], {"site_id": site_id})),
        binding=read.binding,
        key=lambda row: row.id,
    )
    return replace(found, items=[representation(row) for row in found.items])


# --- changes ---------------------------------------------------------------------------------------


def _expiry() -> Any:
    return _NOW + literal(timedelta(seconds=get_settings().invitation_ttl_seconds), Interval)


def _event_changes(**fields: Any) -> Any:
    """`changes` as a JSONB expression: {field: {"from", "to"}} for (from, to) pairs."""
    parts: list[Any] = []
    for name, (before, after) in fields.items():
        parts += [name, func.jsonb_build_object("from", before, "to", after)]
    return func.jsonb_build_object(*parts)


def create(
    session: Session, *, site_id: int, caller_id: int | None, origin: audit.Origin, email: str, role: str
) -> dict[str, Any]:
    """A pending invitation with its queued message and `invitation.created`, in one statement.
    409 when a member of this site has the address, or this site has a pending invitation for it; a
    pending one past its expiry is marked expired first (in the same statement) and makes way.
    `caller_id` None: the operator's invitation (no admin check, `invited_by` null)."""
    folded = emails.fold(email)
    allowed: ColumnElement[bool] = is_admin(site_id, caller_id) if caller_id is not None else true()
    member = exists().where(
        SiteMembership.site_id == site_id, SiteMembership.user_id == User.id, User.email_folded == folded
    )
    mine = and_(Invitation.site_id == site_id, Invitation.email_folded == folded)
    waiting = exists().where(mine, PENDING)
    lapsed = (
        update(Invitation)
        .where(mine, Invitation.status == "pending", Invitation.expires_at <= _NOW)
        .values(status="expired", ended_at=Invitation.expires_at)
        .returning(Invitation.id)
        .cte("lapsed")
    )
    # Reading `lapsed` makes the INSERT wait for it: the expired row leaves the unique index first.
    made = (
        pg_insert(Invitation)
        .from_select(
            ["site_id", "email", "role", "invited_by", "expires_at"],
            select(
                literal(site_id, Integer),
                literal(email, String),
                literal(role, String),
                literal(caller_id, Integer),
                _expiry(),
            ).where(
                allowed, ~member, ~waiting, select(func.count()).select_from(lapsed).scalar_subquery() >= 0
            ),
        )
        .on_conflict_do_nothing()
        .returning(*_RETURNED)
        .cte("made")
    )
    queued = (
        pg_insert(InvitationOutbox)
        .from_select(["invitation_id"], select(made.c.id))
        .returning(InvitationOutbox.invitation_id)
        .cte("queued")
    )
    event = audit.as_cte(
        audit.record(
            made,
            origin=origin,
            action="invitation.created",
            target_type="invitation",
            target_id=made.c.id,
            site_id=site_id,
            changes=_event_changes(email=(None, made.c.email), role=(None, made.c.role)),
        ),
        "created",
    )
    inviter = aliased(User, name="inviter")
    row = session.execute(
        select(
            allowed.label("caller_admin"),
            member.label("member"),
            *made.c,
            inviter.username.label("inviter_username"),
            true().label("queued"),
        )
        .select_from(one_row().outerjoin(made, true()).outerjoin(inviter, inviter.id == made.c.invited_by))
        .add_cte(lapsed)
        .add_cte(queued)
        .add_cte(event)
    ).one()
    still_admin(row)
    if row.member:
        raise Conflict("A member of this site has this e-mail address")
    if row.id is None:
        raise Conflict("This site has a pending invitation for this address: resend it instead")
    return representation(row)


def _change(
    session: Session,
    *,
    site_id: int,
    caller_id: int | None,
    invitation_id: int,
    values: dict[str, Any],
    action: str,
    changes: Any,
    queue: bool,
    origin: audit.Origin,
) -> dict[str, Any]:
    """Resend or revoke: one UPDATE of a pending invitation (it locks the row), the outbox row
    queued again or dropped, the event; 404 for another site's or no invitation, 409 unless pending."""
    allowed: ColumnElement[bool] = is_admin(site_id, caller_id) if caller_id is not None else true()
    before = (
        select(Invitation.id, Invitation.expires_at)
        .where(Invitation.site_id == site_id, Invitation.id == invitation_id)
        .cte("before")
    )
    changed = (
        update(Invitation)
        .where(Invitation.site_id == site_id, Invitation.id == invitation_id, PENDING, allowed)
        .values(**values)
        .returning(*_RETURNED)
        .cte("changed")
    )
    if queue:
        stmt = pg_insert(InvitationOutbox).from_select(["invitation_id"], select(changed.c.id))
        outbox: Any = stmt.on_conflict_do_update(
            index_elements=[InvitationOutbox.invitation_id],
            set_={"attempts": 0, "next_attempt_at": _NOW, "last_error": None},
        )
    else:
        outbox = delete(InvitationOutbox).where(InvitationOutbox.invitation_id.in_(select(changed.c.id)))
    outboxed = outbox.returning(InvitationOutbox.invitation_id).cte("outboxed")
    event = audit.as_cte(
        audit.record(
            changed.join(before, before.c.id == changed.c.id),
            origin=origin,
            action=action,
            target_type="invitation",
            target_id=changed.c.id,
            site_id=site_id,
            changes=changes(before, changed),
        ),
        "changed_event",
    )
    inviter = aliased(User, name="inviter")
    row = session.execute(
        select(
            allowed.label("caller_admin"),
            before.c.id.label("found_id"),
            *changed.c,
            inviter.username.label("inviter_username"),
            literal(queue).label("queued"),
        )
        .select_from(
            one_row()
            .outerjoin(before, true())
            .outerjoin(changed, true())
            .outerjoin(inviter, inviter.id == changed.c.invited_by)
        )
        .add_cte(outboxed)
        .add_cte(event)
    ).one()
    still_admin(row)
    if row.found_id is None:
        raise NotFound(INVITATION_NOT_FOUND)
    if row.id is None:
        raise Conflict(NOT_PENDING)
    return representation(row)


def resend(
    session: Session, *, site_id: int, caller_id: int | None, origin: audit.Origin, invitation_id: int
) -> dict[str, Any]:
    """A new expiry and a queued message (a new token is minted when it goes); earlier tokens stop
    working at once."""
    return _change(
        session,
        site_id=site_id,
        caller_id=caller_id,
        invitation_id=invitation_id,
        values={"expires_at": _expiry(), "token_hash": None, "refused_attempts": 0},
        action="invitation.resent",
        changes=lambda before, changed: _event_changes(
            expires_at=(_json_time(before.c.expires_at), _json_time(changed.c.expires_at))
        ),
        queue=True,
        origin=origin,
    )


def revoke(
    session: Session, *, site_id: int, caller_id: int | None, origin: audit.Origin, invitation_id: int
) -> dict[str, Any]:
    return _change(
        session,
        site_id=site_id,
        caller_id=caller_id,
        invitation_id=invitation_id,
        values=_REVOKED,
        action="invitation.revoked",
        changes=lambda before, changed: _event_changes(status=("pending", changed.c.status)),
        queue=False,
        origin=origin,
    )


def _json_time(column: Any) -> Any:
    """A timestamp in the events' form (ISO 8601 in UTC with a Z), in SQL."""
    return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')


_REVOKED = {"status": "revoked", "ended_at": _NOW, "token_hash": None}


# --- revocation when the site or the inviter changes (API statements and operator commands) ---------


def revoking(condition: ColumnElement[bool], name: str = "revoked") -> CTE:
    """The pending invitations matching `condition` revoked (a CTE of their id and site), with
    their queued messages dropped; record them with `revoked_events`."""
    return (
        update(Invitation)
        .where(PENDING, condition)
        .values(**_REVOKED)
        .returning(Invitation.id, Invitation.site_id)
        .cte(name)
    )


def revoked_events(revoked: CTE, *, origin: audit.Origin) -> Any:
    """`rows()` of invitation.revoked for each row of `revoking(...)` (whose queued messages
    `dropping(revoked)` deletes in the same statement)."""
    return audit.rows(
        revoked,
        origin=origin,
        action="invitation.revoked",
        target_type="invitation",
        target_id=revoked.c.id,
        site_id=revoked.c.site_id,
        changes=_event_changes(status=(literal("pending", String), literal("revoked", String))),
    )


def dropping(revoked: CTE, name: str = "dropped") -> CTE:
    return (
        delete(InvitationOutbox)
        .where(InvitationOutbox.invitation_id.in_(select(revoked.c.id)))
        .returning(InvitationOutbox.invitation_id)
        .cte(name)
    )


def by_inviter(user_id: Any, site_id: Any | None = None) -> ColumnElement[bool]:
    """Invitations `user_id` made (at `site_id`, or anywhere)."""
    condition = Invitation.invited_by == user_id
    return condition if site_id is None else and_(condition, Invitation.site_id == site_id)


def of_site(site_id: int) -> ColumnElement[bool]:
    return Invitation.site_id == site_id


def for_account(user_id: int, site_id: int) -> ColumnElement[bool]:
    """The site's invitations for the address of account `user_id` (it joined another way)."""
    return and_(
        Invitation.site_id == site_id,
        Invitation.email_folded == select(User.email_folded).where(User.id == user_id).scalar_subquery(),
    )


def revoke_where(session: Session, condition: ColumnElement[bool], *, origin: audit.Origin) -> int:
    """An operator's change: revoke the pending invitations matching `condition`, recorded; how many."""
    revoked = revoking(condition)
    events = audit.as_cte(audit.insert_all(revoked_events(revoked, origin=origin)), "revoked_events")
    return len(session.execute(select(revoked.c.id).add_cte(dropping(revoked)).add_cte(events)).all())


# --- delivery ------------------------------------------------------------------------------------


def message(*, to: str, site: str, role: str, token: str, expires_at: Any) -> mail.Message:
    """The invitation's message: the same text whether or not the address has an account."""
    url = get_settings().invite_url.replace("{token}", token)
    return mail.Message(
        to=to,
        subject=f"You are invited to {site}",
        text=(
            f"You have been invited to join {site} as {role}.\n\n"
            f"To accept, open this link:\n\n    {url}\n\n"
            f"It works once, until {expires_at:%Y-%m-%d %H:%M} UTC. If you have an account already, "
            "you accept with its password; otherwise you choose a username and a password.\n"
            "If you did not expect this invitation, ignore this message.\n"
        ),
    )


def _claim(digest: str) -> Any:
    """Claim one queued message (its lease moved on), and store the new token's hash on its
    invitation if it is still pending: the invitation and its site's name, or no row."""
    claimed = (
        update(InvitationOutbox)
        .where(
            InvitationOutbox.invitation_id == bindparam("queued_id"),
            InvitationOutbox.next_attempt_at <= _NOW,
        )
        .values(attempts=InvitationOutbox.attempts + 1, next_attempt_at=_NOW + literal(LEASE, Interval))
        .returning(InvitationOutbox.invitation_id)
        .cte("claimed")
    )
    minted = (
        update(Invitation)
        .where(Invitation.id.in_(select(claimed.c.invitation_id)), PENDING)
        .values(token_hash=literal(digest, String), refused_attempts=0)
        .returning(
            Invitation.id, Invitation.site_id, Invitation.email, Invitation.role, Invitation.expires_at
        )
        .cte("minted")
    )
    return select(
        minted.c.id, minted.c.email, minted.c.role, minted.c.expires_at, Site.name.label("site")
    ).join(Site, Site.id == minted.c.site_id)


_SENT = delete(InvitationOutbox).where(InvitationOutbox.invitation_id == bindparam("queued_id"))


def _backoff(attempts: Any) -> Any:
    """Wait before the next try: a minute per attempt so far, at most an hour."""
    return _NOW + func.make_interval(0, 0, 0, 0, 0, func.least(attempts, 60))


_FAILED = (
    update(InvitationOutbox)
    .where(InvitationOutbox.invitation_id == bindparam("queued_id"))
    .values(next_attempt_at=_backoff(InvitationOutbox.attempts), last_error=bindparam("reason", type_=String))
)


def deliver(session: Session, *, invitation_id: int) -> str:
    """Send an invitation's queued message now, with a new token: "sent", or "queued" when it could
    not go (or another sender holds it). Each statement stands alone (the session's transaction, if
    any, is committed before). Never raises: the invitation is committed already."""
    token, digest = new_secret()
    try:
        row = session.execute(_claim(digest), {"queued_id": invitation_id}).first()
        if row is None:
            return "queued"
        try:
            mail.send(
                message(to=row.email, site=row.site, role=row.role, token=token, expires_at=row.expires_at)
            )
        except mail.MailNotSent as exc:
            log.warning("invitation %s not sent (%s); it stays queued", invitation_id, exc.reason)
            session.execute(_FAILED, {"queued_id": invitation_id, "reason": exc.reason})
            return "queued"
        session.execute(_SENT, {"queued_id": invitation_id})
        return "sent"
    except Exception:
        log.warning("invitation %s: delivery failed; it stays queued", invitation_id, exc_info=True)
        return "queued"


_ENDED = delete(InvitationOutbox).where(
    InvitationOutbox.invitation_id.in_(select(Invitation.id).where(~PENDING))
)
_DUE = (
    select(InvitationOutbox.invitation_id)
    .where(InvitationOutbox.next_attempt_at <= _NOW)
    .order_by(InvitationOutbox.next_attempt_at)
    .limit(bindparam("limit"))
)


def retry_queued(session: Session, *, limit: int = RETRY_BATCH) -> dict[str, int]:
    """The scheduled retry: drop the messages of invitations that ended, then try the due ones
    (each with a new token). Statements stand alone (an autocommit session)."""
    dropped = getattr(session.execute(_ENDED), "rowcount", 0) or 0
    due = list(session.scalars(_DUE, {"limit": limit}))
    results = [deliver(session, invitation_id=invitation_id) for invitation_id in due]
    return {"sent": results.count("sent"), "queued": results.count("queued"), "dropped": int(dropped)}
