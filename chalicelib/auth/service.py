"""Login, password changes, site selection, logout and the caller's own details."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from chalicelib import access
from chalicelib.access import Principal, TokenContext
from chalicelib.audit import events as audit
from chalicelib.auth import limits, passwords, sessions, tokens
from chalicelib.errors import AuthenticationFailed, Forbidden, ValidationFailed
from chalicelib.kit import usernames
from chalicelib.kit.timestamps import epoch_isoformat, isoformat
from chalicelib.models import Site, SiteMembership, User

BAD_CREDENTIALS = "Invalid username or password"


def find_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(usernames.same_name(User.username, username))).first()


def login(session: Session, *, source_ip: str, username: str, password: str) -> dict[str, Any]:
    """Checks the client's rate limit and the lockout (reserving the attempt), then the password.
    Unknown, wrong and inactive all get the same answer after the same amount of work."""
    # Locked out by the name the lookup folds to, so that every spelling of one account counts.
    username = usernames.fold(username)
    limits.reserve_login_attempt(source_ip, username)
    # The session begins before the stored hash is read: a password change committed after this
    # point (and its revocation) then ends this session too, even if it was opened with the old one.
    started_ms = tokens.now_ms()
    try:
        user = find_user(session, username)
    except Exception:
        # No password was checked (the database failed): this attempt must not count.
        limits.release_login_attempt(username)
        raise
    valid = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        raise AuthenticationFailed(BAD_CREDENTIALS)
    limits.clear_login_failures(username)
    values: dict[str, Any] = {"last_login": func.now()}
    if user.password_hash is not None and passwords.needs_rehash(user.password_hash):
        values["password_hash"] = passwords.hash_password(password)
    # One statement: the login recorded (and the hash renewed) while the user's sites are read.
    touched = update(User).where(User.id == user.id).values(**values).returning(User.id).cte("touched")
    member_of = [
        access.Membership._make(row).summary()
        for row in session.execute(
            access.memberships()
            .where(SiteMembership.user_id == user.id)
            .order_by(Site.name, Site.id)
            .add_cte(touched)
        )
    ]
    return signed_in(user, member_of, started_ms)


def signed_in(
    user: Any, member_of: list[dict[str, Any]], started_ms: int, *, site_id: int | None = None
) -> dict[str, Any]:
    """A login's answer: a new session, scoped to the user's one site when there is exactly one
    (or to `site_id` when the user is an active member of it: an accepted invitation's site)."""
    current = next((site for site in member_of if site["id"] == site_id), None)
    if site_id is None and len(member_of) == 1:
        current = member_of[0]
    token, claims = tokens.issue(
        user_id=user.id, site_id=current["id"] if current else None, auth_time_ms=started_ms
    )
    return {
        "token": token,
        "expires_at": epoch_isoformat(claims.expires_at),
        "user": {"id": user.id, "username": user.username, "email": user.email},
        "sites": member_of,
        "current_site": current,
    }


# --- password changes ------------------------------------------------------------------------------

# The caller's rights with their stored hash (for a password change only).
WITH_PASSWORD = access.fold(
    extra=(
        select(User.password_hash)
        .where(User.id == bindparam("caller_id"))
        .scalar_subquery()
        .label("password_hash"),
    )
)


def _password_changed(user_id: int, seen_hash: str, new_hash: str, origin: audit.Origin) -> Any:
    """One statement: the new hash set, if the stored one is still the one checked (a concurrent
    change wins once), with password_changed recorded for each of the account's sites."""
    changed = (
        update(User)
        .where(User.id == user_id, User.password_hash == seen_hash, User.is_active)
        .values(password_hash=new_hash)
        .returning(User.id)
        .cte("changed")
    )
    sites, site_column = audit.account_sites(changed, changed.c.id)
    event = audit.as_cte(
        audit.record(
            sites,
            origin=origin,
            action="user.password_changed",
            target_type="user",
            target_id=changed.c.id,
            site_id=site_column,
        ),
        "password_changed",
    )
    return select(changed.c.id).add_cte(event)


def change_password(
    session: Session,
    *,
    principal: Principal,
    stored_hash: str | None,
    current: str,
    new: str,
    origin: audit.Origin,
) -> dict[str, Any]:
    """The caller's new password: the rule (400 naming new_password), the lockout (429), the current
    password (400 naming it; it counts as a failed login), then the change; every session of the
    user ends and a new one begins on the same site."""
    problem = passwords.problem(new, username=principal.username)
    if problem:
        raise ValidationFailed(
            "The new password is not allowed", details=[{"field": "new_password", "message": problem}]
        )
    limits.reserve_password_attempt(principal.username)  # locked out by the folded name, like logins
    if stored_hash is None or not passwords.verify_password(stored_hash, current):
        raise ValidationFailed(
            "The current password is wrong",
            details=[{"field": "current_password", "message": "is not the current password"}],
        )
    new_hash = passwords.hash_password(new)
    # Before the change (Redis down: nothing changes) and the failed attempt given back in the same
    # round trip; again after it, for a login that read the old hash meanwhile.
    sessions.revoke_all_sessions(principal.user_id, delete=(limits.failures_key(principal.username),))
    if session.execute(_password_changed(principal.user_id, stored_hash, new_hash, origin)).first() is None:
        raise ValidationFailed(
            "The current password is wrong",
            details=[{"field": "current_password", "message": "changed meanwhile"}],
        )
    not_before = sessions.revoke_all_sessions(principal.user_id)
    token, claims = tokens.issue(
        user_id=principal.user_id, site_id=principal.site_id, auth_time_ms=not_before + 1
    )
    return {
        "token": token,
        "expires_at": epoch_isoformat(claims.expires_at),
        "current_site": principal.site.summary() if principal.site is not None else None,
    }


def stored_hash(rows: access.Folded) -> str | None:
    """The caller's stored password hash, from a `WITH_PASSWORD` read."""
    hashed: str | None = rows.head.password_hash if rows.head is not None else None
    return hashed


def me(principal: Principal) -> dict[str, Any]:
    """The caller and the token's site, as the caller's row (read with the rights) has them."""
    return {
        "user": {
            "id": principal.user_id,
            "username": principal.username,
            "email": principal.email,
            "last_login": isoformat(principal.last_login),
            "platform_admin": principal.platform_admin,
        },
        "current_site": principal.site.summary() if principal.site is not None else None,
    }


def select_site(token: TokenContext, *, site: dict[str, Any] | None) -> dict[str, Any]:
    """A new token for the same session, scoped to `site` (the caller's membership of the site
    asked for, None when there is none), expiring with the session."""
    if site is None:
        raise Forbidden("You are not a member of that site")
    new_token, claims = tokens.issue(
        user_id=token.user_id,
        site_id=site["id"],
        session_id=token.session_id,
        expires_at=token.expires_at,
        auth_time_ms=token.auth_time_ms,
    )
    return {"token": new_token, "expires_at": epoch_isoformat(claims.expires_at), "current_site": site}
