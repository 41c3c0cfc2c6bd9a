// A frontend's flow through the API with the client generated from its OpenAPI document
// (openapi-typescript with its default settings, openapi-fetch): type-checked under `tsc --strict`,
// then run against the local run, every response checked against the document (check.ts).
//
//   API_BASE_URL=http://127.0.0.1:8000 API_USERNAME=demo API_PASSWORD=... \
//   API_MAIL_DIRECTORY=<the run's mail folder> node build/flow.js
//
// The user is a site admin (it invites); API_MAIL_DIRECTORY is where the run writes invitations'
// messages, read as the invitee's mailbox.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";
import { ResponseChecker } from "./check.js";
import { invitationToken, newestTo } from "./inbox.js";

type Interaction = components["schemas"]["InteractionRead"];
type InteractionCreate = components["schemas"]["InteractionCreate"];
type Invitation = components["schemas"]["InvitationRead"];

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`no ${what}`);
  return value;
}

const baseUrl = setting("API_BASE_URL");
let token: string | undefined;
let steps = 0;

/** A client sending `bearer()`'s token, when there is one; every response checked by `checker`. */
function apiClient(checker: ResponseChecker, bearer: () => string | undefined) {
  const client = createClient<paths>({ baseUrl });
  client.use({
    onRequest: ({ request }) => {
      const current = bearer();
      if (current !== undefined) request.headers.set("Authorization", `Bearer ${current}`);
      return request;
    },
  });
  client.use(checker.middleware());
  return client;
}

function step(name: string): void {
  steps += 1;
  console.log(`  ${steps}. ${name}`);
}

