"""Request bodies of the auth endpoints."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

_Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: _Username
    # Capped so that nobody makes the server hash megabytes; no password is this long.
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SiteSelect(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    site_id: int
