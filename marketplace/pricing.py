"""What an order costs the buyer and pays the seller: pure functions on integer cents.

The service fee is 5.5 % of the price, plus a flat 200 cents when the price is
under 5000 cents; the buyer pays the price plus the fee; the seller earns 80 %
of the price. Each percentage is rounded once, half up, to the cent, in
integer arithmetic (no float ever touches money). The order service computes
these figures when an order is placed and stores them on the order; nobody
else computes them, and no client supplies them.
"""

from __future__ import annotations

from attrs import frozen

MAX_PRICE_CENTS = 100_000_000
"""The dearest gig, offer or order: one million dollars."""
SERVICE_FEE_PER_MILLE = 55
"""The service fee's share of the price: 55 per mille (5.5 %)."""
SMALL_ORDER_LIMIT_CENTS = 5000
"""Prices under this pay the small-order surcharge."""
SMALL_ORDER_SURCHARGE_CENTS = 200
SELLER_SHARE_PERCENT = 80


def _share_rounded_half_up(amount_cents: int, numerator: int, denominator: int) -> int:
    """`amount_cents * numerator / denominator`, rounded half up to the cent."""
    if amount_cents < 0:
        raise ValueError(f"a price cannot be negative: {amount_cents}")
    return (2 * amount_cents * numerator + denominator) // (2 * denominator)


def service_fee_cents(price_cents: int) -> int:
    """The buyer's service fee for a price: 5.5 % (half up), plus 200 cents under 5000 cents."""
    fee = _share_rounded_half_up(price_cents, SERVICE_FEE_PER_MILLE, 1000)
    if price_cents < SMALL_ORDER_LIMIT_CENTS:
        fee += SMALL_ORDER_SURCHARGE_CENTS
    return fee


def total_cents(price_cents: int) -> int:
    """What the buyer pays: the price plus the service fee."""
    return price_cents + service_fee_cents(price_cents)


def seller_earnings_cents(price_cents: int) -> int:
    """What the seller earns: 80 % of the price, half up."""
    return _share_rounded_half_up(price_cents, SELLER_SHARE_PERCENT, 100)


@frozen
class Charges:
    """The money figures of one order, computed together from its price."""

    price_cents: int
    service_fee_cents: int
    total_cents: int
    seller_earnings_cents: int


def charges_for(price_cents: int) -> Charges:
    """Every money figure of an order of `price_cents`."""
    fee = service_fee_cents(price_cents)
    return Charges(
        price_cents=price_cents,
        service_fee_cents=fee,
        total_cents=price_cents + fee,
        seller_earnings_cents=seller_earnings_cents(price_cents),
    )
