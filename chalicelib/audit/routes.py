"""The audit trail's reads: one interaction's history (whoever may read the interaction) and a
site's events (its admins). Both are site-scoped: another site's events are never visible."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.access import Listing, Read, SiteAdmin, SiteRole, listing
from chalicelib.audit import service
from chalicelib.audit.schemas import AuditQuery, EventRead, HistoryQuery
from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import NotFound
from chalicelib.http import paginated
from chalicelib.kit.docs import Spec, page
from chalicelib.kit.ids import INT32_MAX, parse_id

bp = Blueprint(__name__)
TAG = "audit"


def events_of_the_interaction(call: Call[None], interaction_id: str) -> Read[Listing[HistoryQuery]]:
    """The route's read: a page of the interaction's events, with whether it exists."""
    query = call.query(HistoryQuery)
    found = parse_id(interaction_id) or 0
    return listing(query, service.history_read(query, site_id=call.token.site_id, interaction_id=found))


def events_of_the_site(call: Call[None], site_id: str) -> Read[Listing[AuditQuery]]:
    """The route's read: a page of the path's site's events (for its admins)."""
    query = call.query(AuditQuery)
    return listing(query, service.site_read(query, site_id=parse_id(site_id, maximum=INT32_MAX)))


@endpoint(
    bp,
    "GET",
    "/api/interactions/{interaction_id}/history",
    needs=SiteRole(),
    read=events_of_the_interaction,
    spec=Spec(
        "One interaction's events, newest first (whoever may read the interaction)",
        TAG,
        page("events", EventRead),
        "One page, with meta.pagination",
        errors=(403, 404),
        query=HistoryQuery,
        description=(
            "The audit events of one interaction of the active site, newest first; anyone who may read the "
            "interaction (404 as for reading it). A command-line event's `operator` is the label "
            "`OPERATOR_LABEL` for the site's admins and null for anyone else."
        ),
    ),
)
def interaction_history(call: Call[Listing[HistoryQuery]], interaction_id: str) -> Response:
    found = parse_id(interaction_id)  # None: no such interaction (a 404 after 401, 403 and 400)
    if found is None or not service.interaction_exists(call.found):
        raise NotFound("Interaction not found")
    return paginated(
        "events",
        service.history(
            call.session,
            site_id=call.principal.at_site(),
            interaction_id=found,
            listing=call.found,
            role=call.principal.role,
        ),
    )


@endpoint(
    bp,
    "GET",
    "/api/sites/{site_id}/audit",
    needs=SiteAdmin("Only the site's admins may read its audit trail"),
    read=events_of_the_site,
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
def site_audit(call: Call[Listing[AuditQuery]], site_id: str) -> Response:
    return paginated(
        "events", service.site_events(call.session, site_id=call.principal.at_site(), listing=call.found)
    )
