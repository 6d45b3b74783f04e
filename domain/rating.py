"""The pricing rule of the contract (§1), usage validation and accumulation.

Everything here is deterministic and I/O free: workflows price the running breakdown with it and
the ledger prices the final charge with it, so both always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from domain.channels import CHANNEL_COMPONENTS, COMPONENT_ORDER, COMPONENT_UNITS, Channel, Component
from domain.money import apply_rate_half_up, inr_to_paisa_half_up, parse_decimal

DEFAULT_MARGIN_RATE = Decimal("0.30")
MAX_MARGIN_RATE = Decimal("10")
# One usage report may not claim more than this of any unit (a day of audio, a billion tokens):
# absurd quantities are a bug upstream, not a bill to send.
MAX_QUANTITY = Decimal("1000000000")


# The channel/component tables keyed by their string values: pricing runs for every usage report
# and osmAPI request, and enum lookups were a visible part of its cost.
_COMPONENTS = frozenset(c.value for c in Component)
_ORDER = tuple(c.value for c in COMPONENT_ORDER)
_UNITS = {c.value: units for c, units in COMPONENT_UNITS.items()}
_CHANNEL_COMPONENTS = {
    ch.value: frozenset(c.value for c in cs) for ch, cs in CHANNEL_COMPONENTS.items()
}


class RatingError(ValueError):
    """A usage report or rate card that cannot be priced; `code` is the stable API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UnitPrice:
    sku: str
    component: str
    unit: str
    price_inr: str  # exact decimal string, INR per one unit


@dataclass
class RateCard:
    version: int
    prices: list[UnitPrice]
    effective_from: str | None = None  # ISO time

    def price_map(self) -> dict[tuple[str, str], Decimal]:
        return dict(self._maps()[0])

    def sku_components(self) -> dict[str, str]:
        return dict(self._maps()[1])

    def _maps(self) -> tuple[dict[tuple[str, str], Decimal], dict[str, str]]:
        """Both lookups, built once per price list (every priced request asks for them). Kept
        outside the dataclass fields, so a card's serialized shape stays what it was."""
        cached = self.__dict__.get("_maps_cache")
        if cached is None or cached[0] is not self.prices:
            maps = (
                {(p.sku, p.unit): Decimal(p.price_inr) for p in self.prices},
                {p.sku: p.component for p in self.prices},
            )
            cached = (self.prices, maps)
            self.__dict__["_maps_cache"] = cached
        result: tuple[dict[tuple[str, str], Decimal], dict[str, str]] = cached[1]
        return result


def validate_rate_card_prices(raw_prices: Iterable[Mapping[str, object]]) -> list[UnitPrice]:
    """Check a published price list: known components and units, non-negative exact prices."""
    prices: list[UnitPrice] = []
    seen: set[tuple[str, str]] = set()
    sku_component: dict[str, str] = {}
    for index, raw in enumerate(raw_prices):
        sku = str(raw.get("sku", "")).strip()
        component = str(raw.get("component", ""))
        unit = str(raw.get("unit", ""))
        if not sku:
            raise RatingError("validation_error", f"prices[{index}].sku is required")
        if component not in {c.value for c in Component}:
            raise RatingError(
                "invalid_component", f"prices[{index}].component {component!r} is unknown"
            )
        if unit not in COMPONENT_UNITS[Component(component)]:
            raise RatingError(
                "validation_error",
                f"prices[{index}].unit {unit!r} is not a unit of {component}",
            )
        try:
            price = parse_decimal(raw.get("price_inr"), f"prices[{index}].price_inr")
        except ValueError as exc:
            raise RatingError("validation_error", str(exc)) from exc
        if price < 0 or price > Decimal("100000"):
            raise RatingError("validation_error", f"prices[{index}].price_inr is out of range")
        if sku_component.setdefault(sku, component) != component:
            raise RatingError("validation_error", f"sku {sku!r} is listed under two components")
        if (sku, unit) in seen:
            raise RatingError("validation_error", f"sku {sku!r} has two prices for {unit}")
        seen.add((sku, unit))
        prices.append(UnitPrice(sku=sku, component=component, unit=unit, price_inr=str(price)))
    if not prices:
        raise RatingError("validation_error", "a rate card needs at least one price")
    return prices


@dataclass(frozen=True)
class UsageEvent:
    """One validated provider usage report."""

    event_id: str
    component: str
    sku: str
    quantities: dict[str, str]  # unit -> exact decimal string
    occurred_at: str | None = None


