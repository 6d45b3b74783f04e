"""The pricing rule of contract §1: exact Σ per component, half-up to the paisa after summing,
then a half-up margin on the rounded provider total."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.default_rate_card import DEFAULT_PRICES, TYPICAL_PHONE_CALL_USAGE
from domain.money import apply_rate_half_up, format_inr, inr_to_paisa_half_up, parse_decimal
from domain.rating import (
    RateCard,
    RatingError,
    UnitPrice,
    UsageLine,
    UsageTotals,
    price_usage,
    validate_margin_rate,
    validate_rate_card_prices,
    validate_usage_event,
)

CARD = RateCard(version=1, prices=DEFAULT_PRICES)
MARGIN = Decimal("0.30")


def _price(events: list[dict[str, object]], channel: str = "phone", margin: str = "0.30"):
    totals = UsageTotals()
    for raw in events:
        totals.add(validate_usage_event(raw, channel, CARD))
    return price_usage(totals.lines, CARD, Decimal(margin))


def _llm(event_id: str, input_tokens: int) -> dict[str, object]:
    # gpt-4o-mini input: ₹0.0000125 per token, so 400 tokens = ₹0.005 = 0.5 paisa.
    return {
        "event_id": event_id,
        "component": "llm",
        "sku": "openai/gpt-4o-mini",
        "input_tokens": input_tokens,
    }


def test_docs_example_60_second_english_phone_call() -> None:
    b = _price(list(TYPICAL_PHONE_CALL_USAGE))
    assert (b.llm_paisa, b.stt_paisa, b.tts_paisa, b.sip_paisa) == (40, 50, 220, 30)
    assert b.provider_total_paisa == 340
    assert b.margin_paisa == 102
    assert b.total_paisa == 442
    assert format_inr(b.total_paisa) == "₹4.42"


def test_docs_example_split_into_many_small_reports_prices_the_same() -> None:
    events: list[dict[str, object]] = []
    for second in range(60):
        events.append(
            {
                "event_id": f"llm-{second}",
                "component": "llm",
                "sku": "openai/gpt-4o-mini",
                "input_tokens": 400,
                "output_tokens": "33.3333333333333333333333333",
            }
        )
        events.append(
            {
                "event_id": f"stt-{second}",
                "component": "stt",
                "sku": "deepgram/nova-3",
                "audio_seconds": 1,
            }
        )
        events.append(
            {
                "event_id": f"sip-{second}",
                "component": "sip",
                "sku": "plivo/in-outbound",
                "seconds": 1,
            }
        )
    for chunk in range(10):
        events.append(
            {
                "event_id": f"tts-{chunk}",
                "component": "tts",
                "sku": "elevenlabs/flash-v2",
                "characters": 55,
            }
        )
    b = _price(events)
    assert (b.llm_paisa, b.stt_paisa, b.tts_paisa, b.sip_paisa) == (40, 50, 220, 30)
    assert b.total_paisa == 442


def test_rounding_happens_after_summing_not_per_report() -> None:
    # Two reports of 0.4 paisa each: 0.8 paisa summed -> 1 paisa (per report it would be 0).
    b = _price([_llm("a", 320), _llm("b", 320)], channel="chat")
    assert b.llm_paisa == 1
    # Ten reports of 0.4 paisa: 4 paisa, not 0 and not 10.
    b = _price([_llm(str(i), 320) for i in range(10)], channel="chat")
    assert b.llm_paisa == 4


@pytest.mark.parametrize(
    ("tokens", "paisa"),
    [(400, 1), (1200, 2), (2000, 3), (399, 0), (1199, 1), (0, 0)],  # 0.5, 1.5, 2.5 -> up
)
def test_component_rounds_half_up_not_to_even(tokens: int, paisa: int) -> None:
    assert _price([_llm("x", tokens)], channel="chat").llm_paisa == paisa


def test_margin_is_half_up_on_the_rounded_provider_total() -> None:
    # provider 15 paisa × 0.30 = 4.5 -> 5 (banker's rounding would give 4)
    assert apply_rate_half_up(15, MARGIN) == 5
    assert apply_rate_half_up(5, MARGIN) == 2  # 1.5 -> 2
    assert apply_rate_half_up(1, MARGIN) == 0  # 0.3 -> 0
    # Margin on the sum of rounded components, not per component: llm 1 + stt 1 + tts 1 + sip 2.
    lines = [
        UsageLine("llm", "openai/gpt-4o-mini", "input_tokens", "800"),  # 1 paisa
        UsageLine("stt", "deepgram/nova-3", "audio_seconds", "1.2"),  # 0.996 -> 1
        UsageLine("tts", "elevenlabs/flash-v2", "characters", "2"),  # 0.8 -> 1
        UsageLine("sip", "plivo/in-outbound", "seconds", "4"),  # 2
    ]
    b = price_usage(lines, CARD, MARGIN)
    assert (b.llm_paisa, b.stt_paisa, b.tts_paisa, b.sip_paisa) == (1, 1, 1, 2)
    assert b.provider_total_paisa == 5
    assert b.margin_paisa == 2  # per component it would be 0+0+0+1 = 1
    assert b.total_paisa == 7


def test_account_margin_rate_applies() -> None:
    b = _price(list(TYPICAL_PHONE_CALL_USAGE), margin="0.25")
    assert (b.provider_total_paisa, b.margin_paisa, b.total_paisa) == (340, 85, 425)
    b = _price(list(TYPICAL_PHONE_CALL_USAGE), margin="0")
    assert b.total_paisa == 340
    assert validate_margin_rate("0.125") == Decimal("0.125")
    for bad in (-1, "11", 0.3, "abc"):
        with pytest.raises(RatingError):
            validate_margin_rate(bad)


def test_money_helpers() -> None:
    assert inr_to_paisa_half_up(Decimal("0.005")) == 1
    assert inr_to_paisa_half_up(Decimal("0.0049999")) == 0
    assert inr_to_paisa_half_up(Decimal("4.425")) == 443
    assert format_inr(10000000) == "₹1,00,000.00"
    assert format_inr(-442) == "-₹4.42"
    assert format_inr(5) == "₹0.05"
    assert parse_decimal("0.0000125", "p") == Decimal("0.0000125")
    assert parse_decimal(7, "q") == Decimal(7)
    for bad in (0.1, True, "nan", "Infinity", "x", None):
        with pytest.raises(ValueError):
            parse_decimal(bad, "q")


@pytest.mark.parametrize(
    ("channel", "component", "sku", "unit"),
    [
        ("web", "sip", "plivo/in-outbound", "seconds"),
        ("whatsapp", "sip", "plivo/in-outbound", "seconds"),
        ("chat", "stt", "deepgram/nova-3", "audio_seconds"),
        ("chat", "tts", "elevenlabs/flash-v2", "characters"),
    ],
)
def test_usage_for_a_component_the_channel_lacks_is_rejected(
    channel: str, component: str, sku: str, unit: str
) -> None:
    raw = {"event_id": "e", "component": component, "sku": sku, unit: 1}
    with pytest.raises(RatingError) as err:
        validate_usage_event(raw, channel, CARD)
    assert err.value.code == "invalid_component"


def test_channel_components_accept_their_usage() -> None:
    for channel in ("phone", "web", "whatsapp"):
        validate_usage_event(
            {"event_id": "e", "component": "tts", "sku": "elevenlabs/flash-v2", "characters": 5},
            channel,
            CARD,
        )
    validate_usage_event(_llm("e", 5), "chat", CARD)


def test_bad_usage_reports() -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"event_id": "e", "component": "llm", "sku": "nope/x", "input_tokens": 1}, "unknown_sku"),
        (
            {"event_id": "e", "component": "stt", "sku": "openai/gpt-4o-mini", "audio_seconds": 1},
            "invalid_component",
        ),
        ({"event_id": "e", "component": "video", "sku": "x", "seconds": 1}, "invalid_component"),
        # Not a string at all (unhashable): rejected, never a TypeError in the workflow task.
        ({"event_id": "e", "component": ["llm"], "sku": "x", "seconds": 1}, "invalid_component"),
        ({"event_id": "", "component": "llm", "sku": "openai/gpt-4o-mini"}, "validation_error"),
        ({"event_id": "e", "component": "llm", "sku": "openai/gpt-4o-mini"}, "validation_error"),
        (_llm("e", -1), "validation_error"),
        ({**_llm("e", 1), "input_tokens": 1.5}, "validation_error"),
        ({**_llm("e", 1), "input_tokens": 10**10}, "validation_error"),
        (
            {
                "event_id": "e",
                "component": "llm",
                "sku": "google/gemini-2.0-flash",
                "cached_input_tokens": 5,
            },
            "unknown_sku",
        ),
    ]
    for raw, code in cases:
        with pytest.raises(RatingError) as err:
            validate_usage_event(raw, "phone", CARD)
        assert err.value.code == code, raw


def test_rate_card_validation() -> None:
    ok = validate_rate_card_prices(
        [{"sku": "a/b", "component": "stt", "unit": "audio_seconds", "price_inr": "0.0083"}]
    )
    assert ok == [UnitPrice("a/b", "stt", "audio_seconds", "0.0083")]
    bad_lists: list[list[dict[str, object]]] = [
        [],
        [{"sku": "a", "component": "stt", "unit": "audio_seconds", "price_inr": 0.1}],
        [{"sku": "a", "component": "stt", "unit": "audio_seconds", "price_inr": "-1"}],
        [{"sku": "a", "component": "stt", "unit": "characters", "price_inr": "1"}],
        [{"sku": "a", "component": "gpu", "unit": "seconds", "price_inr": "1"}],
        [{"sku": "", "component": "stt", "unit": "audio_seconds", "price_inr": "1"}],
        [
            {"sku": "a", "component": "stt", "unit": "audio_seconds", "price_inr": "1"},
            {"sku": "a", "component": "stt", "unit": "audio_seconds", "price_inr": "2"},
        ],
        [
            {"sku": "a", "component": "stt", "unit": "audio_seconds", "price_inr": "1"},
            {"sku": "a", "component": "tts", "unit": "characters", "price_inr": "2"},
        ],
    ]
    for prices in bad_lists:
        with pytest.raises(RatingError):
            validate_rate_card_prices(prices)


def test_usage_totals_sum_exactly_and_merge() -> None:
    a = UsageTotals()
    for i in range(3):
        a.add(validate_usage_event(_llm(str(i), 100), "chat", CARD))
    b = UsageTotals()
    b.add(validate_usage_event({**_llm("z", 0), "input_tokens": "0.1"}, "chat", CARD))
    a.merge(b)
    assert [(ln.unit, Decimal(ln.quantity)) for ln in a.lines] == [
        ("input_tokens", Decimal("300.1"))
    ]


def _half_up(value: Fraction) -> int:
    """Reference rounding on exact fractions (independent of Decimal's quantize)."""
    floor = value.numerator // value.denominator
    return floor + (1 if value - floor >= Fraction(1, 2) else 0)


_SKU_UNITS = [(p.sku, p.component, p.unit, p.price_inr) for p in DEFAULT_PRICES]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_SKU_UNITS),
            st.decimals(min_value=0, max_value=100000, places=3, allow_nan=False),
        ),
        max_size=12,
    ),
    st.sampled_from(["0.30", "0.25", "0", "1.5", "0.333"]),
)
def test_pricing_matches_an_exact_fraction_reference(
    usage: list[tuple[tuple[str, str, str, str], Decimal]], margin: str
) -> None:
    lines = [UsageLine(comp, sku, unit, str(qty)) for (sku, comp, unit, _), qty in usage]
    b = price_usage(lines, CARD, Decimal(margin))
    exact = {"llm": Fraction(0), "stt": Fraction(0), "tts": Fraction(0), "sip": Fraction(0)}
    for (_, comp, _, price), qty in usage:
        exact[comp] += Fraction(qty) * Fraction(price) * 100
    comps = {k: _half_up(v) for k, v in exact.items()}
    assert (b.llm_paisa, b.stt_paisa, b.tts_paisa, b.sip_paisa) == (
        comps["llm"],
        comps["stt"],
        comps["tts"],
        comps["sip"],
    )
    provider = sum(comps.values())
    assert b.provider_total_paisa == provider
    assert b.margin_paisa == _half_up(provider * Fraction(margin))
    assert b.total_paisa == b.provider_total_paisa + b.margin_paisa
    assert all(isinstance(v, int) for v in (b.total_paisa, b.margin_paisa, b.llm_paisa))
