"""The stand-in's small request/response types (its HTTP server is the stdlib's)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from dev.razorpay.entities import StandInError


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes

    def json(self) -> dict[str, Any]:
        if not self.raw:
            return {}
        try:
            body = json.loads(self.raw)
        except (ValueError, UnicodeDecodeError):
            raise StandInError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise StandInError(400, "The request body must be a JSON object.")
        return body

    def form(self) -> dict[str, str]:
        fields = parse_qs(self.raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[-1] for key, values in fields.items()}


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload).encode())

    @classmethod
    def html(cls, page: str, status: int = 200) -> Reply:
        return cls(status, page.encode(), "text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str) -> Reply:
        return cls(303, b"", "text/plain", {"Location": location})


Handler = Callable[..., Reply]
