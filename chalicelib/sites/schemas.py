"""What the site endpoints accept and return (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from chalicelib.access import SiteSummary
from chalicelib.kit import names
from chalicelib.kit.emails import NewEmail
from chalicelib.kit.ids import Id
from chalicelib.kit.pagination import Pagination
from chalicelib.kit.schema import Schema
from chalicelib.kit.text import EmailAddress, optional_text, text
from chalicelib.kit.timestamps import Timestamp
from chalicelib.models import InvitationStatus, RoleName

__all__ = [
    "SiteUsersQuery",
    "SiteSummary",
    "SiteDetail",
    "SiteUser",
    "SiteCreate",
    "SiteUpdate",
    "MemberUpdate",
    "InvitationCreate",
    "InvitationsQuery",
    "InvitationRead",
]

Role = RoleName
SERVER_OWNED = ("id", "created_at", "role", "user_count", "interaction_count")

if TYPE_CHECKING:  # what the fields hold once validated; pydantic builds them from the runtime side
    SiteName = str
    SiteDescription = str | None
else:
    SiteName = Annotated[
        text(
            1,
            100,
            "1-100 characters after trimming, without control, bidirectional or invisible characters "
            "(joiners included); unique by their confusable skeleton (Unicode TR39, case-folded)",
        ),
        AfterValidator(names.check_strict),
    ]
    SiteDescription = optional_text(1000, "at most 1000 characters after trimming; blank or null clears it")


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


class InvitationCreate(_Body):
    """POST /api/sites/{id}/invitations (the site's admins): the token goes to the address."""

    email: NewEmail
    role: Role


class MemberUpdate(_Body):
    role: Role


# --- responses (documentation; the services build dicts) -------------------------------------------


class SiteDetail(SiteSummary):
    created_at: Timestamp
    user_count: int = Field(description="members of the site, inactive accounts included")
    interaction_count: int


class SiteUser(Schema):
    model_config = ConfigDict(extra="forbid")

    id: Id
    username: str
    email: EmailAddress
    role: Role
    last_login: Timestamp | None
    is_active: bool


class InvitationsQuery(Pagination):
    """GET /api/sites/{id}/invitations: `page`, `per_page` and an optional `status`."""

    status: InvitationStatus | None = Field(
        None, description="only invitations with this status (expired: pending past their expiry)"
    )


class Inviter(Schema):
    model_config = ConfigDict(extra="forbid")

    id: Id
    username: str


class InvitationRead(Schema):
    model_config = ConfigDict(extra="forbid")

    id: Id
    email: EmailAddress
    role: Role
    status: InvitationStatus = Field(description="expired: still pending when its expiry passed")
    created_at: Timestamp
    expires_at: Timestamp
    invited_by: Inviter | None = Field(description="the admin who invited; null for the operator's")
    delivery: Literal["sent", "queued"] = Field(
        description="queued: the message could not be sent yet; it is retried with a new token"
    )
