"""Plain factory functions for tests."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from chalicelib.auth.passwords import hash_password
from chalicelib.db import session_scope
from chalicelib.kit import names
from chalicelib.models import Site, SiteMembership, User

PASSWORD = "correct horse battery staple"


@cache
def _hash(password: str) -> str:
    return hash_password(password)  # argon2 is slow on purpose: hash each password once


def make_site(name: str = "Marketing", *, description: str | None = "The site", active: bool = True) -> int:
    with session_scope() as session:
        site = Site(name=name, name_skeleton=names.skeleton(name), description=description, is_active=active)
        session.add(site)
        session.flush()
        return site.id


def make_user(
    username: str = "jdoe",
    *,
    password: str = PASSWORD,
    email: str | None = None,
    active: bool = True,
    sites: dict[int, str] | None = None,
) -> int:
    with session_scope() as session:
        user = User(
            username=username,
            email=email or f"{username.lower()}@example.com",
            password_hash=_hash(password),
            is_active=active,
        )
        session.add(user)
        session.flush()
        for site_id, role in (sites or {}).items():
            session.add(SiteMembership(user_id=user.id, site_id=site_id, role=role))
        return user.id


def make_platform_admin(username: str, *, on: bool = True) -> None:
    from sqlalchemy import update

    with session_scope() as session:
        session.execute(update(User).where(User.username == username).values(platform_admin=on))


def json_headers(token: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def post_json(client: Any, path: str, body: Any, token: str | None = None, **headers: str) -> Any:
    return client.http.post(path, body=json.dumps(body), headers=json_headers(token, **headers))


def login(client: Any, username: str = "jdoe", password: str = PASSWORD) -> dict[str, Any]:
    response = post_json(client, "/api/auth/login", {"username": username, "password": password})
    assert response.status_code == 200, response.json_body
    return response.json_body["data"]


def select_site(client: Any, token: str, site_id: int) -> str:
    response = post_json(client, "/api/auth/site", {"site_id": site_id}, token)
    assert response.status_code == 200, response.json_body
    return response.json_body["data"]["token"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
