"""docker-compose.yml and the Dockerfile, checked without a Docker engine: every service, port
and variable the contract (§5) names, health checks, start order, pinned images, and the files
the compose file mounts or runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_ENV = (
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "API_PORT",
    "ADMIN_API_KEY",
    "SENDGRID_API_KEY",
    "SENDGRID_HOST",
    "MIN_BALANCE_PAISA",
    "WELCOME_PROMO_PAISA",
)
SEARCH_ATTRIBUTES = ("AccountId", "CallChannel", "CallOutcome")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


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


def _ports(service: dict[str, Any]) -> set[str]:
    return {str(p) for p in service.get("ports", [])}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _image(service: dict[str, Any]) -> str:
    return str(service.get("image", ""))


def test_every_contract_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "temporal", "temporal-ui", "migrate", "worker", "api"):
        assert name in services, name
    assert _image(services["postgres"]).startswith("postgres:16")
    assert _image(services["temporal"]).startswith("temporalio/auto-setup:")
    assert _image(services["temporal-ui"]).startswith("temporalio/ui:")


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = _image(service)
        assert image, f"{name} has no image"
        assert ":" in image, f"{name}: {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"


def test_ports(services: dict[str, dict[str, Any]]) -> None:
    assert "8000:8000" in _ports(services["api"])
    assert "7233:7233" in _ports(services["temporal"])
    assert "8080:8080" in _ports(services["temporal-ui"])


def test_temporal_is_persisted_in_postgres(services: dict[str, dict[str, Any]]) -> None:
    env = _env(services["temporal"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["POSTGRES_PWD"] and env["POSTGRES_USER"]
    dynamic = env["DYNAMIC_CONFIG_FILE_PATH"]
    mounted = [v for v in services["temporal"]["volumes"] if "dynamicconfig" in v]
    assert mounted, "dynamic config directory not mounted"
    host_dir = ROOT / mounted[0].split(":")[0]
    assert (host_dir / Path(dynamic).name).is_file()
    yaml.safe_load((host_dir / Path(dynamic).name).read_text())
    assert _env(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "postgres-data" in str(services["postgres"]["volumes"])


def test_search_attributes_are_registered(services: dict[str, dict[str, Any]]) -> None:
    registrars = [s for s in services.values() if _image(s).startswith("temporalio/admin-tools:")]
    assert len(registrars) == 1
    registrar = registrars[0]
    assert registrar["depends_on"]["temporal"]["condition"] == "service_healthy"
    script_mount = next(v for v in registrar["volumes"] if v.endswith(".sh:ro"))
    script = (ROOT / script_mount.split(":")[0]).read_text()
    for name in SEARCH_ATTRIBUTES:
        assert name in script
    assert "--type Keyword" in script


@pytest.mark.parametrize("name", ["api", "worker", "migrate"])
def test_billing_services_get_every_contract_variable(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _env(services[name])
    for var in CONTRACT_ENV:
        assert var in env, f"{name} lacks {var}"
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["API_PORT"] == "8000"
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert services[name].get("build") == "."


def test_migrations_run_before_worker_and_api(services: dict[str, dict[str, Any]]) -> None:
    assert "db.migrate" in _command(services["migrate"])
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "api"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["temporal"]["condition"] == "service_healthy"
        registrar = next(k for k in depends if "search-attributes" in k)
        assert depends[registrar]["condition"] == "service_completed_successfully"
    assert "python -m worker" in _command(services["worker"])
    assert "api.main:app" in _command(services["api"])


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "temporal", "temporal-ui", "worker", "api"):
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "/healthz" in str(services["api"]["healthcheck"]["test"])
    assert "9464/metrics" in str(services["worker"]["healthcheck"]["test"])


def test_dockerfile_installs_the_project_without_embedded_extras() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"pip install \.(\s|$)", dockerfile)
    assert "embedded" not in re.sub(r"#.*", "", dockerfile)
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", ".run", ".git"):
        assert path in ignored


def test_the_modules_the_compose_file_runs_exist() -> None:
    for module in ("db/migrate.py", "dev/email_capture.py", "api/main.py"):
        assert (ROOT / module).is_file(), module
    assert (ROOT / "worker" / "__main__.py").is_file()
