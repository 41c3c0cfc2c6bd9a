"""The interaction endpoints of the token's active site."""

from __future__ import annotations

from dataclasses import replace

from chalice import Blueprint, Response

from chalicelib.access import Listing, Read, SiteRole, Token, listing
from chalicelib.audit import events as audit
from chalicelib.endpoint import Call, endpoint
from chalicelib.http import envelope, location, ok, paginated, respond
from chalicelib.interactions import idempotency, queries, schemas, service
from chalicelib.interactions.queries import InteractionRow
from chalicelib.interactions.schemas import (
    InteractionCreate,
    InteractionQuery,
    InteractionRead,
    InteractionUpdate,
)
from chalicelib.kit.answers import Answer
from chalicelib.kit.docs import MESSAGE, Header, ListOf, Spec, data, page
from chalicelib.kit.ids import parse_id
from chalicelib.models import INTERACTION_TYPES

bp = Blueprint(__name__)

BASE = "/api/interactions"
ITEM = BASE + "/{interaction_id}"
TAG = "interactions"

IF_MATCH = Header(
    "If-Match",
    'makes the change conditional: `"<version>"` (strong) or `*`; a stale, weak or malformed value is a 412',
)
IDEMPOTENCY_KEY = Header(
    idempotency.HEADER,
    "at most 255 characters; a retry with the same key and body "
    "replays the first successful answer (kept 24 h, per site and user)",
    {"type": "string", "maxLength": 255},
)

# The document's examples (tests/test_openapi.py checks each against its schema).
EXAMPLE = {
    "id": 42,
    "site_id": 1,
    "title": "Client Meeting",
    "type": "Meeting",
    "lead": "John Smith",
    "start_datetime": "2023-08-15T18:00:00Z",
    "timezone": "America/New_York",
    "end_datetime": "2023-08-15T19:30:00Z",
    "location": "Conference Room A",
    "description": "Quarterly review",
    "notes": None,
    "created_by": 5,
    "created_at": "2023-08-10T09:23:15Z",
    "updated_by": None,
    "updated_at": None,
    "version": 1,
}
CREATE_EXAMPLE = {
    "title": "Client Meeting",
    "type": "Meeting",
    "lead": "John Smith",
    "start_datetime": "2023-08-15T14:00",
    "timezone": "America/New_York",
    "end_datetime": "2023-08-15T15:30",
    "location": "Conference Room A",
    "description": "Quarterly review",
}
UPDATE_EXAMPLE = {"location": "Room 4", "notes": None}
UPDATED = {
    **EXAMPLE,
    "location": "Room 4",
    "updated_by": 5,
    "updated_at": "2023-08-16T08:00:00Z",
    "version": 2,
}


def one(call: Call[None], interaction_id: str) -> Read[InteractionRow | None]:
    """The route's read: the interaction of the path (or None: an id no row can have finds none)."""
    found = parse_id(interaction_id)
    return Read(
        queries.FOLDED_BY_ID,
        {"interaction_id": found or 0},
        shape=lambda rows: queries.interaction(rows[0]) if rows else None,
    )


def a_page(call: Call[None]) -> Read[Listing[InteractionQuery]]:
    """The route's read: one page of the list its query asks for (a 400 for a query it refuses)."""
    query = call.query(InteractionQuery)
    return listing(query, service.list_read(query, site_id=call.token.site_id))


@endpoint(
    bp,
    "GET",
    BASE,
    needs=SiteRole(),
    read=a_page,
    search_params=queries.SUBSTRING_FILTERS,
    spec=Spec(
        "Find interactions of the active site",
        TAG,
        page("interactions", InteractionRead),
        "One page, with meta.pagination (a substring search counts towards SEARCH_RATE_PER_MINUTE)",
        errors=(403,),
        query=InteractionQuery,
        response_example={
            "status": "success",
            "data": {"interactions": [EXAMPLE]},
            "meta": {
                "pagination": {
                    "page": 1,
                    "per_page": 25,
                    "total_pages": 1,
                    "total_records": 1,
                    "total_exact": True,
                    "next_cursor": None,
                }
            },
        },
        description=(
            "The active site's interactions, filtered, sorted and paginated. Substring filters (`search`, "
            "`title`, `lead`, `location`) are case-insensitive, match `%`, `_` and `\\` literally and need "
            "three letters or digits in a row. Ties are broken by `id`; nulls sort last. A page past the end "
            "is an empty list with correct `meta`."
        ),
    ),
)
def list_interactions(call: Call[Listing[InteractionQuery]]) -> Response:
    found = service.page(call.session, site_id=call.principal.at_site(), listing=call.found)
    return paginated("interactions", replace(found, items=[service.serialize(row) for row in found.items]))


