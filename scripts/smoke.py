#!/usr/bin/env python3
"""End-to-end smoke test of a running API, local or deployed: health, login, site selection, create,
read, list with search, update, delete, an invitation made and revoked (admins only), logout, and
the token refused afterwards.

    python scripts/smoke.py --base-url https://abc123.execute-api.eu-west-1.amazonaws.com/api \\
        --username smoke            # password from SMOKE_PASSWORD or --password-file

The base URL is what `/api/...` paths are appended to: `http://127.0.0.1:8000` under `chalice
local`, the stage's invoke URL (the stack's EndpointURL output) or a custom domain deployed. The
user needs write access (editor or admin) to at least one site; as an admin of the chosen site it
also invites an address of SES's mailbox simulator (`success+<marker>@simulator.amazonses.com`:
deployed, SES accepts it without delivering anything or touching the sender's reputation; locally
it is one more .eml file) and revokes the invitation — as an editor that step is skipped, saying
so. The test leaves nothing behind but the audit trail's events and that revoked invitation: the
interaction it creates is deleted, the invitation revoked and its session ended, even when a step
fails.

Standard library only, so it runs on any CI runner without installing the project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib import error, request

WRITER_ROLES = ("editor", "admin")


class SmokeFailure(Exception):
    """A step did not get the answer the contract promises."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Smoke:
    base_url: str
    timeout: float = 30.0
    origin: str | None = None
    verbose: bool = False
    log: list[str] = field(default_factory=list)

    # --- HTTP -----------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        req = request.Request(self.base_url.rstrip("/") + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("X-Request-Id", f"smoke-{uuid.uuid4().hex[:16]}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if self.origin:
            req.add_header("Origin", self.origin)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with request.urlopen(req, timeout=self.timeout) as resp:
                status, raw, resp_headers = resp.status, resp.read(), resp.headers
        except error.HTTPError as exc:
            status, raw, resp_headers = exc.code, exc.read(), exc.headers
        except (error.URLError, TimeoutError, ConnectionError) as exc:
            raise SmokeFailure(f"{method} {path}: no answer ({exc})") from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            raise SmokeFailure(
                f"{method} {path}: {status} with a body that is not JSON: {raw[:200]!r}"
            ) from None
        reply = Reply(status, {k.lower(): v for k, v in resp_headers.items()}, parsed)
        if self.verbose:
            print(f"    {method} {path} -> {status} {json.dumps(parsed)[:300]}", flush=True)
        return reply

    def expect(self, reply: Reply, status: int, what: str) -> Any:
        """The reply's `data` when it has the expected status and the success envelope; for an
        expected error, the `error` object."""
        if reply.status != status:
            raise SmokeFailure(
                f"{what}: expected {status}, got {reply.status}: {json.dumps(reply.body)[:500]}"
            )
        if not (reply.header("content-type") or "").startswith("application/json"):
            raise SmokeFailure(f"{what}: Content-Type is {reply.header('content-type')!r}")
        if not reply.header("x-request-id"):
            raise SmokeFailure(f"{what}: no X-Request-Id header")
        if self.origin and reply.header("access-control-allow-origin") != self.origin:
            raise SmokeFailure(
                f"{what}: Access-Control-Allow-Origin is "
                f"{reply.header('access-control-allow-origin')!r}, expected {self.origin!r}"
            )
        body = reply.body if isinstance(reply.body, dict) else {}
        if status < 400:
            if body.get("status") != "success" or "data" not in body:
                raise SmokeFailure(f"{what}: not a success envelope: {json.dumps(reply.body)[:300]}")
            return body["data"]
        if body.get("status") != "error" or "code" not in (body.get("error") or {}):
            raise SmokeFailure(f"{what}: not an error envelope: {json.dumps(reply.body)[:300]}")
        return body["error"]

    def step(self, name: str, started: float) -> None:
        line = f"ok  {name} ({(time.perf_counter() - started) * 1000:.0f} ms)"
        self.log.append(line)
        print(line, flush=True)

    def skip(self, name: str, why: str) -> None:
        print(f"--  {name}: skipped, {why}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def wait_for_health(smoke: Smoke, wait_seconds: float) -> dict[str, Any]:
    """GET /api/health until it answers 200 (a fresh deployment or a cold VPC Lambda can take a
    few seconds); the last failure is reported when the time runs out."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            reply = smoke.call("GET", "/api/health")
            data = smoke.expect(reply, 200, "health")
            check(data == {"database": "ok", "cache": "ok"}, f"health: unexpected body {data}")
            return data
        except SmokeFailure:
            if time.monotonic() >= deadline:
                raise
            time.sleep(2)


def choose_site(login: dict[str, Any], wanted: str | None) -> dict[str, Any]:
    sites = login.get("sites") or []
    if wanted:
        matches = [s for s in sites if str(s["id"]) == wanted or s["name"] == wanted]
        check(bool(matches), f"the user is not a member of the site {wanted!r}")
        site = matches[0]
    else:
        current = login.get("current_site")
        writable = [s for s in sites if s.get("role") in WRITER_ROLES]
        site = (
            current
            if current and current.get("role") in WRITER_ROLES
            else (writable[0] if writable else None)
        )
        check(site is not None, "the user cannot write to any of their sites (needs editor or admin)")
    check(
        site.get("role") in WRITER_ROLES,
        f"the user's role on {site['name']!r} is {site.get('role')!r}; the smoke test needs editor or admin",
    )
    return site


def invitation(smoke: Smoke, site: dict[str, Any], token: str, marker: str, made: list[int]) -> None:
    """Invite a mailbox-simulator address, see the invitation listed (never with a token), revoke
    it, and see a second revocation refused. `made` holds its id until it is revoked."""
    invitations = f"/api/sites/{site['id']}/invitations"
    body = {"email": f"success+{marker}@simulator.amazonses.com", "role": "viewer"}
    created = smoke.expect(smoke.call("POST", invitations, token=token, body=body), 201, "invite")[
        "invitation"
    ]
    made.append(created["id"])
    check(
        created["status"] == "pending"
        and created["delivery"] in ("sent", "queued")
        and "token" not in created,
        f"invite: not a pending invitation: {created}",
    )
    listed = smoke.expect(smoke.call("GET", f"{invitations}?status=pending", token=token), 200, "invitations")
    check(
        any(i["id"] == created["id"] for i in listed["invitations"]) or len(listed["invitations"]) == 25,
        "invitations: the new invitation is missing",
    )
    revoked = smoke.expect(
        smoke.call("DELETE", f"{invitations}/{created['id']}", token=token), 200, "revoke invitation"
    )["invitation"]
    check(revoked["status"] == "revoked", f"revoke invitation: {revoked}")
    made.remove(created["id"])
    again = smoke.expect(
        smoke.call("DELETE", f"{invitations}/{created['id']}", token=token), 409, "revoke again"
    )
    check(again["code"] == "CONFLICT", f"revoke again: {again}")


def run(smoke: Smoke, *, username: str, password: str, site_wanted: str | None, wait_seconds: float) -> None:
    marker = f"smoke-{uuid.uuid4().hex[:12]}"
    token = site_token = None
    created_id: int | None = None
    etag: str | None = None
    site: dict[str, Any] = {}
    invited: list[int] = []
    try:
        t = time.perf_counter()
        wait_for_health(smoke, wait_seconds)
        smoke.step("health: database and cache ok", t)

        t = time.perf_counter()
        login = smoke.expect(
            smoke.call("POST", "/api/auth/login", body={"username": username, "password": password}),
            200,
            "login",
        )
        token = login["token"]
        check(isinstance(token, str) and token.count(".") == 2, "login: no JWT in the answer")
        check(login["expires_at"].endswith("Z"), "login: expires_at is not UTC with Z")
        smoke.step(f"login as {login['user']['username']} ({len(login['sites'])} site(s))", t)

        t = time.perf_counter()
        site = choose_site(login, site_wanted)
        switched = smoke.expect(
            smoke.call("POST", "/api/auth/site", token=token, body={"site_id": site["id"]}),
            200,
            "site selection",
        )
        site_token = switched["token"]
        check(switched["current_site"]["id"] == site["id"], "site selection: current_site is another site")
        check(switched["expires_at"] == login["expires_at"], "site selection: the session's expiry changed")
        me = smoke.expect(smoke.call("GET", "/api/auth/me", token=site_token), 200, "me")
        check(
            (me.get("current_site") or {}).get("id") == site["id"], "me: current_site is not the chosen site"
        )
        smoke.step(f"site selection: {site['name']} as {site['role']}", t)

        t = time.perf_counter()
        types = smoke.expect(smoke.call("GET", "/api/interactions/types", token=site_token), 200, "types")[
            "types"
        ]
        check(bool(types), "types: empty list")
        start = datetime.now(UTC).replace(microsecond=0)
        new = {
            "title": f"Smoke test {marker}",
            "type": types[0],
            "lead": "Smoke Test",
            "start_datetime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timezone": "UTC",
            "location": "Nowhere",
            "description": f"Created by the smoke test ({marker})",
        }
        reply = smoke.call(
            "POST", "/api/interactions", token=site_token, body=new, headers={"Idempotency-Key": marker}
        )
        created = smoke.expect(reply, 201, "create")["interaction"]
        created_id, etag = created["id"], reply.header("etag")
        check(
            etag == f'"{created["version"]}"',
            f"create: ETag {etag!r} does not match version {created['version']}",
        )
        check(
            (reply.header("location") or "").endswith(f"/api/interactions/{created_id}"),
            f"create: Location is {reply.header('location')!r}",
        )
        check(created["site_id"] == site["id"] and created["title"] == new["title"], "create: fields differ")
        smoke.step(f"create interaction {created_id}", t)

        t = time.perf_counter()
        reply = smoke.call("GET", f"/api/interactions/{created_id}", token=site_token)
        read = smoke.expect(reply, 200, "read")["interaction"]
        check(read == created, "read: the record differs from the one created")
        check(reply.header("etag") == etag, "read: ETag differs from the create's")
        smoke.step("read it back", t)

        t = time.perf_counter()
        reply = smoke.call("GET", f"/api/interactions?search={marker}&per_page=10", token=site_token)
        listed = smoke.expect(reply, 200, "list")
        ids = [row["id"] for row in listed["interactions"]]
        check(ids == [created_id], f"list with search: expected [{created_id}], got {ids}")
        pagination = (reply.body.get("meta") or {}).get("pagination") or {}
        check(pagination.get("total_records") == 1, f"list with search: pagination {pagination}")
        smoke.step("list with search finds exactly it", t)

        t = time.perf_counter()
        reply = smoke.call(
            "PUT",
            f"/api/interactions/{created_id}",
            token=site_token,
            body={"title": f"Smoke test {marker} (updated)", "notes": "updated"},
            headers={"If-Match": etag},
        )
        updated = smoke.expect(reply, 200, "update")["interaction"]
        check(updated["version"] == created["version"] + 1, "update: version not incremented")
        check(
            updated["title"].endswith("(updated)") and updated["notes"] == "updated",
            "update: fields unchanged",
        )
        check(reply.header("etag") == f'"{updated["version"]}"', "update: ETag is not the new version")
        etag = reply.header("etag")
        smoke.step(f"update with If-Match (version {updated['version']})", t)

        t = time.perf_counter()
        deleted = smoke.expect(
            smoke.call(
                "DELETE", f"/api/interactions/{created_id}", token=site_token, headers={"If-Match": etag}
            ),
            200,
            "delete",
        )
        check(deleted.get("message") == "Interaction deleted", f"delete: {deleted}")
        created_id = None
        gone = smoke.expect(
            smoke.call("GET", f"/api/interactions/{updated['id']}", token=site_token),
            404,
            "read after delete",
        )
        check(gone["code"] == "RESOURCE_NOT_FOUND", f"read after delete: {gone}")
        smoke.step("delete, then 404", t)

        if site["role"] == "admin":
            t = time.perf_counter()
            invitation(smoke, site, site_token, marker, invited)
            smoke.step("invitation made (no token in sight), listed, revoked", t)
        else:
            smoke.skip("invitations", f"the user is {site['role']} of {site['name']}, not admin")

        t = time.perf_counter()
        out = smoke.expect(smoke.call("POST", "/api/auth/logout", token=site_token), 200, "logout")
        check(out.get("message") == "Successfully logged out", f"logout: {out}")
        logged_out = (("site token", site_token), ("login token", token))
        token = site_token = None
        for which, old in logged_out:
            refused = smoke.expect(smoke.call("GET", "/api/auth/me", token=old), 401, f"{which} after logout")
            check(refused["code"] == "AUTHENTICATION_ERROR", f"{which} after logout: {refused}")
        smoke.step("logout; both tokens of the session refused (401)", t)
    finally:
        _clean_up(
            smoke,
            created_id,
            etag,
            site_token or token,
            [f"/api/sites/{site.get('id')}/invitations/{made}" for made in invited],
        )


def _clean_up(
    smoke: Smoke,
    created_id: int | None,
    etag: str | None,
    token: str | None,
    invitations: list[str] | None = None,
) -> None:
    """After a failure: delete what was created, revoke the invitation made and end the session, quietly."""
    calls = (
        [("DELETE", f"/api/interactions/{created_id}", {"If-Match": "*"})] if created_id is not None else []
    )
    calls += [("DELETE", made, {}) for made in invitations or []]
    for method, path, headers in calls + [("POST", "/api/auth/logout", {})]:
        if token is None:
            continue
        try:
            smoke.call(method, path, token=token, headers=headers)
        except SmokeFailure:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url",
        default=os.environ.get("SMOKE_BASE_URL"),
        help="where /api/... is appended (env SMOKE_BASE_URL)",
    )
    parser.add_argument("--username", default=os.environ.get("SMOKE_USERNAME"), help="(env SMOKE_USERNAME)")
    parser.add_argument(
        "--password-file", help="a file whose first line is the password (default: env SMOKE_PASSWORD)"
    )
    parser.add_argument(
        "--site",
        help="site id or name to select (default: the login's current site, "
        "else the first site the user can write to)",
    )
    parser.add_argument(
        "--origin", help="send this Origin and require it back in Access-Control-Allow-Origin"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for /api/health to answer 200 (default 60)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every request")
    args = parser.parse_args(argv)

    if not args.base_url or not args.username:
        parser.error("--base-url and --username (or SMOKE_BASE_URL and SMOKE_USERNAME) are required")
    if args.password_file:
        with open(args.password_file) as f:
            password = f.readline().rstrip("\r\n")
    else:
        password = os.environ.get("SMOKE_PASSWORD", "")
    if not password:
        parser.error("no password: set SMOKE_PASSWORD or pass --password-file")

    smoke = Smoke(args.base_url, timeout=args.timeout, origin=args.origin, verbose=args.verbose)
    started = time.perf_counter()
    print(f"smoke test of {args.base_url}", flush=True)
    try:
        run(smoke, username=args.username, password=password, site_wanted=args.site, wait_seconds=args.wait)
    except SmokeFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"smoke test passed: {len(smoke.log)} steps in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
