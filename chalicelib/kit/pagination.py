"""One pagination rule for every list: `page` and `per_page`, or a `cursor` (keyset pagination), the
depth limit, and totals that are counted only when the page does not tell them, and then at most to
COUNT_CAP.

A list fetches one row more than it shows (`limit`): that row says whether a next page exists, so
`next_cursor` is null exactly on the last page and a short first page is its own total. A cursor
carries the position after the page's last row (its sort value and id) and the first page's total;
its page is read with a keyset condition through the sort's index, at the same cost at any depth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema

from chalicelib.errors import ValidationFailed
from chalicelib.kit import cursor as cursors
from chalicelib.kit.schema import Schema

MAX_PER_PAGE = 100
MAX_PAGE = 2**31 - 1
# A page by number must start within the first MAX_DEPTH rows: OFFSET reads every row it skips.
MAX_DEPTH = 10_000
# A total beyond this is not counted: `total_records` is COUNT_CAP and `total_exact` false.
COUNT_CAP = 10_000


def between(low: int, high: int) -> Callable[[Any], int]:
    """A query parameter's check: a whole number in [low, high], written in ASCII digits."""

    def check(value: Any) -> int:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,10}", value.strip(), re.ASCII):
            raise ValueError(f"must be a whole number from {low} to {high}")
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return number

    return check


def _cursor_text(value: Any) -> str:
    """The shape of a cursor (what it holds is checked when it is opened, against the query)."""
    if not isinstance(value, str) or not re.fullmatch(
        rf"[A-Za-z0-9_-]{{1,{cursors.MAX_LENGTH}}}", value, re.ASCII
    ):
        raise ValueError(BAD_CURSOR)
    return value


BAD_CURSOR = (
    "is not a cursor of this query: pass meta.pagination.next_cursor of the previous page unchanged, "
    "with the same filters and sort"
)
PageNumber = Annotated[
    int,
    PlainValidator(between(1, MAX_PAGE)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
]
PerPage = Annotated[
    int,
    PlainValidator(between(1, MAX_PER_PAGE)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}),
]
Cursor = Annotated[
    str,
    PlainValidator(_cursor_text),
    WithJsonSchema({"type": "string", "maxLength": cursors.MAX_LENGTH, "pattern": "^[A-Za-z0-9_-]+$"}),
]


class Pagination(Schema):
    """`page` (1-based, default 1) and `per_page` (1-100, default 25), or `cursor`: the query of
    every paginated list."""

    model_config = ConfigDict(extra="forbid", strict=True)

    page: PageNumber | None = Field(
        None,
        description=f"1-based page number (default 1); the page must start within the first "
        f"{MAX_DEPTH:,} rows, (page - 1) x per_page < {MAX_DEPTH:,}: deeper, follow `cursor`. "
        "Not with `cursor`",
    )
    per_page: PerPage = Field(25, description="page size, 1-100 (default 25)")
    cursor: Cursor | None = Field(
        None,
        description="the previous page's meta.pagination.next_cursor: the page after it, at the same "
        "cost at any depth; only with the filters and sort it came from (per_page may change)",
    )

    @property
    def number(self) -> int:
        return self.page or 1

    @property
    def offset(self) -> int:
        return 0 if self.cursor is not None else (self.number - 1) * self.per_page

    @property
    def limit(self) -> int:
        """Rows to fetch: the page and one more, which tells whether a next page exists."""
        return self.per_page + 1

    def problems(self) -> list[dict[str, str]]:
        """`page` with `cursor`, or past the depth limit (a 400 naming `page`)."""
        if self.cursor is not None and self.page is not None:
            return [
                {
                    "field": "page",
                    "message": "must not be given with cursor (a cursor says where its page is)",
                }
            ]
        if self.offset >= MAX_DEPTH:
            return [
                {
                    "field": "page",
                    "message": f"must start within the first {MAX_DEPTH:,} rows ((page - 1) x per_page < "
                    f"{MAX_DEPTH:,}); to go deeper, follow meta.pagination.next_cursor with `cursor`",
                }
            ]
        return []


@dataclass(frozen=True)
class Position:
    """What a cursor holds: the last row shown (its sort value, None for a null, and its id) and
    the first page's total."""

    key: Any
    id: int
    total: int
    exact: bool


def open_cursor(query: Pagination, binding: str) -> Position | None:
    """The position of the query's cursor (None without one); a 400 naming `cursor` when it is not
    one this API sealed for `binding` (the list, its site, filters and sort)."""
    if query.cursor is None:
        return None
    try:
        key, row_id, total, exact = cursors.open_(binding, query.cursor)
        if not (isinstance(row_id, int) and isinstance(total, int) and isinstance(exact, bool)):
            raise cursors.BadCursor("not a position")
    except (cursors.BadCursor, TypeError, ValueError):
        raise ValidationFailed(
            "Invalid query parameters", details=[{"field": "cursor", "message": BAD_CURSOR}]
        ) from None
    return Position(key, row_id, total, exact)


def seal(binding: str, position: Position) -> str:
    return cursors.seal(binding, [position.key, position.id, position.total, position.exact])


def capped(count: int | None) -> tuple[int, bool]:
    """A count made with `LIMIT COUNT_CAP + 1`: (total_records, total_exact)."""
    count = count or 0
    return (COUNT_CAP, False) if count > COUNT_CAP else (count, True)


@dataclass(frozen=True)
class ListRead:
    """A list request's first statement (a page folded with the caller's rights) and what settling
    its page needs: the cursor's position, if any, and the binding a cursor of this query gets."""

    statement: Any
    params: dict[str, Any]
    position: Position | None
    binding: str


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows and `meta`."""

    items: list[Any]
    meta: dict[str, Any]


def settle(
    query: Pagination,
    rows: Sequence[Any],
    *,
    position: Position | None,
    count: Callable[[], tuple[int, bool]],
    binding: str,
    key: Callable[[Any], Any],
) -> Page:
    """The page of `rows` (fetched with `query.limit`) and its meta. The total comes from the cursor
    (as on the first page), from the page itself when it is the last, else from `count()`
    ((total, exact)); `key(row)` is the row's sort value as a cursor carries it."""
    more = len(rows) > query.per_page
    items = list(rows[: query.per_page])
    if position is not None:
        total, exact = position.total, position.exact
    elif not more and (items or query.number == 1):
        total, exact = query.offset + len(items), True
    else:
        total, exact = count()
    next_cursor = None
    if more:
        last = items[-1]
        next_cursor = seal(binding, Position(key(last), last.id, total, exact))
    return Page(items, meta(query, total=total, exact=exact, next_cursor=next_cursor))


def meta(query: Pagination, *, total: int, exact: bool, next_cursor: str | None) -> dict[str, Any]:
    """`meta.pagination`: with a cursor, no `page` or `total_pages` (a cursor page has no number)."""
    pagination: dict[str, Any] = {}
    if query.cursor is None:
        pagination["page"] = query.number
    pagination["per_page"] = query.per_page
    if query.cursor is None:
        pagination["total_pages"] = math.ceil(total / query.per_page) if total else 0
    pagination.update(total_records=total, total_exact=exact, next_cursor=next_cursor)
    return {"pagination": pagination}
