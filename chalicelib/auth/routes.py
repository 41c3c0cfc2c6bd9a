"""The auth endpoints: login, a pending account's setup, password changes, the caller's details and
sites, site switch, logout."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import caller as callers
from chalicelib.audit import events as audit
from chalicelib.auth import limits, schemas, service
from chalicelib.auth.schemas import LoginData, PasswordChanged, SiteToken, UserMe
from chalicelib.caller import SiteSummary
from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import ValidationFailed
from chalicelib.http import ok
from chalicelib.kit.docs import MESSAGE, Envelope, ListOf, Nullable, Spec, data
from chalicelib.kit.ids import INT32_MAX

bp = Blueprint(__name__)


@endpoint(
    bp,
    "POST",
    "/api/auth/login",
    public=True,
    transaction=False,
    spec=Spec(
        "Log in",
        "auth",
        Envelope(LoginData),
        "A token; scoped to the site when the user has exactly one",
        errors=(401, 429, 503),
        body=schemas.LoginRequest,
    ),
)
def login(call: Call) -> Response:
    try:
        body = call.body(schemas.LoginRequest)
    except ValidationFailed:
        limits.check_login_rate(call.source_ip)  # a malformed attempt counts towards the client's limit
        raise
    return ok(
        service.login(call.session, source_ip=call.source_ip, username=body.username, password=body.password)
    )


@endpoint(
    bp,
    "POST",
    "/api/auth/setup",
    public=True,
    transaction=False,
    spec=Spec(
        "Set a pending account's first password with its setup token; answers like a login",
        "auth",
        Envelope(LoginData),
        "A token, as a login gives",
        errors=(429, 503),
        body=schemas.SetupRequest,
    ),
)
def setup(call: Call) -> Response:
    try:
        body = call.body(schemas.SetupRequest)
    except ValidationFailed:
        limits.check_setup_rate(call.source_ip)  # a malformed attempt counts towards the client's limit
        raise
    return ok(
        service.complete_setup(
            call.session,
            source_ip=call.source_ip,
            token=body.token,
            password=body.password,
            ids=call.request_ids,
        )
    )


@endpoint(
    bp,
    "POST",
    "/api/auth/password",
    transaction=False,
    spec=Spec(
        "Change the caller's password: every session of the user ends, a new one begins on the same site",
        "auth",
        Envelope(PasswordChanged),
        "A token for the new session",
        errors=(429,),
        body=schemas.PasswordChange,
    ),
)
def change_password(call: Call) -> Response:
    try:
        body = call.body(schemas.PasswordChange)
    except ValidationFailed:
        call.caller  # noqa: B018 - a 401 comes before the 400
        raise
    rows = call.fold(service.WITH_PASSWORD)
    caller = call.caller
    return ok(
        service.change_password(
            call.session,
            principal=caller,
            stored_hash=rows.head.password_hash,
            current=body.current_password,
            new=body.new_password,
            origin=audit.by_caller(call),
        )
    )


@endpoint(
    bp,
    "GET",
    "/api/auth/me",
    spec=Spec(
        "The caller and the token's site",
        "auth",
        data(user=UserMe, current_site=Nullable(SiteSummary)),
        "The caller",
    ),
)
def me(call: Call) -> Response:
    return ok(service.me(call.caller))


@endpoint(
    bp,
    "GET",
    "/api/auth/sites",
    spec=Spec(
        "The caller's active sites, by name",
        "auth",
        data(sites=ListOf(SiteSummary)),
        "Sites with the caller's role",
    ),
)
def my_sites(call: Call) -> Response:
    return ok({"sites": [callers.site_summary(row) for row in call.fold(callers.MY_SITES)]})


@endpoint(
    bp,
    "POST",
    "/api/auth/site",
    transaction=False,
    spec=Spec(
        "Choose the active site: a new token for the same session",
        "auth",
        Envelope(SiteToken),
        "A token scoped to the site, expiring with the session",
        errors=(403,),
        body=schemas.SiteSelect,
    ),
)
def select_site(call: Call) -> Response:
    try:
        body = call.body(schemas.SiteSelect)
    except ValidationFailed:
        call.caller  # noqa: B018 - a 401 comes before the 400
        raise
    # The caller's row at the site asked for: 401 for an inactive user, no site for a non-member.
    caller, _ = call.fold_at(body.site_id if 1 <= body.site_id <= INT32_MAX else None)
    return ok(service.select_site(call.token, site=caller.site()))


@endpoint(
    bp,
    "POST",
    "/api/auth/logout",
    session=False,
    ends_session=True,
    spec=Spec("End the session (every token of it)", "auth", MESSAGE, "Logged out"),
)
def logout(call: Call) -> Response:
    # The session ended in the request's token check (auth.guard), in its one Redis round trip.
    return ok({"message": "Successfully logged out"})
