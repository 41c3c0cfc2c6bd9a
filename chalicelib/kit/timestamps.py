"""Timestamps as the API writes them (ISO 8601 in UTC with a `Z`) and reads them (ISO 8601 in ASCII
digits; a query's date bounds)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, PlainValidator, WithJsonSchema

Timestamp = Annotated[
    str,
    Field(
        description="ISO 8601 in UTC with a Z suffix",
        examples=["2024-05-01T18:00:00Z"],
        json_schema_extra={"format": "date-time"},
    ),
]


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


# ASCII digits only (re.ASCII): `\d` would take Arabic-Indic or fullwidth digits, which int() reads.
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$",
    re.ASCII,
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 date and time; without an offset the result is naive (a local time, resolved
    later in the record's time zone)."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date and time string")
    match = _DATETIME.match(value.strip())
    if not match:
        raise ValueError("must be an ISO 8601 date and time (e.g. 2024-05-01T14:00:00-04:00)")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        tzinfo = None
        if zulu:
            tzinfo = UTC
        elif sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tzinfo = timezone(-offset if sign == "-" else offset)
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=tzinfo,
        )
        if tzinfo is not None:
            parsed.astimezone(UTC)  # may overflow at the ends of the calendar
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date and time") from None
    return parsed


def parse_bound(value: Any, *, end_of_day: bool) -> datetime:
    """A list filter's bound: a bare date is the whole day in UTC (from 00:00, or through
    23:59:59.999999); a datetime without an offset is read as UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date or date and time")
    text = value.strip()
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError("is not a valid date") from None
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    try:
        parsed = parse_datetime(text)
    except ValueError:
        raise ValueError(
            "must be an ISO 8601 date (2024-05-01) or date and time with an offset "
            "(2024-05-01T00:00:00-04:00)"
        ) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def query_bound(*, end_of_day: bool) -> Any:
    """A query parameter read with `parse_bound`: a list's `start_date`/`end_date`, the audit's
    `since`/`until`."""

    def check(value: Any) -> datetime:
        return parse_bound(value, end_of_day=end_of_day)

    which = "through 23:59:59.999999 UTC" if end_of_day else "from 00:00 UTC"
    return Annotated[
        datetime,
        PlainValidator(check),
        WithJsonSchema(
            {
                "type": "string",
                "description": f"ISO 8601 date (the whole day {which}) or date and time (an offset is "
                "honoured; without one it is UTC)",
                "examples": ["2024-05-01", "2024-05-01T00:00:00-04:00"],
            }
        ),
    ]


if TYPE_CHECKING:  # what the parameters hold once validated
    FromBound = datetime
    ToBound = datetime
else:
    FromBound = query_bound(end_of_day=False)  # a bare date: from 00:00 UTC
    ToBound = query_bound(end_of_day=True)  # a bare date: through 23:59:59.999999 UTC
