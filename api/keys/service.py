from __future__ import annotations

from sqlalchemy.orm import Session

from api.keys.schemas import ApiKeyCreated, ApiKeyOut
from ledger import api_keys


def create_key(session: Session, role: str, account_id: str | None) -> ApiKeyCreated:
    key, secret = api_keys.create_api_key(session, role=role, account_id=account_id)
    session.flush()
    session.refresh(key)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)


def revoke_key(session: Session, key_id: str) -> ApiKeyOut:
    key = api_keys.revoke_api_key(session, key_id)
    session.flush()
    session.refresh(key)
    return ApiKeyOut.model_validate(key)
