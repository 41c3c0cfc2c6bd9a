"""Schemathesis hooks for scripts/fuzz.py (loaded through SCHEMATHESIS_HOOKS).

One narrow exemption: the API trims strings before it checks them — API.md's length limits apply
*after trimming* ("title: 1-255 chars after trimming"), and a datetime with spaces around it is
read like one without — which JSON Schema's `maxLength` and `pattern` cannot say. A value that
breaks maxLength or pattern only by leading or trailing whitespace is therefore valid per the
contract, and its acceptance is not a negative_data_rejection failure. Every other failure is kept.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

_TRIMMED = re.compile(r"violates `(maxLength|pattern)` at /properties/([A-Za-z0-9_]+)")


def _padded_values(case: Any, name: str) -> list[str]:
    values = []
    for source in (case.query, case.body, case.headers, case.path_parameters):
        if isinstance(source, dict) and isinstance(source.get(name), str):
            values.append(source[name])
    return [value for value in values if value != value.strip()]


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if getattr(failure, "code", None) != "ST201":
        return True
    match = _TRIMMED.search(getattr(failure, "message", "") or "")
    return not (match and _padded_values(case, match.group(2)))
