"""Recording changes: every write adds its events to the statement that makes the change, as a
data-modifying `WITH ... INSERT INTO audit_events ... SELECT ... FROM <the change's RETURNING>`, so
a change and its event commit together or not at all, without another round trip. The command line
records its events in its command's transaction.

`record(source, ...)` is that INSERT: one event per row of `source` (the change's CTE; none when
the change touched nothing), or exactly one event without a source; `insert_all(rows(...), ...)`
writes the events of a change that has several, in one INSERT and in their causal order (the
data-modifying parts of a WITH run in no order one can rely on). Values come as bound
parameters or as columns of `source`; `changes` is a dict (see `diff`, `created`, `deleted`) or a
JSONB expression. An event about an account is recorded once per site the account belongs to
(`account_sites`), or once with no site.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    CompoundSelect,
    Insert,
    Integer,
    Select,
    String,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import ColumnElement, FromClause
from sqlalchemy.types import TypeEngine

from chalicelib.kit.timestamps import isoformat
from chalicelib.models import AUDIT_ACTIONS, AuditEvent, SiteMembership

ACTIONS = AUDIT_ACTIONS
FAMILIES = tuple(sorted({action.split(".")[0] for action in ACTIONS}))
# The fields a client or operator sets, per kind of target: what `changes` may name.
INTERACTION_FIELDS = (
    "title",
    "type",
    "lead",
    "start_datetime",
    "timezone",
    "end_datetime",
    "location",
    "description",
    "notes",
)
ACCOUNT_FIELDS = ("username", "email")
SITE_FIELDS = ("name", "description")

_COLUMNS = (
    "via",
    "actor_id",
    "actor_username",
    "operator",
    "site_id",
    "request_id",
    "gateway_request_id",
    "action",
    "target_type",
    "target_id",
    "target_version",
    "changes",
)


@dataclass(frozen=True)
class Origin:
    """Who made a change, and through what: the API (an actor, the request's ids) or the command
    line (the operating-system account that ran it)."""

    via: str
    # An id and a name, or the columns holding them (an account created by the same statement).
    actor_id: Any = None
    actor_username: Any = None
    operator: str | None = None
    request_id: str | None = None
    gateway_request_id: str | None = None


def by_api(*, user_id: Any, username: Any, ids: Any) -> Origin:
    """A change made through the API by `user_id` (or by the account a column of the change's
    statement names); `ids`: the request's `http.RequestIds`."""
    return Origin(
        "api",
        actor_id=user_id,
        actor_username=username,
        request_id=ids.request_id,
        gateway_request_id=ids.gateway_request_id,
    )


def by_caller(call: Any) -> Origin:
    """A change made through the API by the caller of `call` (an `endpoint.Call`)."""
    principal = call.principal
    return by_api(user_id=principal.user_id, username=principal.username, ids=call.request_ids)


def by_cli() -> Origin:
    return Origin("cli", operator=operating_system_account())


def operating_system_account() -> str:
    """The account running the command (`getpass` reads LOGNAME/USER, then the password database)."""
    try:
        name = getpass.getuser()
    except Exception:  # no such variable and no passwd entry (a bare container)
        name = ""
    return (name or f"uid {os.getuid()}")[:255]


# --- changes ---------------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A value as the API shows it: timestamps in UTC with a Z."""
    return isoformat(value) if isinstance(value, datetime) else value


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """`{field: {"from", "to"}}` for every field of `after` whose value differs from `before`'s."""
    return {
        name: {"from": json_value(before.get(name)), "to": json_value(value)}
        for name, value in after.items()
        if before.get(name) != value
    }


def created(values: Mapping[str, Any], fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """A new record's fields, each from null (a field left null did not change)."""
    return diff({}, {name: values.get(name) for name in fields if values.get(name) is not None})


def deleted(values: Mapping[str, Any], fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """A deleted record's fields, each to null."""
    return {
        name: {"from": json_value(values.get(name)), "to": None}
        for name in fields
        if values.get(name) is not None
    }


# --- the INSERT ------------------------------------------------------------------------------------

_TYPES: dict[str, TypeEngine[Any]] = {
    "actor_id": Integer(),
    "actor_username": String(),
    "operator": String(),
    "site_id": Integer(),
    "request_id": String(),
    "gateway_request_id": String(),
    "via": String(),
    "action": String(),
    "target_type": String(),
    "target_id": BigInteger(),
    "target_version": Integer(),
    "changes": JSONB(),
}


def _value(name: str, value: Any) -> ColumnElement[Any]:
    """A column of the event: a column of the source as it is, anything else a typed parameter (the
    dialect casts it: an untyped one in a SELECT list would arrive as text, and a NULL could not be
    inserted as an integer)."""
    if isinstance(value, ColumnElement):
        return value.label(name)
    return literal(value, _TYPES[name]).label(name)


def record(source: FromClause | None, **event: Any) -> Insert:
    """The INSERT of one event per row of `source` (or one event without a source); `event`: what
    `rows` takes."""
    return insert_all(rows(source, **event))


def insert_all(first: Select[Any], *more: Select[Any]) -> Insert:
    """One INSERT of the events of several `rows(...)`, in that order (their ids follow it)."""
    source: Select[Any] | CompoundSelect[Any] = union_all(first, *more) if more else first
    return insert(AuditEvent).from_select(list(_COLUMNS), source)


def rows(
    source: FromClause | None,
    *,
    origin: Origin,
    action: str,
    target_type: str,
    target_id: Any,
    site_id: Any,
    target_version: Any = None,
    changes: Any = None,
) -> Select[Any]:
    """The SELECT of one event per row of `source` (or of one event without a source)."""
    assert action in ACTIONS, action
    values = {
        "via": origin.via,
        "actor_id": origin.actor_id,
        "actor_username": origin.actor_username,
        "operator": origin.operator,
        "site_id": site_id,
        "request_id": origin.request_id,
        "gateway_request_id": origin.gateway_request_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_version": target_version,
        "changes": {} if changes is None else changes,
    }
    found = select(*(_value(name, values[name]) for name in _COLUMNS))
    return found.select_from(source) if source is not None else found


def account_sites(source: FromClause, user_id: ColumnElement[int]) -> tuple[FromClause, ColumnElement[Any]]:
    """(`source` joined to the sites of the account `user_id` names, the site column): one row per
    membership (any site, active or not), or one row with no site for an account without one — an
    account event is recorded once for each site whose admins may see it."""
    memberships = select(SiteMembership.user_id, SiteMembership.site_id).subquery("account_site")
    joined = source.outerjoin(memberships, memberships.c.user_id == user_id)
    return joined, memberships.c.site_id


def account_event(user_id: int, *, origin: Origin, action: str, changes: Any = None) -> Insert:
    """The INSERT of an event about the account `user_id`: once per site it belongs to as this
    statement sees it, or once with no site."""
    account = select(literal(user_id, Integer).label("id")).subquery("account")
    sites, site_id = account_sites(account, account.c.id)
    return record(
        sites,
        origin=origin,
        action=action,
        target_type="user",
        target_id=account.c.id,
        site_id=site_id,
        changes=changes,
    )


def as_cte(stmt: Insert, name: str) -> CTE:
    """An event INSERT as a CTE of the change's statement (RETURNING nothing anyone reads)."""
    return stmt.returning(AuditEvent.id).cte(name)
