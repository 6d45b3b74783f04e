"""Schemathesis hooks for bench.fuzz and tests/api/test_schemathesis.py (loaded by path through
SCHEMATHESIS_HOOKS).

Schemathesis reuses a few `Idempotency-Key` values (the documented example first) with ever new
bodies, so most mutating cases would stop at 409 `conflict` and never reach the endpoint. A
well-formed key is made unique per case; malformed ones (negative cases: empty, too long, not
visible ASCII) are sent as generated.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

HEADER = "Idempotency-Key"


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    key = (case.headers or {}).get(HEADER)
    if not isinstance(key, str):
        return
    if 0 < len(key) <= 200 and key.isascii() and key.isprintable() and " " not in key:
        case.headers[HEADER] = f"{uuid.uuid4().hex}-{key}"
