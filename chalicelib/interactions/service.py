"""Interaction use cases: keyword-only functions over the request's session (never committing).

Versioning is optimistic: every change runs `UPDATE ... WHERE id AND site_id AND version = :seen
RETURNING ...`, so a conditional write and its check are one statement and a concurrent change can
never be overwritten unseen. The same statement records the change's audit event (its `from`
values are the version it saw).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from chalicelib.access import Listing, Principal
from chalicelib.audit import events as audit
from chalicelib.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from chalicelib.interactions import queries
from chalicelib.interactions.queries import InteractionRow
from chalicelib.interactions.schemas import InteractionCreate, InteractionQuery, InteractionUpdate
from chalicelib.interactions.times import resolve_times
from chalicelib.kit.pagination import BAD_CURSOR, ListRead, Page, capped, open_cursor, settle
from chalicelib.kit.timestamps import isoformat
from chalicelib.models import Interaction

NOT_FOUND = "Interaction not found"
MAX_VERSION = 2**31 - 1
# Unconditional updates re-read and retry when another writer got in between (rare).
UPDATE_ATTEMPTS = 3


def serialize(row: InteractionRow) -> dict[str, Any]:
    """The representation of an interaction."""
    return {
        "id": row.id,
        "site_id": row.site_id,
        "title": row.title,
        "type": row.type,
        "lead": row.lead,
        "start_datetime": isoformat(row.start_datetime),
        "timezone": row.timezone,
        "end_datetime": isoformat(row.end_datetime),
        "location": row.location,
        "description": row.description,
        "notes": row.notes,
        "created_by": row.created_by,
        "created_at": isoformat(row.created_at),
        "updated_by": row.updated_by,
        "updated_at": isoformat(row.updated_at),
        "version": row.version,
    }


def etag(row: InteractionRow) -> str:
    return f'"{row.version}"'


# --- If-Match --------------------------------------------------------------------------------------

_ENTITY_TAG = r'\s*(W/)?"([^"]*)"\s*'
_IF_MATCH = re.compile(rf"^{_ENTITY_TAG}(?:,{_ENTITY_TAG})*$")


@dataclass(frozen=True)
class Precondition:
    """An If-Match header. `versions` is None for `*` (any existing record); an empty set never
    matches (only weak or foreign tags); `malformed` never matches either."""

    versions: frozenset[int] | None = None
    malformed: bool = False

    def matches(self, version: int) -> bool:
        return not self.malformed and (self.versions is None or version in self.versions)


def parse_if_match(header: str | None) -> Precondition | None:
    """None when the header is absent. Strong comparison (RFC 9110): weak tags never match."""
    if header is None:
        return None
    if header.strip() == "*":
        return Precondition()
    if not _IF_MATCH.match(header):
        return Precondition(malformed=True)
    versions = set()
    for weak, value in re.findall(r'(W/)?"([^"]*)"', header):
        if not weak and re.fullmatch(r"[1-9][0-9]{0,9}", value) and int(value) <= MAX_VERSION:
            versions.add(int(value))
    return Precondition(versions=frozenset(versions))


def _mismatch(precondition: Precondition | None, version: int) -> PreconditionFailed:
    if precondition is not None and precondition.malformed:
        return PreconditionFailed(
            f"If-Match is not a list of entity tags: entity tags are quoted, "
            f'as in If-Match: "{version}" (the current version)'
        )
    return PreconditionFailed(f'If-Match does not match the current version "{version}"')


def _check(precondition: Precondition | None, row: InteractionRow) -> None:
    if precondition is not None and not precondition.matches(row.version):
        raise _mismatch(precondition, row.version)


# --- reads -----------------------------------------------------------------------------------------


def _reread(session: Session, *, site_id: int, interaction_id: int) -> InteractionRow | None:
    row = session.execute(queries.ROW_BY_ID, {"site_id": site_id, "interaction_id": interaction_id}).first()
    return queries.interaction(row) if row is not None else None


def found(row: InteractionRow | None) -> InteractionRow:
    """The row a read by id found; 404 for None."""
    if row is None:
        raise NotFound(NOT_FOUND)
    return row


def binding(site_id: int | None, query: InteractionQuery) -> str:
    """What a cursor of this list is bound to: the site, the filters (as parsed) and the sort."""
    filters = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name in queries.active_filters(query)
        for value in (getattr(query, name),)
    }
    return json.dumps(["interactions", site_id, query.sort_by, query.sort_direction, filters], sort_keys=True)


def list_read(query: InteractionQuery, *, site_id: int | None) -> ListRead:
    """The first statement of a list request at the token's site (its page, folded with the caller's
    rights) and its parameters; a cursor not made for this query is a 400 naming `cursor`."""
    bound = binding(site_id, query)
    position = open_cursor(query, bound)
    params: dict[str, Any] = {"limit": query.limit, **queries.filter_values(query)}
    zone = None
    if position is None:
        params["offset"] = query.offset
    else:
        zone = "null" if position.key is None else "key"
        params["after_id"] = position.id
        if position.key is not None:
            try:
                params["after_key"] = queries.after_key(query.sort_by, position.key)
            except (TypeError, ValueError):
                raise ValidationFailed(
                    "Invalid query parameters", details=[{"field": "cursor", "message": BAD_CURSOR}]
                ) from None
    statement = queries.folded_page(
        queries.active_filters(query), query.sort_by, query.sort_direction, zone, queries.spans_fields(query)
    )
    return ListRead(statement, params, position, bound)


def page(session: Session, *, site_id: int, listing: Listing[InteractionQuery]) -> Page:
    """The page and its meta. The total is the cursor's (the first page's), or the page's own when
    it is the last; else an unfiltered total is the site's trigger-kept count, read with the page,
    and a filtered one is counted up to COUNT_CAP, or remembered (below)."""
    query, read, head = listing.query, listing.read, listing.head
    rows = [queries.interaction(row) for row in listing.rows]

    def count() -> tuple[int, bool]:
        if "site_total" in head._fields:
            return head.site_total or 0, True
        return _filtered_total(session, site_id=site_id, query=query, changes=head.site_changes)

    return settle(
        query,
        rows,
        position=read.position,
        count=count,
        binding=read.binding,
        key=lambda row: queries.cursor_key(query.sort_by, row),
    )


# Filtered totals this container has counted: (site, filters) -> (site's change number, total).
# Counting a broad search reads up to COUNT_CAP matches; paging through its results by number asks
# for the same total again. A remembered total is used only while the site's change number (bumped
# by every statement that writes its interactions, migration 0005; read with the page) is the one
# it was counted at.
_COUNTED_MAX = 512
_counted: dict[tuple[Any, ...], tuple[int, tuple[int, bool]]] = {}
_NOT_FILTERS = {"page", "per_page", "cursor", "sort_by", "sort_direction"}


def _filtered_total(
    session: Session, *, site_id: int, query: InteractionQuery, changes: int | None
) -> tuple[int, bool]:
    # The database's URL is part of the key: change numbers are only unique within one database.
    key = (
        str(session.get_bind().engine.url),
        site_id,
        *sorted(query.model_dump(exclude=_NOT_FILTERS).items()),
    )
    remembered = _counted.get(key)
    if remembered is not None and changes is not None and changes == remembered[0]:
        return remembered[1]
    counted, counted_at = session.execute(
        queries.filtered_count(queries.active_filters(query), queries.spans_fields(query)),
        {"site_id": site_id, **queries.filter_values(query)},
    ).one()
    total = capped(counted)
    if counted_at is not None:
        if len(_counted) >= _COUNTED_MAX:
            _counted.clear()
        _counted[key] = (counted_at, total)
    return total


# --- writes ----------------------------------------------------------------------------------------


def new_values(*, principal: Principal, data: InteractionCreate) -> dict[str, Any]:
    """The columns of a new interaction in the caller's active site (version 1)."""
    assert principal.site_id is not None  # the route needs SiteRole(write=True): `access.admit` checked it
    start, end, details = resolve_times(
        start=data.start_datetime, end=data.end_datetime, zone_name=data.timezone
    )
    if details:
        raise ValidationFailed("The request body is not valid", details=details)
    values = data.model_dump(exclude={"start_datetime", "end_datetime"})
    return {
        **values,
        "start_datetime": start,
        "end_datetime": end,
        "site_id": principal.site_id,
        "created_by": principal.user_id,
        "version": 1,
    }


