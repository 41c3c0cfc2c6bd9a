"""Text rules shared by every schema: what PostgreSQL can store, trimming, blank meaning null."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints


def storable(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot hold a lone surrogate (JSON's "\\ud800")."""
    if value is None:
        return None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


def blank_to_none(value: str | None) -> str | None:
    return value or None


def text(min_length: int, max_length: int, description: str) -> Any:
    """A required string: trimmed, then `min_length`..`max_length` characters, storable."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(storable),
        Field(description=description),
    ]


def optional_text(max_length: int, description: str) -> Any:
    """An optional string: trimmed, at most `max_length` characters; blank or null is stored as null."""
    inner = Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=max_length),
        AfterValidator(storable),
        AfterValidator(blank_to_none),
    ]
    return Annotated[inner | None, Field(description=description)]


# An e-mail address as RFC 5321 writes one without quoting: a dot-atom local part of at most 64
# characters and an ASCII host name (API.md: addresses are ASCII only). Every address it allows is
# one the OpenAPI document's `format: email` allows too, so what the API stores it can document as such.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*$"
_EMAIL = re.compile(EMAIL_PATTERN)


def check_email(value: str) -> str:
    """A new account's address (the API's and the command line's rule)."""
    if not _EMAIL.fullmatch(value) or len(value.partition("@")[0]) > 64 or len(value) > 254:
        raise ValueError(
            "must be an e-mail address in ASCII: name@host.example, at most 64 characters before the '@'"
        )
    return value


# An e-mail address as the API writes it (the documentation's type).
EmailAddress = Annotated[str, Field(json_schema_extra={"format": "email"})]
