"""Versioned rate cards: a call is priced with the version in force when it was authorized."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import Principal, require_roles
from api.deps import PrincipalDep, SessionDep, run_db
from api.errors import COMMON, MUTATING
from api.idempotency import IdempotentRoute, idempotency_key_header
from api.rate_cards.schemas import PriceOut, RateCardIn, RateCardOut
from api.schemas import as_utc
from domain.rating import RateCard
from ledger import rate_cards

router = APIRouter(prefix="/v1/rate-cards", tags=["rate cards"], route_class=IdempotentRoute)
Admin = Annotated[Principal, Depends(require_roles("admin"))]


def card_out(card: RateCard) -> RateCardOut:
    return RateCardOut(
        version=card.version,
        effective_from=card.effective_from,
        prices=[PriceOut(**p.__dict__) for p in card.prices],
    )


@router.get(
    "/current", response_model=RateCardOut, responses=COMMON, summary="The rate card in force"
)
async def current_rate_card(_: PrincipalDep, factory: SessionDep) -> RateCardOut:
    return card_out(await run_db(factory, rate_cards.current_rate_card))


@router.post(
    "",
    status_code=201,
    response_model=RateCardOut,
    responses=MUTATING,
    dependencies=[Depends(idempotency_key_header)],
    summary="Publish a new rate card version",
)
async def publish_rate_card(body: RateCardIn, _: Admin, factory: SessionDep) -> RateCardOut:
    card = await run_db(
        factory,
        lambda s: rate_cards.publish_rate_card(
            s,
            prices=[p.model_dump() for p in body.prices],
            effective_from=as_utc(body.effective_from),
        ),
    )
    return card_out(card)
