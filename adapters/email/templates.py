"""Email templates: low balance, refund completed, refund failed. Plain text and HTML."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from domain.money import format_inr

LOW_BALANCE = "low_balance"
REFUND_COMPLETED = "refund_completed"
REFUND_FAILED = "refund_failed"


@dataclass(frozen=True)
class RenderedEmail:
    template: str
    subject: str
    text: str
    html: str


def _html(title: str, paragraphs: list[str], action: tuple[str, str] | None = None) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if action is not None:
        label, url = action
        body += (
            f'<p><a href="{escape(url, quote=True)}" style="display:inline-block;'
            f"padding:10px 16px;background:#1d4ed8;color:#fff;border-radius:6px;"
            f'text-decoration:none">{escape(label)}</a></p>'
        )
    return (
        '<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#111">'
        f"<h2>{escape(title)}</h2>{body}"
        '<p style="color:#666;font-size:12px">osmTalk Billing · prepaid credits, no '
        "subscriptions</p></body></html>"
    )


def low_balance(
    *,
    account_name: str,
    available_paisa: int,
    paid_paisa: int,
    promo_paisa: int,
    threshold_paisa: int,
    topup_url: str,
) -> RenderedEmail:
    available = format_inr(available_paisa)
    threshold = format_inr(threshold_paisa)
    subject = f"Your osmTalk balance is low ({available})"
    lines = [
        f"Hi {account_name},",
        "",
        f"Your osmTalk available balance is {available}, below your alert threshold of "
        f"{threshold}.",
        f"Paid balance: {format_inr(paid_paisa)}. Promo balance: {format_inr(promo_paisa)}.",
        "",
        "New calls and API requests are refused when the balance falls below the minimum. "
        "Calls already in progress are never cut off.",
        f"Top up now to keep your calls running: {topup_url}",
        "",
        "We will not email you about this again until your balance has gone back above the "
        "threshold.",
        "",
        "— osmTalk Billing",
    ]
    html = _html(
        "Your balance is low",
        [
            f"Hi {escape(account_name)},",
            f"Your osmTalk available balance is <strong>{escape(available)}</strong>, below "
            f"your alert threshold of {escape(threshold)}.",
            f"Paid balance: {escape(format_inr(paid_paisa))}. Promo balance: "
            f"{escape(format_inr(promo_paisa))}.",
            "New calls and API requests are refused when the balance falls below the minimum. "
            "Calls already in progress are never cut off.",
            "Top up now to keep your calls running.",
        ],
        ("Top up", topup_url),
    )
    return RenderedEmail(LOW_BALANCE, subject, "\n".join(lines), html)


def refund_completed(
    *, account_name: str, amount_paisa: int, refund_id: str, balance_paisa: int
) -> RenderedEmail:
    amount = format_inr(amount_paisa)
    subject = f"Your refund of {amount} is on its way"
    text = "\n".join(
        [
            f"Hi {account_name},",
            "",
            f"We refunded {amount} to your original payment method (refund {refund_id}).",
            "It can take 5-7 working days to show on your statement.",
            f"Your available osmTalk balance is now {format_inr(balance_paisa)}.",
            "",
            "— osmTalk Billing",
        ]
    )
    html = _html(
        "Refund completed",
        [
            f"Hi {escape(account_name)},",
            f"We refunded <strong>{escape(amount)}</strong> to your original payment method "
            f"(refund <code>{escape(refund_id)}</code>).",
            "It can take 5-7 working days to show on your statement.",
            f"Your available osmTalk balance is now {escape(format_inr(balance_paisa))}.",
        ],
    )
    return RenderedEmail(REFUND_COMPLETED, subject, text, html)


def refund_failed(
    *, account_name: str, amount_paisa: int, refund_id: str, balance_paisa: int, reason: str
) -> RenderedEmail:
    amount = format_inr(amount_paisa)
    subject = f"Your refund of {amount} could not be completed"
    text = "\n".join(
        [
            f"Hi {account_name},",
            "",
            f"The payment provider could not refund {amount} (refund {refund_id}): {reason}.",
            f"The amount is back in your paid balance; your available balance is "
            f"{format_inr(balance_paisa)}.",
            "Reply to this email and our support team will sort it out.",
            "",
            "— osmTalk Billing",
        ]
    )
    html = _html(
        "Refund failed",
        [
            f"Hi {escape(account_name)},",
            f"The payment provider could not refund <strong>{escape(amount)}</strong> "
            f"(refund <code>{escape(refund_id)}</code>): {escape(reason)}.",
            f"The amount is back in your paid balance; your available balance is "
            f"{escape(format_inr(balance_paisa))}.",
            "Reply to this email and our support team will sort it out.",
        ],
    )
    return RenderedEmail(REFUND_FAILED, subject, text, html)
