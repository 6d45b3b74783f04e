"""The one place that talks HTTP to Razorpay: an SDK client whose outcomes become our results
and our two error kinds, plus the argument checks every operation shares."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import razorpay
import razorpay.errors
import requests

from adapters.payments.razorpay_types import (
    RazorpayError,
    RazorpayNotConfiguredError,
    RazorpayRejectedError,
    RazorpayRetryableError,
)
from domain.refund_parts import idempotency_key as idempotency_key  # re-exported

RAZORPAY_API_URL = "https://api.razorpay.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
CURRENCY = "INR"
# Refund keys: at least 10 of [A-Za-z0-9_-]; payout keys: 4 to 36. This fits both.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{10,36}")
# 408/409/429 are "not now", not "never": 409 is Razorpay's "same key still being processed".
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_ENTITY_ID = re.compile(r"[A-Za-z0-9_]{1,64}")


def require_paisa(amount_paisa: int) -> int:
    if isinstance(amount_paisa, bool) or not isinstance(amount_paisa, int) or amount_paisa <= 0:
        raise ValueError(f"amount must be a positive integer of paisa, got {amount_paisa!r}")
    return amount_paisa


def require_id(entity_id: str) -> str:
    # Ids go into URL paths: refuse anything that could step outside the resource.
    if not isinstance(entity_id, str) or not _ENTITY_ID.fullmatch(entity_id):
        raise ValueError(f"not a Razorpay id: {entity_id!r:.80}")
    return entity_id


def require_key(key: str) -> str:
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError("idempotency key must be 10-36 of [A-Za-z0-9_-] (use idempotency_key())")
    return key


class _HttpStatusError(Exception):
    """Raised from the session's response hook: not a `requests` exception, so the SDK lets it
    through and we classify by the HTTP status rather than by the body's error code."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _raise_for_status(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code >= 400:
        raise _HttpStatusError(response)


def _error_from_response(operation: str, response: requests.Response) -> RazorpayError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    metadata = error.get("metadata")
    kind = (
        RazorpayRetryableError
        if status >= 500 or status in _RETRYABLE_STATUSES
        else RazorpayRejectedError
    )
    return kind(
        f"{operation}: {error.get('description') or response.reason or 'error'}",
        status=status,
        code=error.get("code"),
        reason=error.get("reason"),
        field=error.get("field"),
        metadata=metadata if isinstance(metadata, dict) else None,
    )


class RazorpayTransport:
    """SDK clients and the one place that turns their outcomes into our results and errors.

    One SDK client (and `requests` session) per thread: sessions are not documented as
    thread-safe, and activities may call the adapter from a thread pool.
    """

    def __init__(
        self, key_id: str, key_secret: str, api_url: str | None, timeout_seconds: float
    ) -> None:
        if not key_id or not key_secret:
            raise RazorpayNotConfiguredError("RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET are required")
        self.key_id = key_id
        self._key_secret = key_secret
        self._base_url = (api_url or RAZORPAY_API_URL).rstrip("/")
        # (connect, read): a dead host fails fast, a slow answer gets the whole budget.
        self._timeout = (min(3.0, timeout_seconds), timeout_seconds)
        self._local = threading.local()

    @property
    def client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            session = requests.Session()
            session.hooks["response"].append(_raise_for_status)
            client = razorpay.Client(
                session=session, auth=(self.key_id, self._key_secret), base_url=self._base_url
            )
            client.set_app_details({"title": "osmtalk-billing", "version": "0.1"})
            self._local.client = client
        return client

    def call(
        self,
        operation: str,
        method: Callable[..., Any],
        *args: Any,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"timeout": self._timeout}
        if headers:
            kwargs["headers"] = dict(headers)
        try:
            result = method(*args, **kwargs)
        except _HttpStatusError as exc:
            raise _error_from_response(operation, exc.response) from None
        except requests.Timeout as exc:
            raise RazorpayRetryableError(f"{operation}: timed out") from exc
        except requests.ConnectionError as exc:
            raise RazorpayRetryableError(f"{operation}: could not connect") from exc
        except (requests.RequestException, json.JSONDecodeError) as exc:
            raise RazorpayRetryableError(f"{operation}: unreadable response ({exc})") from exc
        # Only reached if the hook was bypassed; the SDK's own classification, as a fallback.
        except razorpay.errors.BadRequestError as exc:
            raise RazorpayRejectedError(f"{operation}: {exc}") from exc
        except (razorpay.errors.ServerError, razorpay.errors.GatewayError) as exc:
            raise RazorpayRetryableError(f"{operation}: {exc}") from exc
        if not isinstance(result, dict):
            raise RazorpayRetryableError(f"{operation}: unexpected response {result!r:.200}")
        return result
