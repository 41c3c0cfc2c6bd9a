"""Forged, expired and malformed tokens get the 401 envelope (with CORS headers and a request id)
through the real authorizer; the same tokens fail tokens.verify; key rotation keeps the previous
key's tokens valid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.auth import tokens
from tests.environment import TEST_JWT_SECRET
from tests.factories import auth, login, make_site, make_user
from tests.support import claims_for, forge, run_authorizer, unsigned

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

OTHER_KEY = "an-unrelated-key-" + "y" * 40


def now() -> int:
    """The time as a forged token is made: when the test runs, not when the module was loaded (a
    long run would otherwise let `auth_time` ten minutes ahead fall behind `iat`)."""
    return int(time.time())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hmac_with_header(header: dict, payload: dict, key: str = TEST_JWT_SECRET) -> str:
    """Signed with our key by HMAC-SHA256 but under another header (algorithm confusion)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _tampered() -> str:
    header, _, signature = forge(claims_for(1)).split(".")
    return f"Bearer {header}.{_b64(json.dumps(claims_for(2)).encode())}.{signature}"


def _rs256() -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return forge(claims_for(1), key=private, algorithm="RS256")


KID = tokens.key_id(TEST_JWT_SECRET)
HS256 = {"alg": "HS256", "typ": "JWT", "kid": KID}

# name -> the Authorization header
FORGED = {
    "alg none": lambda: "Bearer " + unsigned(claims_for(1)),
    "alg None": lambda: "Bearer " + unsigned(claims_for(1), {"alg": "None", "kid": KID}),
    "alg none with a signature": lambda: (
        "Bearer " + _hmac_with_header({"alg": "none", "kid": KID}, claims_for(1))
    ),
    "wrong key": lambda: "Bearer " + forge(claims_for(1), key=OTHER_KEY),
    "HS512 with our key": lambda: "Bearer " + forge(claims_for(1), algorithm="HS512"),
    "HS384 with our key": lambda: "Bearer " + forge(claims_for(1), algorithm="HS384"),
    "RS256": lambda: "Bearer " + _rs256(),
    "RS256 header, HMAC signature": lambda: (
        "Bearer " + _hmac_with_header({"alg": "RS256", "typ": "JWT", "kid": KID}, claims_for(1))
    ),
    "expired": lambda: (
        "Bearer " + forge(claims_for(1, iat=now() - 7200, exp=now() - 1, auth_time=now() - 7200))
    ),
    "issued in the future": lambda: (
        "Bearer " + forge(claims_for(1, iat=now() + 3600, auth_time=now() + 3600))
    ),
    "not before in the future": lambda: "Bearer " + forge(claims_for(1, nbf=now() + 3600)),
    "tampered payload": _tampered,
    "wrong issuer": lambda: "Bearer " + forge(claims_for(1, iss="interactions-prod")),
    "issuer prefix": lambda: "Bearer " + forge(claims_for(1, iss="interactions-de")),
    "issuer list": lambda: "Bearer " + _hmac_with_header(HS256, claims_for(1, iss=["interactions-dev"])),
    "wrong audience": lambda: "Bearer " + forge(claims_for(1, aud="interactions-api-prod")),
    "audience list": lambda: "Bearer " + forge(claims_for(1, aud=["interactions-api-dev", "x"])),
    "unknown kid": lambda: "Bearer " + forge(claims_for(1), kid="0123456789abcdef"),
    "no kid": lambda: "Bearer " + forge(claims_for(1), kid=None),
    "kid not a string": lambda: "Bearer " + _hmac_with_header({"alg": "HS256", "kid": 7}, claims_for(1)),
    "kid of an unrelated key": lambda: (
        "Bearer " + forge(claims_for(1), key=OTHER_KEY, kid=tokens.key_id(OTHER_KEY))
    ),
    "sub not a string": lambda: "Bearer " + _hmac_with_header(HS256, claims_for(1, sub=1)),
    "sub not a number": lambda: "Bearer " + forge(claims_for(1, sub="admin")),
    "sub zero": lambda: "Bearer " + forge(claims_for(1, sub="0")),
    "sub with underscore": lambda: "Bearer " + forge(claims_for(1, sub="1_0")),
    "sub out of range": lambda: "Bearer " + forge(claims_for(1, sub="99999999999")),
    "site as a string": lambda: "Bearer " + forge(claims_for(1, site="1")),
    "site as a boolean": lambda: "Bearer " + forge(claims_for(1, site=True)),
    "site zero": lambda: "Bearer " + forge(claims_for(1, site=0)),
    "site out of range": lambda: "Bearer " + forge(claims_for(1, site=2**31)),
    "sid empty": lambda: "Bearer " + forge(claims_for(1, sid="")),
    "sid not ours": lambda: "Bearer " + forge(claims_for(1, sid="*")),
    "sid a number": lambda: "Bearer " + forge(claims_for(1, sid=5)),
    "jti a number": lambda: "Bearer " + forge(claims_for(1, jti=5)),
    "auth_time a string": lambda: "Bearer " + forge(claims_for(1, auth_time="yesterday")),
    "auth_time after issue": lambda: "Bearer " + forge(claims_for(1, auth_time=now() + 600)),
    "garbage": lambda: "Bearer garbage",
    "three garbage parts": lambda: "Bearer a.b.c",
    "non-ASCII": lambda: "Bearer é.é.é",
    "empty bearer": lambda: "Bearer ",
    "bearer only": lambda: "Bearer",
    "no Bearer prefix": lambda: forge(claims_for(1)),
    "Basic scheme": lambda: "Basic " + forge(claims_for(1)),
    "two tokens": lambda: f"Bearer {forge(claims_for(1))} {forge(claims_for(1))}",
    "two tokens, comma": lambda: f"Bearer {forge(claims_for(1))},{forge(claims_for(1))}",
}
for _claim in tokens.REQUIRED_CLAIMS:
    FORGED[f"missing {_claim}"] = (lambda c: lambda: "Bearer " + forge(claims_for(1), drop=(c,)))(_claim)


