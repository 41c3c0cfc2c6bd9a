"""The base of every request and response schema: its validator is built on first use.

Building a pydantic model's validator is most of what defining it costs, and an on-demand cold
start (no snapshot) serves one request before anything else: it builds only the schemas that
request uses (a list request: its query). A SnapStart init builds them all
(`build_all()`, called by chalicelib/lifecycle.py's priming), so a restored copy finds them
ready; either way each is built once per container.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    model_config = ConfigDict(defer_build=True)


def schemas() -> list[type[Schema]]:
    """Every Schema subclass defined so far."""
    found, pending = [], list(Schema.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def build_all() -> int:
    """Build every schema's validator now; returns how many were built."""
    built = 0
    for cls in schemas():
        if not cls.__pydantic_complete__:
            cls.model_rebuild()
            built += 1
    return built
