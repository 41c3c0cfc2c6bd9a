"""Opaque list cursors: where the next page starts (the last row's sort value and id) and the first
page's total, sealed so that a client can neither read nor alter them, and bound to the query they
came from.

Query strings reach API Gateway's logs and a cursor carries a row's sort value (a title, a lead), so
it is encrypted, not only signed: XChaCha20-Poly1305 (libsodium's IETF AEAD, through PyNaCl), a
random 24-byte nonce per cursor. The keys are derived from the JWT signing keys (HMAC-SHA256 of a
label), so they rotate with them: a cursor sealed under the previous key still opens while that key
is configured (JWT_PREVIOUS_SECRET). The binding — the list, the site, the filters and the sort,
whatever the caller passes — is the AEAD's associated data: a cursor from another query fails to
open exactly as an altered one does.

Why PyNaCl (docs/api.md, Project decisions): the Lambda bundle has no `cryptography` on purpose —
PyJWT imports it whenever it is installed (≈ +26 ms on every cold start, the authorizer's too);
PyNaCl adds ≈ 3 ms to the API Lambda's import and nothing to the authorizer's, on the `cffi`
the bundle already carries for argon2.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from chalicelib.config import get_settings

VERSION = b"\x01"
_KEY_LABEL = b"interactions list cursor key v1"
_NONCE_BYTES = 24
_TAG_BYTES = 4  # names the key a cursor was sealed with (not secret: derived from the key)
MAX_LENGTH = 4096  # characters of a cursor as sent; ours stay far below (a sort value is <= 255 characters)


class BadCursor(ValueError):
    """Not a cursor of this query: forged, altered, from another list or query, or sealed with a
    key that has since been rotated out."""


def _derive(secret: str) -> tuple[bytes, bytes]:
    key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
    return hashlib.sha256(b"tag" + key).digest()[:_TAG_BYTES], key


_derived: dict[str, tuple[bytes, bytes]] = {}


def _keys() -> list[tuple[bytes, bytes]]:
    """(tag, key) for the current signing key, then the previous one during a rotation."""
    settings = get_settings()
    secrets = [settings.signing_key(), settings.previous_signing_key()]
    keys = []
    for secret in secrets:
        if secret:
            if secret not in _derived:
                _derived[secret] = _derive(secret)
            keys.append(_derived[secret])
    return keys


def seal(binding: str, payload: Any) -> str:
    """`payload` (JSON-serialisable) as a cursor bound to `binding`: URL-safe base64 without padding."""
    tag, key = _keys()[0]
    header = VERSION + tag
    nonce = os.urandom(_NONCE_BYTES)
    plain = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(plain, header + binding.encode(), nonce, key)
    return base64.urlsafe_b64encode(header + nonce + sealed).rstrip(b"=").decode("ascii")


def open_(binding: str, cursor: str) -> Any:
    """The payload of a cursor `seal` made with the same binding; BadCursor for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise BadCursor("not a cursor") from None
    header, nonce, sealed = raw[:5], raw[5 : 5 + _NONCE_BYTES], raw[5 + _NONCE_BYTES :]
    if header[:1] != VERSION or len(nonce) != _NONCE_BYTES or not sealed:
        raise BadCursor("not a cursor")
    for tag, key in _keys():
        if hmac.compare_digest(tag, header[1:]):
            try:
                plain = crypto_aead_xchacha20poly1305_ietf_decrypt(
                    sealed, header + binding.encode(), nonce, key
                )
            except CryptoError:
                raise BadCursor("altered, or from another query") from None
            return json.loads(plain)
    raise BadCursor("sealed with a key that is no longer in use")
