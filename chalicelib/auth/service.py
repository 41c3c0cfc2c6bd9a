"""Login, site selection, logout and the caller's own details."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.auth import limits, passwords, tokens
from chalicelib.caller import Principal, TokenContext
from chalicelib.errors import AuthenticationFailed, Forbidden
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
    if passwords.needs_rehash(user.password_hash):
        values["password_hash"] = passwords.hash_password(password)
    # One statement: the login recorded (and the hash renewed) while the user's sites are read.
    touched = update(User).where(User.id == user.id).values(**values).returning(User.id).cte("touched")
    member_of = [callers.site_summary(row) for row in session.execute(
        callers.memberships().where(SiteMembership.user_id == user.id).order_by(Site.name, Site.id)
        .add_cte(touched))]
    current = member_of[0] if len(member_of) == 1 else None
    token, claims = tokens.issue(user_id=user.id, site_id=current["id"] if current else None,
                                 auth_time_ms=started_ms)
    return {
        "token": token,
        "expires_at": epoch_isoformat(claims.expires_at),
        "user": {"id": user.id, "username": user.username, "email": user.email},
        "sites": member_of,
        "current_site": current,
    }


def me(principal: Principal) -> dict[str, Any]:
    """The caller and the token's site, as the caller's row (read with the rights) has them."""
    return {
        "user": {"id": principal.user_id, "username": principal.username, "email": principal.email,
                 "last_login": isoformat(principal.last_login)},
        "current_site": principal.site,
    }


def select_site(token: TokenContext, *, site: dict[str, Any] | None) -> dict[str, Any]:
    """A new token for the same session, scoped to `site` (the caller's membership of the site
    asked for, None when there is none), expiring with the session."""
    if site is None:
        raise Forbidden("You are not a member of that site")
    new_token, claims = tokens.issue(user_id=token.user_id, site_id=site["id"], session_id=token.session_id,
                                     expires_at=token.expires_at, auth_time_ms=token.auth_time_ms)
    return {"token": new_token, "expires_at": epoch_isoformat(claims.expires_at), "current_site": site}
