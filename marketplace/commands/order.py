"""Commands, queries and replies of the order service: placing, delivering, completing, cancelling.

The gateway gathers the facts a placement needs (the gig's or the accepted
offer's terms, both parties' names and addresses) before sending
`PlaceOrder`; the money figures are never among them: the order service
computes them (`marketplace.pricing`). Every other command and query names an
order and is answered only for its buyer or its seller; to anyone else the
order does not exist (`not-found`), so that order ids cannot be probed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from attrs import Attribute, field, frozen

from ..events import MAX_DELIVERY_DAYS, ExtensionDecision, Party, ReviewKind
from ..pricing import MAX_PRICE_CENTS
from ..validation import (
    ValidationError,
    Validator,
    cents,
    email,
    identifier,
    int_between,
    member_of,
    name,
    optional,
    plain_text,
    rating,
    text,
    tuple_of,
    utc_datetime,
)
from . import Command, Query, Reply

MAX_NOTE_LENGTH = 2000
"""The longest delivery message, cancellation or extension reason."""
ORDERS_PER_PAGE = 10
"""Orders in one page of `ListOrders`: a page of the longest summaries fits the codec's body limit."""
MAX_PAGE = 10_000


def _optional_instance_of(cls: type) -> Validator:
    """None, or an instance of `cls` (a nested value of a reply)."""

    def validate(_instance: object, attribute: Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            raise ValidationError(
                attribute.name, f"expected a {cls.__name__} or None, got {type(value).__name__}"
            )

    return validate


class OrderStatus(StrEnum):
    """Where an order stands: placed -> delivered -> completed, or cancelled while placed."""

    PLACED = "placed"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Commands.


@frozen
class PlaceOrder(Command):
    """The signed-in buyer orders a gig, or the custom offer `offer_id` they accepted, on these terms."""

    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    seller_email: str = field(validator=email)
    buyer_username: str = field(validator=name)
    buyer_email: str = field(validator=email)
    price_cents: int = field(validator=int_between(1, MAX_PRICE_CENTS))
    delivery_days: int = field(validator=int_between(1, MAX_DELIVERY_DAYS))
    offer_id: str | None = field(default=None, validator=optional(identifier))


@frozen
class DeliverOrder(Command):
    """The seller hands over the work of a placed order, with an optional message."""

    order_id: str = field(validator=identifier)
    message: str = field(default="", validator=plain_text(blank=True, max_length=MAX_NOTE_LENGTH))


@frozen
class RequestExtension(Command):
    """The seller asks the buyer to move a placed order's due date `extra_days` later."""

    order_id: str = field(validator=identifier)
    extra_days: int = field(validator=int_between(1, MAX_DELIVERY_DAYS))
    reason: str = field(validator=plain_text(max_length=MAX_NOTE_LENGTH))


@frozen
class DecideExtension(Command):
    """The buyer approves or rejects the pending extension request of a placed order."""

    order_id: str = field(validator=identifier)
    decision: ExtensionDecision = field(validator=member_of(ExtensionDecision))


@frozen
class CompleteOrder(Command):
    """The buyer accepts a delivered order; the seller's earnings are released."""

    order_id: str = field(validator=identifier)


@frozen
class CancelOrder(Command):
    """The buyer or the seller cancels an order that is not delivered yet; the buyer is refunded."""

    order_id: str = field(validator=identifier)
    reason: str = field(default="", validator=plain_text(blank=True, max_length=MAX_NOTE_LENGTH))


# Queries.


@frozen
class GetOrder(Query):
    """One order, for its buyer or its seller."""

    order_id: str = field(validator=identifier)


@frozen
class ListOrders(Query):
    """The signed-in user's orders, as buyer or as seller, newest first, one page at a time."""

    page: int = field(default=1, validator=int_between(1, MAX_PAGE))


# Replies.


@frozen
class ExtensionRequestView:
    """A pending request to move an order's due date."""

    original_due_at: datetime = field(validator=utc_datetime)
    requested_due_at: datetime = field(validator=utc_datetime)
    extra_days: int = field(validator=int_between(1, MAX_DELIVERY_DAYS))
    reason: str = field(validator=text(max_length=MAX_NOTE_LENGTH))
    requested_at: datetime = field(validator=utc_datetime)


@frozen
class RefundView:
    """The refund of a cancelled order: the buyer gets back everything they paid."""

    refund_id: str = field(validator=identifier)
    amount_cents: int = field(validator=cents)
    refunded_at: datetime = field(validator=utc_datetime)


@frozen
class OrderReviewView:
    """A review posted on an order by one of its parties (`kind` says which)."""

    review_id: str = field(validator=identifier)
    kind: ReviewKind = field(validator=member_of(ReviewKind))
    reviewer_id: str = field(validator=identifier)
    reviewee_id: str = field(validator=identifier)
    rating: int = field(validator=rating)
    comment: str = field(validator=text(blank=True))
    created_at: datetime = field(validator=utc_datetime)


@frozen
class OrderView(Reply):
    """An order as its buyer and seller see it, with the figures computed when it was placed."""

    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    offer_id: str | None = field(validator=optional(identifier))
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    status: OrderStatus = field(validator=member_of(OrderStatus))
    price_cents: int = field(validator=cents)
    service_fee_cents: int = field(validator=cents)
    total_cents: int = field(validator=cents)
    seller_earnings_cents: int = field(validator=cents)
    payment_id: str = field(validator=identifier)
    delivery_days: int = field(validator=int_between(1, MAX_DELIVERY_DAYS))
    placed_at: datetime = field(validator=utc_datetime)
    due_at: datetime = field(validator=utc_datetime)
    delivered_at: datetime | None = field(validator=optional(utc_datetime))
    delivery_message: str = field(validator=text(blank=True, max_length=MAX_NOTE_LENGTH))
    completed_at: datetime | None = field(validator=optional(utc_datetime))
    cancelled_at: datetime | None = field(validator=optional(utc_datetime))
    cancelled_by: Party | None = field(validator=optional(member_of(Party)))
    cancellation_reason: str = field(validator=text(blank=True, max_length=MAX_NOTE_LENGTH))
    extension: ExtensionRequestView | None = field(validator=_optional_instance_of(ExtensionRequestView))
    refund: RefundView | None = field(validator=_optional_instance_of(RefundView))
    buyer_review: OrderReviewView | None = field(validator=_optional_instance_of(OrderReviewView))
    seller_review: OrderReviewView | None = field(validator=_optional_instance_of(OrderReviewView))


@frozen
class OrderSummary:
    """An order in a list: who, what, how much and where it stands (`GetOrder` tells the rest)."""

    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    offer_id: str | None = field(validator=optional(identifier))
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    status: OrderStatus = field(validator=member_of(OrderStatus))
    price_cents: int = field(validator=cents)
    total_cents: int = field(validator=cents)
    seller_earnings_cents: int = field(validator=cents)
    placed_at: datetime = field(validator=utc_datetime)
    due_at: datetime = field(validator=utc_datetime)


@frozen
class OrdersPage(Reply):
    """One page of a user's orders, newest first; `total` counts them all."""

    items: tuple[OrderSummary, ...] = field(validator=tuple_of(OrderSummary, max_length=ORDERS_PER_PAGE))
    total: int = field(validator=cents)
    page: int = field(validator=int_between(1, MAX_PAGE))
    page_size: int = field(validator=int_between(1, ORDERS_PER_PAGE))
