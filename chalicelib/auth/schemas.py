"""Request bodies of the auth endpoints."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: the lookup would fail with a 500 instead of a refusal.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


_Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
                      AfterValidator(_no_nul)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: _Username
    # Capped so that nobody makes the server hash megabytes; no password is this long.
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SiteSelect(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    site_id: int
