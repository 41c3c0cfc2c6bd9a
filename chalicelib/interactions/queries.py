"""Search, filter and sort as pure functions over one site-scoped select.

Every interaction query is held to one site by `in_site(site_id)` (`SITE_ROWS`): another site's rows
are simply never found.
The expressions here are the ones migration 0002 indexes (`lower(col) COLLATE "C"` for text sorts)
and migration 0010 stores (`search_text`, the lower-cased search document, for the trigram
search); change them together or the indexes go unused.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    and_,
    asc,
    bindparam,
    desc,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)

from chalicelib.access import fold
from chalicelib.kit.pagination import COUNT_CAP
from chalicelib.models import Interaction, SiteInteractionCount

# The text the `search` parameter looks in: the six fields joined, stored lower-cased as
# `search_text` (migration 0010) with a trigram GIN index. The separator keeps words of
# neighbouring fields apart; matches are re-checked field by field.
SEARCH_DOCUMENT_SQL = (
    "(title || ' ' || type || ' ' || lead || ' ' || coalesce(location, '') || ' ' || "
    "coalesce(description, '') || ' ' || coalesce(notes, ''))"
)
SEARCHED_COLUMNS = ("title", "type", "lead", "location", "description", "notes")
TEXT_SORTS = {"title", "lead", "location"}
SUBSTRING_FILTERS = ("search", "title", "lead", "location")
NULLABLE_SORTS = {"end_datetime", "location", "updated_at"}


class InteractionRow(NamedTuple):
    """An interaction as every statement here returns it: the table's columns, in their order
    (checked below at import, so a renamed or added column fails before any request does)."""

    id: int
    site_id: int
    title: str
    type: str
    lead: str
    start_datetime: datetime
    timezone: str
    end_datetime: datetime | None
    location: str | None
    description: str | None
    notes: str | None
    created_by: int | None
    created_at: datetime
    updated_by: int | None
    updated_at: datetime | None
    version: int


COLUMNS = tuple(Interaction.__table__.columns)
if tuple(column.name for column in COLUMNS) != InteractionRow._fields:  # pragma: no cover
    raise RuntimeError("InteractionRow's fields are not the interactions table's columns")


def interaction(row: Sequence[Any]) -> InteractionRow:
    """The interaction of a row whose last columns are the table's (a folded statement's rows
    carry the caller's columns first)."""
    return InteractionRow._make(row[len(row) - len(COLUMNS) :])


def in_site(site_id: int) -> ColumnElement[bool]:
    """The tenancy condition, shared by selects, updates and deletes."""
    return Interaction.site_id == site_id


def scoped_rows(site_id: Any) -> Select[Any]:
    """The site's interactions as plain rows: a page is serialised straight from the driver's tuples,
    without building (and then reading through) an ORM object per row."""
    return select(*COLUMNS).where(in_site(site_id))


# Statements built once, with bound parameters (`site_id`, `interaction_id`, `offset`, `limit`):
# building a select and its cache key on every request cost more CPU than PostgreSQL needs to
# answer a page of it.
SITE_ROWS = scoped_rows(bindparam("site_id"))
ROW_BY_ID = SITE_ROWS.where(Interaction.id == bindparam("interaction_id"))
OFFSET: BindParameter[int] = bindparam("offset", type_=BigInteger)  # page x per_page exceeds int4
LIMIT: BindParameter[int] = bindparam("limit", type_=Integer)


