"""Every response the Python flow receives, checked against the OpenAPI document: the status is one
the operation declares, the body fits that response's schema (JSON Schema 2020-12 with its formats)
and the headers the response declares as required are there. An httpx response hook, so no call of
the generated client escapes it."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT = "urn:openapi"


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


class ResponseChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: list[str] = []
        self._registry: Registry[Any] = Registry().with_resource(
            DOCUMENT, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        # A concrete path -> its template: `{name}` matches one segment.
        self._templates: list[tuple[re.Pattern[str], str]] = [
            (re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in document["paths"]
        ]

    def _at(self, pointer: str) -> Any:
        node: Any = self.document
        for part in pointer.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _problems(self, pointer: str, value: Any) -> list[str]:
        validator = Draft202012Validator(
            {"$ref": f"{DOCUMENT}#{pointer}"},
            registry=self._registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(value)]

    def _template(self, path: str) -> str:
        # A literal segment wins over a parameter (`/api/interactions/types` is not an id).
        found = [template for pattern, template in self._templates if pattern.match(path)]
        if not found:
            raise AssertionError(f"{path} is in no path of the document")
        return min(found, key=lambda template: template.count("{"))

    def check(self, response: httpx.Response) -> None:
        method = response.request.method.lower()
        path = self._template(response.request.url.path)
        where = f"{method.upper()} {path} {response.status_code}"
        operation = self.document["paths"][path].get(method)
        if operation is None:
            raise AssertionError(f"{method.upper()} {path} is not in the document")
        declared = operation["responses"].get(str(response.status_code))
        if declared is None:
            raise AssertionError(f"{where}: a status the operation does not declare")
        pointer = f"/paths/{_escape(path)}/{method}/responses/{response.status_code}"
        if "$ref" in declared:
            pointer = declared["$ref"].lstrip("#")
            declared = self._at(declared["$ref"])
        if not response.headers.get("content-type", "").startswith("application/json"):
            raise AssertionError(f"{where}: Content-Type {response.headers.get('content-type')}")
        for name, header in declared.get("headers", {}).items():
            header_pointer = (
                header["$ref"].lstrip("#") if "$ref" in header else f"{pointer}/headers/{_escape(name)}"
            )
            header = self._at(header_pointer)
            value: Any = response.headers.get(name)
            if value is None:
                if header.get("required"):
                    raise AssertionError(f"{where}: the declared header {name} is missing")
                continue
            # A header is text: an integer's schema is checked against the number it spells.
            if header["schema"].get("type") == "integer" and value.isdigit():
                value = int(value)
            if wrong := self._problems(f"{header_pointer}/schema", value):
                raise AssertionError(f"{where}: header {name}: {value!r} does not fit: {wrong}")
        problems = self._problems(f"{pointer}/content/application~1json/schema", json.loads(response.read()))
        if problems:
            raise AssertionError(f"{where}: the body does not fit the document: {problems}")
        self.checked.append(where)
