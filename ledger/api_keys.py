"""API keys and the roles they carry. Only the SHA-256 of a secret is stored; the secret is
shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import psycopg
from sqlalchemy.orm import Session

from db.models import ApiKey
from ledger.errors import NotFound, ValidationFailed
from ledger.live import IDLE_CHECK_SECONDS, conninfo
from ledger.posting import new_id, utcnow
from ledger.repositories import accounts as account_rows
from ledger.repositories import api_charges, catalog
from ledger.repositories.statements import fetch_async

# The role policy: `customer` keys are bound to one account; `admin` may do everything
# (api.auth.require_roles admits admin everywhere). The one definition of the roles.
Role = Literal["customer", "orchestrator", "support", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
API_KEY_PREFIX = "osk_"
# Migration 0009: every change of an api_keys row is `NOTIFY billing_api_keys, '<key_id>'`.
KEY_CHANNEL = "billing_api_keys"


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session, *, role: str, account_id: str | None = None
) -> tuple[ApiKey, str]:
    """Returns the stored key and its secret; only the hash is kept."""
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}")
    if role == "customer":
        if not account_id:
            raise ValidationFailed("a customer key needs an account_id")
        if account_rows.get_account(session, account_id) is None:
            raise NotFound(f"account {account_id} not found")
    elif account_id is not None:
        raise ValidationFailed("only customer keys are bound to an account")
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        key_hash=hash_api_key(secret),
        prefix=secret[:10],
        role=role,
        account_id=account_id,
    )
    session.add(key)
    session.flush()
    return key, secret


@dataclass(frozen=True)
class LiveKey:
    """What a request needs of its (unrevoked) key."""

    id: str
    role: str
    account_id: str | None


def resolve_api_key(session: Session, secret: str) -> ApiKey | None:
    """The live (unrevoked) key behind a secret, or None."""
    key = catalog.api_key_by_hash(session, hash_api_key(secret))
    if key is None or key.revoked_at is not None:
        return None
    return key


async def resolve_api_key_async(conn: psycopg.AsyncConnection[Any], secret: str) -> LiveKey | None:
    """`resolve_api_key` on the API's async pool (every request of the hot paths asks)."""
    rows = await fetch_async(conn, api_charges.api_key_by_hash(hash_api_key(secret)))
    if not rows or rows[0][3] is not None:
        return None
    key_id, role, account_id, _ = rows[0]
    return LiveKey(key_id, role, account_id)


def find_api_key(session: Session, key_id: str) -> ApiKey | None:
    return catalog.get_api_key(session, key_id)


def revoke_api_key(session: Session, key_id: str) -> ApiKey:
    key = catalog.get_api_key(session, key_id)
    if key is None:
        raise NotFound(f"api key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


async def key_changes(database_url: str) -> AsyncGenerator[str | None, None]:
    """The id of every API key changed (revoked, edited, deleted) from now on, as committed;
    None first, once listening (anything may have changed before). Runs until the connection
    fails, then raises."""
    async with await psycopg.AsyncConnection.connect(
        conninfo(database_url), autocommit=True, application_name="billing-api-keys"
    ) as connection:
        await connection.execute(f"LISTEN {KEY_CHANNEL}")
        yield None
        while True:
            async for notification in connection.notifies(timeout=IDLE_CHECK_SECONDS):
                yield notification.payload
            await connection.execute("SELECT 1")  # a quiet connection is probed: dead is noticed
