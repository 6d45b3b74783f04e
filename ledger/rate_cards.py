"""Versioned rate cards: publish, the one in force, a pinned version (cached: immutable)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from db.models import RateCardPrice, RateCardVersion
from domain.rating import RateCard, RatingError, UnitPrice, validate_rate_card_prices
from ledger.errors import NotFound, ValidationFailed
from ledger.posting import request_hash, utcnow
from ledger.repositories import catalog

# Keyed by database too: one process (a test run) may talk to several databases whose
# version numbers collide.
_rate_card_cache: dict[tuple[str, int], RateCard] = {}


def clear_cache() -> None:
    """Forget every cached card (tests that recreate a database reuse version numbers)."""
    _rate_card_cache.clear()


def load_rate_card(session: Session, version: int) -> RateCard:
    """Versions are immutable once published, so they are cached forever in-process."""
    cache_key = (str(session.get_bind().engine.url), version)
    cached = _rate_card_cache.get(cache_key)
    if cached is not None:
        return cached
    header = catalog.rate_card_version(session, version)
    if header is None:
        raise NotFound(f"rate card v{version} not found")
    card = RateCard(
        version=version,
        prices=[
            UnitPrice(p.sku, p.component, p.unit, str(p.price_inr.normalize()))
            for p in catalog.rate_card_prices(session, version)
        ],
        effective_from=header.effective_from.isoformat(),
    )
    _rate_card_cache[cache_key] = card
    return card


def current_rate_card(session: Session, at: datetime | None = None) -> RateCard:
    header = catalog.rate_card_in_force(session, at or utcnow())
    if header is None:
        raise NotFound("no rate card is in force")
    return load_rate_card(session, header.version)


def publish_rate_card(
    session: Session,
    *,
    prices: Iterable[Mapping[str, object]],
    effective_from: datetime | None = None,
    idempotency_key: str | None = None,
) -> RateCard:
    try:
        validated = validate_rate_card_prices(prices)
    except RatingError as exc:
        raise ValidationFailed(exc.message, code=exc.code) from exc
    payload_hash = request_hash(
        {
            "key": idempotency_key,
            "prices": [p.__dict__ for p in validated],
            "effective_from": effective_from,
        }
    )
    if idempotency_key:
        existing = catalog.rate_card_by_hash(session, payload_hash)
        if existing is not None:
            return load_rate_card(session, existing.version)
    header = RateCardVersion(
        effective_from=effective_from or utcnow(),
        request_hash=payload_hash if idempotency_key else None,
    )
    session.add(header)
    session.flush()
    session.add_all(
        RateCardPrice(
            version=header.version,
            sku=p.sku,
            unit=p.unit,
            component=p.component,
            price_inr=Decimal(p.price_inr),
        )
        for p in validated
    )
    session.flush()
    return load_rate_card(session, header.version)
