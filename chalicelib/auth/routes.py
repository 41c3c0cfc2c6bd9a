"""The auth endpoints. Schemas and services are imported inside the views: this module is loaded
by every Lambda that imports app.py, and most requests never need argon2 or pydantic models."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.auth.authorizer import jwt_authorizer
from chalicelib.http import ok

bp = Blueprint(__name__)


@bp.route("/api/auth/login", methods=["POST"])
def login():
    from chalicelib.auth import limits, schemas, service
    from chalicelib.db import session_scope
    from chalicelib.http import parse_body

    request = bp.current_request
    # API Gateway's view of the client; X-Forwarded-For is written by the client and never trusted.
    limits.check_login_rate((request.context.get("identity") or {}).get("sourceIp") or "unknown")
    body = parse_body(request, schemas.LoginRequest)
    with session_scope() as session:
        data = service.login(session, username=body.username, password=body.password)
    return ok(data)


@bp.route("/api/auth/me", methods=["GET"], authorizer=jwt_authorizer)
def me():
    from chalicelib.auth import principal, service
    from chalicelib.db import session_scope

    with session_scope() as session:
        caller = principal.load(session, bp.current_request)
        return ok(service.me(session, caller))


@bp.route("/api/auth/sites", methods=["GET"], authorizer=jwt_authorizer)
def my_sites():
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.sites import service as sites

    with session_scope() as session:
        caller = principal.load(session, bp.current_request)
        return ok({"sites": sites.list_for_user(session, user_id=caller.user_id)})


@bp.route("/api/auth/site", methods=["POST"], authorizer=jwt_authorizer)
def select_site():
    from chalicelib.auth import principal, schemas, service
    from chalicelib.db import session_scope
    from chalicelib.http import parse_body

    with session_scope() as session:
        caller = principal.load(session, bp.current_request)
        body = parse_body(bp.current_request, schemas.SiteSelect)
        return ok(service.select_site(session, caller, site_id=body.site_id))


@bp.route("/api/auth/logout", methods=["POST"], authorizer=jwt_authorizer)
def logout():
    from chalicelib.auth import principal, service

    service.logout(principal.token_context(bp.current_request))
    return ok({"message": "Successfully logged out"})
