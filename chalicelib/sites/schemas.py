"""What the site endpoints accept and return (the OpenAPI document is generated from these)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.caller import SiteSummary
from chalicelib.kit.pagination import Pagination
from chalicelib.kit.timestamps import Timestamp
from chalicelib.models import ROLES

__all__ = ["SiteUsersQuery", "SiteSummary", "SiteDetail", "SiteUser"]

Role = Literal[ROLES]


class SiteUsersQuery(Pagination):
    """GET /api/sites/{id}/users: `page` and `per_page`, as for interactions."""


class SiteDetail(SiteSummary):
    created_at: Timestamp
    user_count: int = Field(description="members of the site, inactive accounts included")
    interaction_count: int


class SiteUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    username: str
    email: str
    role: Role  # type: ignore[valid-type]
    last_login: Timestamp | None
    is_active: bool
