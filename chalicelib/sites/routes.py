"""The site endpoints: the caller's sites, one site's details, and its members (admins only)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import Forbidden, NotFound
from chalicelib.http import ok, paginated
from chalicelib.kit.docs import ListOf, Spec, data, page
from chalicelib.kit.ids import INT32_MAX, parse_id, path_id
from chalicelib.sites import service
from chalicelib.sites.schemas import SiteDetail, SiteSummary, SiteUser, SiteUsersQuery

bp = Blueprint(__name__)

SITE_NOT_FOUND = "Site not found"


def _site_id(raw: str) -> int:
    return path_id(raw, maximum=INT32_MAX, message=SITE_NOT_FOUND)


@endpoint(bp, "GET", "/api/sites", spec=Spec(
    "The caller's active sites, by name", "sites", data(sites=ListOf(SiteSummary)),
    "Sites with the caller's role"))
def list_sites(call: Call):
    return ok({"sites": service.list_for_user(call.session, user_id=call.caller.user_id)})


@endpoint(bp, "GET", "/api/sites/{site_id}", spec=Spec(
    "One site the caller belongs to, with counts", "sites", data(site=SiteDetail), "The site",
    errors=(404,)))
def get_site(call: Call, site_id: str):
    caller = call.caller
    site = service.detail(call.session, user_id=caller.user_id, site_id=_site_id(site_id))
    if site is None:
        raise NotFound(SITE_NOT_FOUND)
    return ok({"site": site})


@endpoint(bp, "GET", "/api/sites/{site_id}/users", spec=Spec(
    "The site's members, by username (the site's admins only)", "sites", page("users", SiteUser),
    "One page, with meta.pagination", errors=(403, 404), query=SiteUsersQuery))
def list_site_users(call: Call, site_id: str):
    site = parse_id(site_id, maximum=INT32_MAX)  # None: no such site (404 after the 401 check)
    role = call.role_on(site)
    # The order of checks: 403 (a member without the role), 400 (parameters), 404 (no member).
    if role is not None and role != "admin":
        raise Forbidden("Only the site's admins may list its users")
    query = call.query(SiteUsersQuery)
    if role is None:
        raise NotFound(SITE_NOT_FOUND)
    assert site is not None  # a role means the site exists
    users, total = service.list_users(call.session, site_id=site, query=query)
    return paginated({"users": users}, query=query, total=total)
