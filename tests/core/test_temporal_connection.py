"""core.temporal_connection: a TOML profile and TEMPORAL_* variables reach `Client.connect` with
TLS and an API key, and a real mTLS handshake (through a TLS-terminating proxy with ALPN h2 in
front of the dev server, which has no TLS of its own) runs a workflow."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.config import Settings
from core.temporal_connection import (
    TemporalConfigError,
    connect_options,
    connect_temporal,
    describe,
    temporal_target,
)
from core.temporal_converter import BILLING_DATA_CONVERTER
from tests.core.tls_workflows import GreetOverTls
from tests.support.tls import TlsProxy, make_tls_files


@pytest.fixture
def no_temporal_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TEMPORAL_* from the machine; an empty profile file instead of the user's own."""
    import os

    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(empty))
    return empty


def _profile_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(body)
    return path


def _pems(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for name, path in files.items():
        path.write_text(f"-----BEGIN TEST {name.upper()}-----\n")
    return files


def test_dev_default_when_nothing_is_configured(no_temporal_env: Path) -> None:
    options = connect_options(Settings())
    assert options == {"target_host": "127.0.0.1:7233", "namespace": "default"}
    assert temporal_target(Settings()) == "127.0.0.1:7233"
    assert describe(options) == "127.0.0.1:7233 namespace=default tls=off"


def test_a_profile_file_gives_address_namespace_mtls_and_api_key(
    no_temporal_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pems = _pems(tmp_path)
    config = _profile_file(
        tmp_path,
        f"""
[profile.default]
address = "127.0.0.1:7233"

[profile.prod]
address = "temporal.internal:7233"
namespace = "billing"
api_key = "file-api-key"

[profile.prod.tls]
server_name = "frontend.temporal.internal"
server_ca_cert_path = "{pems["ca"]}"
client_cert_path = "{pems["cert"]}"
client_key_path = "{pems["key"]}"
""",
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")

    options = connect_options(Settings())

    assert options["target_host"] == "temporal.internal:7233"
    assert options["namespace"] == "billing"
    assert options["api_key"] == "file-api-key"
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.domain == "frontend.temporal.internal"
    assert tls.server_root_ca_cert == pems["ca"].read_bytes()
    assert tls.client_cert == pems["cert"].read_bytes()
    assert tls.client_private_key == pems["key"].read_bytes()
    text = describe(options)
    assert "file-api-key" not in text
    assert text == "temporal.internal:7233 namespace=billing tls=on client-cert api-key"


async def test_temporal_variables_override_the_file_and_reach_client_connect(
    no_temporal_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pems = _pems(tmp_path)
    config = _profile_file(
        tmp_path,
        """
[profile.default]
address = "from-file:7233"
namespace = "from-file"
api_key = "from-file"
""",
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "billing.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "billing.a1b2c")
    monkeypatch.setenv("TEMPORAL_API_KEY", "env-api-key")
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(pems["ca"]))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_DATA", "-----BEGIN INLINE CERT-----\n")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(pems["key"]))
    seen: dict[str, Any] = {}

    async def recording_connect(*args: Any, **kwargs: Any) -> str:
        seen.update(kwargs, args=args)
        return "client"

    monkeypatch.setattr(Client, "connect", recording_connect)
    runtime = object()

    client = await connect_temporal(Settings(), lazy=True, runtime=runtime)

    assert client == "client"
    assert seen["args"] == ()
    assert seen["target_host"] == "billing.tmprl.cloud:7233"
    assert seen["namespace"] == "billing.a1b2c"
    assert seen["api_key"] == "env-api-key"
    assert seen["lazy"] is True and seen["runtime"] is runtime
    assert seen["data_converter"] is BILLING_DATA_CONVERTER
    tls = seen["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == pems["ca"].read_bytes()
    assert tls.client_cert == b"-----BEGIN INLINE CERT-----\n"
    assert tls.client_private_key == pems["key"].read_bytes()


def test_an_api_key_alone_turns_tls_on(no_temporal_env: Path) -> None:
    options = connect_options(
        Settings(temporal_address="billing.a1b2c.tmprl.cloud:7233"),
        environ={"TEMPORAL_CONFIG_FILE": str(no_temporal_env), "TEMPORAL_API_KEY": "k"},
    )
    assert options["tls"] is True
    assert options["api_key"] == "k"


def test_our_settings_win_over_the_profile_file_but_keep_its_tls(
    no_temporal_env: Path, tmp_path: Path
) -> None:
    pems = _pems(tmp_path)
    config = _profile_file(
        tmp_path,
        f"""
[profile.default]
address = "from-file:7233"
namespace = "from-file"

[profile.default.tls]
server_ca_cert_path = "{pems["ca"]}"
""",
    )
    environ = {"TEMPORAL_CONFIG_FILE": str(config)}
    explicit = Settings(temporal_address="127.0.0.1:17233", temporal_namespace="tests")
    options = connect_options(explicit, environ=environ)
    assert options["target_host"] == "127.0.0.1:17233"
    assert options["namespace"] == "tests"
    assert isinstance(options["tls"], TLSConfig)
    # Settings left at their defaults do not hide the profile's values.
    from_file = connect_options(Settings(), environ=environ)
    assert (from_file["target_host"], from_file["namespace"]) == ("from-file:7233", "from-file")


def test_empty_variables_count_as_unset(
    no_temporal_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker-compose.yml passes every TEMPORAL_* variable as `${NAME:-}`."""
    names = ("ADDRESS", "NAMESPACE", "API_KEY", "TLS", "TLS_SERVER_NAME", "PROFILE")
    environ = {f"TEMPORAL_{name}": "" for name in names}
    environ["TEMPORAL_CONFIG_FILE"] = ""
    options = connect_options(Settings(temporal_address="temporal:7233"), environ=environ)
    assert options == {"target_host": "temporal:7233", "namespace": "default"}
    # The same variables read by our settings, with a profile file behind them.
    config = no_temporal_env
    config.write_text('[profile.default]\naddress = "temporal:7233"\nnamespace = "billing"\n')
    for name, value in {**environ, "TEMPORAL_CONFIG_FILE": str(config)}.items():
        monkeypatch.setenv(name, value)
    assert connect_options(Settings()) == {"target_host": "temporal:7233", "namespace": "billing"}


def test_tls_can_be_turned_off_explicitly(no_temporal_env: Path) -> None:
    options = connect_options(
        Settings(),
        environ={
            "TEMPORAL_CONFIG_FILE": str(no_temporal_env),
            "TEMPORAL_API_KEY": "k",
            "TEMPORAL_TLS": "false",
        },
    )
    assert options["tls"] is False


def test_a_missing_file_or_profile_is_an_error_not_the_dev_default(
    no_temporal_env: Path, tmp_path: Path
) -> None:
    with pytest.raises(TemporalConfigError, match="does not exist"):
        connect_options(Settings(), environ={"TEMPORAL_CONFIG_FILE": str(tmp_path / "nope")})
    config = _profile_file(tmp_path, '[profile.default]\naddress = "a:1"\n')
    with pytest.raises(TemporalConfigError, match="staging"):
        connect_options(
            Settings(),
            environ={"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "staging"},
        )
    config.write_text("[profile.default\n")
    with pytest.raises(TemporalConfigError):
        connect_options(Settings(), environ={"TEMPORAL_CONFIG_FILE": str(config)})


async def test_mtls_through_a_tls_proxy_runs_a_workflow(
    workflow_env: WorkflowEnvironment,
    no_temporal_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = make_tls_files(tmp_path)
    proxy = TlsProxy(workflow_env.client.service_client.config.target_host, files)
    address = await proxy.start()
    config = _profile_file(
        tmp_path,
        f"""
[profile.mtls]
address = "{address}"
namespace = "default"

[profile.mtls.tls]
server_ca_cert_path = "{files.ca_cert}"
client_cert_path = "{files.client_cert}"

[profile.no-ca]
address = "{address}"

[profile.no-ca.tls]
client_cert_path = "{files.client_cert}"
client_key_path = "{files.client_key}"

[profile.no-client-cert]
address = "{address}"

[profile.no-client-cert.tls]
server_ca_cert_path = "{files.ca_cert}"
""",
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "mtls")
    # The key from a variable, the rest from the file: both sources meet in one connection.
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(files.client_key))
    monkeypatch.setenv("TEMPORAL_API_KEY", "test-api-key")
    try:
        client = await connect_temporal(Settings())
        queue = f"tls-{uuid.uuid4().hex[:8]}"
        async with Worker(client, task_queue=queue, workflows=[GreetOverTls]):
            result = await client.execute_workflow(
                GreetOverTls.run, "over tls", id=f"tls-{uuid.uuid4()}", task_queue=queue
            )
        assert result == "hello over tls"
        assert proxy.handshakes, "nothing went through the proxy"
        assert {h["alpn"] for h in proxy.handshakes} == {"h2"}
        assert {h["client"] for h in proxy.handshakes} == {"billing-worker"}

        # The handshake is really checked on both sides: our client refuses a server whose CA
        # it was not given, the proxy refuses a client without a certificate.
        monkeypatch.delenv("TEMPORAL_TLS_CLIENT_KEY_PATH")
        accepted = len(proxy.handshakes)
        monkeypatch.setenv("TEMPORAL_PROFILE", "no-ca")
        with pytest.raises(RuntimeError, match="UnknownIssuer"):
            await connect_temporal(Settings())
        monkeypatch.setenv("TEMPORAL_PROFILE", "no-client-cert")
        with pytest.raises(RuntimeError):
            await connect_temporal(Settings())
        assert len(proxy.handshakes) == accepted
    finally:
        await proxy.stop()
