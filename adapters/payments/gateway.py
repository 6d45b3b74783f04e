"""`PaymentGateway`: what the refund workflow needs from a payment provider, and a sandbox.

A refund call is idempotent on `refund_id` (real gateways take it as the idempotency key), so
the refund activity may retry it freely. Outcomes:
- `GatewayRefundResult(succeeded=True, reference=...)`: money is on its way to the customer;
- `GatewayRefundResult(succeeded=False, reason=...)`: a permanent refusal (card closed, ...);
  the workflow reverses the pending debit;
- `GatewayUnavailable` raised: transient (timeout, 5xx); the activity retries.

`SandboxPaymentGateway` is in-process and controlled by configuration: tests (whose worker runs in
the test process) set behaviours per refund id or account id, and `make serve` reads
`PAYMENT_SANDBOX_FAIL` (a reason: every refund fails permanently with it),
`PAYMENT_SANDBOX_DELAY_SECONDS` (every refund takes that long) and
`PAYMENT_SANDBOX_TRANSIENT_FAILURES` (each refund first fails that many times as unavailable).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class GatewayRefundResult:
    succeeded: bool
    reference: str | None = None
    reason: str | None = None


class GatewayUnavailable(Exception):
    """Transient: the request may be retried with the same refund id."""


@runtime_checkable
class PaymentGateway(Protocol):
    async def refund(
        self, *, refund_id: str, account_id: str, amount_paisa: int
    ) -> GatewayRefundResult: ...


@dataclass(frozen=True)
class SandboxBehavior:
    fail_reason: str | None = None  # permanent failure with this reason
    delay_seconds: float = 0.0  # be slow
    transient_failures: int = 0  # raise GatewayUnavailable this many times first


@dataclass
class SandboxPaymentGateway:
    default: SandboxBehavior = field(default_factory=SandboxBehavior)
    by_refund_id: dict[str, SandboxBehavior] = field(default_factory=dict)
    by_account_id: dict[str, SandboxBehavior] = field(default_factory=dict)
    results: dict[str, GatewayRefundResult] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_refund_behavior(self, refund_id: str, behavior: SandboxBehavior) -> None:
        self.by_refund_id[refund_id] = behavior

    def set_account_behavior(self, account_id: str, behavior: SandboxBehavior) -> None:
        self.by_account_id[account_id] = behavior

    def _behavior(self, refund_id: str, account_id: str) -> SandboxBehavior:
        return (
            self.by_refund_id.get(refund_id) or self.by_account_id.get(account_id) or (self.default)
        )

    async def refund(
        self, *, refund_id: str, account_id: str, amount_paisa: int
    ) -> GatewayRefundResult:
        with self._lock:
            previous = self.results.get(refund_id)
            if previous is not None:
                if self.amounts[refund_id] != amount_paisa:
                    return GatewayRefundResult(False, reason="idempotency key reused")
                return previous
            attempt = self.attempts.get(refund_id, 0) + 1
            self.attempts[refund_id] = attempt
        behavior = self._behavior(refund_id, account_id)
        if behavior.delay_seconds:
            await asyncio.sleep(behavior.delay_seconds)
        if attempt <= behavior.transient_failures:
            raise GatewayUnavailable(f"sandbox: gateway unavailable (attempt {attempt})")
        if amount_paisa <= 0:
            result = GatewayRefundResult(False, reason="invalid amount")
        elif behavior.fail_reason:
            result = GatewayRefundResult(False, reason=behavior.fail_reason)
        else:
            result = GatewayRefundResult(True, reference=f"sbx_rf_{uuid.uuid4().hex[:16]}")
        with self._lock:
            self.results.setdefault(refund_id, result)
            self.amounts.setdefault(refund_id, amount_paisa)
            return self.results[refund_id]


def payment_gateway_from_env() -> PaymentGateway:
    """The only gateway shipped is the sandbox; its default behaviour comes from the env."""
    return SandboxPaymentGateway(
        default=SandboxBehavior(
            fail_reason=os.environ.get("PAYMENT_SANDBOX_FAIL") or None,
            delay_seconds=float(os.environ.get("PAYMENT_SANDBOX_DELAY_SECONDS") or 0),
            transient_failures=int(os.environ.get("PAYMENT_SANDBOX_TRANSIENT_FAILURES") or 0),
        )
    )
