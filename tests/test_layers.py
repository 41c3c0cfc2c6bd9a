"""Imports in chalicelib/ run one way (STYLE.md): the edge (app wiring, middleware, the OpenAPI
document, the command line) on top; the domains (auth, interactions, sites, audit) in the middle,
never importing each other — except the audit trail, which every domain may record into; below
them the request plumbing (endpoint, caller, db, driver, cache, http, mail) and the kit; at the bottom
models, config and errors, which import nothing of ours. Every import counts, inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chalicelib"

BOTTOM = {"models", "config", "errors"}
KIT = {"kit"}
PLUMBING = {"db", "driver", "cache", "http", "caller", "endpoint", "mail"}
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
        # The route decorator names the authorizer on every route it registers.
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


def test_the_endpoint_module_imports_only_the_authorizer_of_the_auth_domain():
    auth = {i for i in GRAPH["chalicelib.endpoint"] if _unit(i) == "auth"}
    assert auth <= {"chalicelib.auth.authorizer"}


def test_sites_and_interactions_never_import_each_other():
    for module, imports in GRAPH.items():
        unit = _unit(module)
        if unit in ("sites", "interactions"):
            other = "interactions" if unit == "sites" else "sites"
            assert not {i for i in imports if _unit(i) == other}, module
