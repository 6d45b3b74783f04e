"""The OpenAPI document declares what the edge enforces (api.request_guard, api.rate_limits), so
generated clients do not send what the API refuses:

- every string a client sends (component schemas and parameters) excludes NUL: `pattern`
  `STORABLE_TEXT` on strings without one; strings whose own pattern does not provably exclude
  it get it as `allOf: [{pattern}]`; enums and formatted strings (dates) are left alone; lone
  surrogates are in the description;
- operations with a body document 413 `payload_too_large`; operations taking an API key 429
  `rate_limited` (with `Retry-After`); operations with parameters or a body 422;
- the description states the limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from api.errors import PROBLEM_JSON, problem_body
from api.request_guard import MAX_BODY_BYTES

# NUL only: tools cannot generate from a surrogate range (schemathesis drops such a pattern), and
# a lone surrogate cannot occur in UTF-8 JSON but as a `\uD8xx` escape; the description says it.
STORABLE_TEXT = "^[^\\u0000]*$"
EDGE_DESCRIPTION = f"""
* Request bodies are UTF-8 JSON of at most {MAX_BODY_BYTES} bytes (1 MiB); larger ones get 413
  `payload_too_large` before they are read.
* No string may contain NUL (U+0000) or a lone UTF-16 surrogate (PostgreSQL cannot store them):
  in a path, query, header or body that is 422 `validation_error`.
* API keys are rate limited by role (customer keys: 100 requests/s by default); over the limit:
  429 `rate_limited` with `Retry-After` (seconds).
"""
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")


def pattern_excludes_unstorable(pattern: str) -> bool:
    """Conservatively true when every match of `pattern` is free of NUL and surrogates: a
    `^…$` pattern (alternatives only inside groups), only ASCII literals, `\\d \\w \\s`,
    escaped punctuation and positive character classes. Anything else (`.`, `\\S`, `[^…]`,
    `\\x00`…) is false."""
    if not pattern.startswith("^") or not pattern.endswith("$"):
        return False
    before_end = pattern[:-1]
    if (len(before_end) - len(before_end.rstrip("\\"))) % 2:
        return False  # the final `$` is escaped: a literal, not an anchor
    in_class = False
    depth = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if not char.isascii() or char == "\x00":
            return False
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if escaped.isalnum() and escaped not in ("d", "w", "s"):
                return False
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            if pattern[i + 1 : i + 2] == "^":
                return False
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "." or (char == "|" and depth == 0):
            return False
        i += 1
    return True


def _constrain_string(schema: dict[str, Any]) -> None:
    if schema.get("type") != "string" or {"enum", "const", "format"} & schema.keys():
        return
    pattern = schema.get("pattern")
    if pattern is None:
        schema["pattern"] = STORABLE_TEXT
    elif not pattern_excludes_unstorable(pattern):
        rule = {"pattern": STORABLE_TEXT}
        if rule not in schema.setdefault("allOf", []):
            schema["allOf"].append(rule)


def _walk(schema: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if not isinstance(schema, dict):
        return
    visit(schema)
    for key in _SCHEMA_LISTS:
        for child in schema.get(key, ()):
            _walk(child, visit)
    for key in _SCHEMA_VALUES:
        _walk(schema.get(key), visit)
    for child in schema.get("properties", {}).values():
        _walk(child, visit)


def _problem_response(status: int, code: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": problem_body(status, code, description),
            }
        },
    }


def _declare_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation:
        responses.setdefault(
            "413", _problem_response(413, "payload_too_large", "The body is over 1 MiB")
        )
    if operation.get("parameters") or "requestBody" in operation:
        responses.setdefault("422", _problem_response(422, "validation_error", "Invalid request"))
    if operation.get("security"):
        limited = _problem_response(429, "rate_limited", "This API key is over its rate limit")
        limited["headers"] = {
            "Retry-After": {
                "description": "Seconds until the key may send again",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
        responses.setdefault("429", limited)


def declare(document: dict[str, Any]) -> dict[str, Any]:
    """Add the edge's constraints to a generated OpenAPI document (in place)."""
    for schema in document.get("components", {}).get("schemas", {}).values():
        _walk(schema, _constrain_string)
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", ()):
                _walk(parameter.get("schema"), _constrain_string)
            _declare_responses(operation)
    info = document.setdefault("info", {})
    info["description"] = info.get("description", "") + EDGE_DESCRIPTION
    return document


def declare_edge_constraints(app: FastAPI) -> None:
    """Make `app.openapi()` return the generated document with the edge declared."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
