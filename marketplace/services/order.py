"""The order service: an order's life from placement to completion or cancellation.

An order moves placed -> delivered -> completed. While it is placed, either
party may cancel it (the buyer is refunded what they paid) and the seller may
ask for one extension at a time, which the buyer approves or rejects; the due
date moves only on approval, and a request still pending lapses when the
order is delivered or cancelled. The money figures are computed here, once,
when the order is placed (`marketplace.pricing`), and every later event
carries the stored figures.

Who may do what: to anyone but its buyer and its seller an order does not
exist (`not-found`, field `order_id`), so that its existence does not leak;
a party doing the other party's part is `forbidden`, with the field naming
the party it takes (`buyer_id` or `seller_id`); a step the order's state does
not allow is `invalid-state`, naming `status` (or `extension`).

Reviews arrive as `ReviewAdded` from the review service and are stored on the
order, one per side. The same review again changes nothing; a different
review for a side already reviewed, a review of an unknown or uncompleted
order, or one whose parties are not the order's is refused (dead-lettered).
"""

from __future__ import annotations

from datetime import timedelta

from attrs import evolve

from ..commands.order import (
    ORDERS_PER_PAGE,
    CancelOrder,
    CompleteOrder,
    DecideExtension,
    DeliverOrder,
    ExtensionRequestView,
    GetOrder,
    ListOrders,
    OrderReviewView,
    OrdersPage,
    OrderStatus,
    OrderSummary,
    OrderView,
    PlaceOrder,
    RefundView,
    RequestExtension,
)
from ..errors import DomainError, conflict, forbidden, invalid, invalid_state, not_found
from ..events import (
    ExtensionDecision,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderExtensionDecided,
    OrderExtensionRequested,
    OrderPlaced,
    Party,
    ReviewAdded,
    ReviewKind,
)
from ..pricing import charges_for
from ..service import Service, Work, handles
from .order_records import ORDERED_OFFERS, ORDERS, Order, PendingExtension, Refund, StoredReview


