"""The money of an order: fee, total and earnings, rounded half up once, in integer cents."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.pricing import (
    MAX_PRICE_CENTS,
    charges_for,
    seller_earnings_cents,
    service_fee_cents,
    total_cents,
)

prices = st.integers(min_value=0, max_value=MAX_PRICE_CENTS)


def _reference_fee(price: int) -> int:
    """The fee as the rule states it, in decimal arithmetic."""
    fee = (Decimal(price) * Decimal("0.055")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(fee) + (200 if price < 5000 else 0)


def _reference_earnings(price: int) -> int:
    return int((Decimal(price) * Decimal("0.8")).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize(
    ("price", "fee"),
    [
        (4999, 475),  # 274.945 rounds to 275, plus the small-order 200
        (5000, 275),  # exactly 5.5 %, no surcharge from 5000 on
        (5001, 275),  # 275.055
        (1, 200),  # 0.055 rounds to 0
        (10, 201),  # 0.55 rounds up
        (100, 206),  # 5.5: a half cent rounds up
        (300, 217),  # 16.5
        (5100, 281),  # 280.5, above the surcharge limit
        (0, 200),
    ],
)
def test_service_fee_at_the_boundaries_and_half_cents(price: int, fee: int) -> None:
    assert service_fee_cents(price) == fee


@pytest.mark.parametrize(
    ("price", "earnings"), [(4999, 3999), (5000, 4000), (1, 1), (2, 2), (3, 2), (7, 6), (100, 80)]
)
def test_seller_earns_eighty_percent_rounded_half_up(price: int, earnings: int) -> None:
    assert seller_earnings_cents(price) == earnings


def test_crossing_five_thousand_cents_drops_the_surcharge() -> None:
    assert total_cents(4999) == 5474
    assert total_cents(5000) == 5275


@given(prices)
def test_buyer_pays_the_price_plus_the_fee(price: int) -> None:
    assert total_cents(price) == price + service_fee_cents(price)


@given(prices)
def test_seller_never_earns_more_than_the_price(price: int) -> None:
    assert 0 <= seller_earnings_cents(price) <= price


@given(prices)
def test_figures_match_the_rule_in_decimal_arithmetic(price: int) -> None:
    assert service_fee_cents(price) == _reference_fee(price)
    assert seller_earnings_cents(price) == _reference_earnings(price)


@given(prices)
def test_charges_hold_the_same_figures_as_the_functions(price: int) -> None:
    charges = charges_for(price)
    assert charges.price_cents == price
    assert charges.service_fee_cents == service_fee_cents(price)
    assert charges.total_cents == total_cents(price) == price + charges.service_fee_cents
    assert charges.seller_earnings_cents == seller_earnings_cents(price)


@given(st.integers(min_value=0, max_value=MAX_PRICE_CENTS - 1))
def test_a_dearer_price_never_earns_the_seller_less(price: int) -> None:
    assert seller_earnings_cents(price + 1) >= seller_earnings_cents(price)


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        service_fee_cents(-1)
