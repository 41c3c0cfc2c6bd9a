"""Search, filter and sort as pure functions over one site-scoped select.

Every interaction query starts from `scoped(site_id)`: another site's rows are simply never found.
The expressions here are the ones migration 0002 indexes (`lower(col) COLLATE "C"` for text sorts,
`search_document()` for the trigram search); change them together or the indexes go unused.
"""
from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, asc, bindparam, desc, func, literal_column, or_, select

from chalicelib.caller import fold
from chalicelib.models import Interaction, SiteInteractionCount

# The text the `search` parameter looks in, as one expression with a trigram GIN index. The
# separator keeps words of neighbouring fields apart; matches are re-checked field by field.
SEARCH_DOCUMENT_SQL = (
    "(title || ' ' || type || ' ' || lead || ' ' || coalesce(location, '') || ' ' || "
    "coalesce(description, '') || ' ' || coalesce(notes, ''))"
)
SEARCHED_COLUMNS = ("title", "type", "lead", "location", "description", "notes")
TEXT_SORTS = {"title", "lead", "location"}
SUBSTRING_FILTERS = ("search", "title", "lead", "location")
NULLABLE_SORTS = {"end_datetime", "location", "updated_at"}


def in_site(site_id: int) -> ColumnElement[bool]:
    """The tenancy condition, shared by selects, updates and deletes."""
    return Interaction.site_id == site_id


def scoped(site_id: int) -> Select[tuple[Interaction]]:
    return select(Interaction).where(in_site(site_id))


def scoped_rows(site_id: int) -> Select[Any]:
    """The same scope selecting plain rows: a page is serialised straight from the driver's tuples,
    without building (and then reading through) an ORM object per row."""
    return select(*Interaction.__table__.columns).where(in_site(site_id))


def by_id(site_id: int, interaction_id: int) -> Select[tuple[Interaction]]:
    return scoped(site_id).where(Interaction.id == interaction_id)


# Statements built once, with bound parameters (`site_id`, `interaction_id`, `offset`, `limit`):
# building a select and its cache key on every request cost more CPU than PostgreSQL needs to
# answer a page of it.
SITE_ROWS = scoped_rows(bindparam("site_id"))
ROW_BY_ID = SITE_ROWS.where(Interaction.id == bindparam("interaction_id"))
OFFSET, LIMIT = bindparam("offset"), bindparam("limit")


@functools.cache
def unfiltered_page(sort_by: str, direction: str) -> Select[Any]:
    """A page of a site's rows in one order, with no filter: one statement per order."""
    return apply_sort(SITE_ROWS, sort_by, direction).offset(OFFSET).limit(LIMIT)


def like_pattern(term: str) -> str:
    """A substring pattern in which `%`, `_` and `\\` match themselves."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, term: str) -> ColumnElement[bool]:
    return column.ilike(like_pattern(term), escape="\\")


def search_document() -> ColumnElement[str]:
    return literal_column(SEARCH_DOCUMENT_SQL)


def apply_filters(stmt: Select[Any], query: Any) -> Select[Any]:
    """The list's filters (an InteractionQuery); empty substring filters match everything."""
    conditions: list[ColumnElement[bool]] = []
    if query.search:
        per_field = or_(*(_contains(getattr(Interaction, name), query.search) for name in SEARCHED_COLUMNS))
        # The document match is what the trigram index answers; the per-field match keeps a term
        # from matching across the boundary of two fields.
        conditions += [_contains(search_document(), query.search), per_field]
    for name in ("title", "lead", "location"):
        term = getattr(query, name)
        if term:
            conditions.append(_contains(getattr(Interaction, name), term))
    if query.type:
        conditions.append(Interaction.type == query.type)
    if query.start_date:
        conditions.append(Interaction.start_datetime >= query.start_date)
    if query.end_date:
        conditions.append(Interaction.start_datetime <= query.end_date)
    return stmt.where(and_(*conditions)) if conditions else stmt


def sort_key(sort_by: str, columns: Any = Interaction) -> Any:
    column = getattr(columns, sort_by)
    if sort_by in TEXT_SORTS:
        # Case-insensitive, and by code point whatever the database's default collation.
        return func.lower(column).collate("C")
    return column  # `type` is a fixed list whose names are capitalised alike


def order(sort_by: str, direction: str, columns: Any = Interaction) -> list[Any]:
    """Nulls last in both directions and ties broken by id in the same direction, so pages never
    overlap or skip. `columns`: the table's, or those of a subquery selecting its columns."""
    key = sort_key(sort_by, columns)
    if direction == "asc":
        return [asc(key).nulls_last() if sort_by in NULLABLE_SORTS else asc(key), columns.id.asc()]
    return [desc(key).nulls_last() if sort_by in NULLABLE_SORTS else desc(key), columns.id.desc()]


def apply_sort(stmt: Select[Any], sort_by: str, direction: str) -> Select[Any]:
    return stmt.order_by(*order(sort_by, direction))


# A site's total, kept exact by triggers (migration 0004): what an unfiltered list and the site's
# details report, without counting 200,000 index entries on every request.
SITE_TOTAL = select(SiteInteractionCount.interactions).where(
    SiteInteractionCount.site_id == bindparam("site_id"))


SITE_CHANGES = select(SiteInteractionCount.changes).where(
    SiteInteractionCount.site_id == bindparam("site_id"))


SITE_TOTAL_COLUMN = SITE_TOTAL.scalar_subquery().label("site_total")
SITE_CHANGES_COLUMN = SITE_CHANGES.scalar_subquery().label("site_changes")

# The first statement of a read, with the caller's rights folded in (chalicelib.caller.fold).
FOLDED_BY_ID = fold(ROW_BY_ID)


@functools.cache
def folded_unfiltered_page(sort_by: str, direction: str) -> Select[Any]:
    """One page in one order with the site's total: the rights, the page and the total at once."""
    return fold(unfiltered_page(sort_by, direction), extra=(SITE_TOTAL_COLUMN,),
                order_by=lambda columns: order(sort_by, direction, columns))


def folded_page(query: Any) -> Select[Any]:
    """The page a list query asks for, folded with the caller's rights; a filtered page carries the
    site's change number (a total counted at that number may be reused)."""
    stmt = apply_filters(SITE_ROWS, query)
    if stmt is SITE_ROWS:
        return folded_unfiltered_page(query.sort_by, query.sort_direction)
    page = apply_sort(stmt, query.sort_by, query.sort_direction).offset(OFFSET).limit(LIMIT)
    return fold(page, extra=(SITE_CHANGES_COLUMN,),
                order_by=lambda columns: order(query.sort_by, query.sort_direction, columns))


def count(stmt: Select[Any]) -> Select[tuple[int]]:
    return select(func.count()).select_from(stmt.with_only_columns(Interaction.id).order_by(None).subquery())


def count_and_changes(stmt: Select[Any], site_id: int) -> Select[tuple[int, int | None]]:
    """The filtered count and the site's change number, in one statement: one snapshot."""
    changes = select(SiteInteractionCount.changes).where(SiteInteractionCount.site_id == site_id)
    return select(count(stmt).scalar_subquery(), changes.scalar_subquery())
