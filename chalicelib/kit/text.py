"""Text rules shared by every schema: what PostgreSQL can store, trimming, blank meaning null."""

from __future__ import annotations

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


# An e-mail address as the API writes it (the documentation's type; the rules for one that is sent
# are the schemas').
EmailAddress = Annotated[str, Field(json_schema_extra={"format": "email"})]
