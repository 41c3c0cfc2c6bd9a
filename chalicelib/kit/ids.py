"""Ids in paths. One that cannot exist (not a positive whole number, or beyond its column) is a 404:
there is no such resource, and the answer must not differ from an unknown id's.

`Id` is how the OpenAPI document describes an id in a body (a positive integer, as in a path); the
path parameters' bounds are `PATH_ID_MAXIMUM`'s."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

INT32_MAX = 2**31 - 1  # `integer` columns (users, sites, invitations)
INT64_MAX = 2**63 - 1  # `bigint` columns (interactions, audit events)
# A path parameter's largest id, by name (any other: a bigint column's). Beyond it, as below 1, a 404.
PATH_ID_MAXIMUM = {"site_id": INT32_MAX, "user_id": INT32_MAX, "invitation_id": INT32_MAX}

# Documentation only (`minimum` is not a rule the server applies: a site id of 0 in a body is the
# 403 of any site the caller is not a member of, as API.md has it).
Id = Annotated[int, Field(json_schema_extra={"minimum": 1})]
_DECIMAL = re.compile(r"[1-9][0-9]{0,18}")


def parse_id(raw: str | None, *, maximum: int = INT64_MAX) -> int | None:
    """The id, or None when no row can have it."""
    if raw is None or not _DECIMAL.fullmatch(raw) or int(raw) > maximum:
        return None
    return int(raw)
