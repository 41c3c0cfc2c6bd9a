"""What the interaction endpoints accept and return: the pydantic schemas the views validate with
(and that the OpenAPI document is generated from), plus the time rules that span several fields.

Field rules live on the schemas, so every invalid field is reported at once. Rules that combine
fields (a local time read in the record's time zone, end not before start) live in
`resolve_times`, which the create path runs on the body and the update path on the merged record.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache, lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chalicelib.errors import ValidationFailed
from chalicelib.http import error_details, validate
from chalicelib.models import INTERACTION_TYPES

SERVER_OWNED = ("id", "site_id", "created_by", "created_at", "updated_by", "updated_at", "version")
SORT_FIELDS = ("start_datetime", "end_datetime", "title", "type", "lead", "location",
               "created_at", "updated_at")
MAX_PER_PAGE = 100
MAX_PAGE = 2**31 - 1
MAX_FILTER_LENGTH = 255

# --- text ------------------------------------------------------------------------------------------


def _storable(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot hold a lone surrogate (JSON's "\\ud800")."""
    if value is None:
        return None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no unpaired surrogates)") from None
    return value


def _blank_to_none(value: str | None) -> str | None:
    return value or None


def _text(min_length: int, max_length: int, description: str) -> Any:
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length,
                                            max_length=max_length),
                     AfterValidator(_storable), Field(description=description)]


def _optional_text(max_length: int, description: str) -> Any:
    inner = Annotated[str, StringConstraints(strip_whitespace=True, max_length=max_length),
                      AfterValidator(_storable), AfterValidator(_blank_to_none)]
    return Annotated[inner | None, Field(description=description)]


Title = _text(1, 255, "1-255 characters after trimming")
Lead = _text(1, 100, "1-100 characters after trimming")
Location = _optional_text(255, "at most 255 characters after trimming; blank or null clears it")
LongText = _optional_text(10_000, "at most 10 000 characters after trimming; blank or null clears it")
InteractionType = Annotated[Literal[INTERACTION_TYPES], Field(description="one of GET /api/interactions/types")]

# --- time zones and datetimes ----------------------------------------------------------------------


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


def _check_zone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string naming an IANA time zone")
    zone(value)
    return value


_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


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
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                          int((fraction or "0").ljust(6, "0")), tzinfo=tzinfo)
        if tzinfo is not None:
            parsed.astimezone(UTC)  # may overflow at the ends of the calendar
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date and time") from None
    return parsed


_DATETIME_SCHEMA = {
    "type": "string",
    "description": "ISO 8601 date and time. With an offset (or Z) it is taken as is; without one it "
                   "is local time in `timezone` (a time in a daylight-saving gap is rejected, one "
                   "that occurs twice means its first occurrence).",
    "examples": ["2024-05-01T14:00:00-04:00", "2024-05-01T14:00"],
}
DateTimeInput = Annotated[datetime, PlainValidator(parse_datetime), WithJsonSchema(_DATETIME_SCHEMA)]
TimeZoneName = Annotated[str, PlainValidator(_check_zone), WithJsonSchema({
    "type": "string", "description": "IANA time zone name, as shipped in the tzdata package",
    "examples": ["America/New_York", "Europe/Paris", "UTC"]})]


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


def resolve_times(*, start: datetime | None, end: datetime | None,
                  zone_name: str | None) -> tuple[datetime | None, datetime | None, list[dict[str, str]]]:
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


# --- request bodies --------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _ignore_server_owned(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in SERVER_OWNED}
        return data


class InteractionCreate(_Body):
    """A new interaction. Server-owned fields (id, site_id, created_by, created_at, updated_by,
    updated_at, version) are ignored when sent; any other unknown field is rejected."""

    title: Title
    type: InteractionType
    lead: Lead
    start_datetime: DateTimeInput
    timezone: TimeZoneName
    end_datetime: DateTimeInput | None = None
    location: Location = None
    description: LongText = None
    notes: LongText = None


