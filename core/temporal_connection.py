"""How every process of ours reaches Temporal: a dev server, a self-hosted (m)TLS cluster or
Temporal Cloud, chosen by configuration only.

    client = await connect_temporal(settings, runtime=...)   # extra Client.connect arguments

The connection comes from `temporalio.envconfig`, the SDK's own configuration (the same files and
variables as the `temporal` CLI): a TOML profile file (`TEMPORAL_CONFIG_FILE`, else the user's
`~/.config/temporalio/temporal.toml`; profile `TEMPORAL_PROFILE`, else `default`) overridden by
`TEMPORAL_*` variables (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
`TEMPORAL_TLS`, `TEMPORAL_TLS_CLIENT_CERT_PATH`/`_DATA`, `TEMPORAL_TLS_CLIENT_KEY_PATH`/`_DATA`,
`TEMPORAL_TLS_SERVER_CA_CERT_PATH`/`_DATA`, `TEMPORAL_TLS_SERVER_NAME`, …).

Our settings (core.config) still decide what they always did: an address or namespace given to
`Settings` (or by TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, the same variables) wins over the profile
file; with neither, the dev server's 127.0.0.1:7233 and namespace `default`. TLS, client
certificates, the API key and gRPC metadata come from the profile and variables only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig

from core.config import Settings
from core.temporal_converter import BILLING_DATA_CONVERTER

DEV_TEMPORAL_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"


class TemporalConfigError(ValueError):
    """The Temporal connection configuration names something that is not there."""


def load_profile(environ: Mapping[str, str] | None = None) -> ClientConfigProfile:
    """The envconfig profile (file + TEMPORAL_* variables) of this process, or of `environ`."""
    # An empty TEMPORAL_* variable means unset (docker compose passes `${TEMPORAL_API_KEY:-}`):
    # to the SDK an empty API key still means "API key given", which turns TLS on.
    env = {
        name: value
        for name, value in (os.environ if environ is None else environ).items()
        if value or not name.startswith("TEMPORAL_")
    }
    config_file = env.get("TEMPORAL_CONFIG_FILE")
    # The SDK treats a missing file as an empty one: that would silently send production to the
    # dev default address without TLS.
    if config_file and not Path(config_file).is_file():
        raise TemporalConfigError(f"TEMPORAL_CONFIG_FILE={config_file} does not exist")
    try:
        return ClientConfigProfile.load(override_env_vars=env)
    except Exception as exc:  # the bridge's ConfigError: unknown profile, bad TOML, …
        raise TemporalConfigError(f"Temporal client configuration: {exc}") from exc


def connect_options(
    settings: Settings, *, environ: Mapping[str, str] | None = None
) -> ClientConnectConfig:
    """The `Client.connect` keyword arguments for these settings (module docstring)."""
    options = load_profile(environ).to_client_connect_config()
    if settings.temporal_address:
        options["target_host"] = settings.temporal_address
    options.setdefault("target_host", DEV_TEMPORAL_ADDRESS)
    if settings.temporal_namespace and "temporal_namespace" in settings.model_fields_set:
        options["namespace"] = settings.temporal_namespace
    options.setdefault("namespace", settings.temporal_namespace or DEFAULT_NAMESPACE)
    return options


def describe(options: ClientConnectConfig) -> str:
    """For logs: where and how we connect, never the secrets themselves."""
    tls = options.get("tls", False)
    parts = [
        options.get("target_host", DEV_TEMPORAL_ADDRESS),
        f"namespace={options.get('namespace', DEFAULT_NAMESPACE)}",
        f"tls={'off' if tls is False else 'on'}",
    ]
    if not isinstance(tls, bool) and tls.client_cert:
        parts.append("client-cert")
    if options.get("api_key"):
        parts.append("api-key")
    return " ".join(parts)


def temporal_target(settings: Settings, *, environ: Mapping[str, str] | None = None) -> str:
    """The frontend address `connect_temporal` would use."""
    return connect_options(settings, environ=environ)["target_host"]


async def connect_temporal(settings: Settings, **extra: Any) -> Client:
    """`Client.connect` with the configured connection and our data converter (the default's
    wire format, faster dataclass decoding: core.temporal_converter); `extra` adds or overrides
    arguments (runtime, lazy, data_converter, …)."""
    options: dict[str, Any] = {
        **connect_options(settings),
        "data_converter": BILLING_DATA_CONVERTER,
        **extra,
    }
    return await Client.connect(**options)
