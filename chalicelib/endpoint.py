"""The one decorator every route uses, and the life of a request through it.

`@endpoint` registers the Chalice route (behind the authorizer unless `Public`), records the
operation for the OpenAPI document, and owns each request, top to bottom (`_handle`):

1. the token's checks are sent to Redis (`auth.guard.start`: revocation, rate limits) and not
   waited for;
2. the route's declared read runs: its statement with the caller's rights folded in, one database
   round trip, while Redis answers;
3. the Redis verdict is settled (401, 429);
4. `access.admit` holds the caller to what the route needs (401, 403, then the 400 of a read that
   could not be built, then 404);
5. the view is called with the admitted caller and the read's typed result (`call.found`).

No code of a view runs before the caller is verified. The database layer knows nothing of this.

    @endpoint(bp, "GET", "/api/interactions/{interaction_id}", needs=SiteRole(), read=one, spec=Spec(...))
    def get_interaction(call: Call[InteractionRow | None], interaction_id: str) -> Response: ...

The request owns the transaction: the session is committed when the view returns and rolled back
when it raises. Views stay at the edge (Chalice types); services below them return data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from chalicelib import access
from chalicelib.access import RIGHTS_ONLY, Needs, Principal, Public, Read, TokenContext
from chalicelib.auth.authorizer import jwt_authorizer
from chalicelib.auth.guard import Verdict, start
from chalicelib.db import commit_now, session_scope
from chalicelib.errors import ApiError, ValidationFailed
from chalicelib.http import RequestIds, json_object, parse_body, parse_query, request_ids
from chalicelib.kit.docs import Spec
from chalicelib.kit.ids import INT32_MAX, parse_id
from chalicelib.kit.schema import Schema


class NoQuery(Schema):
    """The query of an endpoint that takes no parameters: any name but `_…` is a 400."""


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str
    spec: Spec
    needs: Needs
    name: str = ""  # the view's: the operation's id in the OpenAPI document (camelCase)
    ends_session: bool = False
    rate_exempt: bool = False  # never refused by API_RATE_PER_MINUTE (nor counted towards it)
    session: bool = True
    # Query parameters that make a request a substring search (SEARCH_RATE_PER_MINUTE).
    search_params: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return isinstance(self.needs, Public)

    def is_search(self, request: Any) -> bool:
        params = request.query_params or {}
        return any((params.get(name) or "").strip() for name in self.search_params)


# (path, method) -> Endpoint, filled as the route modules are imported.
REGISTRY: dict[tuple[str, str], Endpoint] = {}


def public_routes() -> set[tuple[str, str]]:
    """Routes that need no token (everything else is behind the authorizer)."""
    return {key for key, entry in REGISTRY.items() if entry.public}


class Call(Generic[T]):
    """One request as a view sees it: the request, its session, the admitted caller
    (`principal`) and what the route's declared read found (`found`)."""

    def __init__(self, request: Any, session: Session | None, *, takes_query: bool) -> None:
        self.request = request
        self._session = session
        self._principal: Principal | None = None
        self._found: T | None = None
        # An endpoint without query parameters refuses unknown ones, at the 400 step of the order
        # of checks (after the rights, with the body).
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
    def token(self) -> TokenContext:
        """What the authorizer vouched for (checked for expiry and revocation before the view)."""
        return access.token_context(self.request)

    @property
    def principal(self) -> Principal:
        """The caller, admitted to this route (`access.admit`)."""
        assert self._principal is not None, "a public route has no principal"
        return self._principal

    @property
    def found(self) -> T:
        """What the route's declared read found, shaped (`Read.shape`)."""
        return self._found  # type: ignore[return-value]  # None only for Read() (T is None)

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
        self._query_checked = True
        return parse_query(self.request, model, session=self._session)

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


# --- the life of a request -------------------------------------------------------------------------


def _start_checks(request: Any, declared: Endpoint, *, refused: bool = False) -> Verdict:
    """Step 1: the token's checks, sent to Redis (401 now for what the context alone shows). A
    logout ends its session (or all of them) in the same round trip, unless something refuses it."""
    auth = (request.context or {}).get("authorizer") or {}
    ends = declared.ends_session and not refused and not _query_refused(request, declared)
    scope = _ends_every_session(request, declared) if ends else False
    return start(
        auth,
        authorization=request.headers.get("authorization"),
        end_session=ends and scope is not None,
        end_all=bool(scope),
        search=declared.is_search(request),
        exempt=declared.rate_exempt,
    )


def _site_of(
    declared: Endpoint, token: TokenContext, params: Mapping[str, str], read: Read[Any]
) -> int | None:
    """Where the rights are read: the read's own site, the path's `{site_id}`, or the token's."""
    if read.site != "declared":
        return read.site
    if access.at_path(declared.needs):
        return parse_id(params.get("site_id"), maximum=INT32_MAX)  # None: no such site (a 404)
    return token.site_id


