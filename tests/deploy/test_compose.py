"""docker-compose.yml, checked without a Docker engine: valid against the compose-spec schema
(the copy check-jsonschema ships), after interpolating `${...}` like compose does, and safe by
default: only the API's port is published to the network, the Temporal UI is local and read-only,
the dev stand-ins only in the `dev` profile, pinned images, no secret with a default, migrations
only in the `migrate` job, health checks and start order."""

from __future__ import annotations

import importlib.resources
import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
SEARCH_ATTRIBUTES = ("AccountId", "CallChannel", "CallOutcome")
# What an operator must provide: compose refuses to start without each (`${NAME:?…}`).
REQUIRED = {
    "POSTGRES_PASSWORD",
    "ADMIN_API_KEY",
    "SESSION_SECRET",
    "SENDGRID_API_KEY",
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "DASHBOARD_URL",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|_KEY_ID|PWD")
CONTRACT_ENV = (
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "API_PORT",
    "ADMIN_API_KEY",
    "SENDGRID_API_KEY",
    "SENDGRID_HOST",
    "MIN_BALANCE_PAISA",
    "WELCOME_PROMO_PAISA",
    "RAZORPAY_KEY_ID",
    "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET",
    "RAZORPAY_API_URL",
    "SESSION_SECRET",
    "LATE_USAGE_WINDOW_SECONDS",
)
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one value: ${X}, ${X:-default}, ${X-default}, ${X:?error},
    ${X?error}, and $$ for a literal $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"  # an escaped, literal $
        name, op, arg = match.group("name", "op", "arg")
        value = env.get(name)
        if op in (":-", ":?") and value == "":
            value = None
        if value is not None:
            return value
        if op and op.endswith("?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op else ""

    return _VARIABLE.sub(replace, text)


def _interpolated(node: Any, env: Mapping[str, str]) -> Any:
    """Like compose: the YAML is parsed first, then every string value is interpolated."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env) for key, value in node.items()}
    return node


def _load(env: Mapping[str, str]) -> dict[str, Any]:
    data = _interpolated(yaml.safe_load(COMPOSE_TEXT), env)
    assert isinstance(data, dict)
    return data


def _generated_env(tmp_path: Path, *args: str) -> dict[str, str]:
    target = tmp_path / f"env{len(list(tmp_path.iterdir()))}"
    subprocess.run(
        ["sh", str(ROOT / "deploy" / "generate-env.sh"), *args],
        env={"ENV_FILE": str(target), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    assert target.stat().st_mode & 0o077 == 0, "the env file must be private"
    pairs = (line.split("=", 1) for line in target.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs if not k.startswith("#")}


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    """What an operator puts in .env: every required variable, nothing else."""
    return {name: f"value-of-{name.lower()}" for name in REQUIRED}


@pytest.fixture(scope="module")
def compose(operator_env: dict[str, str]) -> dict[str, Any]:
    return _load(operator_env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> str:
    parts = [service.get("entrypoint") or "", service.get("command") or ""]
    return " ".join(" ".join(p) if isinstance(p, list) else str(p) for p in parts).strip()


def _image(service: dict[str, Any]) -> str:
    return str(service.get("image", ""))


def _published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of every published port; 0.0.0.0 when no ip."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            ip = str(port.get("host_ip", "0.0.0.0"))
            out.append((ip, str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).split(":")
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            out.append(("0.0.0.0", parts[0], parts[1]))
        else:
            out.append(("0.0.0.0", "", parts[0]))  # a random host port, on every interface
    return out


def _billing_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if s.get("build")}


def test_valid_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(compose), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_can_fail(compose: dict[str, Any]) -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(
        "compose-spec.json"
    )
    validator = Draft202012Validator(json.loads(schema_file.read_text()))
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["worker"]["restart_policy"] = "always"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_no_secret_has_a_default() -> None:
    for match in _VARIABLE.finditer(COMPOSE_TEXT):
        name, op, arg = match.group("name", "op", "arg")
        if name and SECRET_NAME.search(name):
            assert op in (":?", "?") or not arg, f"${{{name}}} has a default: {match.group(0)}"
    required = {m.group("name") for m in _VARIABLE.finditer(COMPOSE_TEXT) if m.group("op") == ":?"}
    assert required == REQUIRED


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_required_variable(
    operator_env: dict[str, str], missing: str
) -> None:
    env = {k: v for k, v in operator_env.items() if k != missing}
    with pytest.raises(MissingVariable, match=missing):
        _load(env)
    with pytest.raises(MissingVariable, match=missing):
        _load({**env, missing: ""})


def test_no_secret_is_written_into_the_file(services: dict[str, dict[str, Any]]) -> None:
    raw = yaml.safe_load(COMPOSE_TEXT)
    for name, service in raw["services"].items():
        for key, value in _env(service).items():
            if SECRET_NAME.search(key):
                assert value.startswith("${") or value == "", f"{name}: {key} is hard-coded"
    env = _env(services["api"])
    assert env["SENDGRID_HOST"] == "https://api.sendgrid.com"  # a real key goes to SendGrid
    assert env["SESSION_SECRET"] == "value-of-session_secret"


def test_generated_env_files_are_random_and_complete(tmp_path: Path) -> None:
    dev, dev_again = _generated_env(tmp_path, "--dev"), _generated_env(tmp_path, "--dev")
    assert {k for k, v in dev.items() if v} >= REQUIRED
    for name in ("POSTGRES_PASSWORD", "ADMIN_API_KEY", "SESSION_SECRET", "RAZORPAY_KEY_SECRET"):
        assert len(dev[name]) >= 32 and dev[name] != dev_again[name], name
    assert dev["COMPOSE_PROFILES"] == "dev"
    services = _load(dev)["services"]
    assert _env(services["worker"])["SENDGRID_HOST"] == "http://email-capture:8025"
    assert _env(services["api"])["RAZORPAY_API_URL"] == "http://razorpay-standin:8090"
    production = _generated_env(tmp_path)
    assert "COMPOSE_PROFILES" not in production
    with pytest.raises(MissingVariable):  # SendGrid, Razorpay, DASHBOARD_URL left to fill in
        _load(production)


def test_only_the_api_is_published_to_the_network(services: dict[str, dict[str, Any]]) -> None:
    public = {
        (name, host_port, target)
        for name, service in services.items()
        for ip, host_port, target in _published(service)
        if ip not in ("127.0.0.1", "::1", "[::1]")
    }
    assert public == {("api", "8000", "8000")}
    for name in ("temporal", "postgres", "worker", "migrate"):
        assert not services[name].get("ports"), f"{name} publishes a port"


def test_temporal_ui_is_local_and_read_only(services: dict[str, dict[str, Any]]) -> None:
    ui = services["temporal-ui"]
    assert _image(ui).startswith("temporalio/ui:")
    assert _published(ui) == [("127.0.0.1", "8080", "8080")]
    assert _env(ui)["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert _env(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_dev_stand_ins_only_in_the_dev_profile(services: dict[str, dict[str, Any]]) -> None:
    stand_ins = {
        name
        for name, service in services.items()
        if re.search(r"email_capture|capture_server|razorpay", _command(service))
    }
    assert stand_ins == {"email-capture", "razorpay-standin"}
    for name in stand_ins:
        assert services[name].get("profiles") == ["dev"], name
        for ip, _, _ in _published(services[name]):
            assert ip == "127.0.0.1", name
    for name, service in services.items():
        if not service.get("profiles"):
            assert not set(service.get("depends_on") or {}) & stand_ins, name
    for name in ("prometheus", "grafana"):
        assert services[name].get("profiles") == ["observability"]


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = _image(service)
        assert image, f"{name} has no image"
        assert ":" in image, f"{name}: {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
    assert "auto-setup" not in COMPOSE_TEXT  # deprecated upstream


def test_temporal_server_on_postgres_with_schema_and_namespace_jobs(
    services: dict[str, dict[str, Any]],
) -> None:
    server, schema, namespace = (
        services[n] for n in ("temporal", "temporal-schema", "temporal-namespace")
    )
    assert _image(server).startswith("temporalio/server:")
    version = _image(server).rsplit(":", 1)[1]
    for job in (schema, namespace):
        assert _image(job) == f"temporalio/admin-tools:{version}"
        assert job.get("restart", "no").startswith(("no", "on-failure"))
    env = _env(server)
    assert (env["DB"], env["POSTGRES_SEEDS"]) == ("postgres12", "postgres")
    assert env["POSTGRES_PWD"] == _env(services["postgres"])["POSTGRES_PASSWORD"]
    assert _env(schema)["SQL_PASSWORD"] == env["POSTGRES_PWD"]
    dynamic = Path(env["DYNAMIC_CONFIG_FILE_PATH"]).name
    mount = next(v for v in server["volumes"] if "dynamicconfig" in v)
    yaml.safe_load((ROOT / mount.split(":")[0] / dynamic).read_text())

    assert schema["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert server["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert namespace["depends_on"]["temporal"]["condition"] == "service_healthy"
    schema_script = _mounted_script(schema)
    assert "setup-schema" in schema_script and "update-schema" in schema_script
    namespace_script = _mounted_script(namespace)
    assert "namespace create" in namespace_script
    for name in SEARCH_ATTRIBUTES:
        assert name in namespace_script
    assert "--type Keyword" in namespace_script
    init_sql = (ROOT / "deploy/postgres/init-databases.sql").read_text()
    for database in ("billing", "temporal", "temporal_visibility"):
        assert f"CREATE DATABASE {database};" in init_sql


def _mounted_script(service: dict[str, Any]) -> str:
    """The host file behind the script a job's entrypoint runs; checked by `sh -n`."""
    script = next(part for part in service["entrypoint"] if part.endswith(".sh"))
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if script.startswith(target.rstrip("/") + "/"):
            host = ROOT / source / script[len(target.rstrip("/")) + 1 :]
            subprocess.run(["sh", "-n", str(host)], check=True)
            return host.read_text()
    raise AssertionError(f"{script} is not mounted")


def test_every_mounted_host_path_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"


def test_migrations_only_in_the_migrate_job(services: dict[str, dict[str, Any]]) -> None:
    migrating = {n for n, s in services.items() if re.search(r"db\.migrate|alembic", _command(s))}
    assert migrating == {"migrate"}
    for name, service in _billing_services(services).items():
        assert _env(service)["MIGRATE_ON_START"] == "false", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "api"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal-namespace"]["condition"] == "service_completed_successfully"
    assert "python -m worker" in _command(services["worker"])
    assert "api.main:app" in _command(services["api"])


@pytest.mark.parametrize("name", ["api", "worker", "migrate"])
def test_billing_services_get_every_contract_variable(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _env(services[name])
    for var in CONTRACT_ENV:
        assert var in env, f"{name} lacks {var}"
    assert env["API_PORT"] == "8000"
    assert "@postgres:5432/billing" in env["DATABASE_URL"]
    assert services[name].get("build") == "."
    # Temporal through core.temporal_connection: the bundled profile unless .env says otherwise.
    profile = env["TEMPORAL_CONFIG_FILE"]
    mounts = dict(str(v).split(":")[1::-1] for v in services[name]["volumes"])
    host_dir = mounts[str(Path(profile).parent)]
    bundled = (ROOT / host_dir / Path(profile).name).read_text()
    assert 'address = "temporal:7233"' in bundled
    assert env["TEMPORAL_ADDRESS"] == "" and env["TEMPORAL_API_KEY"] == ""


def test_health_checks_and_metrics_ports(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "temporal", "temporal-ui", "worker", "api", "email-capture"):
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "/healthz" in str(services["api"]["healthcheck"]["test"])
    worker_port = _env(services["worker"])["WORKER_METRICS_PORT"]
    assert f"{worker_port}/metrics" in str(services["worker"]["healthcheck"]["test"])
    assert worker_port in services["worker"]["expose"]
    assert _env(services["api"])["API_METRICS_PORT"] in services["api"]["expose"]


def test_the_modules_the_compose_file_runs_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in _billing_services(services).items():
        match = re.search(r"python -m ([\w.]+)", _command(service))
        if match is None:
            continue
        module = match.group(1)
        path = ROOT / module.replace(".", "/")
        if module.startswith("dev.") and not (ROOT / "dev").is_dir():
            continue  # the dev/ package arrives with the layout refactor (issue 11)
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), name
    assert (ROOT / "api" / "main.py").is_file()
