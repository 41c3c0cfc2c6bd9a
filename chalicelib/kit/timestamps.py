"""Timestamps as the API writes them: ISO 8601 in UTC with a `Z`."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

Timestamp = Annotated[str, Field(description="ISO 8601 in UTC with a Z suffix", examples=["2024-05-01T18:00:00Z"])]


def isoformat(value: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC with a `Z` (fractions of a second only when present)."""
    if value is None:
        return None
    # Called for every timestamp of every row on a page: the driver already hands out UTC values
    # (the session's time zone is UTC), so they are formatted as they are, "+00:00" becoming "Z".
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"


def epoch_isoformat(seconds: int) -> str:
    return isoformat(datetime.fromtimestamp(seconds, tz=UTC)) or ""
