"""Ids in paths. One that cannot exist (not a positive whole number, or beyond its column) is a 404:
there is no such resource, and the answer must not differ from an unknown id's."""

from __future__ import annotations

import re

from chalicelib.errors import NotFound

INT32_MAX = 2**31 - 1  # `integer` columns (users, sites)
INT64_MAX = 2**63 - 1  # `bigint` columns (interactions, audit events)
_DECIMAL = re.compile(r"[1-9][0-9]{0,18}")


def parse_id(raw: str | None, *, maximum: int = INT64_MAX) -> int | None:
    """The id, or None when no row can have it."""
    if raw is None or not _DECIMAL.fullmatch(raw) or int(raw) > maximum:
        return None
    return int(raw)


def path_id(raw: str | None, *, maximum: int = INT64_MAX, message: str = "Resource not found") -> int:
    value = parse_id(raw, maximum=maximum)
    if value is None:
        raise NotFound(message)
    return value