def _changes(row: InteractionRow, sent: dict[str, Any]) -> dict[str, Any]:
    """The columns that differ once `sent` is applied to `row`, after checking the merged record.
    Without an offset a sent time is local in the merged time zone; times not sent keep their
    instant even when only the time zone changes."""
    start, end, details = resolve_times(
        start=sent.get("start_datetime", row.start_datetime),
        end=sent.get("end_datetime", row.end_datetime),
        zone_name=sent.get("timezone", row.timezone),
    )
    if details:
        raise ValidationFailed("The interaction would not be valid after this change", details=details)
    merged = {**sent, "start_datetime": start, "end_datetime": end}
    return {name: value for name, value in merged.items() if getattr(row, name) != value}


_TABLE = Interaction.__table__


def _fields(row: InteractionRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in audit.INTERACTION_FIELDS}


def _event(change: Any, *, origin: audit.Origin, action: str, changes: dict[str, Any]) -> Any:
    """The audit event of the interaction `change` (a CTE returning the row) wrote, as a CTE."""
    return audit.as_cte(
        audit.record(
            change,
            origin=origin,
            action=action,
            target_type="interaction",
            target_id=change.c.id,
            site_id=change.c.site_id,
            target_version=change.c.version,
            changes=changes,
        ),
        "event",
    )


