"""The one decorator every route uses: it registers the Chalice route (behind the authorizer unless
public), records the operation for the OpenAPI document, opens the request's database session and
hands the view a `Call` — the request, the session, the token the authorizer vouched for, and the
caller with the rights the route requires (site required or not, write role or not).

    @endpoint(bp, "GET", "/api/interactions/{interaction_id}", site=True, spec=Spec(...))
    def get_interaction(call: Call, interaction_id: str) -> Response: ...

The request owns the transaction: the session is committed when the view returns and rolled back
when it raises. Views stay at the edge (Chalice types); services below them return data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from chalicelib import caller as callers
from chalicelib.auth.authorizer import jwt_authorizer
from chalicelib.db import commit_now, session_scope
from chalicelib.errors import ValidationFailed
from chalicelib.http import RequestIds, json_object, parse_body, parse_query, request_ids
from chalicelib.kit.docs import Spec
from chalicelib.kit.pagination import ListRead
from chalicelib.kit.schema import Schema


class NoQuery(Schema):
    """The query of an endpoint that takes no parameters: any name but `_…` is a 400."""


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str
    spec: Spec
    public: bool
    name: str = ""  # the view's: the operation's id in the OpenAPI document (camelCase)
    ends_session: bool = False
    session: bool = True
    # Query parameters that make a request a substring search (SEARCH_RATE_PER_MINUTE).
    search_params: tuple[str, ...] = ()

    def is_search(self, request: Any) -> bool:
        params = request.query_params or {}
        return any((params.get(name) or "").strip() for name in self.search_params)


# (path, method) -> Endpoint, filled as the route modules are imported.
REGISTRY: dict[tuple[str, str], Endpoint] = {}


def public_routes() -> set[tuple[str, str]]:
    """Routes that need no token (everything else is behind the authorizer)."""
    return {key for key, entry in REGISTRY.items() if entry.public}


class Call:
    """One request as a view sees it."""

    def __init__(
        self,
        request: Any,
        session: Session | None,
        *,
        site: bool,
        write: bool,
        takes_query: bool,
        platform_admin: bool = False,
    ) -> None:
        self.request = request
        self._session = session
        self._site, self._write, self._platform_admin = site, write, platform_admin
        self._token: callers.TokenContext | None = None
        self._caller: callers.Principal | None = None
        # An endpoint without query parameters still refuses unknown ones, at the 400 step of
        # the order of checks (after the rights, with the body): see `_no_query`.
        self._query_checked = takes_query

    def _no_query(self) -> None:
        if not self._query_checked:
            self._query_checked = True
            parse_query(self.request, NoQuery)

    @property
    def session(self) -> Session:
        assert self._session is not None, "this endpoint was declared without a session"
        return self._session

    @property
    def token(self) -> callers.TokenContext:
        """What the authorizer vouched for (the middleware has checked expiry and revocation)."""
        if self._token is None:
            self._token = callers.token_context(self.request)
        return self._token

    @property
    def caller(self) -> callers.Principal:
        """The caller with the rights this endpoint requires: 401, then 403 SITE_CONTEXT_REQUIRED,
        then 403 for a role that may not write (or for a caller who is not a platform admin). Read
        from the database once per request (one round trip), unless `fold` already read it with the
        request's first statement."""
        if self._caller is None:
            self._settle(callers.run(self.session, self.token, callers.RIGHTS, site_id=self.token.site_id)[0])
        assert self._caller is not None
        return self._caller

    @property
    def site_id(self) -> int:
        """The token's active site, for an endpoint declared `site=True` (checked by `caller`)."""
        site_id = self.caller.site_id
        assert site_id is not None, "declare the endpoint with site=True"
        return site_id

    def _settle(self, caller: callers.Caller) -> None:
        self._caller = callers.principal(
            self.token,
            caller,
            site_required=self._site,
            write=self._write,
            platform_admin=self._platform_admin,
        )
        self._no_query()

    def fold(self, stmt: Any, params: dict[str, Any] | None = None, *, key: str = "id") -> callers.Folded:
        """Run a statement built with `caller.fold()` at the token's site: the caller's rights and
        the statement's rows in one round trip. The rights are checked first, exactly as `caller`
        does; then the rows (those whose `key` column is not null) are returned."""
        caller, rows = callers.run(
            self.session, self.token, stmt, params, site_id=self.token.site_id, key=key
        )
        self._settle(caller)
        return rows

    def fold_query(
        self, model: type[M], build: Callable[[M], ListRead]
    ) -> tuple[M, ListRead, callers.Folded]:
        """The query string parsed with `model`, and `build(query)`'s statement run with `fold`.
        An invalid query (or a cursor `build` refuses) is a 400 after the rights are checked on
        their own (401 and 403 come first)."""
        try:
            query = parse_query(self.request, model, session=self.session)
            read = build(query)
        except ValidationFailed:
            self.caller  # noqa: B018 - its 401/403 answer first
            raise
        self._query_checked = True
        return query, read, self.fold(read.statement, read.params)

    def fold_at(
        self, site_id: int | None, stmt: Any = None, params: dict[str, Any] | None = None, *, key: str = "id"
    ) -> tuple[callers.Caller, callers.Folded]:
        """Like `fold`, at another site than the token's (the path's): the caller's row there (role
        None when not an active member, or no such site) and the rows; 401 for an inactive user.
        The endpoint's view applies the site's own rules."""
        found = callers.run(
            self.session,
            self.token,
            stmt if stmt is not None else callers.RIGHTS,
            params,
            site_id=site_id,
            key=key,
        )
        self._no_query()
        return found

    def role_on(self, site_id: int | None) -> str | None:
        """The caller's role on another site than the token's (the path's), None for no active
        membership (or no such site); 401 for an inactive user."""
        return self.fold_at(site_id)[0].role

    def commit(self) -> None:
        """Commit the request's transaction now, before work that must follow it (sending mail:
        what it refers to must exist whatever happens next); later statements stand alone."""
        commit_now(self.session)

    def body(self, model: type[M]) -> M:
        self._no_query()
        return parse_body(self.request, model)

    def optional_body(self, model: type[M]) -> M | None:
        """The body parsed with `model`, or None when the request has none."""
        if not (self.request.raw_body or b"").strip():
            self._no_query()
            return None
        return self.body(model)

    def json(self) -> dict[str, Any]:
        self._no_query()
        return json_object(self.request)

    def query(self, model: type[M]) -> M:
        return parse_query(self.request, model)

    def header(self, name: str) -> str | None:
        value = self.request.headers.get(name.lower())
        return None if value is None else str(value)

    @property
    def request_ids(self) -> RequestIds:
        """The request's id (its log line's) and API Gateway's: what audit events record."""
        return request_ids(self.request)

    @property
    def source_ip(self) -> str:
        """API Gateway's view of the client; X-Forwarded-For is written by the client, never trusted."""
        return ((self.request.context or {}).get("identity") or {}).get("sourceIp") or "unknown"


