"""E-mail addresses: the rule for new ones, and the one way every layer compares them.

A new address (an invitation's, or an account made with the command line) is ASCII only (local
part and domain: no internationalised addresses), at most 254 characters, written as RFC 5321 writes
one without quoting (`kit.text.check_email`: a dot-atom of at most 64 characters, `@`, a host name —
so JSON Schema's `format: email`, which the OpenAPI document declares, holds of every address the API
stores), and well formed as `email-validator` reads it — syntax only (`check_deliverability=False`:
no DNS lookup), no quoted local part, no IP address for a domain, no display name. It is stored
exactly as given.

Addresses are compared case-insensitively by lowercasing ASCII letters only: `fold()` in Python,
`folded()` in SQL (`lower(<column> COLLATE "C")`, which lowercases A-Z and nothing else under every
database locale) — what the generated columns `users.email_folded` and `invitations.email_folded`
hold, and what their unique indexes compare (one address, one account; one pending invitation per
site and address).
"""

from __future__ import annotations

import string
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema
from sqlalchemy import ColumnElement, func

from chalicelib.kit.text import EMAIL_PATTERN, check_email

MAX_LENGTH = 254
RULE = "must be an e-mail address of ASCII characters, at most 254 of them"
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(address: str) -> str:
    """The key an address is compared by: A-Z lowercased, every other character as it is."""
    return address.translate(_ASCII_LOWER)


def folded(column: Any) -> ColumnElement[str]:
    """The same fold in SQL (the expression of the `email_folded` columns)."""
    return func.lower(column.collate("C"))


def check_new(address: str) -> str:
    """An address for an invitation or a new account, exactly as it will be stored, or ValueError
    naming what is wrong."""
    if not isinstance(address, str) or not address:
        raise ValueError(RULE)
    if len(address) > MAX_LENGTH:
        raise ValueError(f"must be at most {MAX_LENGTH} characters")
    if not address.isascii() or not address.isprintable():
        raise ValueError("must be an e-mail address of printable ASCII characters")
    check_email(address)
    # Imported on first use (about 40 ms of regular expressions): an on-demand cold start that
    # checks no address never pays for it; a SnapStart init does (chalicelib/lifecycle.py).
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
        )
    except EmailNotValidError as exc:
        raise ValueError(f"must be an e-mail address: {exc}") from None
    return address


NewEmail = Annotated[
    str,
    AfterValidator(check_new),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "maxLength": MAX_LENGTH,
            "pattern": EMAIL_PATTERN,
            "description": "an e-mail address of ASCII characters (no internationalised addresses), "
            "compared case-insensitively",
            "examples": ["jdoe@example.com"],
        }
    ),
]
