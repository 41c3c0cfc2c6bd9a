"""What an endpoint declares for the OpenAPI document, next to its route: a summary, the success
shape, the errors it can answer beyond the common ones, its body and query schemas and headers.
`chalicelib/openapi.py` assembles the document from these declarations.

Shapes are small descriptions resolved when the document is built: `data(interaction=InteractionRead)`
is the success envelope around `{"interaction": <InteractionRead>}`; a pydantic model anywhere in a
shape becomes a `$ref` to a component schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

Resolve = Callable[[type[BaseModel]], dict[str, Any]]  # a model -> its $ref (and registers it)


def schema_of(item: Any, ref: Resolve) -> dict[str, Any]:
    """A shape item as JSON Schema: a model is a $ref, a Shape resolves itself, a dict is as is."""
    if isinstance(item, type) and issubclass(item, BaseModel):
        return ref(item)
    if isinstance(item, Shape):
        return item.schema(ref)
    if isinstance(item, dict):
        return item
    raise TypeError(f"not a shape: {item!r}")


class Shape:
    def schema(self, ref: Resolve) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Obj(Shape):
    """A closed object whose every field is required."""

    fields: dict[str, Any]

    def schema(self, ref: Resolve) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": list(self.fields),
            "properties": {name: schema_of(item, ref) for name, item in self.fields.items()},
        }


@dataclass(frozen=True)
class ListOf(Shape):
    item: Any

    def schema(self, ref: Resolve) -> dict[str, Any]:
        return {"type": "array", "items": schema_of(self.item, ref)}


@dataclass(frozen=True)
class Nullable(Shape):
    item: Any

    def schema(self, ref: Resolve) -> dict[str, Any]:
        return {"anyOf": [schema_of(self.item, ref), {"type": "null"}]}


@dataclass(frozen=True)
class Envelope(Shape):
    """`{"status": "success", "data": ...}`, with `meta.pagination` for a page."""

    data: Any
    paginated: bool = False

    def schema(self, ref: Resolve) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "data"] + (["meta"] if self.paginated else []),
            "properties": {"status": {"const": "success"}, "data": schema_of(self.data, ref)},
        }
        if self.paginated:
            schema["properties"]["meta"] = {"$ref": "#/components/schemas/ListMeta"}
        return schema


@dataclass(frozen=True)
class Raw(Shape):
    """A body served as it is, not in the envelope (the OpenAPI document itself)."""

    json_schema: dict[str, Any]

    def schema(self, ref: Resolve) -> dict[str, Any]:
        return self.json_schema


def data(**fields: Any) -> Envelope:
    return Envelope(Obj(fields))


def page(name: str, item: Any) -> Envelope:
    return Envelope(Obj({name: ListOf(item)}), paginated=True)


MESSAGE = data(message={"type": "string"})


@dataclass(frozen=True)
class Header:
    """A request header an operation reads."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Spec:
    """One operation of the OpenAPI document.

    `errors` lists the statuses the operation can answer besides the ones every operation answers
    (400 for an unknown query parameter, 413, 429, 500, 504 from the gateway; with a token also 401
    and 503; with a body 415). `description` says what a client needs beyond the summary (who may
    call it, what it changes); `request_example` and `response_example` are a body and the success
    answer's body, checked against their schemas by the tests."""

    summary: str
    tag: str
    ok: Shape
    ok_description: str = "Success"
    status: int = 200
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | Any | None = None
    body_optional: bool = False  # the body may be left out (logout: no body ends this session)
    query: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    response_headers: tuple[str, ...] = ()
    operation_id: str | None = None
    description: str = ""
    request_example: Any = None
    response_example: Any = None
