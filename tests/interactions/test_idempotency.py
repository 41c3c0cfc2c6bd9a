"""Idempotency-Key on POST /api/interactions (API.md): a retried create is answered, not repeated."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from chalicelib.db import session_scope
from chalicelib.models import IdempotencyKey, Interaction
from tests.faults.locks import side_connection, wait_for_lock_waiters
from tests.interactions.helpers import VALID, make_world, send

PATH = "/api/interactions"


@pytest.fixture
def world():
    return make_world()


def _post(client, token, body, key=None, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return send(client, "POST", PATH, token, body, **headers)


def _rows() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Interaction))


def _keys() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(IdempotencyKey))


def test_a_retry_with_the_same_key_and_body_replays_the_first_answer(client, world):
    first = _post(client, world.token("editor"), VALID, key="k-1")
    again = _post(client, world.token("editor"), VALID, key="k-1")

    assert first.status_code == again.status_code == 201
    assert again.body == first.body  # byte for byte
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _rows() == 1


def test_bodies_are_compared_as_parsed_json(client, world):
    reordered = json.dumps(dict(reversed(list(VALID.items()))), indent=2)
    first = _post(client, world.token("editor"), VALID, key="k-1")
    again = _post(client, world.token("editor"), reordered, key="k-1")

    assert again.status_code == 201
    assert again.json_body == first.json_body
    assert _rows() == 1


def test_the_replay_is_the_first_answer_even_after_the_record_changed(client, world):
    first = _post(client, world.token("editor"), VALID, key="k-1")
    interaction_id = first.json_body["data"]["interaction"]["id"]
    assert (
        send(
            client, "PUT", f"{PATH}/{interaction_id}", world.token("editor"), {"title": "Renamed"}
        ).status_code
        == 200
    )

    again = _post(client, world.token("editor"), VALID, key="k-1")

    assert again.json_body == first.json_body
    assert again.headers["ETag"] == '"1"'


def test_the_same_key_with_a_different_body_is_422(client, world):
    _post(client, world.token("editor"), VALID, key="k-1")

    response = _post(client, world.token("editor"), {**VALID, "title": "Another"}, key="k-1")

    assert response.status_code == 422
    assert response.json_body["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert _rows() == 1


def test_keys_are_scoped_to_the_user(client, world):
    first = _post(client, world.token("editor"), VALID, key="shared")
    other = _post(client, world.token("admin"), {**VALID, "title": "Admin's"}, key="shared")

    assert other.status_code == 201
    assert other.json_body["data"]["interaction"]["id"] != first.json_body["data"]["interaction"]["id"]
    assert _rows() == 2


def test_keys_are_scoped_to_the_site(client, world):
    from tests.interactions.helpers import token_for

    first = _post(client, world.token("admin"), VALID, key="shared")
    # alice is admin of site A and viewer of site B; make her an editor of B to write there
    with session_scope() as session:
        session.execute(
            text("UPDATE site_memberships SET role = 'editor' WHERE user_id = :u AND site_id = :s"),
            {"u": world.users["admin"], "s": world.site_b},
        )
    on_b = _post(client, token_for(world.users["admin"], world.site_b), VALID, key="shared")

    assert on_b.status_code == 201
    assert on_b.json_body["data"]["interaction"]["site_id"] == world.site_b
    assert first.json_body["data"]["interaction"]["site_id"] == world.site_a
    assert _rows() == 2


def test_failed_attempts_are_not_remembered(client, world):
    invalid = _post(client, world.token("editor"), {**VALID, "title": ""}, key="k-1")
    assert invalid.status_code == 400

    response = _post(client, world.token("editor"), VALID, key="k-1")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert _rows() == 1


def test_a_refused_attempt_does_not_use_up_the_key(client, world):
    assert _post(client, world.token("viewer"), VALID, key="k-1").status_code == 403
    assert _keys() == 0


def test_a_key_longer_than_255_characters_is_400(client, world):
    response = _post(client, world.token("editor"), VALID, key="k" * 256)

    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "VALIDATION_ERROR"
    assert response.json_body["error"]["details"] == [
        {"field": "Idempotency-Key", "message": "must be at most 255 characters"}
    ]
    assert _rows() == 0


def test_a_key_of_exactly_255_characters_is_accepted(client, world):
    key = "k" * 255
    first = _post(client, world.token("editor"), VALID, key=key)
    again = _post(client, world.token("editor"), VALID, key=key)

    assert first.status_code == again.status_code == 201
    assert _rows() == 1


def test_an_invalid_body_is_400_before_the_key_is_looked_at(client, world):
    _post(client, world.token("editor"), VALID, key="k-1")

    response = _post(client, world.token("editor"), {**VALID, "type": "Party"}, key="k-1")

    assert response.status_code == 400  # not 422: 409/422 come last


def test_without_a_key_every_post_creates(client, world):
    _post(client, world.token("editor"), VALID)
    _post(client, world.token("editor"), VALID)

    assert _rows() == 2
    assert _keys() == 0


def test_an_expired_key_is_ignored_and_can_be_used_again(client, world):
    first = _post(client, world.token("editor"), VALID, key="k-1")
    with session_scope() as session:
        session.execute(update(IdempotencyKey).values(created_at=func.now() - text("interval '25 hours'")))

    again = _post(client, world.token("editor"), {**VALID, "title": "New day"}, key="k-1")

    assert again.status_code == 201
    assert again.json_body["data"]["interaction"]["id"] != first.json_body["data"]["interaction"]["id"]
    assert _rows() == 2
    assert _keys() == 1


def test_expired_keys_are_cleaned_up_by_later_creates(client, world):
    for n in range(3):
        _post(client, world.token("editor"), VALID, key=f"old-{n}")
    with session_scope() as session:
        session.execute(update(IdempotencyKey).values(created_at=func.now() - text("interval '25 hours'")))

    _post(client, world.token("admin"), VALID, key="fresh")

    with session_scope() as session:
        assert session.scalars(select(IdempotencyKey.key)).all() == ["fresh"]


def test_a_key_kept_just_under_24_hours_still_replays(client, world):
    first = _post(client, world.token("editor"), VALID, key="k-1")
    with session_scope() as session:
        session.execute(
            update(IdempotencyKey).values(created_at=func.now() - text("interval '23 hours 59 minutes'"))
        )

    again = _post(client, world.token("editor"), VALID, key="k-1")

    assert again.json_body == first.json_body
    assert _rows() == 1


def test_a_duplicate_while_the_first_is_still_running_is_409_and_the_first_still_succeeds(world):
    """The first request is held inside its INSERT (another transaction holds a SHARE lock on the
    table); the duplicate arrives meanwhile."""
    from devtools.gateway import Gateway

    gateway = Gateway()
    results: dict[str, Any] = {}
    with side_connection() as blocker:
        blocker.execute(text("LOCK TABLE interactions IN SHARE MODE"))

        def first():
            results["first"] = gateway.request(
                "POST", PATH, world.token("editor"), VALID, headers={"Idempotency-Key": "k-1"}
            )

        thread = threading.Thread(target=first)
        with gateway.threads():
            thread.start()
            wait_for_lock_waiters(1)
            duplicate = gateway.request(
                "POST", PATH, world.token("editor"), VALID, headers={"Idempotency-Key": "k-1"}
            )
            different = gateway.request(
                "POST",
                PATH,
                world.token("editor"),
                {**VALID, "title": "x"},
                headers={"Idempotency-Key": "k-1"},
            )
            blocker.rollback()  # lets the first request go on
            thread.join(10)

    assert duplicate.status == 409 and duplicate.body["error"]["code"] == "CONFLICT"
    assert duplicate.headers["Retry-After"]
    assert different.status == 409  # unknown yet whether the bodies differ: in progress wins
    first_response = results["first"]
    assert first_response.status == 201
    assert _rows() == 1

    retry = gateway.request("POST", PATH, world.token("editor"), VALID, headers={"Idempotency-Key": "k-1"})
    assert retry.status == 201 and retry.body == first_response.body


def test_concurrent_retries_of_one_create_store_one_row(world):
    """Eight copies of one keyed create at once: one creates, the rest replay it or get 409;
    every 201 carries the same record."""
    from devtools.gateway import Gateway

    gateway = Gateway()
    barrier = threading.Barrier(8)
    responses = []

    def attempt():
        barrier.wait()
        responses.append(
            gateway.request("POST", PATH, world.token("editor"), VALID, headers={"Idempotency-Key": "burst"})
        )

    with gateway.threads():
        threads = [threading.Thread(target=attempt) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

    assert {r.status for r in responses} <= {201, 409}
    created = {r.body["data"]["interaction"]["id"] for r in responses if r.status == 201}
    assert len(created) == 1
    assert _rows() == 1
