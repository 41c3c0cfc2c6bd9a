"""GET /api/sites, /api/sites/{id} and /api/sites/{id}/users."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from chalicelib.db import session_scope
from chalicelib.models import Site, User
from tests.factories import make_site, make_user
from tests.interactions.helpers import error, fields, insert_rows, send


def test_sites_lists_the_callers_active_sites_by_name_with_the_role(client, world):
    make_site("Archive", active=False)
    response = send(client, "GET", "/api/sites", world.token("admin"))
    assert response.status_code == 200
    assert response.json_body["data"] == {
        "sites": [
            {"id": world.site_a, "name": "Marketing", "description": "The site", "role": "admin"},
            {"id": world.site_b, "name": "Sales", "description": "The site", "role": "viewer"},
        ]
    }


def test_sites_needs_a_token_but_no_site(client, world):
    assert send(client, "GET", "/api/sites", world.token("no_site")).status_code == 200
    assert send(client, "GET", "/api/sites", world.token("nobody")).json_body["data"] == {"sites": []}
    assert error(send(client, "GET", "/api/sites", "bad")) == (401, "AUTHENTICATION_ERROR")


def test_site_detail_has_counts_and_the_callers_role(client, world):
    inactive_member = make_user("ina", sites={world.site_a: "viewer"}, active=False)
    assert inactive_member
    insert_rows(world.site_a, [{}, {}, {}])
    insert_rows(world.site_b, [{}])
    response = send(client, "GET", f"/api/sites/{world.site_a}", world.token("viewer"))
    assert response.status_code == 200
    site = response.json_body["data"]["site"]
    assert list(site) == [
        "id",
        "name",
        "description",
        "created_at",
        "role",
        "user_count",
        "interaction_count",
    ]
    assert site["role"] == "viewer"
    assert site["user_count"] == 4  # alice, eddie, vera and the inactive ina
    assert site["interaction_count"] == 3
    assert site["created_at"].endswith("Z")


def test_site_detail_works_for_any_of_the_callers_sites(client, world):
    # alice's token is scoped to site A; she is also a viewer of site B.
    response = send(client, "GET", f"/api/sites/{world.site_b}", world.token("admin"))
    assert response.json_body["data"]["site"]["role"] == "viewer"


@pytest.mark.parametrize("which", ["not_member", "inactive", "unknown", "zero", "text", "huge"])
def test_site_detail_is_404_when_the_caller_may_not_see_it(client, world, which):
    inactive = make_site("Old", active=False)
    make_user("olga", sites={inactive: "admin"})
    token = world.token("other")
    site = {
        "not_member": world.site_a,
        "inactive": inactive,
        "unknown": 424242,
        "zero": 0,
        "text": "abc",
        "huge": 2**31,
    }[which]
    if which == "inactive":
        from tests.interactions.helpers import token_for

        with session_scope() as session:
            user_id = session.query(User.id).filter(User.username == "olga").scalar()
        token = token_for(user_id, None)
    assert error(send(client, "GET", f"/api/sites/{site}", token)) == (404, "RESOURCE_NOT_FOUND")


def test_users_lists_members_by_username_for_the_sites_admin(client, world):
    make_user("Bruno", sites={world.site_a: "viewer"})
    login = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    with session_scope() as session:
        session.execute(
            update(User).where(User.username == "eddie").values(last_login=login, is_active=False)
        )
    response = send(client, "GET", f"/api/sites/{world.site_a}/users", world.token("admin"))
    assert response.status_code == 200
    users = response.json_body["data"]["users"]
    assert [u["username"] for u in users] == ["alice", "Bruno", "eddie", "vera"]
    eddie = users[2]
    assert eddie == {
        "id": world.users["editor"],
        "username": "eddie",
        "email": "eddie@example.com",
        "role": "editor",
        "last_login": "2024-05-01T09:30:00Z",
        "is_active": False,
    }
    assert response.json_body["meta"] == {
        "pagination": {
            "page": 1,
            "per_page": 25,
            "total_pages": 1,
            "total_records": 4,
            "total_exact": True,
            "next_cursor": None,
        }
    }


def test_users_are_paginated_like_interactions(client, world):
    for name in ("u1", "u2", "u3"):
        make_user(name, sites={world.site_a: "viewer"})
    response = send(client, "GET", f"/api/sites/{world.site_a}/users?per_page=2&page=3", world.token("admin"))
    assert [u["username"] for u in response.json_body["data"]["users"]] == ["u3", "vera"]
    assert response.json_body["meta"]["pagination"] == {
        "page": 3,
        "per_page": 2,
        "total_pages": 3,
        "total_records": 6,
        "total_exact": True,
        "next_cursor": None,
    }
    past = send(client, "GET", f"/api/sites/{world.site_a}/users?per_page=2&page=9", world.token("admin"))
    assert past.json_body["data"]["users"] == []
    assert past.json_body["meta"]["pagination"]["total_records"] == 6


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_users_is_403_for_members_who_are_not_admins(client, world, role):
    response = send(client, "GET", f"/api/sites/{world.site_a}/users", world.token(role))
    assert error(response) == (403, "AUTHORIZATION_ERROR")


def test_users_is_403_for_a_non_admin_member_even_with_bad_parameters(client, world):
    response = send(client, "GET", f"/api/sites/{world.site_a}/users?per_page=0", world.token("viewer"))
    assert error(response) == (403, "AUTHORIZATION_ERROR")


def test_users_is_404_for_non_members_and_inactive_sites(client, world):
    assert error(send(client, "GET", f"/api/sites/{world.site_a}/users", world.token("other"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )
    with session_scope() as session:
        session.execute(update(Site).where(Site.id == world.site_a).values(is_active=False))
    assert error(send(client, "GET", f"/api/sites/{world.site_a}/users", world.token("admin"))) == (
        404,
        "RESOURCE_NOT_FOUND",
    )


@pytest.mark.parametrize(
    "query,field", [("per_page=0", "per_page"), ("per_page=101", "per_page"), ("page=abc", "page")]
)
def test_users_bad_parameters_are_400_for_the_admin(client, world, query, field):
    response = send(client, "GET", f"/api/sites/{world.site_a}/users?{query}", world.token("admin"))
    assert error(response) == (400, "VALIDATION_ERROR")
    assert fields(response) == {field}
