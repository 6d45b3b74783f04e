"""Every refusal is `application/problem+json` (RFC 9457) with a stable `code`.

`ledger.errors.BillingError` subclasses carry their HTTP status and code; `RatingError` from the
pure rules is a 422 with its code; request validation is 422 `validation_error` (malformed JSON
400 `validation_error`); unknown routes 404 `not_found`; anything unexpected 500 `internal_error`.
"""

from __future__ import annotations

import logging
from typing import Any

import temporalio.client
import temporalio.service
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.rating import RatingError
from ledger.errors import BillingError
from orchestrator_client import BillingClientError, CallNotFound

log = logging.getLogger("api.errors")

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


class Problem(BaseModel):
    """An RFC 9457 problem document; `code` is stable and meant for programs."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://billing.osmtalk.example/problems/insufficient_balance",
                    "title": "Payment required",
                    "status": 402,
                    "code": "insufficient_balance",
                    "detail": "available balance is below the minimum of 1000 paisa",
                }
            ]
        },
    )

    type: str = Field(description="A URI naming the problem type")
    title: str
    status: int
    code: str = Field(description="Stable machine-readable error code")
    detail: str | None = None


class ApiError(Exception):
    """An HTTP-layer refusal (auth, idempotency, unavailable dependencies)."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers


def problem_body(
    status: int, code: str, detail: str | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://billing.osmtalk.example/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if extra:
        body.update(jsonable_encoder(extra))
    return body


def problem(
    status: int,
    code: str,
    detail: str | None,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _client_error_status(code: str) -> int:
    if code == "not_found":
        return 404
    if code in {"conflict", "call_ended"}:
        return 409
    return 422


async def _billing_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BillingError)
    return problem(exc.status_code, exc.code, exc.message)


async def _rating_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RatingError)
    return problem(422, exc.code, exc.message)


async def _client_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BillingClientError)
    status = 404 if isinstance(exc, CallNotFound) else _client_error_status(exc.code)
    return problem(status, exc.code, exc.message)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(exc.status_code, exc.code, exc.detail, extra=exc.extra, headers=exc.headers)


def _location(loc: Any) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": _location(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    malformed = any(e["type"] == "json_invalid" for e in errors)
    status = 400 if malformed else 422
    detail = "the request body is not valid JSON" if malformed else "the request is invalid"
    if errors and not malformed:
        detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    return problem(status, "validation_error", detail, extra={"errors": errors})


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem(exc.status_code, code, detail, headers=getattr(exc, "headers", None))


async def _temporal_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("Temporal call failed on %s %s: %r", request.method, request.url.path, exc)
    return problem(
        503,
        "temporal_unavailable",
        "the call workflow did not answer in time; retry with the same call_id",
        headers={"Retry-After": "1"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal_error", "an unexpected error occurred")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BillingError, _billing_error)
    app.add_exception_handler(RatingError, _rating_error)
    app.add_exception_handler(BillingClientError, _client_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for temporal_error in (
        TimeoutError,
        temporalio.service.RPCError,
        temporalio.client.WorkflowUpdateRPCTimeoutOrCancelledError,
    ):
        app.add_exception_handler(temporal_error, _temporal_unavailable)
    app.add_exception_handler(Exception, _unexpected)


def _response(status: int, description: str, example_code: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "example": problem_body(status, example_code, description),
            }
        },
    }


# OpenAPI `responses=` fragments for the routes.
Responses = dict[int | str, dict[str, Any]]
R400: Responses = {400: _response(400, "Malformed JSON", "validation_error")}
R401: Responses = {401: _response(401, "Missing, unknown or revoked API key", "unauthorized")}
R402: Responses = {
    402: _response(402, "Available balance is below the minimum", "insufficient_balance")
}
R403: Responses = {403: _response(403, "This key's role may not do this", "forbidden")}
R404: Responses = {404: _response(404, "No such resource (or not yours)", "not_found")}
R409: Responses = {409: _response(409, "Idempotency or state conflict", "conflict")}
R422: Responses = {422: _response(422, "Invalid request", "validation_error")}
R503: Responses = {503: _response(503, "A dependency is unavailable", "unavailable")}
COMMON: Responses = {**R400, **R401, **R403, **R404, **R422}
MUTATING: Responses = {**COMMON, **R409}
