"""What a production process refuses to start without (contract §4: no secret has a default
outside the dev stack).

`BILLING_ENV` is `production` unless set to `development` (dev.stack and the tests set it). In
production the API needs a strong `SESSION_SECRET` (it signs dashboard sessions) and, when
`ADMIN_API_KEY` is set, a strong one; the worker needs `SENDGRID_API_KEY` (without it customer
email would only be logged). The worker signs nothing, so it does not need `SESSION_SECRET`.
"""

from __future__ import annotations

from typing import Literal

from core.config import Settings

Component = Literal["api", "worker"]
MIN_SECRET_LENGTH = 32
# Values that have been published as examples or defaults: never accepted in production.
PUBLIC_VALUES = frozenset(
    {"dev-only-change-me", "change-me-in-production", "change-me", "changeme", "secret"}
)


class InsecureSettings(RuntimeError):
    """Production settings that would run with a missing, public or weak secret."""


def _secret_problem(name: str, value: str | None, *, required: bool) -> str | None:
    if not value:
        return f"{name} is required" if required else None
    if value.strip().lower() in PUBLIC_VALUES:
        return f"{name} is a published example value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"{name} is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def insecure_settings(settings: Settings, component: Component) -> list[str]:
    """What is wrong for `component` in production (nothing in development)."""
    if settings.billing_env != "production":
        return []
    checks: list[str | None] = []
    if component == "api":
        checks.append(_secret_problem("SESSION_SECRET", settings.session_secret, required=True))
        checks.append(_secret_problem("ADMIN_API_KEY", settings.admin_api_key, required=False))
    else:
        if not settings.sendgrid_api_key:
            checks.append("SENDGRID_API_KEY is required (without it no email would go out)")
    return [problem for problem in checks if problem]


def refuse_insecure_start(settings: Settings, component: Component) -> None:
    """Raise `InsecureSettings` naming every problem, before anything starts."""
    problems = insecure_settings(settings, component)
    if problems:
        raise InsecureSettings(
            f"the {component} refuses to start in production (BILLING_ENV=production): "
            + "; ".join(problems)
            + ". Generate secrets with `openssl rand -hex 32`; BILLING_ENV=development is for "
            "a local stack only."
        )
