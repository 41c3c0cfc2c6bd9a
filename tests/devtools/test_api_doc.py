"""docs/api.md, the contract in the repository, names every route the app has."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_PARAM = re.compile(r"\{[^}]+\}")


def _shape(path: str) -> str:
    """`/api/sites/{site_id}/users/{user_id}` and `/api/sites/{id}/users/{user_id}` are one route."""
    return _PARAM.sub("{}", path)


def indexed_routes() -> set[tuple[str, str]]:
    """(method, path shape) of every row of the endpoint index."""
    text = DOC.read_text()
    index = text[text.index("### Index") :]
    index = index[: index.index("\n\n", index.index("|---"))]
    rows = re.findall(r"^\| `([A-Z]+) (/[^`]*)`", index, flags=re.M)
    return {(method, _shape(path)) for method, path in rows}


def test_every_route_of_the_app_is_in_the_index_of_docs_api_md(app_module):
    routes = {(method, _shape(path)) for path, methods in app_module.app.routes.items() for method in methods}
    missing = sorted(routes - indexed_routes())
    assert not missing, f"routes missing from docs/api.md's endpoint index: {missing}"


def test_every_indexed_route_is_described_in_the_endpoints_section():
    text = DOC.read_text()
    body = text[text.index("### Index") :]
    body = body[body.index("\n\n", body.index("|---")) :]  # past the index table
    mentioned = {(m, _shape(p)) for m, p in re.findall(r"`([A-Z]+) (/api/[^`\s]*)`", body)}
    assert indexed_routes() <= mentioned, sorted(indexed_routes() - mentioned)
