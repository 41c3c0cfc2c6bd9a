"""The auth endpoints: login, invitations' preview and accept (public: the token is the
credential), password changes, the caller's details and sites, site switch, logout."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import access
from chalicelib.access import Public, Read, SiteSummary, Token
from chalicelib.audit import events as audit
from chalicelib.auth import invitations, limits, schemas, service
from chalicelib.auth.schemas import InvitationPreview, LoginData, PasswordChanged, SiteToken, UserMe
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
    needs=Public(),
    transaction=False,
    spec=Spec(
        "Log in",
        "auth",
        Envelope(LoginData),
        "A token; scoped to the site when the user has exactly one",
        errors=(401, 429, 503),
        body=schemas.LoginRequest,
        request_example={"username": "jdoe", "password": "correct horse battery staple"},
        response_example={
            "status": "success",
            "data": {
                "token": "eyJhbGciOiJIUzI1NiIsImtpZCI6IjEiLCJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                "expires_at": "2024-05-02T18:00:00Z",
                "user": {"id": 1, "username": "jdoe", "email": "jdoe@example.com"},
                "sites": [{"id": 1, "name": "Marketing", "description": "Campaigns", "role": "editor"}],
                "current_site": {"id": 1, "name": "Marketing", "description": "Campaigns", "role": "editor"},
            },
        },
        description=(
            "Public. Exchanges a username (case-insensitive) and password for a token. Unknown user, wrong "
            "password and deactivated user get the same 401. Five failures in a row lock the username for 15 "
            "minutes (429 `ACCOUNT_LOCKED`); more than 20 attempts a minute from one client are a 429 "
            "`RATE_LIMITED`. `sites` lists the user's active sites; with exactly one, the token is already "
            "scoped to it."
        ),
    ),
)
def login(call: Call[None]) -> Response:
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
    "/api/auth/invitations/preview",
    needs=Public(),
    transaction=False,
    spec=Spec(
        "What an invitation's token is for: the site, the role, the address, and whether an account has "
        "the address (accept with its password) or not (choose a username)",
        "auth",
        Envelope(InvitationPreview),
        "The invitation",
        errors=(429, 503),
        body=schemas.InvitationPreviewRequest,
        description=(
            "Public: the token is the credential (it went to the invited address only). Unknown, used, "
            "revoked or expired tokens are a 400 naming `token`. Rate-limited per client IP together with "
            "the accept."
        ),
    ),
)
def preview_invitation(call: Call[None]) -> Response:
    limits.check_invitation_rate(call.source_ip)  # before the body: every attempt counts
    body = call.body(schemas.InvitationPreviewRequest)
    return ok(invitations.preview(call.session, token=body.token))


@endpoint(
    bp,
    "POST",
    "/api/auth/invitations/accept",
    needs=Public(),
    spec=Spec(
        "Accept an invitation: a new account (username and password) when none has the address, else "
        "the account's own password; answers like a login, scoped to the inviting site",
        "auth",
        Envelope(LoginData),
        "A token, as a login gives",
        errors=(409, 429, 503),
        body=schemas.InvitationAcceptRequest,
        description=(
            "Public: the token is the credential (it went to the invited address only). When no account has "
            "the address: a new account with the username and password given. When one has it: that "
            "account's own password (no username), and it keeps its other sites. A token allows 10 refused "
            "attempts; an unusable one is a 400 naming `token`; a taken username is a 409 and the token "
            "stays usable. Rate-limited per client IP together with the preview."
        ),
    ),
)
def accept_invitation(call: Call[None]) -> Response:
    limits.check_invitation_rate(call.source_ip)  # before the body: every attempt counts
    body = call.body(schemas.InvitationAcceptRequest)
    try:
        answer = invitations.accept(
            call.session,
            token=body.token,
            username=body.username,
            password=body.password,
            ids=call.request_ids,
        )
    except invitations.Refused as refused:
        # The refusal counts against the token, and that count must outlive the refusal.
        invitations.count_refusal(call.session, refused.invitation_id)
        call.commit()
        raise refused.error from None
    return ok(answer)


@endpoint(
    bp,
    "POST",
    "/api/auth/password",
    needs=Token(),
    read=lambda call: Read(service.WITH_PASSWORD, shape=service.stored_hash),
    transaction=False,
    rate_exempt=True,
    spec=Spec(
        "Change the caller's password: every session of the user ends, a new one begins on the same site",
        "auth",
        Envelope(PasswordChanged),
        "A token for the new session",
        errors=(429,),
        body=schemas.PasswordChange,
        description=(
            "Any authenticated user, no site needed. A wrong `current_password` is a 400 naming it and counts "
            "towards the login lockout. Every earlier session of the user ends; the answer's token is a new "
            "session on the same site. Never refused by the per-user rate limit."
        ),
    ),
)
def change_password(call: Call[str | None]) -> Response:
    body = call.body(schemas.PasswordChange)
    return ok(
        service.change_password(
            call.session,
            principal=call.principal,
            stored_hash=call.found,
            current=body.current_password,
            new=body.new_password,
            origin=audit.by_caller(call),
        )
    )


@endpoint(
    bp,
    "GET",
    "/api/auth/me",
    needs=Token(),
    spec=Spec(
        "The caller and the token's site",
        "auth",
        data(user=UserMe, current_site=Nullable(SiteSummary)),
        "The caller",
        description=(
            "The caller's account and the token's active site (`null` when the token has none, or its "
            "membership has ended)."
        ),
    ),
)
def me(call: Call[None]) -> Response:
    return ok(service.me(call.principal))


@endpoint(
    bp,
    "GET",
    "/api/auth/sites",
    needs=Token(),
    read=lambda call: Read(access.MY_SITES, shape=access.my_sites),
    spec=Spec(
        "The caller's active sites, by name",
        "auth",
        data(sites=ListOf(SiteSummary)),
        "Sites with the caller's role",
        description=(
            "The active sites the caller belongs to, by name, with the caller's role on each; not paginated."
        ),
    ),
)
def my_sites(call: Call[list[access.Membership]]) -> Response:
    return ok({"sites": [site.summary() for site in call.found]})


def at_the_site_asked(call: Call[None]) -> Read[None]:
    """A site switch's read: the caller's rights at the site of the body (a 400 for a body it
    refuses, after the 401)."""
    body = call.body(schemas.SiteSelect)
    return Read(site=body.site_id if 1 <= body.site_id <= INT32_MAX else None)


@endpoint(
    bp,
    "POST",
    "/api/auth/site",
    needs=Token(),
    read=at_the_site_asked,
    transaction=False,
    spec=Spec(
        "Choose the active site: a new token for the same session",
        "auth",
        Envelope(SiteToken),
        "A token scoped to the site, expiring with the session",
        errors=(403,),
        body=schemas.SiteSelect,
        description=(
            "Returns a new token for the same session, scoped to the site, expiring when the session does. "
            "403 when the caller is not an active member of that active site, whether or not it exists."
        ),
    ),
)
def select_site(call: Call[None]) -> Response:
    # The rights were read at the site asked for: no site for a non-member (a 403).
    site = call.principal.site
    return ok(service.select_site(call.token, site=site.summary() if site is not None else None))


@endpoint(
    bp,
    "POST",
    "/api/auth/logout",
    needs=Token(),
    session=False,
    ends_session=True,
    rate_exempt=True,
    spec=Spec(
        'End the session (every token of it); with {"all": true}, every session of the user',
        "auth",
        MESSAGE,
        "Logged out",
        body=schemas.LogoutRequest,
        body_optional=True,
        description=(
            "Ends the token's session: from then on every token of it gets 401. No body, `{}` or "
            '`{"all": false}`: this session; `{"all": true}`: every session of the user (the token alone '
            "suffices). Never refused by the per-user rate limit."
        ),
    ),
)
def logout(call: Call[None]) -> Response:
    # The session (or every session) ended in the request's token check (auth.guard), in its one
    # Redis round trip; a body the schema refuses ended nothing and is answered here.
    call.optional_body(schemas.LogoutRequest)
    return ok({"message": "Successfully logged out"})
