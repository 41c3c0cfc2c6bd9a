"""Public service endpoints: health and the OpenAPI document."""

from __future__ import annotations

from chalice import Blueprint, Response
from sqlalchemy import text

from chalicelib.access import Public
from chalicelib.cache import get_redis
from chalicelib.db import session_scope
from chalicelib.endpoint import Call, endpoint
from chalicelib.errors import ServiceUnavailable
from chalicelib.http import ok
from chalicelib.kit.docs import Raw, Spec, data

bp = Blueprint(__name__)


def _check_database() -> bool:
    try:
        with session_scope(transaction=False) as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _check_cache() -> bool:
    try:
        return bool(get_redis().ping())
    except Exception:
        return False


@endpoint(
    bp,
    "GET",
    "/api/health",
    needs=Public(),
    session=False,
    spec=Spec(
        "Health of the database and Redis",
        "service",
        data(database={"const": "ok"}, cache={"const": "ok"}),
        "Both reachable",
        errors=(503,),
        description=(
            "Public. 200 when the database and Redis both answer; 503 naming the failing part in `details`."
        ),
    ),
)
def health(call: Call[None]) -> Response:
    checks = {"database": _check_database(), "cache": _check_cache()}
    failing = [name for name, healthy in checks.items() if not healthy]
    if failing:
        raise ServiceUnavailable(
            f"Unavailable: {', '.join(failing)}",
            details=[{"field": name, "message": "unavailable"} for name in failing],
        )
    return ok({name: "ok" for name in checks})


@endpoint(
    bp,
    "GET",
    "/api/openapi.json",
    needs=Public(),
    session=False,
    spec=Spec(
        "This document",
        "service",
        Raw({"type": "object"}),
        "The OpenAPI 3.1 document (not wrapped in the envelope)",
        operation_id="openapi",
        description=("Public. This document, as it is served: OpenAPI 3.1, not wrapped in the envelope."),
    ),
)
def openapi_document(call: Call[None]) -> Response:
    from chalicelib.openapi import document  # the document reads every route module's declarations

    # The document itself, not wrapped in the envelope: OpenAPI tools read it as it is.
    return Response(body=document(), status_code=200)