def _handle(
    declared: Endpoint,
    build: Callable[..., Read[T]],
    view: Callable[..., Any],
    request: Any,
    params: dict[str, str],
    *,
    atomic: bool,
) -> Any:
    """One authenticated request, in order (see the module's docstring)."""
    verdict = _start_checks(request, declared)  # 1. Redis: sent
    token = access.token_context(request)
    if not declared.session:
        verdict.settle()  # 3. (no read)
        call: Call[T] = Call(request, None, takes_query=declared.spec.query is not None)
        call._no_query()
        return view(call, **params)
    with session_scope(transaction=atomic) as session:
        call = Call(request, session, takes_query=declared.spec.query is not None)
        invalid: ApiError | None = None
        try:
            read: Read[Any] = build(call, **params)
        except ValidationFailed as refused:  # its 400 comes after the 401 and 403
            read, invalid = RIGHTS_ONLY, refused
        try:
            rows = access.read(  # 2. PostgreSQL: the rights and the route's rows, one round trip
                session,
                token,
                read.statement,
                dict(read.params),
                site_id=_site_of(declared, token, params, read),
                key=read.key,
            )
        finally:
            verdict.settle()  # 3. Redis: its refusal (401, 429) comes first, whatever the read did
        if invalid is None:
            try:
                call._no_query()
            except ValidationFailed as refused:
                invalid = refused
        call._principal = access.admit(declared.needs, token, access.rights(rows.head), invalid=invalid)  # 4.
        call._found = read.shape(rows)
        return view(call, **params)  # 5.


def authenticate(request: Any, declared: Endpoint) -> None:
    """The 401s of a request refused before its route (a body too large, or not JSON): the token's
    checks and, for a route that reads the database, the account's (one statement). 413 and 415
    come after every 401."""
    verdict = _start_checks(request, declared, refused=True)
    if not declared.session:
        verdict.settle()
        return
    token = access.token_context(request)
    with session_scope(transaction=False) as session:
        try:
            rows = access.read(session, token, access.RIGHTS, site_id=None)
        finally:
            verdict.settle()
        access.admit(access.Token(), token, access.rights(rows.head), invalid=None)


def _ends_every_session(request: Any, declared: Endpoint) -> bool | None:
    """A logout's scope, read from its body by the endpoint's own schema: True for `{"all": true}`,
    False for this session only (no body, `{}`, `{"all": false}`), None for a body it refuses (the
    view answers the 400; nothing ends)."""
    if not (request.raw_body or b"").strip():
        return False
    model = declared.spec.body
    if model is None:
        return False
    try:
        return bool(getattr(parse_body(request, model), "all", False))
    except ApiError:
        return None


def _query_refused(request: Any, declared: Endpoint) -> bool:
    """An unknown query parameter on an endpoint that takes none (its 400 comes later)."""
    if declared.spec.query is not None:
        return False
    try:
        parse_query(request, NoQuery)
    except ApiError:
        return True
    return False


def _rights_only(call: Call[None], **_params: str) -> Read[None]:
    return RIGHTS_ONLY


def endpoint(
    bp: Any,
    method: str,
    path: str,
    *,
    spec: Spec,
    needs: Needs,
    read: Callable[..., Read[T]] = _rights_only,  # type: ignore[assignment]  # Read[None]: T is None
    session: bool = True,
    transaction: bool | None = None,
    ends_session: bool = False,
    rate_exempt: bool = False,
    search_params: tuple[str, ...] = (),
) -> Callable[[Callable[Concatenate[Call[T], ...], Any]], Callable[..., Any]]:
    """Register `view(call, **path_params)` as the route `method path` of blueprint `bp`.

    needs: what the caller must be (`access.Public`, `Token`, `SiteRole`, `SiteAdmin`,
    `PlatformAdmin`); read: `read(call, **path_params)` builds the route's first statement
    (`Read`; by default the caller's rights alone), raising ValidationFailed for a query or body
    it cannot read (a 400 after the 401s and 403s); session: open a database session;
    transaction: one transaction for the request (default: for every method but GET; a GET's
    statements each stand alone, without BEGIN and COMMIT round trips); ends_session: the request's
    token check also ends its session (logout), in the same Redis round trip; rate_exempt: never
    refused by the per-user rate limit, nor counted towards it (logout and password changes, which a
    flood from a stolen token must not block); search_params: the query parameters that make a
    request a substring search, limited per user per minute."""
    atomic = method != "GET" if transaction is None else transaction
    public = isinstance(needs, Public)

    def decorate(view: Callable[Concatenate[Call[T], ...], Any]) -> Callable[..., Any]:
        takes_query = spec.query is not None
        declared = Endpoint(
            path=path,
            method=method,
            spec=spec,
            needs=needs,
            name=view.__name__,
            ends_session=ends_session,
            rate_exempt=rate_exempt,
            search_params=search_params,
            session=session,
        )

        @functools.wraps(view)
        def handler(**params: str) -> Any:
            request = bp.current_request
            if not public:
                return _handle(declared, read, view, request, params, atomic=atomic)
            if not session:
                call: Call[Any] = Call(request, None, takes_query=takes_query)
                if spec.body is None:
                    call._no_query()  # nothing else to check first
                return view(call, **params)
            with session_scope(transaction=atomic) as db_session:
                call = Call(request, db_session, takes_query=takes_query)
                answer = view(call, **params)
                call._no_query()  # a view that reached none of the checks above
                return answer

        key = (path, method)
        if key in REGISTRY:
            raise RuntimeError(f"{method} {path} is declared twice")
        REGISTRY[key] = declared
        bp.route(path, methods=[method], authorizer=None if public else jwt_authorizer)(handler)
        return handler

    return decorate
