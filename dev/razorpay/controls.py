"""Test controls under `/_standin`: pay or fail an order as the checkout buttons do, make the
next refunds / recurring charges / payouts fail, inject faults, inspect and redeliver webhooks,
send arbitrary (or wrongly signed) events, change the webhook target, reset everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dev.razorpay.entities import StandInError
from dev.razorpay.web import Reply, Request

if TYPE_CHECKING:
    from dev.razorpay.server import StandInApp


class Controls:
    def __init__(self, app: StandInApp) -> None:
        self.app = app

    def register(self) -> None:
        ok = {"status": "ok"}
        self.app.route("GET", "/healthz", lambda r: Reply.json(ok))
        self.app.route("GET", "/_standin/healthz", lambda r: Reply.json(ok))
        self.app.route("POST", "/_standin/orders/{id}/pay", self._control_pay)
        self.app.route(
            "POST",
            "/_standin/orders/{id}/fail",
            lambda r, i: Reply.json(
                {"payment": self.app.store.fail_order(i, reason=r.json().get("reason"))}
            ),
        )
        self.app.route("POST", "/_standin/fail-next", self._control_fail_next)
        self.app.route(
            "GET", "/_standin/faults", lambda r: Reply.json({"faults": self.app.faults.as_json()})
        )
        self.app.route(
            "POST",
            "/_standin/faults",
            lambda r: Reply.json({"fault": vars(self.app.faults.add(r.json()))}),
        )
        self.app.route("DELETE", "/_standin/faults", lambda r: self._cleared(self.app.faults.clear))
        self.app.route(
            "GET",
            "/_standin/webhooks",
            lambda r: Reply.json({"events": self.app.webhooks.events(r.query.get("event"))}),
        )
        self.app.route("POST", "/_standin/webhooks/{id}/redeliver", self._control_redeliver)
        self.app.route("POST", "/_standin/webhooks/send", self._control_send)
        self.app.route(
            "GET", "/_standin/requests", lambda r: Reply.json({"requests": list(self.app.requests)})
        )
        self.app.route("GET", "/_standin/config", lambda r: Reply.json(self._config()))
        self.app.route("POST", "/_standin/config", self._control_config)
        self.app.route("POST", "/_standin/reset", lambda r: self._cleared(self.app.reset))

    def _cleared(self, clear: Callable[[], None]) -> Reply:
        clear()
        return Reply.json({"status": "ok"})

    def _control_pay(self, request: Request, order_id: str) -> Reply:
        body = request.json()
        amount = body.get("amount")
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            raise StandInError(400, "amount must be an integer of paisa", field="amount")
        paid = self.app.store.pay_order(
            order_id,
            save_method=bool(body.get("save_method")),
            amount_paisa=amount,
            currency=body.get("currency"),
            email=str(body.get("email") or "customer@example.com"),
            contact=str(body.get("contact") or "+919000090000"),
        )
        return Reply.json(paid)

    def _control_fail_next(self, request: Request) -> Reply:
        body = request.json()
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise StandInError(400, "count must be a positive integer", field="count")
        self.app.store.fail_next(str(body.get("kind")), count, body.get("reason"))
        return Reply.json({"kind": body.get("kind"), "count": count})

    def _control_redeliver(self, request: Request, event_id: str) -> Reply:
        record = self.app.webhooks.redeliver(event_id)
        if record is None:
            raise StandInError(404, "No such event", reason="NA")
        return Reply.json({"id": record.id, "event": record.event})

    def _control_send(self, request: Request) -> Reply:
        """Publish any event (forged payloads, unknown orders, bad signatures) through the
        normal delivery path: `{"event", "payload": {name: entity}, "signature"?}`."""
        body = request.json()
        entities = body.get("payload")
        if not isinstance(body.get("event"), str) or not isinstance(entities, dict):
            raise StandInError(400, "event (string) and payload (object) are required")
        signature = body.get("signature")
        record = self.app.webhooks.publish(
            body["event"],
            entities,
            signature_override=None if signature is None else str(signature),
        )
        return Reply.json({"id": record.id, "event": record.event})

    def _config(self) -> dict[str, Any]:
        return {
            "key_id": self.app.key_id,
            "webhook_url": self.app.webhooks.url,
            "webhook_secret_set": bool(self.app.webhooks.secret),
            "duplicate_probability": self.app.webhooks.duplicate_probability,
            "refund_settle_seconds": self.app.store.refund_settle_seconds,
        }

    def _control_config(self, request: Request) -> Reply:
        body = request.json()
        if "webhook_url" in body:
            self.app.webhooks.url = body["webhook_url"] or None
        if "webhook_secret" in body:
            self.app.webhooks.secret = body["webhook_secret"] or None
        for name, target in (
            ("duplicate_probability", self.app.webhooks),
            ("refund_settle_seconds", self.app.store),
        ):
            if name in body:
                value = body[name]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise StandInError(400, f"{name} must be a non-negative number", field=name)
                setattr(target, name, float(value))
        return Reply.json(self._config())
