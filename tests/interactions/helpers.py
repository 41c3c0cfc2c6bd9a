"""Shared set-up for the Finder's tests: two sites, a user of each role, tokens, valid bodies.

Tokens are issued with chalicelib.auth.tokens (what login does, without argon2's deliberate cost);
every request still goes through the real authorizer and middleware.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from chalicelib.auth import tokens
from chalicelib.db import session_scope
from chalicelib.models import Interaction
from tests.factories import json_headers, make_site, make_user

VALID = {
    "title": "Client Meeting",
    "type": "Meeting",
    "lead": "John Smith",
    "start_datetime": "2023-08-15T14:00:00",
    "timezone": "America/New_York",
    "end_datetime": "2023-08-15T15:30:00",
    "location": "Conference Room A",
    "description": "Quarterly review",
    "notes": None,
}


@dataclass
class World:
    site_a: int
    site_b: int
    users: dict[str, int]
    tokens: dict[str, str]

    def token(self, name: str) -> str:
        return self.tokens[name]


def token_for(user_id: int, site_id: int | None) -> str:
    return tokens.issue(user_id=user_id, site_id=site_id)[0]


def make_world() -> World:
    site_a = make_site("Marketing")
    site_b = make_site("Sales")
    users = {
        "admin": make_user("alice", sites={site_a: "admin", site_b: "viewer"}),
        "editor": make_user("eddie", sites={site_a: "editor"}),
        "viewer": make_user("vera", sites={site_a: "viewer"}),
        "other": make_user("oscar", sites={site_b: "admin"}),
        "nobody": make_user("nora"),
    }
    toks = {
        "admin": token_for(users["admin"], site_a),
        "editor": token_for(users["editor"], site_a),
        "viewer": token_for(users["viewer"], site_a),
        "other": token_for(users["other"], site_b),
        "no_site": token_for(users["editor"], None),
        "nobody": token_for(users["nobody"], None),
    }
    return World(site_a, site_b, users, toks)


def send(
    client: Any, method: str, path: str, token: str | None = None, body: Any = None, **headers: str
) -> Any:
    kwargs: dict[str, Any] = {"headers": json_headers(token, **headers)}
    if body is not None:
        kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
    else:
        kwargs["headers"].pop("Content-Type")
    return getattr(client.http, method.lower())(path, **kwargs)


def create(client: Any, token: str, **fields: Any) -> dict[str, Any]:
    response = send(client, "POST", "/api/interactions", token, {**VALID, **fields})
    assert response.status_code == 201, response.json_body
    return response.json_body["data"]["interaction"]


def insert_rows(site_id: int, rows: list[dict[str, Any]], *, user_id: int | None = None) -> list[int]:
    """Rows straight into the table (for list tests that need many or exact values)."""
    defaults = {
        "title": "T",
        "type": "Call",
        "lead": "L",
        "timezone": "UTC",
        "start_datetime": datetime(2024, 1, 1, tzinfo=UTC),
    }
    with session_scope() as session:
        objs = [Interaction(**{**defaults, **row, "site_id": site_id, "created_by": user_id}) for row in rows]
        session.add_all(objs)
        session.flush()
        return [obj.id for obj in objs]


def stored(interaction_id: int) -> dict[str, Any] | None:
    from chalicelib.interactions import queries
    from chalicelib.interactions.service import serialize

    with session_scope() as session:
        row = session.execute(select(*queries.COLUMNS).where(Interaction.id == interaction_id)).first()
        return serialize(queries.interaction(row)) if row else None


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json_body["error"]["code"]


def fields(response: Any) -> set[str]:
    return {d["field"] for d in response.json_body["error"].get("details", [])}