def like_pattern(term: str) -> str:
    """A substring pattern in which `%`, `_` and `\\` match themselves."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, pattern: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.ilike(pattern, escape="\\")
    return condition


# The document stored lower-cased (migration 0010, a generated column with the trigram index): the
# search is `search_text LIKE lower(pattern)`, the match ILIKE makes, without building and
# lower-casing the document for every row re-checked. Not mapped: no page selects it.
SEARCH_TEXT: ColumnElement[str] = literal_column("search_text", Text)


def _searched(pattern: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = SEARCH_TEXT.like(func.lower(pattern), escape="\\")
    return condition


FILTERS = ("search", "title", "lead", "location", "type", "start_date", "end_date")
_BOUND_TYPES = {"start_date": DateTime(timezone=True), "end_date": DateTime(timezone=True)}


def _active(query: Any) -> tuple[str, ...]:
    """The filters a list query uses (empty substring filters match everything)."""
    return tuple(name for name in FILTERS if getattr(query, name))


def spans_fields(query: Any) -> bool:
    """Whether the query's search term could match across two fields of the search document: only
    through the separator, a space. A term without one matches the document exactly where it
    matches one of the fields (the document is the fields lower-cased and joined by spaces, and
    ILIKE lower-cases both sides the same way), so its per-field re-check is left out: on a broad
    term that re-check was a third of the CPU of a count."""
    term: str | None = getattr(query, "search", None)
    return term is not None and " " in term


def _conditions(active: tuple[str, ...], value: Any, spanning: bool = True) -> list[ColumnElement[bool]]:
    """The conditions of the `active` filters; `value(name)` is each filter's value (a literal, or
    a bound parameter): substring filters get their LIKE pattern. `spanning`: whether the search
    term may span two fields (spans_fields)."""
    conditions: list[ColumnElement[bool]] = []
    for name in active:
        if name == "search":
            pattern = value("search")
            # The document match is what the trigram index answers; the per-field match keeps a
            # term with a space from matching across the boundary of two fields.
            conditions.append(_searched(pattern))
            if spanning:
                conditions.append(
                    or_(*(_contains(getattr(Interaction, field), pattern) for field in SEARCHED_COLUMNS))
                )
        elif name in SUBSTRING_FILTERS:
            conditions.append(_contains(getattr(Interaction, name), value(name)))
        elif name == "type":
            conditions.append(Interaction.type == value(name))
        elif name == "start_date":
            conditions.append(Interaction.start_datetime >= value(name))
        elif name == "end_date":
            conditions.append(Interaction.start_datetime <= value(name))
    return conditions


def filter_values(query: Any) -> dict[str, Any]:
    """The bound values of a list query's filters (`filter_<name>`), patterns made."""
    return {
        f"filter_{name}": like_pattern(getattr(query, name))
        if name in SUBSTRING_FILTERS
        else getattr(query, name)
        for name in _active(query)
    }


@functools.cache
def filtered_rows(active: tuple[str, ...], spanning: bool = True) -> Select[Any]:
    """The site's rows with the `active` filters, their values bound (`filter_<name>`): one
    statement per combination of filters (and whether the search term has a space), built once,
    its SQL the same whatever the terms."""
    conditions = _conditions(
        active, lambda name: bindparam(f"filter_{name}", type_=_BOUND_TYPES.get(name)), spanning
    )
    return SITE_ROWS.where(and_(*conditions))


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


# --- keyset pages (a cursor's) --------------------------------------------------------------------

AFTER_ID: BindParameter[int] = bindparam("after_id", type_=BigInteger)
TIME_SORTS = {"start_datetime", "end_datetime", "created_at", "updated_at"}


def _after_key(sort_by: str) -> Any:
    """The cursor's sort value, compared as the index compares the column's."""
    if sort_by in TIME_SORTS:
        return bindparam("after_key", type_=DateTime(timezone=True))
    value = bindparam("after_key", type_=String)
    return func.lower(value).collate("C") if sort_by in TEXT_SORTS else value


def beyond(sort_by: str, direction: str) -> ColumnElement[bool]:
    """The rows after the cursor's (value, id) in the order: one row comparison, which the sort's
    index answers as the start of a range scan."""
    left = tuple_(sort_key(sort_by), Interaction.id)
    right = tuple_(_after_key(sort_by), AFTER_ID)
    return left > right if direction == "asc" else left < right


def nulls_beyond(sort_by: str, direction: str) -> ColumnElement[bool]:
    """The rows after a cursor that stands among the nulls (which sort last, by id)."""
    after = Interaction.id > AFTER_ID if direction == "asc" else Interaction.id < AFTER_ID
    return and_(sort_key(sort_by).is_(None), after)


def keyset_page(rows: Select[Any], sort_by: str, direction: str, zone: str) -> Select[Any]:
    """The page after a cursor of `rows` (`zone`: "key" when its row had a sort value, "null" when
    it was among the nulls). A value-cursor of a nullable sort must go on into the nulls, which no
    single range of the index holds after the values: two ranges, each cut at the page size,
    merged (at most twice the page is sorted, whatever the depth)."""
    if zone == "null":
        return apply_sort(rows.where(nulls_beyond(sort_by, direction)), sort_by, direction).limit(LIMIT)
    after = apply_sort(rows.where(beyond(sort_by, direction)), sort_by, direction).limit(LIMIT)
    if sort_by not in NULLABLE_SORTS:
        return after
    nulls = apply_sort(rows.where(sort_key(sort_by).is_(None)), sort_by, direction).limit(LIMIT)
    both = union_all(after, nulls).subquery("keyset")
    return select(*both.c).order_by(*order(sort_by, direction, both.c)).limit(LIMIT)


