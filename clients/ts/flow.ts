// A frontend's flow through the API with the client generated from its OpenAPI document
// (openapi-typescript with its default settings, openapi-fetch): type-checked under `tsc --strict`,
// then run against the local run, every response checked against the document (check.ts).
//
//   API_BASE_URL=http://127.0.0.1:8000 API_USERNAME=demo API_PASSWORD=... node build/flow.js
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";
import { ResponseChecker } from "./check.js";

type Interaction = components["schemas"]["InteractionRead"];
type InteractionCreate = components["schemas"]["InteractionCreate"];

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

function step(name: string): void {
  steps += 1;
  console.log(`  ${steps}. ${name}`);
}

async function main(): Promise<void> {
  const served = (await (await fetch(`${baseUrl}/api/openapi.json`)).json()) as Record<string, never>;
  const checker = new ResponseChecker(served);
  const client = createClient<paths>({ baseUrl });
  client.use({
    onRequest: ({ request }) => {
      if (token !== undefined) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  client.use(checker.middleware());

  step("no token: the gateway's 401, in the envelope, with X-Request-Id");
  const anonymous = await client.GET("/api/auth/me");
  assert.equal(anonymous.response.status, 401);
  assert.equal(anonymous.error?.error.code, "AUTHENTICATION_ERROR");
  assert.ok(anonymous.error?.error.request_id);
  assert.equal(anonymous.response.headers.get("X-Request-Id"), anonymous.error.error.request_id);

  step("login");
  const login = await client.POST("/api/auth/login", {
    body: { username: setting("API_USERNAME"), password: setting("API_PASSWORD") },
  });
  token = present(login.data, "login").data.token;

  step("sites: the caller's, then one chosen for the token");
  const mine = present((await client.GET("/api/auth/sites")).data, "sites").data.sites;
  const site = present(
    mine.find((candidate) => candidate.role !== "viewer"),
    "site where the user may write",
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

  step("logout: the token stops working");
  assert.equal((await client.POST("/api/auth/logout")).response.status, 200);
  assert.equal((await client.GET("/api/auth/me")).response.status, 401);

  console.log(`flow (TypeScript): ${steps} steps, ${checker.checked.length} responses checked against the document`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
