"""What the audit endpoints accept and return (the OpenAPI document is generated from these)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema

from chalicelib.audit.events import ACTIONS, FAMILIES
from chalicelib.kit.ids import INT32_MAX, Id, parse_id
from chalicelib.kit.pagination import Pagination, between
from chalicelib.kit.schema import Schema
from chalicelib.kit.timestamps import FromBound, Timestamp, ToBound
from chalicelib.models import AuditAction, AuditTarget, AuditVia


def _actions(value: Any) -> tuple[str, ...]:
    """A known action, or a family followed by "." (every action of it)."""
    if isinstance(value, str):
        if value in ACTIONS:
            return (value,)
        family = value[:-1] if value.endswith(".") else None
        if family in FAMILIES:
            return tuple(action for action in ACTIONS if action.startswith(value))
    raise ValueError(
        "must be a known action (e.g. interaction.updated) or a family followed by '.' "
        f"({', '.join(family + '.' for family in FAMILIES)})"
    )


def _target_id(value: Any) -> int:
    found = (
        parse_id(value.strip()) if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value) else None
    )
    if found is None:
        raise ValueError("must be a positive whole number")
    return found


ActionFilter = Annotated[
    tuple[str, ...],
    PlainValidator(_actions),
    WithJsonSchema(
        {
            "type": "string",
            "enum": [*ACTIONS, *(family + "." for family in FAMILIES)],
            "description": "an action, or a family followed by '.' for all of its actions",
        }
    ),
]
TargetId = Annotated[
    int, PlainValidator(_target_id), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 2**63 - 1})
]
ActorId = Annotated[
    int,
    PlainValidator(between(1, INT32_MAX)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": INT32_MAX}),
]


class AuditQuery(Pagination):
    """GET /api/sites/{id}/audit: the site's events, newest first, filtered."""

    action: ActionFilter | None = Field(None, description="an action, or a family followed by '.'")
    actor_id: ActorId | None = Field(None, description="events made by this user through the API")
    target_type: AuditTarget | None = Field(None, description="what the events are about")
    target_id: TargetId | None = Field(None, description="with target_type: one interaction, account or site")
    since: FromBound | None = Field(None, description="events at or after this")
    until: ToBound | None = Field(None, description="events at or before this")

    def problems(self) -> list[dict[str, str]]:
        found = super().problems()
        if self.target_id is not None and self.target_type is None:
            found.append({"field": "target_id", "message": "needs target_type"})
        if self.since and self.until and self.until < self.since:
            found.append({"field": "until", "message": "must not be before since"})
        return found


class HistoryQuery(Pagination):
    """GET /api/interactions/{id}/history: `page` and `per_page`, or `cursor`."""


# --- responses (documentation; the service builds dicts) -------------------------------------------


class _Read(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Actor(_Read):
    id: Id
    username: str | None = Field(description="the username when the change was made")


class Target(_Read):
    type: AuditTarget
    id: Id
    # Absent for other targets (the document's properties carry no default: not required, not null).
    version: int = Field(  # type: ignore[assignment]
        None, description="interactions only: the version after the change (the last one for a deletion)"
    )


class Change(_Read):
    from_: Any = Field(alias="from")
    to: Any


class EventRead(_Read):
    id: Id
    occurred_at: Timestamp
    via: AuditVia
    actor: Actor | None = Field(description="who, through the API; null for the command line")
    operator: str | None = Field(
        description="a command-line event's operator: the label OPERATOR_LABEL for the site's admins, "
        "null for anyone else (and for API events)"
    )
    site_id: Id | None
    request_id: str | None = Field(description="the id in the request's log line (X-Request-Id)")
    gateway_request_id: str | None = Field(description="API Gateway's own id for the request")
    action: AuditAction
    target: Target
    changes: dict[str, Change] = Field(
        description="only the fields that changed; never a password, hash or token"
    )
