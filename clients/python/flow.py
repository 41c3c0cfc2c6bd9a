"""The frontend's flow (clients/ts/flow.ts) with the Python client generated from the OpenAPI
document by openapi-python-client with its default settings: type-checked with mypy --strict, then
run against the local run, every response checked against the document (document_check.py).

    API_BASE_URL=http://127.0.0.1:8000 API_USERNAME=demo API_PASSWORD=... \
    API_MAIL_DIRECTORY=<the run's mail folder> python clients/python/flow.py

The user is a site admin (it invites); API_MAIL_DIRECTORY is where the run writes invitations'
messages, read as the invitee's mailbox (inbox.py). The generated package
(`interaction_management_api_client`) and the modules beside this file must be importable
(PYTHONPATH; `python -m devtools.clients` sets it up).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from document_check import ResponseChecker
from inbox import invitation_token, newest_to
from interaction_management_api_client import AuthenticatedClient, Client
from interaction_management_api_client.api.audit import interaction_history
from interaction_management_api_client.api.auth import (
    accept_invitation,
    login,
    logout,
    me,
    my_sites,
    preview_invitation,
    select_site,
)
from interaction_management_api_client.api.interactions import (
    create_interaction,
    delete_interaction,
    get_interaction,
    list_interactions,
    update_interaction,
)
from interaction_management_api_client.api.sites import (
    create_invitation,
    get_invitation,
    get_site,
    list_invitations,
    resend_invitation,
    revoke_invitation,
)
from interaction_management_api_client.models import (
    AcceptInvitationResponse200,
    CreateInteractionResponse201,
    CreateInvitationResponse201,
    DeleteInteractionResponse200,
    ErrorEnvelope,
    GetInteractionResponse200,
    GetInvitationResponse200,
    GetSiteResponse200,
    InteractionCreate,
    InteractionCreateType,
    InteractionHistoryResponse200,
    InteractionRead,
    InteractionUpdate,
    InvitationAcceptRequest,
    InvitationCreate,
    InvitationCreateRole,
    InvitationPreviewRequest,
    ListInteractionsResponse200,
    ListInteractionsSortBy,
    ListInteractionsSortDirection,
    ListInvitationsResponse200,
    ListInvitationsStatus,
    LoginRequest,
    LoginResponse200,
    LogoutResponse200,
    MeResponse200,
    MySitesResponse200,
    PreviewInvitationResponse200,
    ResendInvitationResponse200,
    RevokeInvitationResponse200,
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

    step("sites: the caller's, then one they administer chosen for the token")
    sites = success(my_sites.sync_detailed(client=client), MySitesResponse200).data.sites
    site = next(s for s in sites if s.role.value == "admin")
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

    step("invite an address: 201 with Location, the message sent to it")

    def address(which: str) -> str:
        return f"{which}.{marker.lower()}@example.com"

    inviting = create_invitation.sync_detailed(
        site.id,
        client=client,
        body=InvitationCreate(email=address("first"), role=InvitationCreateRole.EDITOR),
    )
    assert inviting.status_code == 201
    invitation = success(inviting, CreateInvitationResponse201).data.invitation
    assert invitation.email == address("first") and invitation.status.value == "pending"
    assert invitation.delivery.value == "sent"
    assert invitation.invited_by is not None and invitation.invited_by.username == os.environ["API_USERNAME"]
    where = httpx.URL(base_url).join(inviting.headers["Location"]).path
    assert where == f"/api/sites/{site.id}/invitations/{invitation.id}", where

    step("get it, then resend it: a new expiry")
    got = success(
        get_invitation.sync_detailed(site.id, invitation.id, client=client), GetInvitationResponse200
    )
    assert got.data.invitation == invitation
    resent = success(
        resend_invitation.sync_detailed(site.id, invitation.id, client=client), ResendInvitationResponse200
    ).data.invitation
    assert resent.status.value == "pending" and resent.delivery.value == "sent"
    assert resent.expires_at > invitation.expires_at, (resent.expires_at, invitation.expires_at)

    step("a second invitation; the pending ones listed a page at a time, newest first, by cursor")
    second = success(
        create_invitation.sync_detailed(
            site.id,
            client=client,
            body=InvitationCreate(email=address("second"), role=InvitationCreateRole.VIEWER),
        ),
        CreateInvitationResponse201,
    ).data.invitation
    first_page = success(
        list_invitations.sync_detailed(
            site.id, client=client, status=ListInvitationsStatus.PENDING, per_page=1
        ),
        ListInvitationsResponse200,
    )
    assert [item.id for item in first_page.data.invitations] == [second.id]
    pagination = first_page.meta.pagination
    assert pagination.page == 1 and pagination.total_records >= 2
    assert isinstance(pagination.next_cursor, str)
    next_page = success(
        list_invitations.sync_detailed(
            site.id,
            client=client,
            status=ListInvitationsStatus.PENDING,
            per_page=1,
            cursor=pagination.next_cursor,
        ),
        ListInvitationsResponse200,
    )
    assert [item.id for item in next_page.data.invitations] == [invitation.id]
    assert next_page.meta.pagination.page is UNSET  # a page read by cursor has no number

    step("revoke the first: revoked, then 409 for a second revoke; the status filter finds it")
    revoking = revoke_invitation.sync_detailed(site.id, invitation.id, client=client)
    assert success(revoking, RevokeInvitationResponse200).data.invitation.status.value == "revoked"
    again = refusal(revoke_invitation.sync_detailed(site.id, invitation.id, client=client), 409)
    assert again.error.code.value == "CONFLICT"
    revoked = success(
        list_invitations.sync_detailed(site.id, client=client, status=ListInvitationsStatus.REVOKED),
        ListInvitationsResponse200,
    ).data.invitations
    assert invitation.id in [item.id for item in revoked]
    assert {item.status.value for item in revoked} == {"revoked"}

    step("the invitee: the token from their mailbox, previewed (no account yet) and accepted")
    message = newest_to(Path(os.environ["API_MAIL_DIRECTORY"]), address("second"))
    assert message["Subject"] == f"You are invited to {site.name}"
    token = invitation_token(message)
    preview = success(
        preview_invitation.sync_detailed(client=anonymous, body=InvitationPreviewRequest(token=token)),
        PreviewInvitationResponse200,
    ).data
    assert (preview.site.id, preview.site.name) == (site.id, site.name)
    assert preview.role.value == "viewer" and preview.email == address("second")
    assert preview.account_exists is False
    username = f"invitee-{marker.lower()}"
    joined = success(
        accept_invitation.sync_detailed(
            client=anonymous,
            body=InvitationAcceptRequest(token=token, username=username, password=str(uuid.uuid4())),
        ),
        AcceptInvitationResponse200,
    ).data
    assert joined.user.username == username and joined.user.email == address("second")
    assert joined.current_site is not None and joined.current_site.id == site.id
    assert joined.current_site.role.value == "viewer"

    step("the new account's token: me, and the site's interactions as its admin sees them")
    invitee = authenticated(joined.token)
    mine = success(me.sync_detailed(client=invitee), MeResponse200).data
    assert mine.user.username == username
    assert mine.current_site is not None and mine.current_site.id == site.id

    def total(reader: AuthenticatedClient) -> int:
        listed = success(
            list_interactions.sync_detailed(client=reader, per_page=1), ListInteractionsResponse200
        )
        return listed.meta.pagination.total_records

    assert total(invitee) == total(client)
    now_accepted = success(
        get_invitation.sync_detailed(site.id, second.id, client=client), GetInvitationResponse200
    )
    assert now_accepted.data.invitation.status.value == "accepted"

    step("logout: the token stops working")
    success(logout.sync_detailed(client=client), LogoutResponse200)
    refusal(me.sync_detailed(client=client), 401)

    print(f"flow (Python): {steps} steps, {len(checker.checked)} responses checked against the document")
    return 0


if __name__ == "__main__":
    sys.exit(main())