@pytest.fixture
def user(client):
    site = make_site()
    return make_user(sites={site: "editor"})


def test_required_claims_are_the_contracts_plus_sid_and_auth_time():
    assert set(tokens.REQUIRED_CLAIMS) == {"exp", "iat", "sub", "jti", "iss", "aud", "sid", "auth_time"}


def test_a_hand_built_token_is_accepted_when_nothing_is_wrong(client, user):
    """The control for everything below: the forging helper makes valid tokens."""
    response = client.http.get("/api/auth/me", headers={"Authorization": "Bearer " + forge(claims_for(1))})

    assert response.status_code == 200, response.json_body


def test_the_scheme_is_case_insensitive(client, user):
    response = client.http.get("/api/auth/me", headers={"Authorization": "bearer " + forge(claims_for(1))})

    assert response.status_code == 200


@pytest.mark.parametrize("name", sorted(FORGED))
def test_a_bad_token_gets_the_401_envelope(client, user, name):
    response = client.http.get(
        "/api/auth/me", headers={"Authorization": FORGED[name](), "X-Request-Id": "trace-1"}
    )

    assert response.status_code == 401
    assert response.json_body == {
        "status": "error",
        "error": {
            "code": "AUTHENTICATION_ERROR",
            "message": "Invalid or expired token",
            "request_id": "trace-1",
        },
    }
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    assert response.headers["X-Request-Id"] == "trace-1"
    assert response.headers["Content-Type"] == "application/json"


BARE = sorted(
    set(FORGED)
    - {"bearer only", "empty bearer", "no Bearer prefix", "Basic scheme", "two tokens", "two tokens, comma"}
)


def test_the_hmac_helper_signs_like_pyjwt(client, user):
    token = _hmac_with_header(HS256, claims_for(1))

    assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 200


@pytest.mark.parametrize("name", BARE)
def test_a_bad_token_fails_verification(name):
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(FORGED[name]().split(" ", 1)[1])


