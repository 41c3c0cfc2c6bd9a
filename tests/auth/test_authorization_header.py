"""`Authorization` is exactly `Bearer <token>`: the scheme in any case, one space, the token in
compact form (three base64url parts, unpadded). Every other spelling of a token is a 401 — in the
authorizer and in the API Lambda's own check — so one token has one spelling and one authorizer
cache entry (API Gateway caches per header value)."""

from __future__ import annotations

import pytest

from chalicelib.auth import authorizer, tokens
from tests.factories import login, make_site, make_user
from tests.support import call_app, gateway_context, run_authorizer

ME = "/api/auth/me"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _reencoded(token):
    """The same signature bytes in another spelling: an HS256 signature is 32 bytes, 43 base64url
    characters whose last carries 2 unused bits, which a lenient decoder ignores."""
    head, _, signature = token.rpartition(".")
    last = ALPHABET.index(signature[-1])
    return f"{head}.{signature[:-1]}{ALPHABET[last ^ 1]}"


# The spellings the attack used (each a fresh authorizer run and cache entry), and more like them.
SPELLINGS = {
    "two spaces": lambda t: f"Bearer  {t}",
    "leading space": lambda t: f" Bearer {t}",
    "trailing space": lambda t: f"Bearer {t} ",
    "tab": lambda t: f"Bearer\t{t}",
    "padded signature": lambda t: f"Bearer {t}=",
    "re-encoded signature": lambda t: f"Bearer {_reencoded(t)}",
    "no-break space": lambda t: f"Bearer\u00a0{t}",
}
ACCEPTED = {
    "canonical": lambda t: f"Bearer {t}",
    "lower case": lambda t: f"bearer {t}",
    "upper case": lambda t: f"BEARER {t}",
}


@pytest.fixture
def token(client):
    make_user(sites={make_site(): "editor"})
    return login(client)["token"]


def test_the_re_encoded_signature_is_the_same_bytes(token):
    """The attack's premise, checked: a lenient decoder reads both spellings alike."""
    import base64

    def decode(part):
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert decode(_reencoded(token).rpartition(".")[2]) == decode(token.rpartition(".")[2])


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_another_spelling_of_a_valid_token_is_401_through_the_api(client, token, spell):
    response = client.http.get(ME, headers={"Authorization": spell(token)})

    assert response.status_code == 401, response.json_body
    assert response.json_body["error"]["code"] == "AUTHENTICATION_ERROR"


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_the_authorizer_refuses_another_spelling(token, spell):
    assert authorizer.evaluate(spell(token))["auth"] == "invalid"
    assert tokens.bearer_token(spell(token)) is None


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_the_api_lambda_refuses_another_spelling_even_with_an_ok_verdict(app_module, token, spell):
    """A verdict cached for the header before this rule (or made up) lets no other spelling in:
    the API Lambda holds the request's own header to the same rule."""
    verdict = gateway_context(run_authorizer(f"Bearer {token}"))
    assert verdict["auth"] == "ok"

    response = call_app(
        app_module.app, "GET", ME, token=token, authorizer=verdict, headers={"Authorization": spell(token)}
    )

    assert response.status_code == 401, response.json_body
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


@pytest.mark.parametrize("spell", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_scheme_is_read_in_any_case(client, app_module, token, spell):
    assert client.http.get(ME, headers={"Authorization": spell(token)}).status_code == 200
    assert (
        call_app(app_module.app, "GET", ME, token=token, headers={"Authorization": spell(token)}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer a.b",
        "Bearer a.b.c.d",
        "Bearer a..c",
        "Bearer a+b.c/d.e",
        "Token a.b.c",
    ],
)
def test_a_header_that_is_not_a_compact_token_has_no_token(header):
    assert tokens.bearer_token(header) is None


def test_the_rule_is_about_spelling_not_validity():
    """A well-formed header passes the spelling rule; its signature is checked after it."""
    assert tokens.bearer_token("Bearer eyJh.eyJz.c2ln") == "eyJh.eyJz.c2ln"
    assert authorizer.evaluate("Bearer eyJh.eyJz.c2ln")["auth"] == "invalid"
