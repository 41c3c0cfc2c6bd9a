"""The interaction endpoints. Schemas and services are imported inside the views: this module is
loaded by every Lambda that imports app.py, the authorizer's included."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.auth.authorizer import jwt_authorizer
from chalicelib.http import ok

bp = Blueprint(__name__)

BASE = "/api/interactions"


def _location(request, interaction_id: int) -> str:
    """The new record's path as the client reached the API (behind a stage or base-path prefix
    deployed; `path` is the full request path, `resourcePath` the route)."""
    path = (request.context or {}).get("path") or BASE
    prefix = path.rstrip("/")[: -len(BASE)] if path.rstrip("/").endswith(BASE) else ""
    return f"{prefix}{BASE}/{interaction_id}"


@bp.route(BASE, methods=["GET"], authorizer=jwt_authorizer)
def list_interactions():
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.http import paginated, query_params
    from chalicelib.interactions import schemas, service

    request = bp.current_request
    with session_scope() as session:
        caller = principal.load(session, request, site_required=True)
        query = schemas.parse_query(query_params(request, set(schemas.InteractionQuery.model_fields)))
        rows, total = service.list_(session, site_id=caller.site_id, query=query)
    return paginated({"interactions": [service.serialize(row) for row in rows]},
                     page=query.page, per_page=query.per_page, total=total)


@bp.route(BASE, methods=["POST"], authorizer=jwt_authorizer)
def create_interaction():
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.http import json_object
    from chalicelib.interactions import idempotency, schemas, service

    request = bp.current_request
    with session_scope() as session:
        caller = principal.load(session, request, write=True)
        body = json_object(request)
        data = schemas.parse_create(body)
        key = idempotency.key_from(request.headers)

        def respond():
            row = service.create(session, principal=caller, data=data)
            return ok({"interaction": service.serialize(row)}, status=201,
                      headers={"ETag": service.etag(row), "Location": _location(request, row.id)})

        # The key is stored in this transaction, with the create it answers (409/422 come last).
        return idempotency.run(session, principal=caller, key=key, body=body, respond=respond)


@bp.route(f"{BASE}/types", methods=["GET"], authorizer=jwt_authorizer)
def interaction_types():
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.models import INTERACTION_TYPES

    with session_scope() as session:
        principal.load(session, bp.current_request)  # a token of an active user; no site needed
    return ok({"types": list(INTERACTION_TYPES)})


@bp.route(BASE + "/{interaction_id}", methods=["GET"], authorizer=jwt_authorizer)
def get_interaction(interaction_id):
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.interactions import schemas, service

    with session_scope() as session:
        caller = principal.load(session, bp.current_request, site_required=True)
        row = service.get(session, site_id=caller.site_id,
                          interaction_id=schemas.path_id(interaction_id, message=service.NOT_FOUND))
    return ok({"interaction": service.serialize(row)}, headers={"ETag": service.etag(row)})


@bp.route(BASE + "/{interaction_id}", methods=["PUT"], authorizer=jwt_authorizer)
def update_interaction(interaction_id):
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.http import json_object
    from chalicelib.interactions import schemas, service

    request = bp.current_request
    with session_scope() as session:
        caller = principal.load(session, request, write=True)
        data = schemas.parse_update(json_object(request))
        row = service.update(session, principal=caller, data=data,
                             interaction_id=schemas.path_id(interaction_id, message=service.NOT_FOUND),
                             if_match=request.headers.get("if-match"))
    return ok({"interaction": service.serialize(row)}, headers={"ETag": service.etag(row)})


@bp.route(BASE + "/{interaction_id}", methods=["DELETE"], authorizer=jwt_authorizer)
def delete_interaction(interaction_id):
    from chalicelib.auth import principal
    from chalicelib.db import session_scope
    from chalicelib.interactions import schemas, service

    request = bp.current_request
    with session_scope() as session:
        caller = principal.load(session, request, write=True)
        service.delete(session, principal=caller,
                       interaction_id=schemas.path_id(interaction_id, message=service.NOT_FOUND),
                       if_match=request.headers.get("if-match"))
    return ok({"message": "Interaction deleted"})
