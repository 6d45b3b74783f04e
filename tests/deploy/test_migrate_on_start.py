"""MIGRATE_ON_START=false (what docker-compose.yml sets on the worker and the API): neither
touches the schema on start, so the `migrate` job is the only place migrations run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from worker.main import run as run_worker


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    plain = postgres_server_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"billing_nomigrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(plain).set(database=name).render_as_string(hide_password=False)
    yield url.replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().migrate_on_start is True  # dev stack and tests: migrate on start
    monkeypatch.setenv("MIGRATE_ON_START", "false")
    assert Settings().migrate_on_start is False


async def test_api_and_worker_leave_the_schema_alone(
    empty_database: str, workflow_env: WorkflowEnvironment
) -> None:
    settings = Settings(
        database_url=empty_database,
        temporal_address=workflow_env.client.service_client.config.target_host,
        migrate_on_start=False,
        worker_metrics_port=0,
        api_metrics_port=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    stop = asyncio.Event()
    stop.set()  # start, connect, and stop at once
    await run_worker(settings, stop)
    assert _tables(empty_database) == []
