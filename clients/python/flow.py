"""The frontend's flow (clients/ts/flow.ts) with the Python client generated from the OpenAPI
document by openapi-python-client with its default settings: type-checked with mypy --strict, then
run against the local run, every response checked against the document (document_check.py).

    API_BASE_URL=http://127.0.0.1:8000 API_USERNAME=demo API_PASSWORD=... python clients/python/flow.py

The generated package (`interaction_management_api_client`) and document_check.py beside this file must be
importable (PYTHONPATH; `python -m devtools.clients` sets it up).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from document_check import ResponseChecker
from interaction_management_api_client import AuthenticatedClient, Client
from interaction_management_api_client.api.audit import interaction_history
from interaction_management_api_client.api.auth import login, logout, me, my_sites, select_site
from interaction_management_api_client.api.interactions import (
    create_interaction,
    delete_interaction,
    get_interaction,
    list_interactions,
    update_interaction,
)
from interaction_management_api_client.api.sites import get_site
from interaction_management_api_client.models import (
    CreateInteractionResponse201,
    DeleteInteractionResponse200,
    ErrorEnvelope,
    GetInteractionResponse200,
    GetSiteResponse200,
    InteractionCreate,
    InteractionCreateType,
    InteractionHistoryResponse200,
    InteractionRead,
    InteractionUpdate,
    ListInteractionsResponse200,
    ListInteractionsSortBy,
    ListInteractionsSortDirection,
    LoginRequest,
    LoginResponse200,
    LogoutResponse200,
    MySitesResponse200,
    SelectSiteResponse200,
    SiteSelect,
    UpdateInteractionResponse200,
)
from interaction_management_api_client.types import UNSET, Response, Unset

T = TypeVar("T")
steps = 0


def step(name: str) -> None:
    global steps
    steps += 1
    print(f"  {steps}. {name}", flush=True)


def success(response: Response[T | ErrorEnvelope], kind: type[T]) -> T:
    """The parsed success body, or a failure naming what the API answered."""
    parsed = response.parsed
    if not isinstance(parsed, kind):
        raise AssertionError(f"expected {kind.__name__}, got {response.status_code}: {response.content!r}")
    return parsed


def refusal(response: Response[Any], status: int) -> ErrorEnvelope:
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, ErrorEnvelope), response.content
    return response.parsed


def main() -> int:
    base_url = os.environ["API_BASE_URL"]
    document = httpx.get(f"{base_url}/api/openapi.json").json()
    checker = ResponseChecker(document)
    hooks: dict[str, Any] = {"event_hooks": {"response": [checker.check]}}

    def authenticated(token: str) -> AuthenticatedClient:
        return AuthenticatedClient(base_url=base_url, token=token, httpx_args=hooks)

    anonymous = Client(base_url=base_url, httpx_args=hooks)

    step("no token: the gateway's 401, in the envelope, with X-Request-Id")
    anonymous_me = me.sync_detailed(client=anonymous)
    refused = refusal(anonymous_me, 401)
    assert refused.error.code.value == "AUTHENTICATION_ERROR"
    assert refused.error.request_id and anonymous_me.headers["X-Request-Id"] == refused.error.request_id

    step("login")
    body = LoginRequest(username=os.environ["API_USERNAME"], password=os.environ["API_PASSWORD"])
    logged_in = success(login.sync_detailed(client=anonymous, body=body), LoginResponse200)
    client = authenticated(logged_in.data.token)

    step("sites: the caller's, then one chosen for the token")
    sites = success(my_sites.sync_detailed(client=client), MySitesResponse200).data.sites
    site = next(s for s in sites if s.role.value != "viewer")
    chosen = success(
        select_site.sync_detailed(client=client, body=SiteSelect(site_id=site.id)),
        SelectSiteResponse200,
    )
    assert chosen.data.current_site.id == site.id
    client = authenticated(chosen.data.token)
    detail = success(get_site.sync_detailed(site.id, client=client), GetSiteResponse200)
    assert detail.data.site.name == site.name

    step("a create with only the required fields, and one with Idempotency-Key, replayed")
    marker = f"Flow{int(time.time() * 1000):x}"
    minimal = InteractionCreate(
        title=f"{marker} call",
        type_=InteractionCreateType.CALL,
        lead="Grace Hopper",
        start_datetime="2026-03-02T08:00:00Z",
        timezone="UTC",
    )
    created_minimal = create_interaction.sync_detailed(client=client, body=minimal)
    first = success(created_minimal, CreateInteractionResponse201).data.interaction
    assert first.location is None
    full = InteractionCreate(
        title=f"{marker} kickoff",
        type_=InteractionCreateType.MEETING,
        lead="Ada Lovelace",
        start_datetime="2026-03-02T09:00",
        timezone="Europe/Paris",
        end_datetime="2026-03-02T10:30",
        location="Room 1",
        description="Planning the quarter",
        notes="Bring the figures",
    )
    key = str(uuid.uuid4())

    def create() -> Response[CreateInteractionResponse201 | ErrorEnvelope]:
        return create_interaction.sync_detailed(client=client, body=full, idempotency_key=key)

    created = create()
    assert created.status_code == 201
    interaction = success(created, CreateInteractionResponse201).data.interaction
    assert interaction.start_datetime.isoformat() == "2026-03-02T08:00:00+00:00"  # 09:00 in Paris
    etag = created.headers["ETag"]
    assert etag == f'"{interaction.version}"'
    replay = create()
    assert replay.status_code == 201 and replay.headers["ETag"] == etag
    assert success(replay, CreateInteractionResponse201).data.interaction == interaction

    step("a refused body: 400 with every invalid field in details")
    invalid = create_interaction.sync_detailed(
        client=client,
        body=InteractionCreate(
            title=" ",
            type_=InteractionCreateType.MEETING,
            lead="",
            start_datetime="2026-03-02T09:00",
            timezone="Europe/Paris",
        ),
    )
    details = refusal(invalid, 400).error.details
    assert not isinstance(details, Unset) and sorted(d.field for d in details) == ["lead", "title"]

    step("list with search and sort")
    listed = success(
        list_interactions.sync_detailed(
            client=client,
            search=marker,
            sort_by=ListInteractionsSortBy.TITLE,
            sort_direction=ListInteractionsSortDirection.ASC,
            per_page=10,
        ),
        ListInteractionsResponse200,
    )
    assert [item.id for item in listed.data.interactions] == [first.id, interaction.id]
    assert listed.meta.pagination.total_records == 2

    step("partial update with If-Match: what is not sent stays as it was")
    updating = update_interaction.sync_detailed(
        interaction.id,
        client=client,
        body=InteractionUpdate(title=f"{marker} kickoff (moved)"),
        if_match=etag,
    )
    updated = success(updating, UpdateInteractionResponse200).data.interaction
    assert updated.title == f"{marker} kickoff (moved)" and updated.version == interaction.version + 1
    same: Callable[[InteractionRead], tuple[Any, ...]] = lambda i: (  # noqa: E731
        i.type_.value,
        i.lead,
        i.start_datetime,
        i.timezone,
        i.end_datetime,
        i.location,
        i.description,
        i.notes,
        i.site_id,
        i.created_by,
        i.created_at,
    )
    assert same(updated) == same(interaction)
    reread = success(get_interaction.sync_detailed(interaction.id, client=client), GetInteractionResponse200)
    assert reread.data.interaction == updated
    new_tag = updating.headers["ETag"]

    step("a stale If-Match: 412, nothing changed")
    stale = update_interaction.sync_detailed(
        interaction.id, client=client, body=InteractionUpdate(notes=None), if_match=etag
    )
    assert refusal(stale, 412).error.details is UNSET

    step("null clears one optional field, the others stay")
    clearing = update_interaction.sync_detailed(
        interaction.id, client=client, body=InteractionUpdate(notes=None), if_match=new_tag
    )
    now = success(clearing, UpdateInteractionResponse200).data.interaction
    assert now.notes is None and now.location == interaction.location
    assert now.description == interaction.description and now.end_datetime == interaction.end_datetime

    step("history, newest first")
    history = success(
        interaction_history.sync_detailed(interaction.id, client=client, per_page=10),
        InteractionHistoryResponse200,
    )
    events = history.data.events
    assert [e.action.value for e in events] == [
        "interaction.updated",
        "interaction.updated",
        "interaction.created",
    ]
    assert list(events[1].changes.additional_properties) == ["title"]
    assert events[0].target.version == now.version

    step("delete, then the interaction is gone")
    deleting = delete_interaction.sync_detailed(
        interaction.id, client=client, if_match=clearing.headers["ETag"]
    )
    assert success(deleting, DeleteInteractionResponse200).data.message == "Interaction deleted"
    gone = refusal(get_interaction.sync_detailed(interaction.id, client=client), 404)
    assert gone.error.code.value == "RESOURCE_NOT_FOUND"
    success(delete_interaction.sync_detailed(first.id, client=client), DeleteInteractionResponse200)

    step("logout: the token stops working")
    success(logout.sync_detailed(client=client), LogoutResponse200)
    refusal(me.sync_detailed(client=client), 401)

    print(f"flow (Python): {steps} steps, {len(checker.checked)} responses checked against the document")
    return 0


if __name__ == "__main__":
    sys.exit(main())
