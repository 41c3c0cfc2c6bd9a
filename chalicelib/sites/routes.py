"""The site endpoints: the caller's sites, one site's details, and its members (admins only)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib import caller as callers
from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.http import ok, paginated
from chalicelib.kit.docs import ListOf, Spec, data, page
from chalicelib.kit.ids import INT32_MAX, parse_id
from chalicelib.sites import service
from chalicelib.sites.schemas import SiteDetail, SiteSummary, SiteUser, SiteUsersQuery

bp = Blueprint(__name__)

SITE_NOT_FOUND = "Site not found"


@endpoint(bp, "GET", "/api/sites", spec=Spec(
    "The caller's active sites, by name", "sites", data(sites=ListOf(SiteSummary)),
    "Sites with the caller's role"))
def list_sites(call: Call):
    return ok({"sites": service.summaries(call.fold(callers.MY_SITES))})


@endpoint(bp, "GET", "/api/sites/{site_id}", spec=Spec(
    "One site the caller belongs to, with counts", "sites", data(site=SiteDetail), "The site",
    errors=(404,)))
def get_site(call: Call, site_id: str):
    caller, _ = call.fold_at(parse_id(site_id, maximum=INT32_MAX), service.DETAIL)
    site = service.detail(caller)
    if site is None:
        raise NotFound(SITE_NOT_FOUND)
    return ok({"site": site})


@endpoint(bp, "GET", "/api/sites/{site_id}/users", spec=Spec(
    "The site's members, by username (the site's admins only)", "sites", page("users", SiteUser),
    "One page, with meta.pagination", errors=(403, 404), query=SiteUsersQuery))
def list_site_users(call: Call, site_id: str):
    site = parse_id(site_id, maximum=INT32_MAX)  # None: no such site (404 after the 401 check)
    # The order of checks: 403 (a member without the role), 400 (parameters), 404 (no member).
    try:
        query = call.query(SiteUsersQuery)
    except ValidationFailed:
        _admin_of(call.role_on(site))
        raise
    caller, rows = call.fold_at(site, service.MEMBERS_PAGE, service.members_params(query))
    _admin_of(caller.role)
    if caller.role is None or site is None:
        raise NotFound(SITE_NOT_FOUND)
    users, total = service.members(call.session, site_id=site, query=query, rows=rows)
    return paginated({"users": users}, query=query, total=total)


def _admin_of(role: str | None) -> None:
    if role is not None and role != "admin":
        raise Forbidden("Only the site's admins may list its users")
