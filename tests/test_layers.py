"""Imports in chalicelib/ run one way (STYLE.md, "Layers"): the edge (app wiring, middleware, the OpenAPI
document, the command line) on top; the domains (auth, interactions, sites, audit) in the middle,
never importing each other — except the audit trail, which every domain may record into; below
them the request plumbing (endpoint, access, db, driver, cache, http, mail) and the kit; at the bottom
models, config and errors, which import nothing of ours. Every import counts, inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chalicelib"

BOTTOM = {"models", "config", "errors"}
KIT = {"kit"}
PLUMBING = {"db", "driver", "cache", "http", "access", "endpoint", "mail"}
DOMAINS = {"auth", "interactions", "sites", "audit"}
EDGE = {"middleware", "openapi", "meta", "lifecycle", "cli", "demo"}
SHARED_DOMAIN = "audit"  # every domain may record audit events through its service functions


def _unit(module: str) -> str:
    """chalicelib.interactions.service -> interactions; chalicelib.db -> db."""
    return module.split(".")[1] if module.count(".") >= 1 else module


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "chalicelib":
                found |= {f"chalicelib.{alias.name}" for alias in node.names}
            elif node.module.startswith("chalicelib."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("chalicelib.")}
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("chalicelib", *path.relative_to(PACKAGE).with_suffix("").parts))
        graph[module.removesuffix(".__init__")] = _imports(path)
    return graph


GRAPH = _graph()


def _allowed(unit: str) -> set[str]:
    if unit in BOTTOM:
        return {unit}
    if unit in KIT:
        return KIT | BOTTOM
    if unit in PLUMBING:
        # The route decorator names the authorizer on every route it registers and runs the
        # token's checks (auth.guard) for each request.
        return PLUMBING | KIT | BOTTOM | ({"auth"} if unit == "endpoint" else set())
    if unit in DOMAINS:
        return {unit, SHARED_DOMAIN} | PLUMBING | KIT | BOTTOM
    return DOMAINS | PLUMBING | KIT | BOTTOM | EDGE


def test_every_module_belongs_to_a_layer():
    units = {_unit(module) for module in GRAPH if module != "chalicelib"}
    assert units <= BOTTOM | KIT | PLUMBING | DOMAINS | EDGE


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m != "chalicelib"))
def test_imports_run_one_way(module):
    unit = _unit(module)
    wrong = sorted(i for i in GRAPH[module] if _unit(i) not in _allowed(unit))
    assert wrong == [], f"{module} imports {wrong}"


def test_the_endpoint_module_imports_only_the_authorizer_and_the_checks_of_the_auth_domain():
    auth = {i for i in GRAPH["chalicelib.endpoint"] if _unit(i) == "auth"}
    assert auth <= {"chalicelib.auth.authorizer", "chalicelib.auth.guard"}


def _reachable(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for imported in GRAPH.get(current, set()):
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


AUTHENTICATION = {"auth", "access", "endpoint", "middleware"}


@pytest.mark.parametrize("module", ["chalicelib.db", "chalicelib.driver"])
def test_the_database_layer_knows_nothing_of_authentication(module):
    """No code that checks a caller is reachable from the database layer, and it has no hook a
    request could set: the endpoint runs the checks (chalicelib/endpoint.py), in the open."""
    reachable = _reachable(module)
    assert not {i for i in reachable if _unit(i) in AUTHENTICATION}, reachable
    source = (PACKAGE / (module.split(".")[1] + ".py")).read_text()
    for word in ("ContextVar", "settle", "verdict", '"SELECT"'):
        assert word not in source, word


# The request's edge: routes declare, parse and answer; SQL is the domains' services' and queries'.
NO_SQL = {"chalicelib.endpoint", "chalicelib.middleware", "chalicelib.openapi", "chalicelib.http"} | {
    module for module in GRAPH if module.endswith(".routes")
}


@pytest.mark.parametrize("module", sorted(NO_SQL))
def test_routes_and_the_request_edge_build_no_sql(module):
    """STYLE.md, "Where code goes": no SQLAlchemy in routes, the endpoint or the middleware (the
    session's type aside, which the endpoint hands the view)."""
    path = PACKAGE.joinpath(*module.split(".")[1:]).with_suffix(".py")
    tree = ast.parse(path.read_text(), filename=str(path))
    names = {
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    names |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in names if name.split(".")[0] == "sqlalchemy"} <= {"sqlalchemy.orm.Session"}


def test_the_conventions_are_written_down():
    """The layers and habits these tests hold are described in STYLE.md, which the README links."""
    style = (ROOT / "STYLE.md").read_text()
    for heading in ("## Layers", "## The request path", "## Where code goes", "## Naming", "## Tests"):
        assert heading in style
    assert "(STYLE.md)" in (ROOT / "README.md").read_text()


def test_sites_and_interactions_never_import_each_other():
    for module, imports in GRAPH.items():
        unit = _unit(module)
        if unit in ("sites", "interactions"):
            other = "interactions" if unit == "sites" else "sites"
            assert not {i for i in imports if _unit(i) == other}, module
