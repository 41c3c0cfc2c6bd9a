"""The audit trail: interaction changes record their events in the statement that makes them, with
field-level changes, the actor and both request ids; GET /api/interactions/{id}/history and
GET /api/sites/{id}/audit read them, scoped to one site like interactions."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from chalicelib.db import session_scope
from tests.audit.helpers import event_count, events
from tests.factories import make_user
from tests.faults.locks import side_connection
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import VALID, create, error, fields, make_world, send, stored, token_for
from tests.support import call_app

FIELDS = (
    "title",
    "type",
    "lead",
    "start_datetime",
    "timezone",
    "end_datetime",
    "location",
    "description",
    "notes",
)


@pytest.fixture
def world():
    return make_world()


def history(client, token, interaction_id, query=""):
    return send(client, "GET", f"/api/interactions/{interaction_id}/history{query}", token)


def site_audit(client, world, query="", token="admin", site=None):
    return send(
        client, "GET", f"/api/sites/{world.site_a if site is None else site}/audit{query}", world.token(token)
    )


# --- what interaction changes record ---------------------------------------------------------------


def test_a_create_records_every_field_it_set_from_null(client, world):
    item = create(client, world.token("editor"))
    [event] = events("interaction.created")
    assert event["target"] == {"type": "interaction", "id": item["id"], "version": 1}
    assert event["site_id"] == world.site_a and event["via"] == "api" and event["operator"] is None
    assert event["actor"] == {"id": world.users["editor"], "username": "eddie"}
    assert event["changes"] == {
        name: {"from": None, "to": item[name]} for name in FIELDS if item[name] is not None
    }
    assert event["changes"]["start_datetime"] == {"from": None, "to": "2023-08-15T18:00:00Z"}
    assert event["occurred_at"].endswith("Z")


def test_an_update_records_only_what_changed_and_the_new_version(client, world):
    item = create(client, world.token("editor"))
    response = send(
        client,
        "PUT",
        f"/api/interactions/{item['id']}",
        world.token("admin"),
        {"title": "Renamed", "lead": item["lead"], "notes": "Bring slides", "timezone": "Europe/Paris"},
    )
    assert response.status_code == 200
    [event] = events("interaction.updated")
    assert event["target"] == {"type": "interaction", "id": item["id"], "version": 2}
    assert event["actor"]["username"] == "alice"
    assert event["changes"] == {
        "title": {"from": "Client Meeting", "to": "Renamed"},
        "notes": {"from": None, "to": "Bring slides"},
        "timezone": {"from": "America/New_York", "to": "Europe/Paris"},
    }


def test_a_no_op_update_records_nothing(client, world):
    item = create(client, world.token("editor"))
    before = event_count()
    assert (
        send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {}).status_code == 200
    )
    assert (
        send(
            client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": item["title"]}
        ).status_code
        == 200
    )
    assert event_count() == before


def test_a_delete_records_every_field_to_null_with_the_last_version(client, world):
    item = create(client, world.token("editor"), notes="Keep")
    send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": "Second"})
    assert send(client, "DELETE", f"/api/interactions/{item['id']}", world.token("editor")).status_code == 200
    [event] = events("interaction.deleted")
    assert event["target"] == {"type": "interaction", "id": item["id"], "version": 2}
    assert event["changes"]["title"] == {"from": "Second", "to": None}
    assert set(event["changes"]) == {name for name in FIELDS if item[name] is not None}
    assert all(change["to"] is None for change in event["changes"].values())


def test_a_replayed_keyed_create_records_nothing_more(client, world):
    for _ in range(2):
        response = send(
            client, "POST", "/api/interactions", world.token("editor"), VALID, **{"Idempotency-Key": "k"}
        )
        assert response.status_code == 201
    assert len(events("interaction.created")) == 1


def test_refused_writes_record_nothing(client, world):
    item = create(client, world.token("editor"))
    before = event_count()
    send(client, "PUT", f"/api/interactions/{item['id']}", world.token("viewer"), {"title": "No"})
    send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": ""})
    send(
        client,
        "PUT",
        f"/api/interactions/{item['id']}",
        world.token("editor"),
        {"title": "Late"},
        **{"If-Match": '"9"'},
    )
    send(client, "POST", "/api/interactions", world.token("editor"), {**VALID, "type": "Party"})
    send(client, "DELETE", f"/api/interactions/{item['id']}", world.token("other"))
    assert event_count() == before


def test_events_carry_the_request_id_of_the_log_line(client, world, access_log):
    item = create(client, world.token("editor"))
    send(
        client,
        "PUT",
        f"/api/interactions/{item['id']}",
        world.token("editor"),
        {"title": "X"},
        **{"X-Request-Id": "client-chosen-id.1"},
    )
    event = events("interaction.updated")[0]
    assert event["request_id"] == "client-chosen-id.1"
    line = next(r for r in access_log.records if r["method"] == "PUT")
    assert line["request_id"] == "client-chosen-id.1"
    assert event["gateway_request_id"] == line["gateway_request_id"] and event["gateway_request_id"]
    created = events("interaction.created")[0]
    assert created["request_id"] and created["request_id"] != created["gateway_request_id"]


def test_the_gateway_request_id_is_api_gateways_own(app_module, world):
    item_id = None
    body = json.dumps({**VALID})
    response = call_app(
        app_module.app,
        "POST",
        "/api/interactions",
        token=world.token("editor"),
        headers={"Content-Type": "application/json", "X-Request-Id": "mine"},
        body=body,
    )
    assert response.status_code == 201
    item_id = response.json_body["data"]["interaction"]["id"]
    event = events("interaction.created", target_id=item_id)[0]
    assert event["request_id"] == "mine"
    uuid.UUID(event["gateway_request_id"])  # the proxy event's requestContext.requestId
    assert event["gateway_request_id"] != "mine"


def test_a_failing_event_write_rolls_the_change_back(client, world):
    item = create(client, world.token("editor"))
    with side_connection() as conn:
        conn.execute(
            text("""CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'no events today'; END $$""")
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse_events BEFORE INSERT ON audit_events "
                "FOR EACH STATEMENT EXECUTE FUNCTION refuse_events()"
            )
        )
        conn.commit()
    try:
        before = fingerprint()
        assert (
            send(
                client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": "Never"}
            ).status_code
            == 500
        )
        assert send(client, "POST", "/api/interactions", world.token("editor"), VALID).status_code == 500
        assert (
            send(client, "DELETE", f"/api/interactions/{item['id']}", world.token("editor")).status_code
            == 500
        )
        assert (
            send(
                client,
                "POST",
                f"/api/sites/{world.site_a}/invitations",
                world.token("admin"),
                {"email": "ghost@example.com", "role": "viewer"},
            ).status_code
            == 500
        )
        assert (
            send(
                client,
                "PUT",
                f"/api/sites/{world.site_a}/users/{world.users['viewer']}",
                world.token("admin"),
                {"role": "editor"},
            ).status_code
            == 500
        )
        assert fingerprint() == before
        assert stored(item["id"])["title"] == item["title"]
    finally:
        with side_connection() as conn:
            conn.execute(text("DROP TRIGGER refuse_events ON audit_events"))
            conn.execute(text("DROP FUNCTION refuse_events()"))
            conn.commit()


def test_events_are_append_only(client, world):
    create(client, world.token("editor"))
    with side_connection() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("UPDATE audit_events SET action = 'site.created'"))


# --- GET /api/interactions/{id}/history ------------------------------------------------------------


def test_history_is_newest_first_and_paginated(client, world):
    item = create(client, world.token("editor"))
    for n in range(3):
        send(client, "PUT", f"/api/interactions/{item['id']}", world.token("editor"), {"title": f"T{n}"})

    response = history(client, world.token("viewer"), item["id"], "?per_page=2")

    assert response.status_code == 200
    found = response.json_body["data"]["events"]
    assert [(e["action"], e["target"]["version"]) for e in found] == [
        ("interaction.updated", 4),
        ("interaction.updated", 3),
    ]
    pagination = response.json_body["meta"]["pagination"]
    assert pagination.pop("next_cursor")
    assert pagination == {"page": 1, "per_page": 2, "total_pages": 2, "total_records": 4, "total_exact": True}
    last = history(client, world.token("viewer"), item["id"], "?per_page=2&page=2").json_body
    assert [e["action"] for e in last["data"]["events"]][-1] == "interaction.created"
    past = history(client, world.token("viewer"), item["id"], "?per_page=2&page=5").json_body
    assert past["data"]["events"] == [] and past["meta"]["pagination"]["total_records"] == 4


def test_history_of_another_sites_interaction_is_404(client, world):
    item = create(client, world.token("other"))
    assert error(history(client, world.token("editor"), item["id"])) == (404, "RESOURCE_NOT_FOUND")
    for raw in ("999999", "0", "abc", str(2**63)):
        assert error(history(client, world.token("editor"), raw)) == (404, "RESOURCE_NOT_FOUND")


def test_history_of_a_deleted_interaction_is_404_like_get(client, world):
    item = create(client, world.token("editor"))
    send(client, "DELETE", f"/api/interactions/{item['id']}", world.token("editor"))
    assert error(history(client, world.token("editor"), item["id"])) == (404, "RESOURCE_NOT_FOUND")


def test_history_checks_in_the_order_of_the_contract(client, world):
    item = create(client, world.token("editor"))
    assert error(history(client, world.token("no_site"), item["id"])) == (403, "SITE_CONTEXT_REQUIRED")
    assert error(history(client, "bad", item["id"])) == (401, "AUTHENTICATION_ERROR")
    response = history(client, world.token("editor"), 999999, "?per_page=0&x=1")
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == {"per_page", "x"}


# --- GET /api/sites/{id}/audit ---------------------------------------------------------------------


@pytest.fixture
def trail(client, world):
    """Events in both sites: interactions changed by eddie and alice, a member's role changed, one
    deleted."""
    first = create(client, world.token("editor"))
    second = create(client, world.token("admin"), title="Second")
    send(client, "PUT", f"/api/interactions/{first['id']}", world.token("admin"), {"title": "Edited"})
    send(client, "DELETE", f"/api/interactions/{second['id']}", world.token("editor"))
    send(
        client,
        "PUT",
        f"/api/sites/{world.site_a}/users/{world.users['viewer']}",
        world.token("admin"),
        {"role": "editor"},
    )
    elsewhere = create(client, world.token("other"))
    return {"first": first, "second": second, "elsewhere": elsewhere}


def test_the_site_audit_lists_the_sites_events_newest_first(client, world, trail):
    response = site_audit(client, world)

    assert response.status_code == 200
    found = response.json_body["data"]["events"]
    assert [e["action"] for e in found] == [
        "membership.role_changed",
        "interaction.deleted",
        "interaction.updated",
        "interaction.created",
        "interaction.created",
    ]
    assert all(e["site_id"] == world.site_a for e in found)
    assert [e["id"] for e in found] == sorted((e["id"] for e in found), reverse=True)
    assert response.json_body["meta"]["pagination"]["total_records"] == 5
    assert trail["elsewhere"]["id"] not in {
        e["target"]["id"] for e in found if e["target"]["type"] == "interaction"
    }


def test_deleted_interactions_events_stay_listed(client, world, trail):
    found = site_audit(client, world, f"?target_type=interaction&target_id={trail['second']['id']}").json_body
    assert [e["action"] for e in found["data"]["events"]] == ["interaction.deleted", "interaction.created"]


@pytest.mark.parametrize(
    "query,actions",
    [
        ("?action=interaction.created", ["interaction.created"] * 2),
        (
            "?action=interaction.",
            ["interaction.deleted", "interaction.updated", "interaction.created", "interaction.created"],
        ),
        ("?action=membership.", ["membership.role_changed"]),
        ("?target_type=user", ["membership.role_changed"]),
    ],
)
def test_the_site_audit_filters(client, world, trail, query, actions):
    response = site_audit(client, world, query)
    assert [e["action"] for e in response.json_body["data"]["events"]] == actions
    assert response.json_body["meta"]["pagination"]["total_records"] == len(actions)


def test_the_actor_and_time_filters(client, world, trail):
    eddie = site_audit(client, world, f"?actor_id={world.users['editor']}").json_body["data"]["events"]
    assert [e["action"] for e in eddie] == ["interaction.deleted", "interaction.created"]
    newest = site_audit(client, world).json_body["data"]["events"][0]["occurred_at"]
    assert len(site_audit(client, world, f"?since={newest}").json_body["data"]["events"]) >= 1
    assert site_audit(client, world, "?until=2000-01-01").json_body["data"]["events"] == []
    assert (
        len(site_audit(client, world, "?since=2000-01-01&until=2999-12-31").json_body["data"]["events"]) == 5
    )


@pytest.mark.parametrize(
    "query,bad",
    [
        ("?action=interaction.viewed", {"action"}),
        ("?action=interaction", {"action"}),
        ("?action=.", {"action"}),
        ("?target_id=5", {"target_id"}),
        ("?target_type=robot", {"target_type"}),
        ("?target_type=user&target_id=0", {"target_id"}),
        ("?actor_id=abc", {"actor_id"}),
        ("?since=yesterday", {"since"}),
        ("?since=2024-05-02&until=2024-05-01", {"until"}),
        ("?per_page=101", {"per_page"}),
        ("?page=0", {"page"}),
        ("?actorId=5", {"actorId"}),
    ],
)
def test_bad_filters_are_a_400_naming_them(client, world, trail, query, bad):
    response = site_audit(client, world, query)
    assert error(response) == (400, "VALIDATION_ERROR") and fields(response) == bad


def test_the_site_audit_is_for_its_admins_only(client, world, trail):
    for token in ("editor", "viewer"):
        assert error(site_audit(client, world, token=token)) == (403, "AUTHORIZATION_ERROR")
        assert error(site_audit(client, world, "?per_page=0", token=token)) == (403, "AUTHORIZATION_ERROR")
    assert error(site_audit(client, world, token="other")) == (404, "RESOURCE_NOT_FOUND")
    assert error(site_audit(client, world, "?per_page=0", token="other")) == (400, "VALIDATION_ERROR")
    assert error(site_audit(client, world, site=world.site_b)) == (
        403,
        "AUTHORIZATION_ERROR",
    )  # alice views B
    assert error(site_audit(client, world, site="424242")) == (404, "RESOURCE_NOT_FOUND")


def test_another_sites_admin_sees_only_their_sites_events(client, world, trail):
    found = site_audit(client, world, token="other", site=world.site_b).json_body["data"]["events"]
    assert [e["target"]["id"] for e in found] == [trail["elsewhere"]["id"]]


def test_account_events_appear_in_every_site_of_the_account(client, world):
    user_id = make_user("both", sites={world.site_a: "viewer", world.site_b: "viewer"})
    token = token_for(user_id, None)
    from tests.factories import PASSWORD, post_json

    post_json(
        client, "/api/auth/password", {"current_password": PASSWORD, "new_password": "a brand new one"}, token
    )
    for site, admin in ((world.site_a, "admin"), (world.site_b, "other")):
        found = site_audit(client, world, "?action=user.password_changed", token=admin, site=site).json_body
        assert [(e["target"], e["site_id"]) for e in found["data"]["events"]] == [
            ({"type": "user", "id": user_id}, site)
        ]


def test_the_unfiltered_total_is_the_sites_count(client, world, trail):
    with session_scope() as session:
        counted = session.execute(
            text("SELECT events FROM site_audit_counts WHERE site_id = :s"), {"s": world.site_a}
        ).scalar()
    assert counted == 5
    page = site_audit(client, world, "?per_page=2").json_body
    pagination = page["meta"]["pagination"]
    assert pagination.pop("next_cursor")
    assert pagination == {"page": 1, "per_page": 2, "total_pages": 3, "total_records": 5, "total_exact": True}
