"""Login, site selection, logout and the caller's own details."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.auth import limits, passwords, tokens
from chalicelib.caller import Principal
from chalicelib.errors import AuthenticationFailed, Forbidden
from chalicelib.kit.timestamps import epoch_isoformat, isoformat
from chalicelib.models import User

BAD_CREDENTIALS = "Invalid username or password"


def find_user(session: Session, username: str) -> User | None:
    return session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).first()


def login(session: Session, *, source_ip: str, username: str, password: str) -> dict[str, Any]:
    """Checks the client's rate limit and the lockout (reserving the attempt), then the password.
    Unknown, wrong and inactive all get the same answer after the same amount of work."""
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
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login = datetime.now(UTC)
    member_of = callers.sites_of(session, user_id=user.id)
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


def me(session: Session, principal: Principal) -> dict[str, Any]:
    user = session.get(User, principal.user_id)
    assert user is not None  # the principal was loaded in this transaction
    current = None
    if principal.site_id is not None:
        current = callers.membership(session, user_id=principal.user_id, site_id=principal.site_id)
    return {
        "user": {"id": user.id, "username": user.username, "email": user.email,
                 "last_login": isoformat(user.last_login)},
        "current_site": current,
    }


def sites_of(session: Session, *, user_id: int) -> list[dict[str, Any]]:
    return callers.sites_of(session, user_id=user_id)


def select_site(session: Session, principal: Principal, *, site_id: int) -> dict[str, Any]:
    """A new token for the same session, scoped to the site, expiring with the session."""
    site = None
    if 1 <= site_id <= tokens.MAX_DB_ID:
        site = callers.membership(session, user_id=principal.user_id, site_id=site_id)
    if site is None:
        raise Forbidden("You are not a member of that site")
    token, claims = tokens.issue(user_id=principal.user_id, site_id=site_id,
                                 session_id=principal.session_id, expires_at=principal.expires_at,
                                 auth_time_ms=principal.auth_time_ms)
    return {"token": token, "expires_at": epoch_isoformat(claims.expires_at), "current_site": site}
