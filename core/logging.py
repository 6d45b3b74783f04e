"""Structured JSON logs, one object per line, with the call and account on every line.

Usage::

    from core.logging import bind_log_context, configure_logging

    configure_logging()                      # once, at process start (worker, API, stack)
    with bind_log_context(call_id="c-1", account_id="a-1"):
        log.info("charged")  # {"ts": ..., "call_id": "c-1", "account_id": "a-1", ...}

`bind_log_context` sets context variables, so the ids follow the code through `await`s and into
tasks created inside the block. Every line carries `call_id` and `account_id` keys (null when
unknown), so a log search on either never misses a line. Records may also pass them explicitly:
`log.info("x", extra={"call_id": ...})` wins over the context. Every line also carries the
current OpenTelemetry `trace_id` and `span_id` (core.tracing; null outside a trace), so one
search finds the API request, the call's workflow, its activities and their SQL.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from domain.contracts import call_id_of

CONTEXT_FIELDS = ("call_id", "account_id")

_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)
_account_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("account_id", default=None)
_VARS = {"call_id": _call_id, "account_id": _account_id}

# Attributes every LogRecord has; anything else passed through `extra=` is emitted as a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


@contextlib.contextmanager
def bind_log_context(
    *, call_id: str | None = None, account_id: str | None = None
) -> Iterator[None]:
    """Within the block, every log line carries these ids (None leaves the current value)."""
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = []
    for name, value in (("call_id", call_id), ("account_id", account_id)):
        if value is not None:
            var = _VARS[name]
            tokens.append((var, var.set(str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_log_context(*, call_id: str | None = None, account_id: str | None = None) -> None:
    """Bind ids for the rest of the current context (e.g. a request or an activity task)."""
    if call_id is not None:
        _call_id.set(str(call_id))
    if account_id is not None:
        _account_id.set(str(account_id))


def current_log_context() -> dict[str, str | None]:
    return {name: var.get() for name, var in _VARS.items()}


class ContextFilter(logging.Filter):
    """Puts `call_id` and `account_id` on every record (from `extra=`, else the context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


def _trace_fields() -> dict[str, str | None]:
    """The current OpenTelemetry span's ids (W3C hex), null outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {"trace_id": None, "span_id": None}
    return {
        "trace_id": trace.format_trace_id(context.trace_id),
        "span_id": trace.format_span_id(context.span_id),
    }


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            entry["service"] = self.service
        for name, var in _VARS.items():
            value = getattr(record, name, None)
            entry[name] = value if value is not None else var.get()
        entry.update(_trace_fields())
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key in entry or key.startswith("_"):
                continue
            entry[key] = value
        if record.exc_info:
            entry["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    level: str | int | None = None,
    *,
    service: str | None = None,
    stream: Any = None,
) -> None:
    """Route the root logger (and uvicorn's, temporalio's) to one JSON-lines handler.

    Level: the argument, else LOG_LEVEL, else INFO. Idempotent: calling it again replaces the
    handler instead of adding a second one.
    """
    resolved = level if level is not None else os.environ.get("LOG_LEVEL", "INFO")
    if isinstance(resolved, str):
        resolved = resolved.upper()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service=service or os.environ.get("SERVICE_NAME")))
    handler.addFilter(ContextFilter())
    handler.set_name("billing-json")
    root = logging.getLogger()
    for existing in list(root.handlers):
        # ours from an earlier call, and basicConfig's plain stderr handler; not pytest's etc.
        if existing.get_name() == "billing-json" or type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(resolved)
    # uvicorn installs its own handlers; send its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "temporalio"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def uvicorn_log_config(service: str | None = "api") -> dict[str, Any]:
    """A `log_config` for `uvicorn.run(...)`/`--log-config`: every line JSON, the app's own
    loggers (root) included."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.logging.ContextFilter"}},
        "formatters": {"json": {"()": "core.logging.JsonFormatter", "service": service}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    }


# -- wiring for the worker and the API -------------------------------------------------------


def _ids_from(value: Any) -> tuple[str | None, str | None]:
    """call_id / account_id from an activity argument: a dataclass, a pydantic model or a dict."""
    if isinstance(value, dict):
        get = value.get
    else:

        def get(key: str, _value: Any = value) -> Any:
            return getattr(_value, key, None)

    call_id, account_id = get("call_id"), get("account_id")
    return (
        str(call_id) if isinstance(call_id, str | int) else None,
        str(account_id) if isinstance(account_id, str | int) else None,
    )


def activity_log_interceptor() -> Any:
    """A Temporal worker interceptor (`Worker(..., interceptors=[activity_log_interceptor()])`)
    that binds call_id/account_id (from the activity's first argument, else from a
    call's workflow id) around every activity and logs one line per activity outcome with
    its duration, so every call leaves a trail of JSON lines carrying its ids; it records the
    activity's metrics (core.metrics) on the way."""
    from temporalio import activity
    from temporalio.worker import (
        ActivityInboundInterceptor,
        ExecuteActivityInput,
        Interceptor,
    )

    from core.metrics import record_activity

    log = logging.getLogger("billing.activity")

    class _Inbound(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            info = activity.info()
            call_id, account_id = _ids_from(input.args[0]) if input.args else (None, None)
            if call_id is None:
                call_id = call_id_of(info.workflow_id or "")
            fields = {
                "activity": info.activity_type,
                "workflow_id": info.workflow_id,
                "attempt": info.attempt,
            }
            with bind_log_context(call_id=call_id, account_id=account_id):
                started = time.monotonic()
                try:
                    result = await super().execute_activity(input)
                except BaseException as exc:
                    record_activity(info, input.args, None, started, failed=True)
                    log.warning(
                        "activity %s failed: %s",
                        info.activity_type,
                        type(exc).__name__,
                        extra={**fields, "duration_ms": _ms(started), "error": str(exc)[:500]},
                    )
                    raise
                record_activity(info, input.args, result, started, failed=False)
                log.info(
                    "activity %s completed",
                    info.activity_type,
                    extra={**fields, "duration_ms": _ms(started)},
                )
                return result

    class _Interceptor(Interceptor):
        def intercept_activity(
            self, next: ActivityInboundInterceptor
        ) -> ActivityInboundInterceptor:
            return _Inbound(next)

    return _Interceptor()


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


_PATH_IDS = (
    ("call_id", re.compile(r"/v1/calls/([^/]+)")),
    ("account_id", re.compile(r"/v1/accounts/([^/]+)")),
)


class LogContextMiddleware:
    """Pure ASGI middleware (`app.add_middleware(LogContextMiddleware)`): binds call_id and
    account_id taken from the request path (/v1/calls/{id}, /v1/accounts/{id}) for everything
    logged while the request is served, uvicorn's access line included. Endpoints that learn the
    ids from the body call `set_log_context(...)`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        ids: dict[str, str] = {}
        path = scope.get("path") or ""
        for name, pattern in _PATH_IDS:
            match = pattern.search(path)
            if match:
                ids[name] = match.group(1)
        with bind_log_context(**ids):
            await self.app(scope, receive, send)
