"""The site endpoints: the caller's sites, one site's details, its members; administration by the
site's admins (invitations, roles, the site's settings) and by platform admins (new sites)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chalice import Blueprint, Response
from pydantic import BaseModel

from chalicelib import access
from chalicelib.access import Listing, PlatformAdmin, Read, SiteAdmin, SiteRole, Token, listing
from chalicelib.audit import events as audit
from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import NotFound
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
B = TypeVar("B", bound=BaseModel)


def _site(raw: str) -> int | None:
    return parse_id(raw, maximum=INT32_MAX)  # None: no such site (a 404 after the 401, 403 and 400)


@dataclass(frozen=True)
class Change(Generic[B]):
    """What a change at the path's site starts from: the site's row, locked, and the body."""

    site: service.Locked
    body: B


def locked(call: Call[None], site_id: str, **_ids: str) -> Read[service.Locked]:
    """The read of every change at the path's site: the caller's rights there and, for its admins,
    the site's row locked (`service.LOCKED`)."""
    return Read(service.LOCKED, key="locked_id", shape=service.locked)


def change(model: type[B]) -> Callable[..., Read[Change[B]]]:
    """`locked`, for a change with a body: the body parsed with `model` (its 400 comes after the
    403 and before the 404)."""

    def read(call: Call[None], site_id: str, **_ids: str) -> Read[Change[B]]:
        body = call.body(model)
        return Read(service.LOCKED, key="locked_id", shape=lambda rows: Change(service.locked(rows), body))

    return read


def users_page(call: Call[None], site_id: str) -> Read[Listing[SiteUsersQuery]]:
    query = call.query(SiteUsersQuery)
    return listing(query, members.members_read(query, site_id=_site(site_id)))


def invitations_page(call: Call[None], site_id: str) -> Read[Listing[InvitationsQuery]]:
    query = call.query(InvitationsQuery)
    return listing(query, invitations.page_read(query, site_id=_site(site_id), status=query.status))


def one_invitation(call: Call[None], site_id: str, invitation_id: str) -> Read[Any]:
    wanted = parse_id(invitation_id, maximum=INT32_MAX) or -1
    return Read(invitations.ONE, {"invitation_id": wanted}, shape=lambda rows: rows[0] if rows else None)


