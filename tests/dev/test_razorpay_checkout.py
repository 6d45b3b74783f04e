"""The stand-in's hosted checkout page over HTTP, clicked like a browser would: Pay and Fail,
the callback redirect with Razorpay's fields, and the webhooks that follow."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from adapters.payments.razorpay_signatures import verify_payment_signature
from dev.razorpay.standin import RazorpayStandIn
from tests.support.razorpay import Receiver, http, new_order, sdk


class FormReader(HTMLParser):
    """The checkout form as a browser sees it: action, fields a submit sends, buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}  # label -> formaction (or the form's action)
        self.tags: set[str] = set()
        self._button: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("name"):
            if values.get("type") != "checkbox" or "checked" in values:
                self.fields[str(values["name"])] = values.get("value") or "on"
        elif tag == "button":
            self._button = values

    def handle_data(self, data: str) -> None:
        if self._button is not None and data.strip():
            self.buttons[data.strip()] = self._button.get("formaction") or self.action
            self._button = None


def read_checkout(razorpay_standin: RazorpayStandIn, order_id: str, **query: str) -> FormReader:
    page = http.get(f"{razorpay_standin.url}/checkout/{order_id}", params=query)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    reader = FormReader()
    reader.feed(page.text)
    assert not reader.tags & {"script", "link", "img", "iframe"}  # nothing external to load
    return reader


def test_checkout_page_pay_button_pays_and_redirects_back(
    razorpay_standin: RazorpayStandIn, webhook_receiver: Receiver
) -> None:
    order = new_order(razorpay_standin)
    callback = "http://127.0.0.1:9/billing?checkout=chk-1"
    form = read_checkout(razorpay_standin, order["id"], callback_url=callback, save_method="1")
    assert set(form.buttons) == {"Pay", "Fail"}
    assert form.fields == {"callback_url": callback, "save_method": "1"}
    page = http.get(f"{razorpay_standin.url}/checkout/{order['id']}").text
    assert "₹1,500.00" in page and order["id"] in page

    clicked = http.post(razorpay_standin.url + form.buttons["Pay"], data=form.fields)
    assert clicked.status_code == 303
    location = urlsplit(clicked.headers["location"])
    assert location.netloc == "127.0.0.1:9" and location.path == "/billing"
    back = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert back["checkout"] == "chk-1" and back["razorpay_order_id"] == order["id"]
    assert verify_payment_signature(
        order["id"],
        back["razorpay_payment_id"],
        back["razorpay_signature"],
        razorpay_standin.key_secret,
    )
    [captured] = webhook_receiver.wait_for("payment.captured")
    payment = captured.event["payload"]["payment"]["entity"]
    assert payment["id"] == back["razorpay_payment_id"] and payment["amount"] == 150_000
    assert payment["token_id"].startswith("token_")  # "save this card" was ticked
    [paid] = webhook_receiver.wait_for("order.paid")
    assert paid.event["payload"]["order"]["entity"]["status"] == "paid"

    again = read_checkout(razorpay_standin, order["id"])
    assert again.buttons == {}  # a paid order offers nothing to click


def test_checkout_page_fail_button_then_pay(
    razorpay_standin: RazorpayStandIn, webhook_receiver: Receiver
) -> None:
    order = new_order(razorpay_standin)
    callback = "http://127.0.0.1:9/billing"
    form = read_checkout(razorpay_standin, order["id"], callback_url=callback)
    assert "save_method" not in form.fields
    clicked = http.post(razorpay_standin.url + form.buttons["Fail"], data=form.fields)
    assert clicked.status_code == 303
    back = {k: v[0] for k, v in parse_qs(urlsplit(clicked.headers["location"]).query).items()}
    assert back["error[code]"] == "BAD_REQUEST_ERROR" and back["error[reason]"]
    [failed] = webhook_receiver.wait_for("payment.failed")
    entity = failed.event["payload"]["payment"]["entity"]
    assert json.loads(back["error[metadata]"]) == {
        "payment_id": entity["id"],
        "order_id": order["id"],
    }
    assert entity["status"] == "failed"
    assert sdk(razorpay_standin).order.fetch(order["id"])["status"] == "attempted"

    # The customer tries again on the same order, without a callback: a result page.
    form = read_checkout(razorpay_standin, order["id"])
    result = http.post(razorpay_standin.url + form.buttons["Pay"], data=form.fields)
    assert result.status_code == 200 and "Payment successful" in result.text
    webhook_receiver.wait_for("order.paid")
    [captured] = webhook_receiver.of("payment.captured")
    assert captured.event["payload"]["payment"]["entity"]["token_id"] is None  # not ticked


def test_checkout_ignores_callbacks_that_are_not_http(razorpay_standin: RazorpayStandIn) -> None:
    order = new_order(razorpay_standin)
    form = read_checkout(razorpay_standin, order["id"], callback_url="javascript:alert(1)")
    assert "callback_url" not in form.fields
    assert http.get(f"{razorpay_standin.url}/checkout/order_Unknown0000001").status_code == 404
