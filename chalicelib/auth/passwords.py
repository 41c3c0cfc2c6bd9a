"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106 low-memory profile), and the rule
for new passwords (setup, change, the CLI).

argon2 is loaded on first use, not at init: only logins and password changes need it, and an
ordinary cold start's init is the first user's wait (a SnapStart init loads it: lifecycle.prime).
"""

from __future__ import annotations

import secrets
from typing import Any

MIN_LENGTH, MAX_LENGTH = 8, 1024
_hasher: Any = None
_dummy_hash: str | None = None


def hasher() -> Any:
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def hash_password(password: str) -> str:
    return str(hasher().hash(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches. With no hash (unknown user) a dummy hash is checked
    anyway, so that unknown and known usernames take the same time."""
    from argon2.exceptions import InvalidHashError, VerificationError

    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password(secrets.token_urlsafe(32))
        password_hash = _dummy_hash
        password = password + "\x00never-matches"
    try:
        return bool(hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return bool(hasher().check_needs_rehash(password_hash))


def problem(password: str, *, username: str) -> str | None:
    """Why a new password is refused, or None: 8-1024 characters, not the username in any case."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"must have {MIN_LENGTH} to {MAX_LENGTH} characters"
    if password.casefold() == username.casefold():
        return "must not be the username"
    return None
