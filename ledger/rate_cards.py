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
from ledger.repositories.api_charges import rate_card_effective_from, rate_card_prices
from ledger.repositories.statements import Steps

# Keyed by database too: one process (a test run) may talk to several databases whose
# version numbers collide.
_rate_card_cache: dict[tuple[str, int], RateCard] = {}


def clear_cache() -> None:
    """Forget every cached card (tests that recreate a database reuse version numbers)."""
    _rate_card_cache.clear()


def cached_rate_card(database: str, version: int) -> RateCard | None:
    """A card already loaded from `database` (any string naming one database)."""
    return _rate_card_cache.get((database, version))


def remember_rate_card(
    database: str,
    version: int,
    effective_from: datetime,
    prices: Iterable[tuple[str, str, str, Decimal]],
) -> RateCard:
    """The card of `version` built from its rows (sku, component, unit, price), cached."""
    card = RateCard(
        version=version,
        prices=[
            UnitPrice(sku, component, unit, str(price.normalize()))
            for sku, component, unit, price in prices
        ],
        effective_from=effective_from.isoformat(),
    )
    _rate_card_cache[(database, version)] = card
    return card


def load_rate_card(session: Session, version: int) -> RateCard:
    """Versions are immutable once published, so they are cached forever in-process."""
    database = str(session.get_bind().engine.url)
    cached = cached_rate_card(database, version)
    if cached is not None:
        return cached
    header = catalog.rate_card_version(session, version)
    if header is None:
        raise NotFound(f"rate card v{version} not found")
    return remember_rate_card(
        database,
        version,
        header.effective_from,
        (
            (p.sku, p.component, p.unit, p.price_inr)
            for p in catalog.rate_card_prices(session, version)
        ),
    )


def rate_card_steps(database: str, version: int) -> Steps[RateCard]:
    """`load_rate_card` as a step of plain statements (ledger.repositories.statements): the
    cached card, or one round trip that reads it."""
    cached = cached_rate_card(database, version)
    if cached is not None:
        return cached
    header, prices = yield [rate_card_effective_from(version), rate_card_prices(version)]
    if not header:
        raise NotFound(f"rate card v{version} not found")
    return remember_rate_card(database, version, header[0][0], prices)


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
