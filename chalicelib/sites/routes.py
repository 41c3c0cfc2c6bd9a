"""The site endpoints: the caller's sites, one site's details, its members; administration by the
site's admins (invitations, roles, the site's settings) and by platform admins (new sites)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from chalice import Blueprint, Response

from chalicelib import caller as callers
from chalicelib.audit import events as audit
from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.http import location, ok, paginated
from chalicelib.kit.docs import MESSAGE, ListOf, Spec, data, page
from chalicelib.kit.ids import INT32_MAX, parse_id
from chalicelib.sites import invitations, members, service
from chalicelib.sites.schemas import (
    InvitationCreate,
    InvitationRead,
    InvitationsQuery,
    MemberUpdate,
    SiteCreate,
    SiteDetail,
    SiteSummary,
    SiteUpdate,
    SiteUser,
    SiteUsersQuery,
)

bp = Blueprint(__name__)

SITE_NOT_FOUND = service.SITE_NOT_FOUND
SITE = "/api/sites/{site_id}"
USERS = SITE + "/users"
MEMBER = USERS + "/{user_id}"
INVITATIONS = SITE + "/invitations"
INVITATION = INVITATIONS + "/{invitation_id}"
TAG = "sites"
ADMINS_ONLY = "Only the site's admins may do this"
T = TypeVar("T")


@endpoint(
    bp,
    "GET",
    "/api/sites",
    spec=Spec(
        "The caller's active sites, by name",
        TAG,
        data(sites=ListOf(SiteSummary)),
        "Sites with the caller's role",
        description=(
            "The active sites the caller belongs to, by name, with the caller's role; not paginated."
        ),
    ),
)
def list_sites(call: Call) -> Response:
    return ok({"sites": service.summaries(call.fold(callers.MY_SITES))})


@endpoint(
    bp,
    "POST",
    "/api/sites",
    platform_admin=True,
    spec=Spec(
        "Create a site (platform admins); the caller becomes its admin",
        TAG,
        data(site=SiteDetail),
        "Created",
        status=201,
        errors=(403, 409),
        body=SiteCreate,
        response_headers=("Location",),
        description=(
            "Platform admins only (403 for anyone else). The caller becomes the new site's admin. Names are "
            "unique case-insensitively (409)."
        ),
    ),
)
def create_site(call: Call) -> Response:
    caller = call.caller  # 401, then 403 for a caller who is not a platform admin
    body = call.body(SiteCreate)
    site = service.create_site(
        call.session,
        caller_id=caller.user_id,
        origin=audit.by_caller(call),
        name=body.name,
        description=body.description,
    )
    return ok(
        {"site": site}, status=201, headers={"Location": location(call.request, f"/api/sites/{site['id']}")}
    )


@endpoint(
    bp,
    "GET",
    SITE,
    spec=Spec(
        "One site the caller belongs to, with counts",
        TAG,
        data(site=SiteDetail),
        "The site",
        errors=(404,),
        description=(
            "A site the caller is an active member of, with its counts; 404 for anyone else, or when the site "
            "is inactive."
        ),
    ),
)
def get_site(call: Call, site_id: str) -> Response:
    caller, _ = call.fold_at(parse_id(site_id, maximum=INT32_MAX), service.DETAIL)
    site = service.detail(caller)
    if site is None:
        raise NotFound(SITE_NOT_FOUND)
    return ok({"site": site})


@endpoint(
    bp,
    "GET",
    USERS,
    spec=Spec(
        "The site's members by username (the site's admins only)",
        TAG,
        page("users", SiteUser),
        "One page, with meta.pagination",
        errors=(403, 404),
        query=SiteUsersQuery,
        description=(
            "The site's members by username, for its admins (403 for its other members, 404 for anyone else)."
        ),
    ),
)
def list_site_users(call: Call, site_id: str) -> Response:
    site = parse_id(site_id, maximum=INT32_MAX)  # None: no such site (404 after the 401 check)
    message = "Only the site's admins may list its users"
    # The order of checks: 403 (a member without the role), 400 (parameters), 404 (no member).
    try:
        query = call.query(SiteUsersQuery)
        read = members.members_read(query, site_id=site)
    except ValidationFailed:
        callers.admin_only(call.role_on(site), message)
        raise
    caller, rows = call.fold_at(site, read.statement, read.params)
    callers.admin_only(caller.role, message)
    if caller.role is None or site is None:
        raise NotFound(SITE_NOT_FOUND)
    return paginated("users", members.members(call.session, site_id=site, query=query, read=read, rows=rows))


# --- administration by the site's admins -----------------------------------------------------------


def _at_site(call: Call, site_id: str, parse: Callable[[], T]) -> tuple[int, Any, audit.Origin, T]:
    """A change at the path's site, checked in API.md's order: 401, 403 (a member who is not its
    admin), 400 (`parse`: the body; unknown query parameters), 404 (not a member of that active
    site, or no such site). The rights are read with the site's row locked (`service.LOCKED`):
    (site id, the locked row, the change's origin, what `parse` returned)."""
    site = parse_id(site_id, maximum=INT32_MAX)
    try:
        caller, rows = call.fold_at(site, service.LOCKED, key="locked_id")
    except ValidationFailed:  # an unknown query parameter: a 403 comes first
        callers.admin_only(call.role_on(site), ADMINS_ONLY)
        raise
    callers.admin_only(caller.role, ADMINS_ONLY)
    parsed = parse()
    if caller.role is None or site is None or not rows:
        raise NotFound(SITE_NOT_FOUND)
    origin = audit.by_api(
        user_id=call.token.user_id, username=caller.row.caller_username, ids=call.request_ids
    )
    return site, rows[0], origin, parsed


def _member_id(raw: str) -> int:
    found = parse_id(raw, maximum=INT32_MAX)
    if found is None:
        raise NotFound(members.MEMBER_NOT_FOUND)
    return found


@endpoint(
    bp,
    "PUT",
    SITE,
    spec=Spec(
        "Change the site's name or description (the site's admins)",
        TAG,
        data(site=SiteDetail),
        "The site as it is now",
        errors=(403, 404, 409),
        body=SiteUpdate,
        description=(
            "The site's admins. Only the fields sent change; `null` clears the description. The detail's "
            "server-owned fields are ignored when sent back; a rename onto another site's name is a 409."
        ),
    ),
)
def update_site(call: Call, site_id: str) -> Response:
    site, locked, origin, body = _at_site(call, site_id, lambda: call.body(SiteUpdate))
    return ok(
        {
            "site": service.update_site(
                call.session,
                site_id=site,
                caller_id=call.token.user_id,
                origin=origin,
                locked=locked,
                sent=body.sent(),
            )
        }
    )


@endpoint(
    bp,
    "PUT",
    MEMBER,
    spec=Spec(
        "Change a member's role (the site's admins)",
        TAG,
        data(user=SiteUser),
        "The member",
        errors=(403, 404, 409),
        body=MemberUpdate,
        description=(
            "The site's admins. A change that would leave the site without an active admin is a 409."
        ),
    ),
)
def change_role(call: Call, site_id: str, user_id: str) -> Response:
    site, _, origin, body = _at_site(call, site_id, lambda: call.body(MemberUpdate))
    return ok(
        {
            "user": members.change_role(
                call.session,
                site_id=site,
                caller_id=call.token.user_id,
                origin=origin,
                user_id=_member_id(user_id),
                role=body.role,
            )
        }
    )


@endpoint(
    bp,
    "DELETE",
    MEMBER,
    spec=Spec(
        "Remove a member (the site's admins); the account stays, and their pending invitations as "
        "an admin of the site are revoked",
        TAG,
        MESSAGE,
        "Removed",
        errors=(403, 404, 409),
        description=(
            "The site's admins. The account stays (it may belong to other sites); removing the last active "
            "admin is a 409."
        ),
    ),
)
def remove_member(call: Call, site_id: str, user_id: str) -> Response:
    site, _, origin, _ = _at_site(call, site_id, lambda: None)
    members.remove_member(
        call.session, site_id=site, caller_id=call.token.user_id, origin=origin, user_id=_member_id(user_id)
    )
    return ok({"message": "Member removed"})


# --- invitations -----------------------------------------------------------------------------------


def _invitation_id(raw: str) -> int:
    found = parse_id(raw, maximum=INT32_MAX)
    if found is None:
        raise NotFound(invitations.INVITATION_NOT_FOUND)
    return found


def _delivered(call: Call, invitation: dict[str, Any]) -> dict[str, Any]:
    """The invitation committed with its queued message, then the message sent (a new token)."""
    call.commit()
    invitation["delivery"] = invitations.deliver(call.session, invitation_id=invitation["id"])
    return invitation


@endpoint(
    bp,
    "POST",
    INVITATIONS,
    spec=Spec(
        "Invite an e-mail address to the site with a role (the site's admins); the token goes to the "
        "address only. The answer is the same whether or not the address has an account anywhere",
        TAG,
        data(invitation=InvitationRead),
        "Invited",
        status=201,
        errors=(403, 404, 409),
        body=InvitationCreate,
        response_headers=("Location",),
        description=(
            "Site admin of the path's site. The invitation's token is delivered to the address (Amazon SES "
            "deployed) and appears in no answer; `delivery` is `queued` when the message could not be sent "
            "yet (it is retried, each time with a new token). 409 when a member of this site has the "
            "address, or this site has a pending invitation for it (use resend); other sites' invitations "
            "never conflict, and no answer tells whether the address has an account anywhere."
        ),
    ),
)
def create_invitation(call: Call, site_id: str) -> Response:
    site, _, origin, body = _at_site(call, site_id, lambda: call.body(InvitationCreate))
    invitation = invitations.create(
        call.session,
        site_id=site,
        caller_id=call.token.user_id,
        origin=origin,
        email=body.email,
        role=body.role,
    )
    return ok(
        {"invitation": _delivered(call, invitation)},
        status=201,
        headers={"Location": location(call.request, f"/api/sites/{site}/invitations/{invitation['id']}")},
    )


@endpoint(
    bp,
    "GET",
    INVITATIONS,
    spec=Spec(
        "The site's invitations, newest first (the site's admins only)",
        TAG,
        page("invitations", InvitationRead),
        "One page, with meta.pagination",
        errors=(403, 404),
        query=InvitationsQuery,
        description=(
            "Site admin of the path's site. Newest first, paginated like every list (`page` and `per_page`, "
            "or `cursor`); `status` filters (`expired`: pending past its expiry, on the database's clock)."
        ),
    ),
)
def list_invitations(call: Call, site_id: str) -> Response:
    site = parse_id(site_id, maximum=INT32_MAX)
    try:
        query = call.query(InvitationsQuery)
        read = invitations.page_read(query, site_id=site, status=query.status)
    except ValidationFailed:
        callers.admin_only(call.role_on(site), ADMINS_ONLY)
        raise
    caller, rows = call.fold_at(site, read.statement, read.params)
    callers.admin_only(caller.role, ADMINS_ONLY)
    if caller.role is None or site is None:
        raise NotFound(SITE_NOT_FOUND)
    return paginated(
        "invitations",
        invitations.page(call.session, site_id=site, query=query, status=query.status, read=read, rows=rows),
    )


@endpoint(
    bp,
    "GET",
    INVITATION,
    spec=Spec(
        "One of the site's invitations (the site's admins only)",
        TAG,
        data(invitation=InvitationRead),
        "The invitation",
        errors=(403, 404),
        description="Site admin of the path's site; another site's invitation is a 404.",
    ),
)
def get_invitation(call: Call, site_id: str, invitation_id: str) -> Response:
    site = parse_id(site_id, maximum=INT32_MAX)
    wanted = parse_id(invitation_id, maximum=INT32_MAX)
    try:
        caller, rows = call.fold_at(site, invitations.ONE, {"invitation_id": wanted or -1})
    except ValidationFailed:  # an unknown query parameter: a 403 comes first
        callers.admin_only(call.role_on(site), ADMINS_ONLY)
        raise
    callers.admin_only(caller.role, ADMINS_ONLY)
    if caller.role is None or site is None:
        raise NotFound(SITE_NOT_FOUND)
    if not rows:
        raise NotFound(invitations.INVITATION_NOT_FOUND)
    return ok({"invitation": invitations.representation(rows[0])})


@endpoint(
    bp,
    "DELETE",
    INVITATION,
    spec=Spec(
        "Revoke a pending invitation (the site's admins); its token stops working",
        TAG,
        data(invitation=InvitationRead),
        "Revoked",
        errors=(403, 404, 409),
        description=(
            "Site admin of the path's site. A pending invitation only (409 otherwise, also when an accept "
            "won the race for its row)."
        ),
    ),
)
def revoke_invitation(call: Call, site_id: str, invitation_id: str) -> Response:
    site, _, origin, _ = _at_site(call, site_id, lambda: None)
    return ok(
        {
            "invitation": invitations.revoke(
                call.session,
                site_id=site,
                caller_id=call.token.user_id,
                origin=origin,
                invitation_id=_invitation_id(invitation_id),
            )
        }
    )


@endpoint(
    bp,
    "POST",
    INVITATION + "/resend",
    spec=Spec(
        "Send a pending invitation again with a new expiry and a new token (the site's admins); "
        "earlier tokens stop working",
        TAG,
        data(invitation=InvitationRead),
        "Sent again (or queued)",
        errors=(403, 404, 409),
        description=(
            "Site admin of the path's site. A pending invitation only (409 otherwise): a new expiry, the "
            "message sent again with a new token; the earlier token stops working at once."
        ),
    ),
)
def resend_invitation(call: Call, site_id: str, invitation_id: str) -> Response:
    site, _, origin, _ = _at_site(call, site_id, lambda: None)
    invitation = invitations.resend(
        call.session,
        site_id=site,
        caller_id=call.token.user_id,
        origin=origin,
        invitation_id=_invitation_id(invitation_id),
    )
    return ok({"invitation": _delivered(call, invitation)})
