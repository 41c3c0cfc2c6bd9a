"""The audit trail's reads: one interaction's history (whoever may read the interaction) and a
site's events (its admins). Both are site-scoped: another site's events are never visible."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import caller as callers
from chalicelib.audit import service
from chalicelib.audit.schemas import AuditQuery, EventRead, HistoryQuery
from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.http import paginated
from chalicelib.kit.docs import Spec, page
from chalicelib.kit.ids import INT32_MAX, parse_id

bp = Blueprint(__name__)
TAG = "audit"


@endpoint(
    bp,
    "GET",
    "/api/interactions/{interaction_id}/history",
    site=True,
    spec=Spec(
        "One interaction's events, newest first (whoever may read the interaction)",
        TAG,
        page("events", EventRead),
        "One page, with meta.pagination",
        errors=(403, 404),
        query=HistoryQuery,
        description=(
            "The audit events of one interaction of the active site, newest first; anyone who may read the "
            "interaction (404 as for reading it). `operator` is shown to the site's admins only."
        ),
    ),
)
def interaction_history(call: Call, interaction_id: str) -> Response:
    found = parse_id(interaction_id)  # None: no such interaction (a 404 after 401, 403 and 400)
    query, read, rows = call.fold_query(
        HistoryQuery,
        lambda q: service.history_read(q, site_id=call.token.site_id, interaction_id=found or 0),
    )
    if found is None or not rows.head.interaction_exists:
        raise NotFound("Interaction not found")
    site_id = call.caller.site_id
    assert site_id is not None  # the endpoint requires the token's site
    return paginated(
        "events",
        service.history(
            call.session, site_id=site_id, interaction_id=found, query=query, read=read, rows=rows
        ),
    )


@endpoint(
    bp,
    "GET",
    "/api/sites/{site_id}/audit",
    spec=Spec(
        "The site's events, newest first (the site's admins only)",
        TAG,
        page("events", EventRead),
        "One page, with meta.pagination",
        errors=(403, 404),
        query=AuditQuery,
        description=(
            "Every event of the site, newest first, for the site's admins (403 for its other members, 404 for "
            "anyone else). Filters combine; `target_id` needs `target_type`, and `until` may not be before "
            "`since`."
        ),
    ),
)
def site_audit(call: Call, site_id: str) -> Response:
    site = parse_id(site_id, maximum=INT32_MAX)  # None: no such site (a 404 after 401, 403 and 400)
    message = "Only the site's admins may read its audit trail"
    try:
        query = call.query(AuditQuery)
        read = service.site_read(query, site_id=site)
    except ValidationFailed:
        callers.admin_only(call.role_on(site), message)
        raise
    caller, rows = call.fold_at(site, read.statement, read.params)
    callers.admin_only(caller.role, message)
    if caller.role is None or site is None:
        raise NotFound("Site not found")
    return paginated(
        "events", service.site_events(call.session, site_id=site, query=query, read=read, rows=rows)
    )
