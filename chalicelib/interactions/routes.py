"""The interaction endpoints of the token's active site."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.endpoint import Call, endpoint
from chalicelib.http import Answer, envelope, ok, paginated, respond
from chalicelib.interactions import idempotency, schemas, service
from chalicelib.interactions.schemas import (
    InteractionCreate,
    InteractionQuery,
    InteractionRead,
    InteractionUpdate,
)
from chalicelib.kit.docs import MESSAGE, Header, ListOf, Spec, data, page
from chalicelib.kit.ids import path_id
from chalicelib.models import INTERACTION_TYPES

bp = Blueprint(__name__)

BASE = "/api/interactions"
ITEM = BASE + "/{interaction_id}"
TAG = "interactions"

IF_MATCH = Header("If-Match", 'makes the change conditional: `"<version>"` (strong) or `*`; a stale, weak '
                              "or malformed value is a 412")
IDEMPOTENCY_KEY = Header(idempotency.HEADER, "at most 255 characters; a retry with the same key and body "
                                             "replays the first successful answer (kept 24 h, per site and user)",
                         {"type": "string", "maxLength": 255})


def _location(request, interaction_id: int) -> str:
    """The new record's path as the client reached the API (behind a stage or base-path prefix
    deployed; `path` is the full request path, `resourcePath` the route)."""
    path = (request.context or {}).get("path") or BASE
    prefix = path.rstrip("/")[: -len(BASE)] if path.rstrip("/").endswith(BASE) else ""
    return f"{prefix}{BASE}/{interaction_id}"


def _id(raw: str) -> int:
    return path_id(raw, message=service.NOT_FOUND)


@endpoint(bp, "GET", BASE, site=True, spec=Spec(
    "Find interactions of the active site", TAG, page("interactions", InteractionRead),
    "One page, with meta.pagination", errors=(403,), query=InteractionQuery))
def list_interactions(call: Call):
    caller = call.caller
    query = call.query(InteractionQuery)
    rows, total = service.list_(call.session, site_id=caller.site_id, query=query)
    return paginated({"interactions": [service.serialize(row) for row in rows]}, query=query, total=total)


@endpoint(bp, "POST", BASE, write=True, spec=Spec(
    "Create an interaction in the active site (editor, admin)", TAG, data(interaction=InteractionRead),
    "Created", status=201, errors=(403, 409, 422), body=InteractionCreate, headers=(IDEMPOTENCY_KEY,),
    response_headers=("ETag", "Location")))
def create_interaction(call: Call):
    caller = call.caller
    body = call.json()
    new = schemas.parse_create(body)
    key = idempotency.key_from(call.request.headers)

    def created() -> Answer:
        row = service.create(call.session, principal=caller, data=new)
        return Answer(201, envelope({"interaction": service.serialize(row)}),
                      {"ETag": service.etag(row), "Location": _location(call.request, row.id)})

    # The key is stored in this transaction, with the create it answers (409/422 come last).
    return respond(idempotency.run(call.session, principal=caller, key=key, body=body, respond=created))


@endpoint(bp, "GET", BASE + "/types", spec=Spec(
    "The interaction types", TAG, data(types=ListOf({"type": "string", "enum": list(INTERACTION_TYPES)})),
    "The types list"))
def interaction_types(call: Call):
    call.caller  # noqa: B018 - a token of an active user; no site needed
    return ok({"types": list(INTERACTION_TYPES)})


@endpoint(bp, "GET", ITEM, site=True, spec=Spec(
    "One interaction", TAG, data(interaction=InteractionRead), "The interaction", errors=(403, 404),
    response_headers=("ETag",)))
def get_interaction(call: Call, interaction_id: str):
    caller = call.caller
    row = service.get(call.session, site_id=caller.site_id, interaction_id=_id(interaction_id))
    return ok({"interaction": service.serialize(row)}, headers={"ETag": service.etag(row)})


@endpoint(bp, "PUT", ITEM, write=True, spec=Spec(
    "Partial update (editor, admin): only the fields sent change; null clears", TAG,
    data(interaction=InteractionRead), "The interaction as it is now", errors=(403, 404, 409, 412),
    body=InteractionUpdate, headers=(IF_MATCH,), response_headers=("ETag",)))
def update_interaction(call: Call, interaction_id: str):
    caller = call.caller
    changes = schemas.parse_update(call.json())
    row = service.update(call.session, principal=caller, data=changes, interaction_id=_id(interaction_id),
                         if_match=call.header("If-Match"))
    return ok({"interaction": service.serialize(row)}, headers={"ETag": service.etag(row)})


@endpoint(bp, "DELETE", ITEM, write=True, spec=Spec(
    "Delete (editor, admin)", TAG, MESSAGE, "Deleted", errors=(403, 404, 412), headers=(IF_MATCH,)))
def delete_interaction(call: Call, interaction_id: str):
    caller = call.caller
    service.delete(call.session, principal=caller, interaction_id=_id(interaction_id),
                   if_match=call.header("If-Match"))
    return ok({"message": "Interaction deleted"})