def after_key(sort_by: str, key: Any) -> Any:
    """A cursor's sort value (as JSON carries it) as the statement binds it."""
    return datetime.fromisoformat(key) if sort_by in TIME_SORTS else key


def cursor_key(sort_by: str, row: Any) -> Any:
    """A row's sort value as a cursor carries it (JSON): the raw value (text sorts compare it
    lower-cased in SQL, as the index does), a time as ISO 8601."""
    value = getattr(row, sort_by)
    return value.isoformat() if isinstance(value, datetime) else value


# A site's total, kept exact by triggers (migration 0004): what an unfiltered list and the site's
# details report, without counting 200,000 index entries on every request.
SITE_TOTAL = select(SiteInteractionCount.interactions).where(
    SiteInteractionCount.site_id == bindparam("site_id")
)


SITE_CHANGES = select(SiteInteractionCount.changes).where(
    SiteInteractionCount.site_id == bindparam("site_id")
)


SITE_TOTAL_COLUMN = SITE_TOTAL.scalar_subquery().label("site_total")
SITE_CHANGES_COLUMN = SITE_CHANGES.scalar_subquery().label("site_changes")

# The first statement of a read, with the caller's rights folded in (chalicelib.caller.fold).
FOLDED_BY_ID = fold(ROW_BY_ID)


def deferred(rows: Select[Any], sort_by: str, direction: str) -> Select[Any]:
    """A page by OFFSET of `rows` as a deferred join: the ids of the page are found first, from the
    sort's index alone when nothing else is needed (an index-only scan: OFFSET 9,975 reads 10,001
    index entries, not 10,001 rows of the table), then only the page's rows are read, by id. A text
    sort's index (on `lower(title)`) cannot return its column, so its skipped rows are still read
    from the table; a filter's columns likewise. Its rows come unordered: the folded statement
    orders them."""
    ids = (
        apply_sort(rows.with_only_columns(Interaction.id), sort_by, direction)
        .offset(OFFSET)
        .limit(LIMIT)
        .subquery("page_ids")
    )
    return SITE_ROWS.join(ids, ids.c.id == Interaction.id)


@functools.cache
def folded_page(
    active: tuple[str, ...], sort_by: str, direction: str, zone: str | None, spanning: bool = True
) -> Select[Any]:
    """One page, folded with the caller's rights: by OFFSET (`zone` None) with what its total needs
    (an unfiltered page the site's kept count; a filtered one the site's change number, at which
    a counted total may be reused), or after a cursor (`zone`, see keyset_page), whose total the
    cursor carries. One statement per combination of filters, order and kind of page, built once;
    its values are bound (`filter_<name>`, `offset` or `after_key`/`after_id`, `limit`)."""
    rows = filtered_rows(active, spanning) if active else SITE_ROWS
    extra: tuple[Any, ...]
    if zone is None:
        page = deferred(rows, sort_by, direction)
        extra = (SITE_CHANGES_COLUMN if active else SITE_TOTAL_COLUMN,)
    else:
        page, extra = keyset_page(rows, sort_by, direction, zone), ()
    return fold(page, extra=extra, order_by=lambda columns: order(sort_by, direction, columns))


def capped_count(rows: Select[Any]) -> Select[int, int | None]:
    """The number of `rows`, stopped past COUNT_CAP, and the site's change number, in one statement
    (one snapshot). The rows are numbered (`row_number() OVER ()`) and counted while their number
    is within the cap: PostgreSQL makes that condition the window's run condition and stops reading
    at row COUNT_CAP + 1. Nothing is ordered and no LIMIT is visible to the planner, so it plans the
    scan for every match (the trigram index's bitmap for a search, a filter's own index otherwise):
    it neither sorts the matches (an ordered count sorted a term's 60,000 matches to keep 10,001)
    nor takes a sequential scan for the price of its first 10,001 rows (an unordered LIMIT made one
    look cheapest for a broad term)."""
    numbered = rows.with_only_columns(func.row_number().over().label("match")).subquery("numbered")
    counted = (
        select(func.count())
        .select_from(numbered)
        .where(numbered.c.match <= literal_column(str(COUNT_CAP + 1), Integer))
    )
    return select(counted.scalar_subquery(), SITE_CHANGES.scalar_subquery())


@functools.cache
def filtered_count(active: tuple[str, ...], spanning: bool = True) -> Select[int, int | None]:
    """The list's capped count with the `active` filters, their values bound (`filter_<name>`)."""
    return capped_count(filtered_rows(active, spanning))


def active_filters(query: Any) -> tuple[str, ...]:
    return _active(query)
