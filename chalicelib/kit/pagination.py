"""One pagination rule for every list: `page` and `per_page` as query parameters, and a total that
is counted only when the page itself does not tell it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema

from chalicelib.kit.schema import Schema

MAX_PER_PAGE = 100
MAX_PAGE = 2**31 - 1


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


Page = Annotated[
    int,
    PlainValidator(between(1, MAX_PAGE)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
]
PerPage = Annotated[
    int,
    PlainValidator(between(1, MAX_PER_PAGE)),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}),
]


class Pagination(Schema):
    """`page` (1-based) and `per_page` (1-100, default 25): the query of every paginated list."""

    model_config = ConfigDict(extra="forbid", strict=True)

    page: Page = Field(1, description="1-based page number")
    per_page: PerPage = Field(25, description="page size, at most 100")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def page_total(query: Pagination, items: int, count: Callable[[], int]) -> int:
    """The total of a paginated list: a short, non-empty page is the last one, and an empty first
    page means there is nothing, so `count` is called only when the page does not tell."""
    if (items and items < query.per_page) or (not items and query.page == 1):
        return query.offset + items
    return count()


def meta(query: Pagination, total: int) -> dict[str, Any]:
    return {
        "pagination": {
            "page": query.page,
            "per_page": query.per_page,
            "total_pages": math.ceil(total / query.per_page) if total else 0,
            "total_records": total,
        }
    }
