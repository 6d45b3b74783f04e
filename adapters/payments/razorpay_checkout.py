"""Razorpay as the API and the worker use it: the configured gateway (or None without keys), and
where a customer's browser goes to pay an order.

Checkout: with `RAZORPAY_API_URL` set (the local stand-in), its hosted page
`GET {RAZORPAY_API_URL}/checkout/{order_id}?callback_url=...`; with Razorpay itself, Razorpay's
hosted checkout, a form POSTed to `https://api.razorpay.com/v1/checkout/embedded` with the key
id, the order id and the callback URL (no script of Razorpay's runs on our pages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from adapters.payments.razorpay import RazorpayGateway
from core.config import Settings

RAZORPAY_HOSTED_CHECKOUT = "https://api.razorpay.com/v1/checkout/embedded"


def configured_razorpay(settings: Settings) -> RazorpayGateway | None:
    """The gateway, or None when `RAZORPAY_KEY_ID`/`RAZORPAY_KEY_SECRET` are unset."""
    if not (settings.razorpay_key_id and settings.razorpay_key_secret):
        return None
    return RazorpayGateway.from_settings(
        settings, timeout_seconds=settings.razorpay_timeout_seconds
    )


@dataclass(frozen=True)
class CheckoutLaunch:
    """How the browser opens the checkout: GET `url`, or POST `fields` to it as a form."""

    method: str
    url: str
    fields: dict[str, str] = field(default_factory=dict)


def checkout_launch(
    settings: Settings,
    *,
    order_id: str,
    callback_url: str,
    save_method: bool,
    merchant: str = "osmTalk",
    description: str = "osmTalk credits",
    email: str | None = None,
    customer_id: str | None = None,
) -> CheckoutLaunch:
    if settings.razorpay_api_url:
        query = {"callback_url": callback_url}
        if save_method:
            query["save_method"] = "1"
        base = settings.razorpay_api_url.rstrip("/")
        return CheckoutLaunch("GET", f"{base}/checkout/{order_id}?{urlencode(query)}")
    fields = {
        "key_id": settings.razorpay_key_id or "",
        "order_id": order_id,
        "name": merchant,
        "description": description,
        "callback_url": callback_url,
        "cancel_url": callback_url,
    }
    if email:
        fields["prefill[email]"] = email
    if save_method and customer_id:
        fields["customer_id"] = customer_id
        fields["save"] = "1"
    return CheckoutLaunch("POST", RAZORPAY_HOSTED_CHECKOUT, fields)