@pytest.mark.parametrize("name", sorted(FORGED))
def test_the_authorizer_allows_with_an_invalid_outcome_and_never_raises(name):
    result = run_authorizer(FORGED[name]())

    assert result["context"]["auth"] == "invalid"
    assert result["principalId"] == "anonymous"
    assert "user_id" not in result["context"]
    statement = result["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"


def test_a_real_token_verifies_to_its_claims(client, user):
    token = login(client)["token"]

    claims = tokens.verify(token)

    raw = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": KID, "typ": "JWT"}
    assert claims.user_id == user and claims.session_id == raw["sid"] and claims.site_id == 1
    assert claims.expires_at == raw["exp"] and claims.issued_at == raw["iat"]
    assert claims.token_id == raw["jti"] and claims.auth_time_ms == round(raw["auth_time"] * 1000)
    assert raw["iss"] == "interactions-dev" and raw["aud"] == "interactions-api-dev"


def test_the_token_lifetime_is_configurable(client, user, reconfigure):
    reconfigure(JWT_TTL_SECONDS="120")

    claims = jwt.decode(login(client)["token"], options={"verify_signature": False})

    assert claims["exp"] - claims["iat"] == 120


def test_a_token_of_another_stage_is_refused(client, user, reconfigure):
    reconfigure(JWT_ISSUER="interactions-prod", JWT_AUDIENCE="interactions-api-prod")
    prod_token, _ = tokens.issue(user_id=user, site_id=None)
    reconfigure(JWT_ISSUER="interactions-dev", JWT_AUDIENCE="interactions-api-dev")

    assert client.http.get("/api/auth/me", headers=auth(prod_token)).status_code == 401


# --- key rotation ------------------------------------------------------------------------------

NEW_KEY = "the-next-signing-key-" + "z" * 40


def test_tokens_of_the_previous_key_stay_valid_during_a_rotation(client, user, reconfigure):
    old_token = login(client)["token"]

    reconfigure(JWT_SECRET=NEW_KEY, JWT_PREVIOUS_SECRET=TEST_JWT_SECRET)

    assert client.http.get("/api/auth/me", headers=auth(old_token)).status_code == 200
    new_token = login(client)["token"]
    assert jwt.get_unverified_header(new_token)["kid"] == tokens.key_id(NEW_KEY)
    assert client.http.get("/api/auth/me", headers=auth(new_token)).status_code == 200


def test_a_site_switch_during_a_rotation_signs_with_the_new_key(client, reconfigure):
    alpha, beta = make_site("Alpha"), make_site("Beta")
    make_user(sites={alpha: "editor", beta: "viewer"})
    old_token = login(client)["token"]
    reconfigure(JWT_SECRET=NEW_KEY, JWT_PREVIOUS_SECRET=TEST_JWT_SECRET)

    from tests.factories import select_site

    switched = select_site(client, old_token, beta)

    assert jwt.get_unverified_header(switched)["kid"] == tokens.key_id(NEW_KEY)


def test_once_the_rotation_ends_the_old_tokens_die(client, user, reconfigure):
    old_token = login(client)["token"]

    reconfigure(JWT_SECRET=NEW_KEY, JWT_PREVIOUS_SECRET=None)

    assert client.http.get("/api/auth/me", headers=auth(old_token)).status_code == 401


def test_an_unrelated_key_is_refused_during_a_rotation(client, user, reconfigure):
    reconfigure(JWT_SECRET=NEW_KEY, JWT_PREVIOUS_SECRET=TEST_JWT_SECRET)

    for kid in (tokens.key_id(OTHER_KEY), tokens.key_id(NEW_KEY), tokens.key_id(TEST_JWT_SECRET)):
        token = forge(claims_for(user), key=OTHER_KEY, kid=kid)
        assert client.http.get("/api/auth/me", headers=auth(token)).status_code == 401


def test_the_kid_names_the_key_without_revealing_it():
    assert tokens.key_id(TEST_JWT_SECRET) != tokens.key_id(NEW_KEY)
    assert len(tokens.key_id(TEST_JWT_SECRET)) == 16
    assert TEST_JWT_SECRET[:8] not in tokens.key_id(TEST_JWT_SECRET)