async function main(): Promise<void> {
  const served = (await (await fetch(`${baseUrl}/api/openapi.json`)).json()) as Record<string, never>;
  const checker = new ResponseChecker(served);
  const client = apiClient(checker, () => token);
  const anonymous = apiClient(checker, () => undefined);

  step("no token: the gateway's 401, in the envelope, with X-Request-Id");
  const noToken = await client.GET("/api/auth/me");
  assert.equal(noToken.response.status, 401);
  assert.equal(noToken.error?.error.code, "AUTHENTICATION_ERROR");
  assert.ok(noToken.error?.error.request_id);
  assert.equal(noToken.response.headers.get("X-Request-Id"), noToken.error.error.request_id);

  step("login");
  const login = await client.POST("/api/auth/login", {
    body: { username: setting("API_USERNAME"), password: setting("API_PASSWORD") },
  });
  token = present(login.data, "login").data.token;

  step("sites: the caller's, then one they administer chosen for the token");
  const mine = present((await client.GET("/api/auth/sites")).data, "sites").data.sites;
  const site = present(
    mine.find((candidate) => candidate.role === "admin"),
    "site the user administers",
  );
  const chosen = await client.POST("/api/auth/site", { body: { site_id: site.id } });
  token = present(chosen.data, "site token").data.token;
  assert.equal(chosen.data?.data.current_site.id, site.id);
  const detail = await client.GET("/api/sites/{site_id}", { params: { path: { site_id: site.id } } });
  assert.equal(present(detail.data, "site").data.site.name, site.name);

  step("a create with only the required fields, and one with Idempotency-Key, replayed");
  const marker = `Flow${Date.now().toString(36)}`;
  const minimal: InteractionCreate = {
    title: `${marker} call`,
    type: "Call",
    lead: "Grace Hopper",
    start_datetime: "2026-03-02T08:00:00Z",
    timezone: "UTC",
  };
  const first = present((await client.POST("/api/interactions", { body: minimal })).data, "create").data
    .interaction;
  assert.equal(first.location, null);
  const body: InteractionCreate = {
    title: `${marker} kickoff`,
    type: "Meeting",
    lead: "Ada Lovelace",
    start_datetime: "2026-03-02T09:00",
    timezone: "Europe/Paris",
    end_datetime: "2026-03-02T10:30",
    location: "Room 1",
    description: "Planning the quarter",
    notes: "Bring the figures",
  };
  const key = randomUUID();
  const create = () =>
    client.POST("/api/interactions", { params: { header: { "Idempotency-Key": key } }, body });
  const created = await create();
  assert.equal(created.response.status, 201);
  const interaction: Interaction = present(created.data, "create").data.interaction;
  assert.equal(interaction.start_datetime, "2026-03-02T08:00:00Z"); // 09:00 in Paris
  const etag = present(created.response.headers.get("ETag") ?? undefined, "ETag");
  assert.equal(etag, `"${interaction.version}"`);
  const replay = await create();
  assert.equal(replay.response.status, 201);
  assert.deepEqual(replay.data?.data.interaction, interaction);
  assert.equal(replay.response.headers.get("ETag"), etag);

  step("a refused body: 400 with every invalid field in details");
  const invalid = await client.POST("/api/interactions", { body: { ...body, title: " ", lead: "" } });
  assert.equal(invalid.response.status, 400);
  const fields = (invalid.error?.error.details ?? []).map((detail) => detail.field).sort();
  assert.deepEqual(fields, ["lead", "title"]);

  step("list with search and sort");
  const listed = await client.GET("/api/interactions", {
    params: { query: { search: marker, sort_by: "title", sort_direction: "asc", per_page: 10 } },
  });
  const page = present(listed.data, "list");
  assert.deepEqual(
    page.data.interactions.map((item) => item.id),
    [first.id, interaction.id],
  );
  assert.equal(page.meta.pagination.total_records, 2);

  step("partial update with If-Match: what is not sent stays as it was");
  const path = { interaction_id: interaction.id };
  const update = await client.PUT("/api/interactions/{interaction_id}", {
    params: { path, header: { "If-Match": etag } },
    body: { title: `${marker} kickoff (moved)` },
  });
  const updated: Interaction = present(update.data, "update").data.interaction;
  assert.equal(updated.title, `${marker} kickoff (moved)`);
  assert.equal(updated.version, interaction.version + 1);
  const unsent = [
    "type",
    "lead",
    "start_datetime",
    "timezone",
    "end_datetime",
    "location",
    "description",
    "notes",
    "site_id",
    "created_by",
    "created_at",
  ] as const;
  for (const field of unsent) assert.deepEqual(updated[field], interaction[field], field);
  const reread = await client.GET("/api/interactions/{interaction_id}", { params: { path } });
  assert.deepEqual(reread.data?.data.interaction, updated);
  const newTag = present(update.response.headers.get("ETag") ?? undefined, "ETag");

  step("a stale If-Match: 412, nothing changed");
  const stale = await client.PUT("/api/interactions/{interaction_id}", {
    params: { path, header: { "If-Match": etag } },
    body: { notes: null },
  });
  assert.equal(stale.response.status, 412);
  assert.equal(stale.error?.error.code, "PRECONDITION_FAILED");
  assert.equal(stale.error?.error.details, undefined);

  step("null clears one optional field, the others stay");
  const cleared = await client.PUT("/api/interactions/{interaction_id}", {
    params: { path, header: { "If-Match": newTag } },
    body: { notes: null },
  });
  const now = present(cleared.data, "update").data.interaction;
  assert.equal(now.notes, null);
  assert.equal(now.location, interaction.location);
  assert.equal(now.description, interaction.description);
  assert.equal(now.end_datetime, interaction.end_datetime);

  step("history, newest first");
  const history = await client.GET("/api/interactions/{interaction_id}/history", {
    params: { path, query: { per_page: 10 } },
  });
  const events = present(history.data, "history").data.events;
  assert.deepEqual(
    events.map((event) => event.action),
    ["interaction.updated", "interaction.updated", "interaction.created"],
  );
  assert.deepEqual(Object.keys(present(events[1], "event").changes), ["title"]);
  assert.equal(present(events[0], "event").target.version, now.version);

  step("delete, then the interaction is gone");
  const deleted = await client.DELETE("/api/interactions/{interaction_id}", {
    params: { path, header: { "If-Match": present(cleared.response.headers.get("ETag") ?? undefined, "ETag") } },
  });
  assert.equal(deleted.data?.data.message, "Interaction deleted");
  const gone = await client.GET("/api/interactions/{interaction_id}", { params: { path } });
  assert.equal(gone.response.status, 404);
  assert.equal(gone.error?.error.code, "RESOURCE_NOT_FOUND");
  await client.DELETE("/api/interactions/{interaction_id}", {
    params: { path: { interaction_id: first.id } },
  });

  step("invite an address: 201 with Location, the message sent to it");
  const sitePath = { site_id: site.id };
  const address = (which: string) => `${which}.${marker.toLowerCase()}@example.com`;
  const invited = await client.POST("/api/sites/{site_id}/invitations", {
    params: { path: sitePath },
    body: { email: address("first"), role: "editor" },
  });
  assert.equal(invited.response.status, 201);
  const invitation: Invitation = present(invited.data, "invitation").data.invitation;
  assert.equal(invitation.email, address("first"));
  assert.equal(invitation.status, "pending");
  assert.equal(invitation.delivery, "sent");
  assert.equal(invitation.invited_by?.username, setting("API_USERNAME"));
  const invitationPath = { site_id: site.id, invitation_id: invitation.id };
  const where = present(invited.response.headers.get("Location") ?? undefined, "Location");
  assert.equal(new URL(where, baseUrl).pathname, `/api/sites/${site.id}/invitations/${invitation.id}`);

  step("get it, then resend it: a new expiry");
  const got = await client.GET("/api/sites/{site_id}/invitations/{invitation_id}", {
    params: { path: invitationPath },
  });
  assert.deepEqual(present(got.data, "invitation").data.invitation, invitation);
  const resending = await client.POST("/api/sites/{site_id}/invitations/{invitation_id}/resend", {
    params: { path: invitationPath },
  });
  const resent = present(resending.data, "resend").data.invitation;
  assert.equal(resent.status, "pending");
  assert.equal(resent.delivery, "sent");
  assert.ok(Date.parse(resent.expires_at) > Date.parse(invitation.expires_at), "a new expiry");

  step("a second invitation; the pending ones listed a page at a time, newest first, by cursor");
  const second = present(
    (
      await client.POST("/api/sites/{site_id}/invitations", {
        params: { path: sitePath },
        body: { email: address("second"), role: "viewer" },
      })
    ).data,
    "invitation",
  ).data.invitation;
  const pending = { status: "pending", per_page: 1 } as const;
  const firstPage = present(
    (await client.GET("/api/sites/{site_id}/invitations", { params: { path: sitePath, query: pending } })).data,
    "invitations",
  );
  assert.deepEqual(
    firstPage.data.invitations.map((item) => item.id),
    [second.id],
  );
  assert.equal(firstPage.meta.pagination.page, 1);
  assert.ok(firstPage.meta.pagination.total_records >= 2);
  const cursor = present(firstPage.meta.pagination.next_cursor ?? undefined, "next_cursor");
  const nextPage = present(
    (
      await client.GET("/api/sites/{site_id}/invitations", {
        params: { path: sitePath, query: { ...pending, cursor } },
      })
    ).data,
    "invitations",
  );
  assert.deepEqual(
    nextPage.data.invitations.map((item) => item.id),
    [invitation.id],
  );
  assert.equal(nextPage.meta.pagination.page, undefined); // a page read by cursor has no number

  step("revoke the first: revoked, then 409 for a second revoke; the status filter finds it");
  const revoking = await client.DELETE("/api/sites/{site_id}/invitations/{invitation_id}", {
    params: { path: invitationPath },
  });
  assert.equal(present(revoking.data, "revoke").data.invitation.status, "revoked");
  const again = await client.DELETE("/api/sites/{site_id}/invitations/{invitation_id}", {
    params: { path: invitationPath },
  });
  assert.equal(again.response.status, 409);
  assert.equal(again.error?.error.code, "CONFLICT");
  const revoked = present(
    (
      await client.GET("/api/sites/{site_id}/invitations", {
        params: { path: sitePath, query: { status: "revoked" } },
      })
    ).data,
    "invitations",
  ).data.invitations;
  assert.ok(revoked.some((item) => item.id === invitation.id));
  assert.ok(revoked.every((item) => item.status === "revoked"));

  step("the invitee: the token from their mailbox, previewed (no account yet) and accepted");
  const message = newestTo(setting("API_MAIL_DIRECTORY"), address("second"));
  assert.equal(message.headers.get("subject"), `You are invited to ${site.name}`);
  const inviteToken = invitationToken(message);
  const preview = present(
    (await anonymous.POST("/api/auth/invitations/preview", { body: { token: inviteToken } })).data,
    "preview",
  ).data;
  assert.deepEqual(preview, {
    site: { id: site.id, name: site.name },
    role: "viewer",
    email: address("second"),
    account_exists: false,
  });
  const username = `invitee-${marker.toLowerCase()}`;
  const accepted = await anonymous.POST("/api/auth/invitations/accept", {
    body: { token: inviteToken, username, password: randomUUID() },
  });
  const joined = present(accepted.data, "accept").data;
  assert.equal(joined.user.username, username);
  assert.equal(joined.user.email, address("second"));
  assert.equal(joined.current_site?.id, site.id);
  assert.equal(joined.current_site?.role, "viewer");

  step("the new account's token: me, and the site's interactions as its admin sees them");
  const invitee = apiClient(checker, () => joined.token);
  const me = present((await invitee.GET("/api/auth/me")).data, "me").data;
  assert.equal(me.user.username, username);
  assert.equal(me.current_site?.id, site.id);
  const total = async (reader: typeof client) =>
    present((await reader.GET("/api/interactions", { params: { query: { per_page: 1 } } })).data, "list").meta
      .pagination.total_records;
  assert.equal(await total(invitee), await total(client));
  const secondNow = await client.GET("/api/sites/{site_id}/invitations/{invitation_id}", {
    params: { path: { site_id: site.id, invitation_id: second.id } },
  });
  assert.equal(present(secondNow.data, "invitation").data.invitation.status, "accepted");

  step("logout: the token stops working");
  assert.equal((await client.POST("/api/auth/logout")).response.status, 200);
  assert.equal((await client.GET("/api/auth/me")).response.status, 401);

  console.log(`flow (TypeScript): ${steps} steps, ${checker.checked.length} responses checked against the document`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
