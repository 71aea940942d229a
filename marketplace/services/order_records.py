"""What the order service stores: orders with their figures, refunds, extension requests and reviews."""

from __future__ import annotations

from datetime import datetime

from attrs import frozen

from ..commands.order import OrderStatus
from ..events import Party, ReviewKind

ORDERS = "orders"
"""Orders by order id."""
ORDERED_OFFERS = "ordered_offers"
"""The order placed from each custom offer, by offer id: an offer is ordered once."""


@frozen
class PendingExtension:
    """The seller's request to move the due date, awaiting the buyer's decision."""

    original_due_at: datetime
    requested_due_at: datetime
    extra_days: int
    reason: str
    requested_at: datetime


@frozen
class Refund:
    """Money given back to the buyer when an order is cancelled."""

    refund_id: str
    amount_cents: int
    refunded_at: datetime


@frozen
class StoredReview:
    """A review of one side of the order, as the review service announced it."""

    review_id: str
    kind: ReviewKind
    reviewer_id: str
    reviewee_id: str
    rating: int
    comment: str
    created_at: datetime


@frozen
class Order:
    """An order: its terms and parties, the figures computed when placed, and where it stands."""

    order_id: str
    gig_id: str
    gig_title: str
    offer_id: str | None
    buyer_id: str
    buyer_username: str
    buyer_email: str
    seller_id: str
    seller_username: str
    seller_email: str
    price_cents: int
    service_fee_cents: int
    total_cents: int
    seller_earnings_cents: int
    payment_id: str
    delivery_days: int
    placed_at: datetime
    due_at: datetime
    status: OrderStatus = OrderStatus.PLACED
    delivered_at: datetime | None = None
    delivery_message: str = ""
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancelled_by: Party | None = None
    cancellation_reason: str = ""
    extension: PendingExtension | None = None
    refund: Refund | None = None
    buyer_review: StoredReview | None = None
    seller_review: StoredReview | None = None

    def party_of(self, user_id: str | None) -> Party | None:
        """Which side of this order `user_id` is on, if any."""
        if user_id == self.buyer_id:
            return Party.BUYER
        if user_id == self.seller_id:
            return Party.SELLER
        return None