class InteractionUpdate(_Body):
    """A partial update: only the fields sent change. `null` clears an optional field; `null` for
    a required one is rejected."""

    title: Title = None
    type: InteractionType = None
    lead: Lead = None
    start_datetime: DateTimeInput = None
    timezone: TimeZoneName = None
    end_datetime: DateTimeInput | None = None
    location: Location = None
    description: LongText = None
    notes: LongText = None

    @field_validator("title", "type", "lead", "start_datetime", "timezone", mode="before")
    @classmethod
    def _required_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (the field is required)")
        return value

    def sent(self) -> dict[str, Any]:
        """The fields the client sent, with their validated values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _validate(model: Any, data: Any) -> tuple[Any, list[dict[str, str]], Any, Any, Any]:
    """(body or None, details, time zone, start, end): the field rules, and the three time fields
    parsed wherever they were valid on their own, so the time rules can still be checked (and
    reported together with the field rules) when some other field is invalid."""
    try:
        body = model.model_validate(data)
        details: list[dict[str, str]] = []
    except ValidationError as exc:
        body, details = None, error_details(exc)
    invalid = {d["field"] for d in details}
    raw = data if isinstance(data, dict) else {}

    def valid(field: str, parse: Any) -> Any:
        if field in invalid or raw.get(field) is None:
            return None
        return parse(raw[field])

    zone_name = valid("timezone", _check_zone)
    return body, details, zone_name, valid("start_datetime", parse_datetime), valid("end_datetime", parse_datetime)


def parse_create(data: Any) -> InteractionCreate:
    """The body of POST /api/interactions with its times resolved to UTC instants. Every invalid
    field is reported, the field rules and the rules across fields together."""
    body, details, zone_name, start, end = _validate(InteractionCreate, data)
    if body is not None:
        start, end, zone_name = body.start_datetime, body.end_datetime, body.timezone
    start_at, end_at, time_details = resolve_times(start=start, end=end, zone_name=zone_name)
    details += time_details
    if details or body is None:
        raise ValidationFailed("The request body is not valid", details=details)
    return body.model_copy(update={"start_datetime": start_at, "end_datetime": end_at})


def parse_update(data: Any) -> InteractionUpdate:
    """The body of PUT /api/interactions/{id}: the field rules, plus the time rules the body can
    answer alone (a local time in a daylight-saving gap of the time zone it sends; an end before
    the start it sends), so that one 400 lists every invalid field. The rules that need the stored
    record come after 404 and 412, in service.update."""
    body, details, zone_name, start, end = _validate(InteractionUpdate, data)
    if zone_name is None:  # local times wait for the stored time zone
        start = start if start is not None and start.tzinfo is not None else None
        end = end if end is not None and end.tzinfo is not None else None
    details += resolve_times(start=start, end=end, zone_name=zone_name)[2]
    if details or body is None:
        raise ValidationFailed("The request body is not valid", details=details)
    return body


# --- query parameters ------------------------------------------------------------------------------


def _whole_number(low: int, high: int) -> Any:
    def check(value: Any) -> int:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,10}", value.strip()):
            raise ValueError(f"must be a whole number from {low} to {high}")
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return number

    return Annotated[int, PlainValidator(check),
                     WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


def _bound(*, end_of_day: bool) -> Any:
    def check(value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("must be an ISO 8601 date or date and time")
        text = value.strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise ValueError("is not a valid date") from None
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        try:
            parsed = parse_datetime(text)
        except ValueError:
            raise ValueError("must be an ISO 8601 date (2024-05-01) or date and time with an offset "
                             "(2024-05-01T00:00:00-04:00)") from None
        # Without an offset a datetime is read as UTC, like a bare date.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    which = "through 23:59:59.999999 UTC" if end_of_day else "from 00:00 UTC"
    return Annotated[datetime, PlainValidator(check), WithJsonSchema({
        "type": "string",
        "description": f"ISO 8601 date (the whole day {which}) or date and time (an offset is "
                       "honoured; without one it is UTC)",
        "examples": ["2024-05-01", "2024-05-01T00:00:00-04:00"]})]


FilterText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_FILTER_LENGTH),
                       AfterValidator(_storable)]


class Pagination(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    page: _whole_number(1, MAX_PAGE) = Field(1, description="1-based page number")  # type: ignore[valid-type]
    per_page: _whole_number(1, MAX_PER_PAGE) = Field(25, description="page size, at most 100")  # type: ignore[valid-type]


class InteractionQuery(Pagination):
    """GET /api/interactions. Substring filters are case-insensitive, trimmed, and match `%`, `_`
    and `\\` literally; an empty one matches everything."""

    search: FilterText | None = Field(None, description="substring of title, type, lead, location, "
                                                        "description or notes")
    title: FilterText | None = Field(None, description="substring of the title")
    lead: FilterText | None = Field(None, description="substring of the lead")
    location: FilterText | None = Field(None, description="substring of the location")
    type: Literal[INTERACTION_TYPES] | None = Field(None, description="exact type")
    start_date: _bound(end_of_day=False) | None = Field(  # type: ignore[valid-type]
        None, description="interactions starting at or after this")
    end_date: _bound(end_of_day=True) | None = Field(  # type: ignore[valid-type]
        None, description="interactions starting at or before this")
    sort_by: Literal[SORT_FIELDS] = "start_datetime"
    sort_direction: Literal["asc", "desc"] = "desc"


def parse_query(params: dict[str, str]) -> InteractionQuery:
    """The list's query parameters; an inverted date range is a 400 rather than an empty page."""
    query = validate(InteractionQuery, params, message="Invalid query parameters")
    if query.start_date and query.end_date and query.end_date < query.start_date:
        raise ValidationFailed("Invalid query parameters", details=[
            {"field": "end_date", "message": "must not be before start_date"}])
    return query


# --- responses (documentation and tests; the service serialises rows directly) ---------------------


Timestamp = Annotated[str, Field(description="ISO 8601 in UTC with a Z suffix",
                                 examples=["2024-05-01T18:00:00Z"])]


class InteractionRead(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: int
    site_id: int
    title: str
    type: Literal[INTERACTION_TYPES]
    lead: str
    start_datetime: Timestamp
    timezone: str
    end_datetime: Timestamp | None
    location: str | None
    description: str | None
    notes: str | None
    created_by: int | None
    created_at: Timestamp
    updated_by: int | None
    updated_at: Timestamp | None
    version: int = Field(description="increments on every change; the ETag is its quoted value")


# --- path parameters -------------------------------------------------------------------------------

MAX_ID = 2**63 - 1


def path_id(raw: str | None, *, message: str = "Resource not found") -> int:
    """An id from the path. One that cannot exist (not a positive integer within int64) is a 404:
    there is no such resource, and the answer must not differ from an unknown id's."""
    from chalicelib.errors import NotFound

    if raw is None or not re.fullmatch(r"[1-9][0-9]{0,18}", raw) or int(raw) > MAX_ID:
        raise NotFound(message)
    return int(raw)
