"""Public service endpoints: health and the OpenAPI document."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.errors import ServiceUnavailable
from chalicelib.http import ok

bp = Blueprint(__name__)


def _check_database() -> bool:
    from sqlalchemy import text

    from chalicelib.db import session_scope

    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _check_cache() -> bool:
    from chalicelib.cache import get_redis

    try:
        return bool(get_redis().ping())
    except Exception:
        return False


@bp.route("/api/health", methods=["GET"])
def health():
    checks = {"database": _check_database(), "cache": _check_cache()}
    failing = [name for name, healthy in checks.items() if not healthy]
    if failing:
        raise ServiceUnavailable(
            f"Unavailable: {', '.join(failing)}",
            details=[{"field": name, "message": "unavailable"} for name in failing])
    return ok({name: "ok" for name in checks})


@bp.route("/api/openapi.json", methods=["GET"])
def openapi_document():
    from chalicelib.openapi import document

    # The document itself, not wrapped in the envelope: OpenAPI tools read it as it is.
    return Response(body=document(), status_code=200)
