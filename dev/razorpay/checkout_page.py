"""The stand-in's hosted test checkout: one self-contained HTML page per order (no scripts, no
external assets) with **Pay** and **Fail** buttons, and where to send the browser afterwards.

`GET /checkout/{order_id}?callback_url=...&save_method=1` renders the page; its buttons POST a
form to `/checkout/{order_id}/pay` or `/fail`. With a `callback_url` the browser is redirected
there (303) with Razorpay's callback fields: `razorpay_payment_id`, `razorpay_order_id`,
`razorpay_signature` on success; `error[code]`, `error[description]`, `error[reason]`,
`error[metadata]` on failure. Without one, a result page is shown.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from domain.money import format_inr

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f3f5f9;margin:0;display:flex;
justify-content:center;padding:48px 16px;color:#1b2430}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002;padding:28px;
max-width:380px;width:100%}
.badge{display:inline-block;background:#fff4d6;color:#7a5a00;border-radius:6px;
padding:2px 8px;font-size:12px;margin:0}
h1{font-size:18px;margin:12px 0 4px}.amount{font-size:32px;font-weight:700;margin:4px 0 16px}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;font-size:13px;color:#4a5566}
dd{margin:0;font-family:monospace}label{display:block;margin:16px 0;font-size:14px}
.buttons{display:flex;gap:12px}button{flex:1;padding:12px;border:0;border-radius:8px;
font-size:16px;cursor:pointer}.pay{background:#2b6cf6;color:#fff}.fail{background:#e9ecf2}
.ok{color:#0a7a3b}.bad{color:#b3261e}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><main><p class="badge">Test mode · Razorpay stand-in</p>{body}</main></body>'
        "</html>"
    )


def _details(rows: list[tuple[str, str | None]]) -> str:
    items = "".join(
        f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in rows if value
    )
    return f"<dl>{items}</dl>"


def render_checkout(
    order: dict[str, Any], *, merchant: str, callback_url: str | None, save_method: bool
) -> str:
    amount = format_inr(order["amount"])
    rows = [("Order", order["id"]), ("Receipt", order.get("receipt"))]
    if order["status"] == "paid":
        return _page(
            f"Order paid · {merchant}",
            f"<h1>{escape(merchant)}</h1><p class='amount'>{escape(amount)}</p>"
            f"{_details(rows)}<p class='ok' role='status'>This order is already paid.</p>",
        )
    action = f"/checkout/{escape(order['id'])}"
    hidden = (
        f'<input type="hidden" name="callback_url" value="{escape(callback_url)}">'
        if callback_url
        else ""
    )
    checked = " checked" if save_method else ""
    form = (
        f'<form method="post" action="{action}/pay">{hidden}'
        f'<label><input type="checkbox" name="save_method" value="1"{checked}> '
        "Save this card for auto-recharge</label>"
        '<div class="buttons"><button class="pay" type="submit">Pay</button>'
        f'<button class="fail" type="submit" formaction="{action}/fail">Fail</button></div>'
        "</form>"
    )
    return _page(
        f"Pay {amount} · {merchant}",
        f"<h1>{escape(merchant)}</h1><p class='amount' data-testid='amount'>{escape(amount)}</p>"
        f"{_details(rows)}<p>Card ending 1111 (test card)</p>{form}",
    )


def render_result(payment: dict[str, Any]) -> str:
    paid = payment["status"] in ("captured", "authorized")
    heading = "Payment successful" if paid else "Payment failed"
    rows = [
        ("Payment", payment["id"]),
        ("Order", payment.get("order_id")),
        ("Amount", format_inr(payment["amount"])),
        ("Method", payment.get("method")),
        ("Saved token", payment.get("token_id")),
        ("Reason", payment.get("error_reason")),
    ]
    css = "ok" if paid else "bad"
    return _page(heading, f"<h1 class='{css}' role='status'>{heading}</h1>{_details(rows)}")


def valid_callback(url: str | None) -> str | None:
    """Only http(s) URLs: the page must not be a redirector to anything else."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def callback_location(callback_url: str, payment: dict[str, Any], signature: str | None) -> str:
    if payment["status"] == "failed":
        fields = {
            "error[code]": payment.get("error_code") or "BAD_REQUEST_ERROR",
            "error[description]": payment.get("error_description") or "Payment failed",
            "error[source]": payment.get("error_source") or "customer",
            "error[step]": payment.get("error_step") or "payment_authorization",
            "error[reason]": payment.get("error_reason") or "payment_failed",
            "error[metadata]": json.dumps(
                {"payment_id": payment["id"], "order_id": payment.get("order_id")}
            ),
        }
    else:
        fields = {
            "razorpay_payment_id": payment["id"],
            "razorpay_order_id": payment.get("order_id") or "",
            "razorpay_signature": signature or "",
        }
    parts = urlsplit(callback_url)
    query = "&".join(q for q in (parts.query, urlencode(fields)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