class OrderService(Service):
    """Places orders, moves them through their states, and keeps the reviews posted on them."""

    name = "order"
    publishes = frozenset(
        {
            OrderPlaced,
            OrderDelivered,
            OrderExtensionRequested,
            OrderExtensionDecided,
            OrderCompleted,
            OrderCancelled,
        }
    )

    @handles(PlaceOrder)
    def do_place_order(self, work: Work, command: PlaceOrder) -> OrderView:
        """The buyer orders a gig or an accepted offer; payment is taken and the figures fixed here."""
        buyer_id = _signed_in(work)
        if buyer_id == command.seller_id:
            raise forbidden("a seller cannot order their own gig", "seller_id")
        if command.offer_id is not None and work.get(ORDERED_OFFERS, command.offer_id) is not None:
            raise conflict("this offer has already been ordered", "offer_id")
        charges = charges_for(command.price_cents)
        order = Order(
            order_id=work.new_id(),
            gig_id=command.gig_id,
            gig_title=command.gig_title,
            offer_id=command.offer_id,
            buyer_id=buyer_id,
            buyer_username=command.buyer_username,
            buyer_email=command.buyer_email,
            seller_id=command.seller_id,
            seller_username=command.seller_username,
            seller_email=command.seller_email,
            price_cents=charges.price_cents,
            service_fee_cents=charges.service_fee_cents,
            total_cents=charges.total_cents,
            seller_earnings_cents=charges.seller_earnings_cents,
            payment_id=work.new_id(),  # the payment is simulated: taking it always succeeds
            delivery_days=command.delivery_days,
            placed_at=work.now,
            due_at=work.now + timedelta(days=command.delivery_days),
        )
        work.put(ORDERS, order.order_id, order)
        if order.offer_id is not None:
            work.put(ORDERED_OFFERS, order.offer_id, order.order_id)
        work.emit(
            OrderPlaced(
                order_id=order.order_id,
                gig_id=order.gig_id,
                gig_title=order.gig_title,
                buyer_id=order.buyer_id,
                buyer_username=order.buyer_username,
                buyer_email=order.buyer_email,
                seller_id=order.seller_id,
                seller_username=order.seller_username,
                seller_email=order.seller_email,
                price_cents=order.price_cents,
                service_fee_cents=order.service_fee_cents,
                total_cents=order.total_cents,
                seller_earnings_cents=order.seller_earnings_cents,
                placed_at=order.placed_at,
                due_at=order.due_at,
            )
        )
        return _view(order)

    @handles(DeliverOrder)
    def do_deliver_order(self, work: Work, command: DeliverOrder) -> OrderView:
        """The seller delivers a placed order; a pending extension request lapses."""
        order = _order_for(work, command.order_id)
        _must_be(order, Party.SELLER, work.actor_id, "only the seller delivers an order")
        _must_be_placed(order, "only a placed order can be delivered")
        order = evolve(
            order,
            status=OrderStatus.DELIVERED,
            delivered_at=work.now,
            delivery_message=command.message,
            extension=None,
        )
        work.put(ORDERS, order.order_id, order)
        work.emit(
            OrderDelivered(
                order_id=order.order_id,
                gig_title=order.gig_title,
                buyer_id=order.buyer_id,
                buyer_username=order.buyer_username,
                buyer_email=order.buyer_email,
                seller_id=order.seller_id,
                seller_username=order.seller_username,
                delivered_at=work.now,
            )
        )
        return _view(order)

    @handles(RequestExtension)
    def do_request_extension(self, work: Work, command: RequestExtension) -> OrderView:
        """The seller asks to move a placed order's due date; one request at a time."""
        order = _order_for(work, command.order_id)
        _must_be(order, Party.SELLER, work.actor_id, "only the seller asks for an extension")
        _must_be_placed(order, "only a placed order can be extended")
        if order.extension is not None:
            raise invalid_state("an extension request is already waiting for the buyer", "extension")
        extension = PendingExtension(
            original_due_at=order.due_at,
            requested_due_at=order.due_at + timedelta(days=command.extra_days),
            extra_days=command.extra_days,
            reason=command.reason,
            requested_at=work.now,
        )
        order = evolve(order, extension=extension)
        work.put(ORDERS, order.order_id, order)
        work.emit(
            OrderExtensionRequested(
                order_id=order.order_id,
                gig_title=order.gig_title,
                buyer_id=order.buyer_id,
                buyer_username=order.buyer_username,
                buyer_email=order.buyer_email,
                seller_id=order.seller_id,
                seller_username=order.seller_username,
                original_due_at=extension.original_due_at,
                requested_due_at=extension.requested_due_at,
                reason=extension.reason,
            )
        )
        return _view(order)

    @handles(DecideExtension)
    def do_decide_extension(self, work: Work, command: DecideExtension) -> OrderView:
        """The buyer answers the pending extension request; only an approval moves the due date."""
        order = _order_for(work, command.order_id)
        _must_be(order, Party.BUYER, work.actor_id, "only the buyer decides on an extension")
        _must_be_placed(order, "only a placed order can be extended")
        extension = order.extension
        if extension is None:
            raise invalid_state("no extension request is waiting for a decision", "extension")
        approved = command.decision is ExtensionDecision.APPROVED
        order = evolve(order, due_at=extension.requested_due_at if approved else order.due_at, extension=None)
        work.put(ORDERS, order.order_id, order)
        work.emit(
            OrderExtensionDecided(
                order_id=order.order_id,
                gig_title=order.gig_title,
                buyer_id=order.buyer_id,
                buyer_username=order.buyer_username,
                seller_id=order.seller_id,
                seller_username=order.seller_username,
                seller_email=order.seller_email,
                decision=command.decision,
                original_due_at=extension.original_due_at,
                requested_due_at=extension.requested_due_at,
            )
        )
        return _view(order)

    @handles(CompleteOrder)
    def do_complete_order(self, work: Work, command: CompleteOrder) -> OrderView:
        """The buyer accepts a delivery; the seller's stored earnings are released."""
        order = _order_for(work, command.order_id)
        _must_be(order, Party.BUYER, work.actor_id, "only the buyer completes an order")
        if order.status is not OrderStatus.DELIVERED:
            raise invalid_state(
                f"only a delivered order can be completed; this one is {order.status}", "status"
            )
        order = evolve(order, status=OrderStatus.COMPLETED, completed_at=work.now)
        work.put(ORDERS, order.order_id, order)
        work.emit(
            OrderCompleted(
                order_id=order.order_id,
                gig_id=order.gig_id,
                gig_title=order.gig_title,
                buyer_id=order.buyer_id,
                seller_id=order.seller_id,
                seller_username=order.seller_username,
                seller_email=order.seller_email,
                seller_earnings_cents=order.seller_earnings_cents,
                completed_at=work.now,
            )
        )
        return _view(order)

    @handles(CancelOrder)
    def do_cancel_order(self, work: Work, command: CancelOrder) -> OrderView:
        """Either party cancels an order not yet delivered; the buyer gets back all they paid."""
        order = _order_for(work, command.order_id)
        party = Party.BUYER if work.actor_id == order.buyer_id else Party.SELLER
        _must_be_placed(order, "only an order not yet delivered can be cancelled")
        refund = Refund(refund_id=work.new_id(), amount_cents=order.total_cents, refunded_at=work.now)
        order = evolve(
            order,
            status=OrderStatus.CANCELLED,
            cancelled_at=work.now,
            cancelled_by=party,
            cancellation_reason=command.reason,
            extension=None,
            refund=refund,
        )
        work.put(ORDERS, order.order_id, order)
        work.emit(
            OrderCancelled(
                order_id=order.order_id,
                gig_id=order.gig_id,
                gig_title=order.gig_title,
                buyer_id=order.buyer_id,
                buyer_username=order.buyer_username,
                buyer_email=order.buyer_email,
                seller_id=order.seller_id,
                seller_username=order.seller_username,
                seller_email=order.seller_email,
                cancelled_by=party,
                reason=command.reason,
                refund_cents=refund.amount_cents,
                cancelled_at=work.now,
            )
        )
        return _view(order)

    @handles(GetOrder)
    def do_get_order(self, work: Work, query: GetOrder) -> OrderView:
        """One order, for its buyer or its seller."""
        return _view(_order_for(work, query.order_id))

    @handles(ListOrders)
    def do_list_orders(self, work: Work, query: ListOrders) -> OrdersPage:
        """The signed-in user's orders as buyer or seller, newest first, one page at a time."""
        user_id = _signed_in(work)
        mine = sorted(
            (order for order in work.values(ORDERS) if order.party_of(user_id) is not None),
            key=lambda order: (order.placed_at, order.order_id),
            reverse=True,
        )
        start = (query.page - 1) * ORDERS_PER_PAGE
        return OrdersPage(
            items=tuple(_summary(order) for order in mine[start : start + ORDERS_PER_PAGE]),
            total=len(mine),
            page=query.page,
            page_size=ORDERS_PER_PAGE,
        )

    @handles(ReviewAdded)
    def when_review_added(self, work: Work, event: ReviewAdded) -> None:
        """A review of a completed order is kept on it, once per side."""
        order: Order | None = work.get(ORDERS, event.order_id)
        if order is None:
            raise not_found("order", "order_id")
        if order.status is not OrderStatus.COMPLETED:
            raise invalid_state(
                f"only a completed order can be reviewed; this one is {order.status}", "status"
            )
        if event.gig_id != order.gig_id:
            raise invalid("gig_id", "the review's gig is not the order's")
        by_buyer = event.kind is ReviewKind.BUYER
        reviewer, reviewee = (
            (order.buyer_id, order.seller_id) if by_buyer else (order.seller_id, order.buyer_id)
        )
        if (event.reviewer_id, event.reviewee_id) != (reviewer, reviewee):
            raise invalid("reviewer_id", f"a {event.kind} review must be by the order's {event.kind}")
        review = StoredReview(
            review_id=event.review_id,
            kind=event.kind,
            reviewer_id=event.reviewer_id,
            reviewee_id=event.reviewee_id,
            rating=event.rating,
            comment=event.comment,
            created_at=event.created_at,
        )
        side = "buyer_review" if by_buyer else "seller_review"
        stored: StoredReview | None = getattr(order, side)
        if stored == review:
            return
        if stored is not None:
            raise conflict(f"the order already has its {event.kind} review {stored.review_id}", side)
        order = evolve(order, buyer_review=review) if by_buyer else evolve(order, seller_review=review)
        work.put(ORDERS, order.order_id, order)


