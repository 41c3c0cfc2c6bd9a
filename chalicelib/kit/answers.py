"""A response as data, for code below the routes that decides or remembers one (an idempotent
replay): the routes turn it into the framework's response (`chalicelib.http.respond`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Answer:
    """`body` is the envelope, or the exact JSON text of an answer given before."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)