@endpoint(
    bp,
    "GET",
    "/api/sites",
    needs=Token(),
    read=lambda call: Read(access.MY_SITES, shape=access.my_sites),
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
def list_sites(call: Call[list[access.Membership]]) -> Response:
    return ok({"sites": [site.summary() for site in call.found]})


@endpoint(
    bp,
    "POST",
    "/api/sites",
    needs=PlatformAdmin(),
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
            "Platform admins only (403 for anyone else). The caller becomes the new site's admin. Names "
            "refuse control, bidirectional and invisible characters (400) and are unique case-insensitively "
            "and by their confusable skeleton, so `Аlpha` with a Cyrillic `А` is a 409 beside `Alpha`."
        ),
    ),
)
def create_site(call: Call[None]) -> Response:
    body = call.body(SiteCreate)
    site = service.create_site(
        call.session,
        caller_id=call.principal.user_id,
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
    needs=SiteRole(at="path"),
    read=lambda call, site_id: Read(service.DETAIL, shape=service.counts),
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
def get_site(call: Call[service.Counts], site_id: str) -> Response:
    return ok({"site": service.detail(call.principal, call.found)})


@endpoint(
    bp,
    "GET",
    USERS,
    needs=SiteAdmin("Only the site's admins may list its users"),
    read=users_page,
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
def list_site_users(call: Call[Listing[SiteUsersQuery]], site_id: str) -> Response:
    return paginated(
        "users", members.members(call.session, site_id=call.principal.at_site(), listing=call.found)
    )


# --- administration by the site's admins -----------------------------------------------------------


def _member_id(raw: str) -> int:
    found = parse_id(raw, maximum=INT32_MAX)
    if found is None:
        raise NotFound(members.MEMBER_NOT_FOUND)
    return found


@endpoint(
    bp,
    "PUT",
    SITE,
    needs=SiteAdmin(),
    read=change(SiteUpdate),
    spec=Spec(
        "Change the site's name or description (the site's admins)",
        TAG,
        data(site=SiteDetail),
        "The site as it is now",
        errors=(403, 404, 409),
        body=SiteUpdate,
        description=(
            "The site's admins. Only the fields sent change; `null` clears the description. The detail's "
            "server-owned fields are ignored when sent back; a rename onto another site's name (or one that looks the same: its confusable skeleton) is a 409."
        ),
    ),
)
def update_site(call: Call[Change[SiteUpdate]], site_id: str) -> Response:
    return ok(
        {
            "site": service.update_site(
                call.session,
                site_id=call.principal.at_site(),
                caller_id=call.principal.user_id,
                origin=audit.by_caller(call),
                locked=call.found.site,
                sent=call.found.body.sent(),
            )
        }
    )


@endpoint(
    bp,
    "PUT",
    MEMBER,
    needs=SiteAdmin(),
    read=change(MemberUpdate),
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
def change_role(call: Call[Change[MemberUpdate]], site_id: str, user_id: str) -> Response:
    return ok(
        {
            "user": members.change_role(
                call.session,
                site_id=call.principal.at_site(),
                caller_id=call.principal.user_id,
                origin=audit.by_caller(call),
                user_id=_member_id(user_id),
                role=call.found.body.role,
            )
        }
    )


@endpoint(
    bp,
    "DELETE",
    MEMBER,
    needs=SiteAdmin(),
    read=locked,
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
def remove_member(call: Call[service.Locked], site_id: str, user_id: str) -> Response:
    members.remove_member(
        call.session,
        site_id=call.principal.at_site(),
        caller_id=call.principal.user_id,
        origin=audit.by_caller(call),
        user_id=_member_id(user_id),
    )
    return ok({"message": "Member removed"})


# --- invitations -----------------------------------------------------------------------------------


def _invitation_id(raw: str) -> int:
    found = parse_id(raw, maximum=INT32_MAX)
    if found is None:
        raise NotFound(invitations.INVITATION_NOT_FOUND)
    return found


def _delivered(
    call: Call[Change[InvitationCreate]] | Call[service.Locked], invitation: dict[str, Any]
) -> dict[str, Any]:
    """The invitation committed with its queued message, then the message sent (a new token)."""
    call.commit()
    invitation["delivery"] = invitations.deliver(call.session, invitation_id=invitation["id"])
    return invitation


@endpoint(
    bp,
    "POST",
    INVITATIONS,
    needs=SiteAdmin(),
    read=change(InvitationCreate),
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
def create_invitation(call: Call[Change[InvitationCreate]], site_id: str) -> Response:
    site, body = call.principal.at_site(), call.found.body
    invitation = invitations.create(
        call.session,
        site_id=site,
        caller_id=call.principal.user_id,
        origin=audit.by_caller(call),
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
    needs=SiteAdmin(),
    read=invitations_page,
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
def list_invitations(call: Call[Listing[InvitationsQuery]], site_id: str) -> Response:
    return paginated(
        "invitations", invitations.page(call.session, site_id=call.principal.at_site(), listing=call.found)
    )


@endpoint(
    bp,
    "GET",
    INVITATION,
    needs=SiteAdmin(),
    read=one_invitation,
    spec=Spec(
        "One of the site's invitations (the site's admins only)",
        TAG,
        data(invitation=InvitationRead),
        "The invitation",
        errors=(403, 404),
        description="Site admin of the path's site; another site's invitation is a 404.",
    ),
)
def get_invitation(call: Call[Any], site_id: str, invitation_id: str) -> Response:
    if call.found is None:
        raise NotFound(invitations.INVITATION_NOT_FOUND)
    return ok({"invitation": invitations.representation(call.found)})


@endpoint(
    bp,
    "DELETE",
    INVITATION,
    needs=SiteAdmin(),
    read=locked,
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
def revoke_invitation(call: Call[service.Locked], site_id: str, invitation_id: str) -> Response:
    return ok(
        {
            "invitation": invitations.revoke(
                call.session,
                site_id=call.principal.at_site(),
                caller_id=call.principal.user_id,
                origin=audit.by_caller(call),
                invitation_id=_invitation_id(invitation_id),
            )
        }
    )


@endpoint(
    bp,
    "POST",
    INVITATION + "/resend",
    needs=SiteAdmin(),
    read=locked,
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
def resend_invitation(call: Call[service.Locked], site_id: str, invitation_id: str) -> Response:
    invitation = invitations.resend(
        call.session,
        site_id=call.principal.at_site(),
        caller_id=call.principal.user_id,
        origin=audit.by_caller(call),
        invitation_id=_invitation_id(invitation_id),
    )
    return ok({"invitation": _delivered(call, invitation)})
