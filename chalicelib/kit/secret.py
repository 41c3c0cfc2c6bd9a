"""One-time secrets handed to a person (a pending account's setup token): drawn from `secrets` when
issued, stored only as a digest."""

from __future__ import annotations

import hashlib
import secrets

SECRET_BYTES = 32  # 256 bits: a stored SHA-256 of it cannot be guessed back, so no slow hash is needed


def new_secret() -> tuple[str, str]:
    """(the secret to hand out, its digest to store)."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return secret, digest(secret)


def digest(secret: str) -> str:
    """The stored form of a secret: its SHA-256 in hex (text that cannot be encoded never matches)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