def endpoint(
    bp: Any,
    method: str,
    path: str,
    *,
    spec: Spec,
    public: bool = False,
    site: bool = False,
    write: bool = False,
    platform_admin: bool = False,
    session: bool = True,
    transaction: bool | None = None,
    ends_session: bool = False,
    search_params: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `view(call, **path_params)` as the route `method path` of blueprint `bp`.

    public: no token (the authorizer is not asked); site: the token's active site is required;
    write: a role that may write on it (implies site); platform_admin: the caller must be a
    platform admin (no site needed); session: open a database session;
    transaction: one transaction for the request (default: for every method but GET; a GET's
    statements each stand alone, without BEGIN and COMMIT round trips); ends_session: the request's
    token check also ends its session (logout), in the same Redis round trip; search_params: the
    query parameters that make a request a substring search, limited per user per minute."""
    atomic = method != "GET" if transaction is None else transaction

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        takes_query = spec.query is not None

        @functools.wraps(view)
        def handler(**params: str) -> Any:
            request = bp.current_request
            if not session:
                call = Call(request, None, site=site, write=write, takes_query=takes_query)
                if spec.body is None:
                    call._no_query()  # nothing else to check first
                return view(call, **params)
            with session_scope(transaction=atomic) as db_session:
                call = Call(
                    request,
                    db_session,
                    site=site,
                    write=write,
                    takes_query=takes_query,
                    platform_admin=platform_admin,
                )
                answer = view(call, **params)
                call._no_query()  # a view that reached none of the checks above
                return answer

        key = (path, method)
        if key in REGISTRY:
            raise RuntimeError(f"{method} {path} is declared twice")
        REGISTRY[key] = Endpoint(
            path=path,
            method=method,
            spec=spec,
            public=public,
            name=view.__name__,
            ends_session=ends_session,
            search_params=search_params,
            session=session,
        )
        bp.route(path, methods=[method], authorizer=None if public else jwt_authorizer)(handler)
        return handler

    return decorate
