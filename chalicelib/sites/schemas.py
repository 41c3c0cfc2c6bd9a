"""What the site endpoints accept and return (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chalicelib.caller import SiteSummary
from chalicelib.kit.ids import Id
from chalicelib.kit.pagination import Pagination
from chalicelib.kit.schema import Schema
from chalicelib.kit.text import EMAIL_PATTERN, EmailAddress, check_email, optional_text, storable, text
from chalicelib.kit.timestamps import Timestamp
from chalicelib.kit.usernames import NewUsername
from chalicelib.models import RoleName

__all__ = [
    "SiteUsersQuery",
    "SiteSummary",
    "SiteDetail",
    "SiteUser",
    "SiteCreate",
    "SiteUpdate",
    "MemberAdd",
    "MemberUpdate",
    "MemberAdded",
    "SetupTokenIssued",
]

Role = RoleName
SERVER_OWNED = ("id", "created_at", "role", "user_count", "interaction_count")

if TYPE_CHECKING:  # what the fields hold once validated; pydantic builds them from the runtime side
    SiteName = str
    SiteDescription = str | None
else:
    SiteName = text(1, 100, "1-100 characters after trimming, unique case-insensitively")
    SiteDescription = optional_text(1000, "at most 1000 characters after trimming; blank or null clears it")


Email = Annotated[
    str,
    Field(max_length=254),
    AfterValidator(storable),
    AfterValidator(check_email),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 254,
            "format": "email",
            "pattern": EMAIL_PATTERN,
            "description": "an ASCII address (name@host.example; at most 64 characters before the '@'), "
            "at most 254 characters; unique case-insensitively",
        }
    ),
]


class SiteUsersQuery(Pagination):
    """GET /api/sites/{id}/users: `page` and `per_page`, or `cursor`, as for interactions."""


# --- bodies ----------------------------------------------------------------------------------------


class _Body(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)


class SiteCreate(_Body):
    """POST /api/sites (platform admins): the caller becomes the new site's admin."""

    name: SiteName
    description: SiteDescription = None


class SiteUpdate(_Body):
    """PUT /api/sites/{id} (the site's admins): only the fields sent change; null clears the
    description. The detail's server-owned fields are ignored when sent back."""

    name: SiteName = None  # type: ignore[assignment]  # not sent is None; a sent null is refused
    description: SiteDescription = None

    @model_validator(mode="before")
    @classmethod
    def _ignore_server_owned(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in SERVER_OWNED}
        return data

    @field_validator("name", mode="before")
    @classmethod
    def _name_required(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (a site has a name)")
        return value

    def sent(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class MemberAdd(_Body):
    """POST /api/sites/{id}/users: an existing account (username and e-mail both its own), or a new
    pending one when neither is taken."""

    username: NewUsername
    email: Email
    role: Role


class MemberUpdate(_Body):
    role: Role


# --- responses (documentation; the services build dicts) -------------------------------------------


class SiteDetail(SiteSummary):
    created_at: Timestamp
    user_count: int = Field(description="members of the site, inactive and pending accounts included")
    interaction_count: int


class SiteUser(Schema):
    model_config = ConfigDict(extra="forbid")

    id: Id
    username: str
    email: EmailAddress
    role: Role
    last_login: Timestamp | None
    is_active: bool
    pending: bool = Field(description="created by a site admin, waiting for its first password")


class MemberAdded(Schema):
    model_config = ConfigDict(extra="forbid")

    user: SiteUser
    created: bool = Field(description="true: a new pending account, with its setup token")
    # Absent unless created (the document's properties carry no default: not required, not null).
    setup_token: str = Field(None, description="only when created: hand it to the person (once)")  # type: ignore[assignment]
    setup_expires_at: Timestamp = Field(None, description="only when created")  # type: ignore[assignment]


class SetupTokenIssued(Schema):
    model_config = ConfigDict(extra="forbid")

    setup_token: str = Field(description="hand it to the person; earlier tokens stop working")
    setup_expires_at: Timestamp