def validate_usage_event(
    raw: Mapping[str, object], channel: str, rate_card: RateCard
) -> UsageEvent:
    """Validate a raw usage report against the call's channel and its pinned rate card."""
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
        raise RatingError("validation_error", "event_id must be a non-empty string")
    component = raw.get("component")
    if not isinstance(component, str) or component not in _COMPONENTS:
        raise RatingError("invalid_component", f"component {component!r} is unknown")
    channel_components = _CHANNEL_COMPONENTS.get(channel)
    if channel_components is None:
        Channel(channel)  # raises ValueError: an unknown channel is the caller's bug
    if component not in (channel_components or ()):
        raise RatingError("invalid_component", f"a {channel} call has no {component} component")
    sku = raw.get("sku")
    if not isinstance(sku, str) or not sku:
        raise RatingError("validation_error", "sku is required")
    prices, sku_components = rate_card._maps()
    sku_component = sku_components.get(sku)
    if sku_component is None:
        raise RatingError("unknown_sku", f"sku {sku!r} is not on rate card v{rate_card.version}")
    if sku_component != component:
        raise RatingError(
            "invalid_component", f"sku {sku!r} is a {sku_component} sku, not {component}"
        )
    quantities: dict[str, str] = {}
    for unit in _UNITS[component]:
        if unit not in raw or raw[unit] is None:
            continue
        try:
            quantity = parse_decimal(raw[unit], unit)
        except ValueError as exc:
            raise RatingError("validation_error", str(exc)) from exc
        if quantity < 0 or quantity > MAX_QUANTITY:
            raise RatingError("validation_error", f"{unit} must be between 0 and {MAX_QUANTITY}")
        if quantity and (sku, unit) not in prices:
            raise RatingError("unknown_sku", f"sku {sku!r} has no price for {unit}")
        quantities[unit] = str(quantity)
    if not quantities:
        raise RatingError(
            "validation_error",
            f"a {component} report needs one of {', '.join(_UNITS[component])}",
        )
    occurred_at = raw.get("occurred_at")
    return UsageEvent(
        event_id=event_id,
        component=component,
        sku=sku,
        quantities=quantities,
        occurred_at=str(occurred_at) if occurred_at is not None else None,
    )


@dataclass
class UsageLine:
    component: str
    sku: str
    unit: str
    quantity: str  # exact decimal string


@dataclass
class UsageTotals:
    """Σ quantity per (component, sku, unit); JSON friendly so it can live in workflow state."""

    lines: list[UsageLine] = field(default_factory=list)

    def add(self, event: UsageEvent) -> None:
        index = {(ln.component, ln.sku, ln.unit): ln for ln in self.lines}
        for unit, quantity in event.quantities.items():
            key = (event.component, event.sku, unit)
            line = index.get(key)
            if line is None:
                line = UsageLine(event.component, event.sku, unit, "0")
                self.lines.append(line)
                index[key] = line
            line.quantity = str(Decimal(line.quantity) + Decimal(quantity))

    def merge(self, other: UsageTotals) -> None:
        for line in other.lines:
            self.add(UsageEvent("", line.component, line.sku, {line.unit: line.quantity}))


@dataclass(frozen=True)
class Breakdown:
    llm_paisa: int
    stt_paisa: int
    tts_paisa: int
    sip_paisa: int
    provider_total_paisa: int
    margin_paisa: int
    total_paisa: int
    margin_rate: str

    @staticmethod
    def zero(margin_rate: Decimal = DEFAULT_MARGIN_RATE) -> Breakdown:
        return Breakdown(0, 0, 0, 0, 0, 0, 0, str(margin_rate))


def price_usage(lines: Iterable[UsageLine], rate_card: RateCard, margin_rate: Decimal) -> Breakdown:
    """The contract's pricing rule: exact Σ per component, half-up to the paisa, then margin."""
    prices = rate_card._maps()[0]
    exact: dict[str, Decimal] = dict.fromkeys(_ORDER, Decimal(0))
    for line in lines:
        price = prices.get((line.sku, line.unit))
        if price is None:
            raise RatingError("unknown_sku", f"sku {line.sku!r} has no price for {line.unit}")
        exact[line.component] += Decimal(line.quantity) * price
    component_paisa = {
        name: inr_to_paisa_half_up(amount) if amount else 0 for name, amount in exact.items()
    }
    provider_total = sum(component_paisa.values())
    margin = apply_rate_half_up(provider_total, margin_rate)
    return Breakdown(
        llm_paisa=component_paisa["llm"],
        stt_paisa=component_paisa["stt"],
        tts_paisa=component_paisa["tts"],
        sip_paisa=component_paisa["sip"],
        provider_total_paisa=provider_total,
        margin_paisa=margin,
        total_paisa=provider_total + margin,
        margin_rate=str(margin_rate),
    )


def validate_margin_rate(value: object) -> Decimal:
    try:
        rate = parse_decimal(value, "margin_rate")
    except ValueError as exc:
        raise RatingError("validation_error", str(exc)) from exc
    if rate < 0 or rate > MAX_MARGIN_RATE:
        raise RatingError(
            "validation_error", f"margin_rate must be between 0 and {MAX_MARGIN_RATE}"
        )
    return rate
