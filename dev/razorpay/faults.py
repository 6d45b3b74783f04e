"""Injected faults: the next N API requests matching a path answer an error status and/or hang.

`when="before"`: the request is not processed (a 5xx from a gateway that did nothing).
`when="after"`: the request is processed, then the error is answered (the answer is lost after
the gateway recorded the work: the case idempotency keys exist for). `delay_seconds` hangs
first, long enough for a client timeout; with no `status` the request then proceeds normally.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import asdict, dataclass
from typing import Any

from dev.razorpay.entities import StandInError


@dataclass
class Fault:
    path: str  # exact path or fnmatch pattern, e.g. "/v1/payments/*/refund"
    method: str | None
    remaining: int
    status: int | None
    delay_seconds: float
    when: str

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return fnmatch.fnmatchcase(path, self.path)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        path = spec.get("path")
        count = spec.get("count", 1)
        status = spec.get("status", 500)
        delay = spec.get("delay_seconds", 0)
        when = spec.get("when", "before")
        method = spec.get("method")
        if not isinstance(path, str) or not path.startswith("/"):
            raise StandInError(400, "path must be a path or pattern starting with /", field="path")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise StandInError(400, "count must be a positive integer", field="count")
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise StandInError(400, "status must be an HTTP status or null", field="status")
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 300:
            raise StandInError(400, "delay_seconds must be 0..300", field="delay_seconds")
        if when not in ("before", "after"):
            raise StandInError(400, "when must be 'before' or 'after'", field="when")
        if method is not None and not isinstance(method, str):
            raise StandInError(400, "method must be a string", field="method")
        fault = Fault(path, method and method.upper(), count, status, float(delay), when)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, counted down (and forgotten when used up)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def as_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]