def created_event(created: Any, *, origin: audit.Origin, values: dict[str, Any]) -> Any:
    """The `interaction.created` event of the row the CTE `created` inserted (`values`, its columns)."""
    return _event(
        created,
        origin=origin,
        action="interaction.created",
        changes=audit.created(values, audit.INTERACTION_FIELDS),
    )


def update(
    session: Session,
    *,
    principal: Principal,
    origin: audit.Origin,
    current: InteractionRow | None,
    data: InteractionUpdate,
    if_match: str | None = None,
) -> InteractionRow:
    """Apply the fields sent to `current` (the row read with the caller's rights, or None). 404,
    then 412, then the rules across the merged record; a body that changes nothing returns the
    record as it is (same version) and records nothing."""
    assert principal.site_id is not None
    precondition = parse_if_match(if_match)
    sent = data.sent()
    row, wanted = current, current.id if current is not None else 0
    for attempt in range(UPDATE_ATTEMPTS):
        if attempt:  # another writer got in between: read the record again
            row = _reread(session, site_id=principal.site_id, interaction_id=wanted)
        if row is None:
            raise NotFound(NOT_FOUND)
        interaction_id = row.id
        _check(precondition, row)
        changes = _changes(row, sent)
        if not changes:
            return row
        change = (
            sql_update(Interaction)
            .where(
                queries.in_site(principal.site_id),
                Interaction.id == interaction_id,
                Interaction.version == row.version,
            )
            .values(
                **changes,
                version=Interaction.version + 1,
                updated_by=principal.user_id,
                updated_at=func.now(),
            )
            .returning(*_TABLE.c)
            .cte("updated")
        )
        event = _event(
            change, origin=origin, action="interaction.updated", changes=audit.diff(_fields(row), changes)
        )
        updated = session.execute(select(*change.c).add_cte(event)).first()
        if updated is not None:
            return queries.interaction(updated)
        if precondition is not None and precondition.versions is not None:
            # The version the client named is gone: its precondition no longer holds.
            raise PreconditionFailed("The interaction was changed meanwhile; fetch it again")
    raise Conflict("The interaction is being changed by others; try again")


def delete(
    session: Session,
    *,
    principal: Principal,
    origin: audit.Origin,
    current: InteractionRow | None,
    if_match: str | None = None,
) -> None:
    """Delete `current` (the row read with the caller's rights, or None: 404) if it is still the
    version that was read (and the one If-Match names): one statement with its event, no lost race."""
    assert principal.site_id is not None
    precondition = parse_if_match(if_match)
    row, wanted = current, current.id if current is not None else 0
    for attempt in range(UPDATE_ATTEMPTS):
        if attempt:  # changed or deleted meanwhile: read it again
            row = _reread(session, site_id=principal.site_id, interaction_id=wanted)
        if row is None:
            raise NotFound(NOT_FOUND)
        _check(precondition, row)
        change = (
            sql_delete(Interaction)
            .where(
                queries.in_site(principal.site_id),
                Interaction.id == row.id,
                Interaction.version == row.version,
            )
            .returning(*_TABLE.c)
            .cte("deleted")
        )
        event = _event(
            change,
            origin=origin,
            action="interaction.deleted",
            changes=audit.deleted(_fields(row), audit.INTERACTION_FIELDS),
        )
        deleted = session.execute(select(change.c.id).add_cte(event)).first()
        if deleted is not None:
            return
    raise Conflict("The interaction is being changed by others; try again")
