"""Money is integer paisa; rates and unit prices are Decimal. No float anywhere."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

PAISA_PER_RUPEE = 100


def inr_to_paisa_half_up(amount_inr: Decimal) -> int:
    """Round an exact INR amount half-up (away from zero on .5) to whole paisa."""
    return int((amount_inr * PAISA_PER_RUPEE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def apply_rate_half_up(paisa: int, rate: Decimal) -> int:
    """paisa × rate, rounded half-up to whole paisa (used for the margin)."""
    return int((Decimal(paisa) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_inr(paisa: int) -> str:
    """₹ with two decimals and Indian digit grouping: 10000000 paisa -> '₹1,00,000.00'."""
    sign = "-" if paisa < 0 else ""
    rupees, rest = divmod(abs(paisa), PAISA_PER_RUPEE)
    digits = str(rupees)
    if len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        digits = ",".join([*groups, tail])
    return f"{sign}₹{digits}.{rest:02d}"


def parse_decimal(value: object, field: str) -> Decimal:
    """Parse a quantity or price given as int or decimal string; floats are refused."""
    if isinstance(value, bool | float):
        raise ValueError(
            f"{field} must be an integer or a decimal string, not {type(value).__name__}"
        )
    if isinstance(value, int | Decimal):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except ArithmeticError as exc:
            raise ValueError(f"{field} is not a decimal number: {value!r}") from exc
    else:
        raise ValueError(f"{field} must be a number")
    if not result.is_finite():
        raise ValueError(f"{field} must be finite")
    return result
