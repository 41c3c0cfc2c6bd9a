"""The time rules of interactions: IANA zones from the pinned `tzdata` package, local times resolved
in a record's time zone, and the rules across start and end (ISO 8601 in ASCII digits is read by
`kit.timestamps`).

Pure functions over the standard library; the schemas call them, and so does the update path on the
merged record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """The IANA names shipped in the pinned `tzdata` package: every environment accepts the same set."""
    from importlib.resources import files

    return frozenset(files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())


@cache
def zone(name: str) -> ZoneInfo:
    """A zone loaded from the `tzdata` package itself, never from the host's /usr/share/zoneinfo."""
    if name not in zone_names():
        raise ValueError("is not a known IANA time zone name (e.g. America/New_York)")
    from importlib.resources import files

    with files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as handle:
        return ZoneInfo.from_file(handle, key=name)


def check_zone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string naming an IANA time zone")
    zone(value)
    return value


def to_instant(value: datetime, zone_name: str) -> datetime:
    """An aware UTC datetime. A naive value is local time in `zone_name`: the first occurrence when
    ambiguous (fold=0); ValueError when it falls in a daylight-saving gap."""
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    local = value.replace(tzinfo=zone(zone_name), fold=0)
    try:
        instant = local.astimezone(UTC)
    except OverflowError:
        raise ValueError("is not a valid date and time") from None
    if instant.astimezone(local.tzinfo).replace(tzinfo=None) != value:
        raise ValueError(f"does not exist in {zone_name} (skipped by a daylight-saving change)")
    return instant


def resolve_times(
    *, start: datetime | None, end: datetime | None, zone_name: str | None
) -> tuple[datetime | None, datetime | None, list[dict[str, str]]]:
    """(start, end) as UTC instants plus the details of every rule they break. A None input is
    left alone (missing, invalid or cleared); a naive one needs `zone_name`."""
    details: list[dict[str, str]] = []
    resolved: dict[str, datetime | None] = {"start_datetime": None, "end_datetime": None}
    for field, value in (("start_datetime", start), ("end_datetime", end)):
        if value is None or (value.tzinfo is None and zone_name is None):
            continue
        try:
            resolved[field] = to_instant(value, zone_name or "UTC")
        except ValueError as exc:
            details.append({"field": field, "message": str(exc)})
    start_at, end_at = resolved["start_datetime"], resolved["end_datetime"]
    if start_at is not None and end_at is not None and end_at < start_at:
        details.append({"field": "end_datetime", "message": "must not be before start_datetime"})
    return start_at, end_at, details
