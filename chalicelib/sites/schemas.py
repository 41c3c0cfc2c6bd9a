"""What the site endpoints accept and return (the OpenAPI document is generated from these)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import NotFound
from chalicelib.interactions.schemas import Pagination, Timestamp
from chalicelib.interactions.schemas import path_id as _record_path_id
from chalicelib.models import ROLES

__all__ = ["SiteUsersQuery", "SiteSummary", "SiteDetail", "SiteUser", "path_id"]

Role = Literal[ROLES]
MAX_SITE_ID = 2**31 - 1  # sites.id is an integer column


def path_id(raw: str | None, *, message: str = "Resource not found") -> int:
    """A site id from the path; beyond the column's range it cannot exist (404, not a 500 from
    PostgreSQL's "out of range for type integer")."""
    value = _record_path_id(raw, message=message)
    if value > MAX_SITE_ID:
        raise NotFound(message)
    return value


class SiteUsersQuery(Pagination):
    """GET /api/sites/{id}/users: `page` and `per_page`, as for interactions."""


class SiteSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    description: str | None
    role: Role = Field(description="the caller's role on this site")


class SiteDetail(SiteSummary):
    created_at: Timestamp
    user_count: int = Field(description="members of the site, inactive accounts included")
    interaction_count: int


class SiteUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    username: str
    email: str
    role: Role
    last_login: Timestamp | None
    is_active: bool