def _signed_in(work: Work) -> str:
    """The signed-in user's id; anonymous requests are refused."""
    if work.actor_id is None:
        raise DomainError("unauthenticated", "sign in first")
    return work.actor_id


def _order_for(work: Work, order_id: str) -> Order:
    """The order `order_id` if the signed-in user is one of its parties; not-found otherwise."""
    user_id = _signed_in(work)
    order: Order | None = work.get(ORDERS, order_id)
    if order is None or order.party_of(user_id) is None:
        raise not_found("order", "order_id")
    return order


def _must_be(order: Order, party: Party, user_id: str | None, message: str) -> None:
    """Refuse unless `user_id` is the order's `party`."""
    if order.party_of(user_id) is not party:
        raise forbidden(message, f"{party}_id")


def _must_be_placed(order: Order, message: str) -> None:
    """Refuse unless the order is placed (neither delivered, completed nor cancelled)."""
    if order.status is not OrderStatus.PLACED:
        raise invalid_state(f"{message}; it is {order.status}", "status")


def _view(order: Order) -> OrderView:
    """What the order's parties see of it."""
    extension = order.extension
    return OrderView(
        order_id=order.order_id,
        gig_id=order.gig_id,
        gig_title=order.gig_title,
        offer_id=order.offer_id,
        buyer_id=order.buyer_id,
        buyer_username=order.buyer_username,
        seller_id=order.seller_id,
        seller_username=order.seller_username,
        status=order.status,
        price_cents=order.price_cents,
        service_fee_cents=order.service_fee_cents,
        total_cents=order.total_cents,
        seller_earnings_cents=order.seller_earnings_cents,
        payment_id=order.payment_id,
        delivery_days=order.delivery_days,
        placed_at=order.placed_at,
        due_at=order.due_at,
        delivered_at=order.delivered_at,
        delivery_message=order.delivery_message,
        completed_at=order.completed_at,
        cancelled_at=order.cancelled_at,
        cancelled_by=order.cancelled_by,
        cancellation_reason=order.cancellation_reason,
        extension=None
        if extension is None
        else ExtensionRequestView(
            original_due_at=extension.original_due_at,
            requested_due_at=extension.requested_due_at,
            extra_days=extension.extra_days,
            reason=extension.reason,
            requested_at=extension.requested_at,
        ),
        refund=None
        if order.refund is None
        else RefundView(
            refund_id=order.refund.refund_id,
            amount_cents=order.refund.amount_cents,
            refunded_at=order.refund.refunded_at,
        ),
        buyer_review=_review_view(order.buyer_review),
        seller_review=_review_view(order.seller_review),
    )


def _summary(order: Order) -> OrderSummary:
    """An order as a line in its parties' lists."""
    return OrderSummary(
        order_id=order.order_id,
        gig_id=order.gig_id,
        gig_title=order.gig_title,
        offer_id=order.offer_id,
        buyer_id=order.buyer_id,
        buyer_username=order.buyer_username,
        seller_id=order.seller_id,
        seller_username=order.seller_username,
        status=order.status,
        price_cents=order.price_cents,
        total_cents=order.total_cents,
        seller_earnings_cents=order.seller_earnings_cents,
        placed_at=order.placed_at,
        due_at=order.due_at,
    )


def _review_view(review: StoredReview | None) -> OrderReviewView | None:
    """A stored review as the order's parties see it."""
    if review is None:
        return None
    return OrderReviewView(
        review_id=review.review_id,
        kind=review.kind,
        reviewer_id=review.reviewer_id,
        reviewee_id=review.reviewee_id,
        rating=review.rating,
        comment=review.comment,
        created_at=review.created_at,
    )