@endpoint(
    bp,
    "POST",
    BASE,
    needs=SiteRole(write=True),
    read=lambda call: idempotency.key_read(call.token, call.header(idempotency.HEADER)),
    spec=Spec(
        "Create an interaction in the active site (editor, admin)",
        TAG,
        data(interaction=InteractionRead),
        "Created",
        status=201,
        errors=(403, 409, 422),
        body=InteractionCreate,
        headers=(IDEMPOTENCY_KEY,),
        response_headers=("ETag", "Location"),
        request_example=CREATE_EXAMPLE,
        response_example={"status": "success", "data": {"interaction": EXAMPLE}},
        description=(
            "Editors and admins of the active site. Server-owned fields (`id`, `site_id`, `created_by`, "
            "`created_at`, `updated_by`, `updated_at`, `version`) are ignored when sent; any other unknown "
            "field is a 400. With `Idempotency-Key`, a retry with the same body replays the first successful "
            "answer; a different body is a 422, and a retry while the first is still running a 409 with "
            "`Retry-After`."
        ),
    ),
)
def create_interaction(call: Call[bool]) -> Response:
    caller = call.principal
    body = call.json()
    new = schemas.parse_create(body)
    key = idempotency.key_from(call.request.headers)

    values = service.new_values(principal=caller, data=new)
    origin = audit.by_caller(call)

    def created(row: InteractionRow) -> Answer:
        return Answer(
            201,
            envelope({"interaction": service.serialize(row)}),
            {"ETag": service.etag(row), "Location": location(call.request, f"{BASE}/{row.id}")},
        )

    # The key is stored in this transaction, with the create it answers (409/422 come last), and
    # the create's statement records its event.
    return respond(
        idempotency.run(
            call.session,
            principal=caller,
            key=key,
            locked=call.found,
            body=body,
            values=values,
            answer=created,
            event=lambda inserted: service.created_event(inserted, origin=origin, values=values),
        )
    )


@endpoint(
    bp,
    "GET",
    BASE + "/types",
    needs=Token(),
    spec=Spec(
        "The interaction types",
        TAG,
        data(types=ListOf({"type": "string", "enum": list(INTERACTION_TYPES)})),
        "The types list",
        description=(
            "The closed list of interaction types a `type` may take; any authenticated user, no site needed."
        ),
    ),
)
def interaction_types(call: Call[None]) -> Response:
    return ok({"types": list(INTERACTION_TYPES)})


@endpoint(
    bp,
    "GET",
    ITEM,
    needs=SiteRole(),
    read=one,
    spec=Spec(
        "One interaction",
        TAG,
        data(interaction=InteractionRead),
        "The interaction",
        errors=(403, 404),
        response_headers=("ETag",),
        response_example={"status": "success", "data": {"interaction": EXAMPLE}},
        description=(
            "One interaction of the active site, with its version as `ETag`. Another site's interaction is a "
            "404, like one that does not exist."
        ),
    ),
)
def get_interaction(call: Call[InteractionRow | None], interaction_id: str) -> Response:
    row = service.found(call.found)
    return ok({"interaction": service.serialize(row)}, headers={"ETag": service.etag(row)})


@endpoint(
    bp,
    "PUT",
    ITEM,
    needs=SiteRole(write=True),
    read=one,
    transaction=False,
    spec=Spec(
        "Partial update (editor, admin): only the fields sent change; null clears",
        TAG,
        data(interaction=InteractionRead),
        "The interaction as it is now",
        errors=(403, 404, 409, 412),
        body=InteractionUpdate,
        headers=(IF_MATCH,),
        response_headers=("ETag",),
        request_example=UPDATE_EXAMPLE,
        response_example={"status": "success", "data": {"interaction": UPDATED}},
        description=(
            "Editors and admins. Only the fields sent change, under the same rules, and the record as a whole "
            "must still hold (end not before start); a field that is not sent keeps its value, so send only "
            "what changes. `null` clears an optional field and is a 400 for a required one. Changing only "
            '`timezone` keeps the stored instants. With `If-Match: "<version>"` the change is made only on '
            "that version (else 412, nothing changed). A body that changes nothing returns the record as it "
            "is."
        ),
    ),
)
def update_interaction(call: Call[InteractionRow | None], interaction_id: str) -> Response:
    changes = schemas.parse_update(call.json())
    row = service.update(
        call.session,
        principal=call.principal,
        origin=audit.by_caller(call),
        data=changes,
        current=call.found,
        if_match=call.header("If-Match"),
    )
    return ok({"interaction": service.serialize(row)}, headers={"ETag": service.etag(row)})


@endpoint(
    bp,
    "DELETE",
    ITEM,
    needs=SiteRole(write=True),
    read=one,
    transaction=False,
    spec=Spec(
        "Delete (editor, admin)",
        TAG,
        MESSAGE,
        "Deleted",
        errors=(403, 404, 412),
        headers=(IF_MATCH,),
        description=(
            "Editors and admins; honours `If-Match` like an update. The interaction's history stays readable "
            "in the site's audit trail."
        ),
    ),
)
def delete_interaction(call: Call[InteractionRow | None], interaction_id: str) -> Response:
    service.delete(
        call.session,
        principal=call.principal,
        origin=audit.by_caller(call),
        current=call.found,
        if_match=call.header("If-Match"),
    )
    return ok({"message": "Interaction deleted"})
