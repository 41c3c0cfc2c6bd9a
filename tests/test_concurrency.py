"""No lost updates: concurrent writes to one interaction, through the real handlers on threads (each
thread standing for its own Lambda container) against the real database."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from devtools.gateway import Gateway
from tests.faults.locks import released_together, side_connection
from tests.interactions.helpers import VALID, create, make_world, stored

PATH = "/api/interactions"


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def gateway():
    gw = Gateway()
    with gw.threads():
        yield gw


def _together(*calls):
    """Run the calls on threads released at the same instant; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _put(gateway, token, interaction_id, body, if_match=None):
    headers = {"If-Match": if_match} if if_match else {}
    return lambda: gateway.request("PUT", f"{PATH}/{interaction_id}", token, body, headers=headers)


def test_two_puts_with_the_same_if_match_both_in_flight_give_one_200_and_one_412(client, world, gateway):
    """Both requests read version 1 and reach their UPDATE while another transaction holds the row;
    when it lets go, exactly one UPDATE ... WHERE version = 1 still matches."""
    row = create(client, world.token("editor"))
    with side_connection() as holder:
        holder.execute(text("SELECT id FROM interactions WHERE id = :id FOR UPDATE"), {"id": row["id"]})
        results = released_together(
            holder,
            *(
                _put(gateway, world.token("editor"), row["id"], {"title": title}, '"1"')
                for title in ("From A", "From B")
            ),
        )

    statuses = sorted(r.status for r in results)
    assert statuses == [200, 412], [r.body for r in results]
    winner = next(r for r in results if r.status == 200)
    loser = next(r for r in results if r.status == 412)
    assert loser.body["error"]["code"] == "PRECONDITION_FAILED"
    final = stored(row["id"])
    assert final["version"] == 2
    assert final["title"] == winner.body["data"]["interaction"]["title"]


@pytest.mark.parametrize("round_", range(10))
def test_racing_puts_with_the_same_if_match_never_both_succeed(client, world, gateway, round_):
    row = create(client, world.token("editor"))

    results = _together(
        _put(gateway, world.token("editor"), row["id"], {"title": "From A"}, '"1"'),
        _put(gateway, world.token("admin"), row["id"], {"title": "From B"}, '"1"'),
    )

    assert sorted(r.status for r in results) == [200, 412]
    assert stored(row["id"])["version"] == 2


def test_concurrent_unconditional_puts_to_different_fields_keep_both_changes(client, world, gateway):
    row = create(client, world.token("editor"))

    results = _together(
        _put(gateway, world.token("editor"), row["id"], {"title": "New title"}),
        _put(gateway, world.token("admin"), row["id"], {"lead": "New lead"}),
    )

    assert [r.status for r in results] == [200, 200]
    final = stored(row["id"])
    assert (final["title"], final["lead"], final["version"]) == ("New title", "New lead", 3)


def test_a_put_racing_a_delete_with_the_same_if_match_never_both_succeed(client, world, gateway):
    row = create(client, world.token("editor"))

    put, delete = _together(
        _put(gateway, world.token("editor"), row["id"], {"title": "Late"}, '"1"'),
        lambda: gateway.request(
            "DELETE", f"{PATH}/{row['id']}", world.token("admin"), headers={"If-Match": '"1"'}
        ),
    )

    if delete.status == 200:
        assert put.status in (404, 412)
        assert stored(row["id"]) is None
    else:
        assert (put.status, delete.status) == (200, 412)
        assert stored(row["id"])["title"] == "Late"


def test_concurrent_creates_in_two_sites_stay_in_their_sites(client, world, gateway):
    results = _together(
        *[
            (lambda tok=tok, name=name: gateway.request("POST", PATH, tok, {**VALID, "title": name}))
            for tok, name in [
                (world.token("editor"), "A1"),
                (world.token("other"), "B1"),
                (world.token("admin"), "A2"),
                (world.token("other"), "B2"),
            ]
        ]
    )

    assert [r.status for r in results] == [201] * 4
    sites = {
        r.body["data"]["interaction"]["title"]: r.body["data"]["interaction"]["site_id"] for r in results
    }
    assert sites == {"A1": world.site_a, "A2": world.site_a, "B1": world.site_b, "B2": world.site_b}


# --- the last admin of a site ----------------------------------------------------------------------


def _two_admins(world):
    from sqlalchemy import update

    from chalicelib.db import session_scope
    from chalicelib.models import SiteMembership

    with session_scope() as session:
        session.execute(
            update(SiteMembership).where(SiteMembership.user_id == world.users["editor"]).values(role="admin")
        )


def _demote(gateway, world, by, whom):
    return lambda: gateway.request(
        "PUT", f"/api/sites/{world.site_a}/users/{world.users[whom]}", world.token(by), {"role": "editor"}
    )


def _admins(world):
    from sqlalchemy import func, select

    from chalicelib.db import session_scope
    from chalicelib.models import SiteMembership

    with session_scope() as session:
        return session.scalar(
            select(func.count())
            .select_from(SiteMembership)
            .where(SiteMembership.site_id == world.site_a, SiteMembership.role == "admin")
        )


def test_two_admins_demoting_each_other_at_once_leave_one(client, world, gateway):
    """Both requests have read their rights (each sees two admins) and wait for the site's row while
    another transaction holds it; when it lets go, the first demotes the other, and the second,
    reading the memberships afresh once it holds the lock, finds its caller no longer an admin."""
    _two_admins(world)
    with side_connection() as holder:
        holder.execute(text("SELECT id FROM sites WHERE id = :id FOR NO KEY UPDATE"), {"id": world.site_a})
        results = released_together(
            holder, _demote(gateway, world, "admin", "editor"), _demote(gateway, world, "editor", "admin")
        )

    assert sorted(r.status for r in results) == [200, 403], [r.body for r in results]
    loser = next(r for r in results if r.status == 403)
    assert loser.body["error"]["code"] == "AUTHORIZATION_ERROR"
    assert _admins(world) == 1


@pytest.mark.parametrize("round_", range(5))
def test_racing_demotions_never_leave_a_site_without_an_admin(client, world, gateway, round_):
    _two_admins(world)
    results = _together(
        _demote(gateway, world, "admin", "editor"), _demote(gateway, world, "editor", "admin")
    )
    assert sorted(r.status for r in results) == [200, 403]
    assert _admins(world) == 1


def test_racing_removals_of_each_other_leave_one(client, world, gateway):
    _two_admins(world)
    results = _together(
        lambda: gateway.request(
            "DELETE", f"/api/sites/{world.site_a}/users/{world.users['editor']}", world.token("admin")
        ),
        lambda: gateway.request(
            "DELETE", f"/api/sites/{world.site_a}/users/{world.users['admin']}", world.token("editor")
        ),
    )
    # The other is refused: 403 when it held its rights before the first committed, 404 when its
    # membership was already gone.
    statuses = sorted(r.status for r in results)
    assert statuses[0] == 200 and statuses[1] in (403, 404)
    assert _admins(world) == 1
