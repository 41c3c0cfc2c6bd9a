"""Names that deceive a reader. Text a person reads as a name (site names, usernames, e-mail
addresses, interaction titles, leads and locations) refuses control, bidirectional and invisible
characters — a 400 naming the field, nothing written; and site names are unique by their TR39
confusable skeleton (NFKC, case-folded), held by a unique index, so `Аlpha` with a Cyrillic `А` is a
409 beside `Alpha` even when the two requests race."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from chalicelib import cli
from chalicelib.db import session_scope
from chalicelib.kit import names
from chalicelib.models import Site
from devtools.gateway import Gateway
from tests import mailbox
from tests.factories import make_platform_admin
from tests.faults.locks import released_together, side_connection
from tests.hostile.conftest import fingerprint
from tests.interactions.helpers import VALID, create, send

# The list in the contract: control characters, bidirectional controls, invisible characters.
CONTROL = ["\x07", "\x1b", "\x7f", "\x85"]
BIDI = [
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
]
INVISIBLE = ["\u200b", "\u2060", "\ufeff"]
JOINERS = ["\u200c", "\u200d"]
REFUSED = CONTROL + BIDI + INVISIBLE


def _ids(chars):
    return [f"U+{ord(c):04X}" for c in chars]


def _name(char):
    """A name with the character inside it, between two letters (where a joiner would be allowed)."""
    return f"Al{char}pha"


@pytest.fixture
def sites_world(world):
    make_platform_admin("alice")
    return world


def _refused(response, field):
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["code"] == "VALIDATION_ERROR"
    fields = [d["field"] for d in response.json_body["error"]["details"]]
    assert fields == [field], response.json_body
    return response.json_body["error"]["details"][0]["message"]


# --- the characters, on every name field ----------------------------------------------------------


@pytest.mark.parametrize("char", REFUSED + JOINERS, ids=_ids(REFUSED + JOINERS))
def test_a_site_name_refuses_the_character(client, sites_world, char):
    before = fingerprint()
    created = send(client, "POST", "/api/sites", sites_world.token("admin"), {"name": _name(char)})
    renamed = send(
        client, "PUT", f"/api/sites/{sites_world.site_a}", sites_world.token("admin"), {"name": _name(char)}
    )

    assert f"U+{ord(char):04X}" in _refused(created, "name")
    _refused(renamed, "name")
    assert fingerprint() == before


@pytest.mark.parametrize("char", REFUSED, ids=_ids(REFUSED))
@pytest.mark.parametrize("field", ["title", "lead", "location"])
def test_an_interactions_names_refuse_the_character(client, world, char, field):
    row = create(client, world.token("editor"))["id"]
    before = fingerprint()

    created = send(client, "POST", "/api/interactions", world.token("editor"), {**VALID, field: _name(char)})
    updated = send(client, "PUT", f"/api/interactions/{row}", world.token("editor"), {field: _name(char)})

    _refused(created, field)
    _refused(updated, field)
    assert fingerprint() == before


@pytest.mark.parametrize("char", REFUSED + JOINERS, ids=_ids(REFUSED + JOINERS))
def test_an_invited_address_refuses_the_character(client, world, char):
    before = fingerprint()

    response = send(
        client,
        "POST",
        f"/api/sites/{world.site_a}/invitations",
        world.token("admin"),
        {"email": f"new{char}bie@example.com", "role": "viewer"},
    )

    _refused(response, "email")
    assert fingerprint() == before and mailbox.messages() == []


@pytest.mark.parametrize("char", REFUSED + JOINERS, ids=_ids(REFUSED + JOINERS))
def test_a_new_username_refuses_the_character(client, world, char):
    invited = send(
        client,
        "POST",
        f"/api/sites/{world.site_a}/invitations",
        world.token("admin"),
        {"email": "newbie@example.com", "role": "viewer"},
    )
    assert invited.status_code == 201
    token = mailbox.token_for("newbie@example.com")

    response = send(
        client,
        "POST",
        "/api/auth/invitations/accept",
        None,
        {"token": token, "username": f"new{char}bie", "password": "a long enough password"},
    )

    _refused(response, "username")
    with session_scope() as session:
        assert session.execute(text("SELECT count(*) FROM users")).scalar_one() == len(world.users)


@pytest.mark.parametrize("char", REFUSED + JOINERS, ids=_ids(REFUSED + JOINERS))
def test_the_command_line_refuses_the_character_in_a_site_name(capsys, char):
    code = cli.main(["create-site", _name(char)])

    assert code != 0 and "invisible" in capsys.readouterr().err
    with session_scope() as session:
        assert session.scalars(select(Site)).all() == []


@pytest.mark.parametrize(
    "value",
    [
        "می\u200cخواهم",  # Persian: a non-joiner between two letters
        "Family \U0001f468\u200d\U0001f469\u200d\U0001f467",  # an emoji sequence
        "Pride \U0001f3f3\ufe0f\u200d\U0001f308",  # a joiner after a variation selector
        "שלום Room A",  # right-to-left letters themselves are text, not controls
    ],
)
def test_joiners_between_letters_or_symbols_are_allowed_where_they_are_text(client, world, value):
    response = send(client, "POST", "/api/interactions", world.token("editor"), {**VALID, "title": value})

    assert response.status_code == 201, response.json_body
    assert response.json_body["data"]["interaction"]["title"] == value


@pytest.mark.parametrize("value", ["\u200dAlpha", "Alpha\u200c", "Al \u200d pha", "Al\u200d\u200dpha"])
def test_a_joiner_that_joins_nothing_is_refused(client, world, value):
    response = send(client, "POST", "/api/interactions", world.token("editor"), {**VALID, "lead": value})

    _refused(response, "lead")


# --- confusable site names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "existing,confusable",
    [
        ("Alpha", "\u0410lpha"),  # Cyrillic А
        ("Alpha", "ALPHA"),  # case
        ("carol", "caroI"),  # capital I for l
        ("Alpha", "\uff21lpha"),  # fullwidth Ａ (NFKC)
        ("Modem", "Modern"),  # m and rn
        ("Alpha", "Al\u00adpha"),  # a soft hyphen: default-ignorable, dropped by the skeleton
    ],
)
def test_a_confusable_site_name_is_a_409(client, sites_world, existing, confusable):
    assert (
        send(client, "POST", "/api/sites", sites_world.token("admin"), {"name": existing}).status_code == 201
    )
    before = fingerprint()

    created = send(client, "POST", "/api/sites", sites_world.token("admin"), {"name": confusable})
    renamed = send(
        client, "PUT", f"/api/sites/{sites_world.site_a}", sites_world.token("admin"), {"name": confusable}
    )

    assert (created.status_code, renamed.status_code) == (409, 409), (created.json_body, renamed.json_body)
    assert created.json_body["error"]["code"] == "CONFLICT"
    assert fingerprint() == before


def test_a_name_that_only_resembles_is_not_a_conflict(client, sites_world):
    assert (
        send(client, "POST", "/api/sites", sites_world.token("admin"), {"name": "Alpha"}).status_code == 201
    )

    assert (
        send(client, "POST", "/api/sites", sites_world.token("admin"), {"name": "Alpine"}).status_code == 201
    )


def test_skeletons_follow_tr39():
    assert names.skeleton("\u0410lpha") == names.skeleton("Alpha") == "alpha"
    assert names.skeleton("caroI") == names.skeleton("carol")
    assert names.skeleton("Modern") == names.skeleton("Modem")  # m → rn
    assert names.skeleton("Alpha") != names.skeleton("Alpine")
    assert names.CONFUSABLES_VERSION == "17.0.0"


def test_the_database_holds_the_rule_for_every_writer(sites_world):
    """Not only the API's statements: any insert of a confusable name fails on the index."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="uq_sites_name_skeleton"), session_scope() as session:
        name = "M\u0430rketing"  # Cyrillic а beside the world's Marketing
        session.add(Site(name=name, name_skeleton=names.skeleton(name)))
        session.flush()


def test_two_racing_requests_for_confusable_names_give_one_201_and_one_409(sites_world):
    """Both requests reach their INSERT while another transaction holds the table; when it lets go,
    the unique index lets one in and the other's ON CONFLICT answers 409."""
    gateway = Gateway()
    with gateway.threads(), side_connection() as holder:
        holder.execute(text("LOCK TABLE sites IN SHARE ROW EXCLUSIVE MODE"))
        results = released_together(
            holder,
            *(
                lambda name=name: gateway.request(
                    "POST", "/api/sites", sites_world.token("admin"), {"name": name}
                )
                for name in ("Alpha", "\u0410lpha")
            ),
        )

    assert sorted(r.status for r in results) == [201, 409], [r.body for r in results]
    with session_scope() as session:
        skeletons = session.scalars(
            select(Site.name_skeleton).where(Site.name.in_(["Alpha", "\u0410lpha"]))
        ).all()
    assert skeletons == ["alpha"]
