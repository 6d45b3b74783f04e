"""Email templates of money in: a failed auto-recharge."""

from __future__ import annotations

from html import escape

from adapters.email.templates import RenderedEmail, _html
from domain.money import format_inr

AUTO_RECHARGE_FAILED = "auto_recharge_failed"


def auto_recharge_failed(
    *,
    account_name: str,
    amount_paisa: int,
    reason: str,
    failures: int,
    switched_off: bool,
    billing_url: str,
) -> RenderedEmail:
    amount = format_inr(amount_paisa)
    subject = f"Auto-recharge of {amount} failed"
    outcome = (
        f"That was {failures} failures in a row, so auto-recharge is now switched off."
        if switched_off
        else "We will try again the next time your balance drops below your threshold."
    )
    text = "\n".join(
        [
            f"Hi {account_name},",
            "",
            f"We could not charge {amount} to your saved card for auto-recharge: {reason}.",
            outcome,
            f"Add credits or update your card on the Billing page: {billing_url}",
            "",
            "— osmTalk Billing",
        ]
    )
    html = _html(
        "Auto-recharge failed",
        [
            f"Hi {escape(account_name)},",
            f"We could not charge <strong>{escape(amount)}</strong> to your saved card for "
            f"auto-recharge: {escape(reason)}.",
            escape(outcome),
        ],
        action=("Add credits", billing_url),
    )
    return RenderedEmail(AUTO_RECHARGE_FAILED, subject, text, html)
