"""The site endpoints: the caller's sites, one site's details, and its members (admins only)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.auth.authorizer import jwt_authorizer
from chalicelib.http import ok

bp = Blueprint(__name__)

SITE_NOT_FOUND = "Site not found"


@bp.route("/api/sites", methods=["GET"], authorizer=jwt_authorizer)
def list_sites():
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.sites import service

    with session_scope() as session:
        caller = principal.load(session, bp.current_request)
        return ok({"sites": service.list_for_user(session, user_id=caller.user_id)})


@bp.route("/api/sites/{site_id}", methods=["GET"], authorizer=jwt_authorizer)
def get_site(site_id):
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.errors import NotFound
    from chalicelib.sites import schemas, service

    with session_scope() as session:
        caller = principal.load(session, bp.current_request)
        site = service.detail(session, user_id=caller.user_id,
                              site_id=schemas.path_id(site_id, message=SITE_NOT_FOUND))
        if site is None:
            raise NotFound(SITE_NOT_FOUND)
        return ok({"site": site})


@bp.route("/api/sites/{site_id}/users", methods=["GET"], authorizer=jwt_authorizer)
def list_site_users(site_id):
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.errors import Forbidden, NotFound
    from chalicelib.http import paginated, parse_query
    from chalicelib.sites import schemas, service

    request = bp.current_request
    with session_scope() as session:
        caller = principal.load(session, request)
        site_id = schemas.path_id(site_id, message=SITE_NOT_FOUND)
        member = service.membership(session, user_id=caller.user_id, site_id=site_id)
        # The order of checks: 403 (a member without the role), 400 (parameters), 404 (no member).
        if member is not None and member["role"] != "admin":
            raise Forbidden("Only the site's admins may list its users")
        query = parse_query(request, schemas.SiteUsersQuery)
        if member is None:
            raise NotFound(SITE_NOT_FOUND)
        users, total = service.list_users(session, site_id=site_id, page=query.page, per_page=query.per_page)
    return paginated({"users": users}, page=query.page, per_page=query.per_page, total=total)
