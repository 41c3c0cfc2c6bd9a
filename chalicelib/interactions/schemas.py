"""What the interaction endpoints accept and return: the pydantic schemas the views validate with,
and that the OpenAPI document is generated from. The time rules live in `times`.

Field rules live on the schemas, so every invalid field is reported at once. Rules that combine
fields (a local time read in the record's time zone, end not before start) are `times.resolve_times`,
which the create path runs on the body and the update path on the merged record.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from chalicelib.errors import ValidationFailed
from chalicelib.http import error_details
from chalicelib.interactions import terms
from chalicelib.interactions.times import check_zone, resolve_times
from chalicelib.kit import names
from chalicelib.kit.ids import Id
from chalicelib.kit.pagination import Pagination
from chalicelib.kit.schema import Schema
from chalicelib.kit.text import optional_text, storable, text
from chalicelib.kit.timestamps import FromBound, Timestamp, ToBound, parse_datetime
from chalicelib.models import InteractionTypeName

SERVER_OWNED = ("id", "site_id", "created_by", "created_at", "updated_by", "updated_at", "version")
SortField = Literal[
    "start_datetime", "end_datetime", "title", "type", "lead", "location", "created_at", "updated_at"
]
SORT_FIELDS: tuple[str, ...] = get_args(SortField)
MAX_FILTER_LENGTH = 255

if TYPE_CHECKING:  # what the fields hold once validated; pydantic builds them from the runtime side
    Title = str
    Lead = str
    Location = str | None
    LongText = str | None
else:
    # Names a person reads: no control, bidirectional or invisible characters (kit/names.py).
    Title = Annotated[
        text(
            1, 255, "1-255 characters after trimming, without control, bidirectional or invisible characters"
        ),
        AfterValidator(names.check),
    ]
    Lead = Annotated[
        text(
            1, 100, "1-100 characters after trimming, without control, bidirectional or invisible characters"
        ),
        AfterValidator(names.check),
    ]
    Location = Annotated[
        optional_text(
            255,
            "at most 255 characters after trimming, without control, bidirectional or invisible characters; "
            "blank or null clears it",
        ),
        AfterValidator(names.check),
    ]
    LongText = optional_text(10_000, "at most 10 000 characters after trimming; blank or null clears it")
InteractionType = Annotated[InteractionTypeName, Field(description="one of GET /api/interactions/types")]

_DATETIME_SCHEMA = {
    "type": "string",
    # What times.parse_datetime reads, narrowed to the field ranges datetime() takes (anything
    # outside them is refused too); surrounding whitespace is also accepted (it is trimmed). A value
    # the pattern allows can still be refused: a day past the month's end, a local time in a
    # daylight-saving gap, an end before the start (rules across fields JSON Schema cannot state).
    "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]{1,6})?)?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-9]{2})?$",
    "description": "ISO 8601 date and time. With an offset (or Z) it is taken as is; without one it "
    "is local time in `timezone` (a time in a daylight-saving gap is rejected, one "
    "that occurs twice means its first occurrence). An end must not be before its "
    "start.",
    "examples": ["2024-05-01T14:00:00-04:00", "2024-05-01T14:00"],
}
DateTimeInput = Annotated[datetime, PlainValidator(parse_datetime), WithJsonSchema(_DATETIME_SCHEMA)]
# An open list (it grows with each tzdata release, and its aliases would collapse into one name in
# a generated enum): a string with its description and examples, not an enum of every name.
_ZONE_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    # Every name tzdata ships fits it (tests/interactions/test_create.py); it is not the rule itself.
    "pattern": "^[A-Za-z][A-Za-z0-9_+/-]*$",
    "description": "An IANA time zone name (`America/New_York`), case included, as the tzdata package the "
    "API ships knows it; any other name is a 400",
    "examples": ["America/New_York", "Europe/Paris", "UTC"],
}
ZONE_PATTERN = re.compile(str(_ZONE_SCHEMA["pattern"]))
TimeZoneName = Annotated[str, PlainValidator(check_zone), WithJsonSchema(_ZONE_SCHEMA)]
# The same name as the API writes it.
ZoneName = Annotated[str, WithJsonSchema(_ZONE_SCHEMA)]


# --- request bodies --------------------------------------------------------------------------------


class _Body(Schema):
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

    # Not sent is None; a null that is sent is refused below (the type says what a sent value is).
    # The OpenAPI document drops the defaults: nothing is required, and no field claims a value.
    title: Title = None  # type: ignore[assignment]  # None: not sent
    type: InteractionType = None  # type: ignore[assignment]  # None: not sent
    lead: Lead = None  # type: ignore[assignment]  # None: not sent
    start_datetime: DateTimeInput = None  # type: ignore[assignment]  # None: not sent
    timezone: TimeZoneName = None  # type: ignore[assignment]  # None: not sent
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

    zone_name = valid("timezone", check_zone)
    return (
        body,
        details,
        zone_name,
        valid("start_datetime", parse_datetime),
        valid("end_datetime", parse_datetime),
    )


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
    created: InteractionCreate = body.model_copy(update={"start_datetime": start_at, "end_datetime": end_at})
    return created


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
    update: InteractionUpdate = body
    return update


# --- query parameters ------------------------------------------------------------------------------


# A substring term is answered by a trigram index only through trigrams of its words: a non-empty
# term needs three letters or digits in a row of the scripts the database indexes (`terms`, probed
# once per container; the endpoint passes them in the validation context as `word_scripts`).
# Without that context only ASCII letters and digits count: what every database answers.
ASCII_RULE = (
    "must contain at least three letters or digits in a row (A-Z, a-z, 0-9), or be empty for no filter"
)
SCRIPTS_RULE = (
    "must contain at least three letters or digits in a row (of a script the database indexes: "
    "Latin, Greek, Cyrillic, Hebrew, Arabic, Han, ...), or be empty for no filter"
)


def indexable(value: str, info: ValidationInfo) -> str:
    """An empty term means no filter; any other must give the trigram index something to look up."""
    scripts = (info.context or {}).get("word_scripts", frozenset())
    if value and not terms.has_indexable_run(value, scripts):
        raise ValueError(SCRIPTS_RULE if scripts else ASCII_RULE)
    return value


FilterText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_FILTER_LENGTH),
    AfterValidator(storable),
    AfterValidator(indexable),
]
_TERM = (
    "; empty for no filter, else it must contain three letters or digits in a row (of every script "
    "the database's trigram index treats as word characters: all of them under a UTF-8 LC_CTYPE, "
    "A-Z, a-z, 0-9 under C), at most 255 characters after trimming"
)


class InteractionQuery(Pagination):
    """GET /api/interactions. Substring filters are case-insensitive, trimmed, and match `%`, `_`
    and `\\` literally; an empty one matches everything, any other must contain three letters or
    digits in a row that the database's trigram indexes treat as word characters (`terms`)."""

    @classmethod
    def validation_context(cls, session: Any, params: dict[str, str]) -> dict[str, Any]:
        """What the term rule needs: the scripts the database indexes, probed (once per container)
        only when a substring term is sent."""
        if any((params.get(name) or "").strip() for name in ("search", "title", "lead", "location")):
            return {"word_scripts": terms.scripts_of(session)}
        return {}

    search: FilterText | None = Field(
        None, description="substring of title, type, lead, location, description or notes" + _TERM
    )
    title: FilterText | None = Field(None, description="substring of the title" + _TERM)
    lead: FilterText | None = Field(None, description="substring of the lead" + _TERM)
    location: FilterText | None = Field(None, description="substring of the location" + _TERM)
    type: InteractionTypeName | None = Field(None, description="exact type")
    start_date: FromBound | None = Field(None, description="interactions starting at or after this")
    end_date: ToBound | None = Field(None, description="interactions starting at or before this")
    sort_by: SortField = Field(
        "start_datetime", description="the order (default start_datetime); ties by id, nulls last"
    )
    sort_direction: Literal["asc", "desc"] = Field("desc", description="default desc")

    def problems(self) -> list[dict[str, str]]:
        """The pagination's rules, and an inverted date range (a 400 rather than an empty page)."""
        found = super().problems()
        if self.start_date and self.end_date and self.end_date < self.start_date:
            found.append({"field": "end_date", "message": "must not be before start_date"})
        return found


# --- responses (documentation and tests; the service serialises rows directly) ---------------------


class InteractionRead(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: Id
    site_id: Id
    title: str
    type: InteractionTypeName
    lead: str
    start_datetime: Timestamp
    timezone: ZoneName
    end_datetime: Timestamp | None
    location: str | None
    description: str | None
    notes: str | None
    created_by: Id | None
    created_at: Timestamp
    updated_by: Id | None
    updated_at: Timestamp | None
    version: int = Field(description="increments on every change; the ETag is its quoted value")
