"""What the auth endpoints accept and return (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from chalicelib.access import SiteSummary
from chalicelib.auth.passwords import MAX_LENGTH, MIN_LENGTH
from chalicelib.kit.ids import Id
from chalicelib.kit.schema import Schema
from chalicelib.kit.text import EmailAddress
from chalicelib.kit.timestamps import Timestamp
from chalicelib.models import RoleName


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: the lookup would fail with a 500 instead of a refusal.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


_Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_no_nul)
]


class LoginRequest(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: _Username
    # Capped so that nobody makes the server hash megabytes; no password is this long.
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SiteSelect(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    site_id: Id


def _no_defaults(schema: dict[str, Any], _model: Any) -> None:
    """Optional request properties carry no `default` (a client generator would make them required)."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


# A new password: the rest of the rule (not the username) needs the account, and is checked with it.
_NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
        description=f"{MIN_LENGTH}-{MAX_LENGTH} characters, not the username (in any case)",
    ),
]


_Token = Annotated[
    str, Field(min_length=1, max_length=256, description="the token of the invitation's message")
]


class InvitationPreviewRequest(Schema):
    """POST /api/auth/invitations/preview."""

    model_config = ConfigDict(extra="forbid", strict=True)

    token: _Token


class InvitationAcceptRequest(Schema):
    """POST /api/auth/invitations/accept: `username` only when no account has the address (see the
    preview's `account_exists`); `password` is then the new account's, else the account's own."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_defaults)

    token: _Token
    username: Annotated[
        str,
        Field(
            max_length=256,
            description="a new account's username (3-64 characters of A-Z a-z 0-9 . _ -); "
            "not sent when an account has the address",
        ),
    ] = None  # type: ignore[assignment]  # not sent is None; a sent null is refused by strict str
    password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]


class LogoutRequest(Schema):
    """POST /api/auth/logout: no body, `{}` or `{"all": false}` end this session; `{"all": true}`
    ends every session of the user."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_no_defaults)

    all: bool = Field(False, description="true: end every session of the user, not only this one")


class PasswordChange(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    current_password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
    new_password: _NewPassword


# --- responses (documentation; the services build dicts) ------------------------------------------


class _Read(Schema):
    model_config = ConfigDict(extra="forbid")


class UserRef(_Read):
    id: Id
    username: str
    email: EmailAddress


class UserMe(UserRef):
    last_login: Timestamp | None
    platform_admin: bool = Field(description="may create sites (POST /api/sites)")


class LoginData(_Read):
    token: str = Field(description="a JWT for `Authorization: Bearer <token>`")
    expires_at: Timestamp
    user: UserRef
    sites: list[SiteSummary] = Field(description="the user's active sites, by name")
    current_site: SiteSummary | None = Field(
        description="the token's site: set when the user has exactly one"
    )


class SiteToken(_Read):
    token: str = Field(description="a JWT for the same session, scoped to the site")
    expires_at: Timestamp = Field(description="the session's original expiry")
    current_site: SiteSummary


class PasswordChanged(_Read):
    token: str = Field(
        description="a JWT for a new session, on the same site; every earlier session has ended"
    )
    expires_at: Timestamp
    current_site: SiteSummary | None


class InvitationSite(_Read):
    id: Id
    name: str


class InvitationPreview(_Read):
    site: InvitationSite
    role: RoleName
    email: EmailAddress
    account_exists: bool = Field(
        description="true: accept with the account's password; false: choose a username and a password"
    )
