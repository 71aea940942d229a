"""The order service: placing orders, their state machine, refunds, extensions, the reviews kept on them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, cast

import attrs
import pytest

from marketplace import protocol
from marketplace.codec import DEFAULT_MAX_SIZE
from marketplace.commands.chat import AcceptOffer, OfferView, SendOffer, StartConversation
from marketplace.commands.gig import GigCategory, GigStatus, GigView
from marketplace.commands.order import (
    MAX_NOTE_LENGTH,
    ORDERS_PER_PAGE,
    CancelOrder,
    CompleteOrder,
    DecideExtension,
    DeliverOrder,
    GetOrder,
    ListOrders,
    OrdersPage,
    OrderStatus,
    OrderView,
    PlaceOrder,
    RequestExtension,
)
from marketplace.commands.users import GetUser, SellerStatus, UserView
from marketplace.errors import DomainError, not_found
from marketplace.events import (
    MAX_DELIVERY_DAYS,
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
from marketplace.gateway.client import ServiceClient
from marketplace.gateway.orders import Orders
from marketplace.pricing import MAX_PRICE_CENTS
from marketplace.services.chat import ChatService
from marketplace.services.order import OrderService
from marketplace.validation import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_TEXT_LENGTH, ValidationError
from tests.marketplace.harness import START, ServiceHarness, running
from transports import PermanentError

BUYER = "buyer-1"
SELLER = "seller-1"
STRANGER = "stranger-1"


@pytest.fixture
def order_service() -> Iterator[ServiceHarness]:
    yield from running(OrderService)


def place(
    h: ServiceHarness,
    *,
    price_cents: int = 4000,
    delivery_days: int = 3,
    offer_id: str | None = None,
    buyer: str = BUYER,
    seller: str = SELLER,
    key: str | None = None,
) -> OrderView:
    command = PlaceOrder(
        gig_id="gig-1",
        gig_title="A logo in a day",
        seller_id=seller,
        seller_username="sam",
        seller_email="sam@example.com",
        buyer_username="bea",
        buyer_email="bea@example.com",
        price_cents=price_cents,
        delivery_days=delivery_days,
        offer_id=offer_id,
    )
    reply: OrderView = h.request(command, actor_id=buyer, key=key)
    return reply


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    return caught.value


def get(h: ServiceHarness, order_id: str, actor: str = BUYER) -> OrderView:
    reply: OrderView = h.request(GetOrder(order_id), actor_id=actor)
    return reply


def review_added(
    order: OrderView,
    kind: ReviewKind,
    *,
    review_id: str = "review-1",
    rating: int = 5,
    comment: str = "great",
) -> ReviewAdded:
    by_buyer = kind is ReviewKind.BUYER
    return ReviewAdded(
        review_id=review_id,
        order_id=order.order_id,
        gig_id=order.gig_id,
        reviewer_id=order.buyer_id if by_buyer else order.seller_id,
        reviewee_id=order.seller_id if by_buyer else order.buyer_id,
        kind=kind,
        rating=rating,
        comment=comment,
        created_at=START + timedelta(days=5),
    )


def completed(h: ServiceHarness) -> OrderView:
    order = place(h)
    h.request(DeliverOrder(order.order_id), actor_id=SELLER)
    reply: OrderView = h.request(CompleteOrder(order.order_id), actor_id=BUYER)
    return reply


# Placing an order.


def test_placing_an_order_fixes_its_figures_and_due_date(order_service: ServiceHarness) -> None:
    order = place(order_service, price_cents=4999, delivery_days=3)

    assert order.status is OrderStatus.PLACED
    assert (order.price_cents, order.service_fee_cents, order.total_cents) == (4999, 475, 5474)
    assert order.seller_earnings_cents == 3999
    assert order.placed_at == START
    assert order.due_at == START + timedelta(days=3)
    assert order.payment_id
    assert (order.buyer_id, order.seller_id) == (BUYER, SELLER)
    assert get(order_service, order.order_id) == order


def test_placing_an_order_announces_the_stored_figures(order_service: ServiceHarness) -> None:
    order = place(order_service, price_cents=5000)

    [placed] = order_service.events(OrderPlaced)
    assert placed.order_id == order.order_id
    assert (placed.price_cents, placed.service_fee_cents, placed.total_cents) == (5000, 275, 5275)
    assert placed.seller_earnings_cents == 4000
    assert (placed.buyer_email, placed.seller_email) == ("bea@example.com", "sam@example.com")
    assert (placed.placed_at, placed.due_at) == (order.placed_at, order.due_at)


def test_a_client_cannot_send_the_money_figures() -> None:
    fields = {f.name for f in attrs.fields(PlaceOrder)}
    assert fields.isdisjoint({"service_fee_cents", "total_cents", "seller_earnings_cents"})


def test_a_seller_cannot_order_their_own_gig(order_service: ServiceHarness) -> None:
    error = refused(place, order_service, buyer=SELLER, seller=SELLER)
    assert (error.code, error.field) == ("forbidden", "seller_id")
    assert order_service.events(OrderPlaced) == []


def test_an_anonymous_user_cannot_place_an_order(order_service: ServiceHarness) -> None:
    command = PlaceOrder("gig-1", "t", SELLER, "sam", "sam@example.com", "bea", "bea@example.com", 100, 1)
    error = refused(order_service.request, command, actor_id=None)
    assert (error.code, error.field) == ("unauthenticated", None)


def test_an_offer_is_ordered_only_once(order_service: ServiceHarness) -> None:
    first = place(order_service, offer_id="offer-1")

    error = refused(place, order_service, offer_id="offer-1")

    assert (error.code, error.field) == ("conflict", "offer_id")
    assert first.offer_id == "offer-1"
    assert len(order_service.events(OrderPlaced)) == 1


def test_a_gig_may_be_ordered_again(order_service: ServiceHarness) -> None:
    first, second = place(order_service), place(order_service)
    assert first.order_id != second.order_id
    assert first.payment_id != second.payment_id


def test_a_retried_placement_places_one_order(order_service: ServiceHarness) -> None:
    first = place(order_service, key="place-1")
    again = place(order_service, key="place-1")

    assert again == first
    # The retry republishes the recorded event (same message id), which consumers skip.
    assert {e.message_id for e in order_service.published if isinstance(e.event, OrderPlaced)} == {
        order_service.published[0].message_id
    }
    page: OrdersPage = order_service.request(ListOrders(), actor_id=BUYER)
    assert page.total == 1


@pytest.mark.parametrize(
    ("price_cents", "delivery_days", "field"),
    [(0, 1, "price_cents"), (-5, 1, "price_cents"), (100, 0, "delivery_days"), (100, 366, "delivery_days")],
)
def test_an_order_needs_a_price_and_a_delivery_time(price_cents: int, delivery_days: int, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PlaceOrder(
            "gig-1",
            "t",
            SELLER,
            "sam",
            "sam@example.com",
            "bea",
            "bea@example.com",
            price_cents,
            delivery_days,
        )
    assert caught.value.field == field


# The state machine, step by step: every action by either party in every state.

STATES = ("placed", "placed-with-extension", "delivered", "completed", "cancelled")


def order_in(h: ServiceHarness, state: str) -> OrderView:
    order = place(h)
    steps: dict[str, list[tuple[Any, str]]] = {
        "placed": [],
        "placed-with-extension": [(RequestExtension(order.order_id, 2, "more time"), SELLER)],
        "delivered": [(DeliverOrder(order.order_id), SELLER)],
        "completed": [(DeliverOrder(order.order_id), SELLER), (CompleteOrder(order.order_id), BUYER)],
        "cancelled": [(CancelOrder(order.order_id), BUYER)],
    }
    for command, actor in steps[state]:
        order = h.request(command, actor_id=actor)
    return order


ACTIONS: dict[str, Callable[[str], Any]] = {
    "deliver": lambda order_id: DeliverOrder(order_id, "here it is"),
    "complete": CompleteOrder,
    "cancel": lambda order_id: CancelOrder(order_id, "changed my mind"),
    "request-extension": lambda order_id: RequestExtension(order_id, 2, "more time"),
    "approve-extension": lambda order_id: DecideExtension(order_id, ExtensionDecision.APPROVED),
}

# (action, actor, state) -> the new status, or the refusal's (code, field).
ALLOWED = {
    ("deliver", SELLER, "placed"): OrderStatus.DELIVERED,
    ("deliver", SELLER, "placed-with-extension"): OrderStatus.DELIVERED,
    ("complete", BUYER, "delivered"): OrderStatus.COMPLETED,
    ("cancel", BUYER, "placed"): OrderStatus.CANCELLED,
    ("cancel", SELLER, "placed"): OrderStatus.CANCELLED,
    ("cancel", BUYER, "placed-with-extension"): OrderStatus.CANCELLED,
    ("cancel", SELLER, "placed-with-extension"): OrderStatus.CANCELLED,
    ("request-extension", SELLER, "placed"): OrderStatus.PLACED,
    ("approve-extension", BUYER, "placed-with-extension"): OrderStatus.PLACED,
}
ONLY = {
    "deliver": SELLER,
    "complete": BUYER,
    "request-extension": SELLER,
    "approve-extension": BUYER,
}


def expected(action: str, actor: str, state: str) -> OrderStatus | tuple[str, str]:
    if (action, actor, state) in ALLOWED:
        return ALLOWED[(action, actor, state)]
    only = ONLY.get(action)
    if only is not None and actor != only:
        return ("forbidden", f"{'seller' if only == SELLER else 'buyer'}_id")
    if state == "placed-with-extension" and action == "request-extension":
        return ("invalid-state", "extension")
    if state == "placed" and action == "approve-extension":
        return ("invalid-state", "extension")
    return ("invalid-state", "status")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("actor", [BUYER, SELLER])
@pytest.mark.parametrize("action", ACTIONS)
def test_every_step_of_the_order_state_machine(
    order_service: ServiceHarness, action: str, actor: str, state: str
) -> None:
    order = order_in(order_service, state)
    published = len(order_service.published)
    outcome = expected(action, actor, state)

    if isinstance(outcome, OrderStatus):
        after: OrderView = order_service.request(ACTIONS[action](order.order_id), actor_id=actor)
        assert after.status is outcome
        assert get(order_service, order.order_id) == after
        assert len(order_service.published) == published + 1
    else:
        error = refused(order_service.request, ACTIONS[action](order.order_id), actor_id=actor)
        assert (error.code, error.field) == outcome
        assert get(order_service, order.order_id) == order
        assert len(order_service.published) == published


@pytest.mark.parametrize("action", ACTIONS)
def test_to_a_stranger_an_order_does_not_exist(order_service: ServiceHarness, action: str) -> None:
    order = place(order_service)

    for actor in (STRANGER, BUYER):
        order_id = order.order_id if actor == STRANGER else "no-such-order"
        error = refused(order_service.request, ACTIONS[action](order_id), actor_id=actor)
        assert (error.code, error.field) == ("not-found", "order_id")


@pytest.mark.parametrize("action", ACTIONS)
def test_an_anonymous_user_cannot_touch_an_order(order_service: ServiceHarness, action: str) -> None:
    order = place(order_service)
    error = refused(order_service.request, ACTIONS[action](order.order_id), actor_id=None)
    assert error.code == "unauthenticated"


# Delivery and completion.


def test_delivering_tells_the_buyer_and_keeps_the_message(order_service: ServiceHarness) -> None:
    order = place(order_service)
    order_service.clock.advance(days=1)

    delivered: OrderView = order_service.request(DeliverOrder(order.order_id, "the files"), actor_id=SELLER)

    assert (delivered.status, delivered.delivered_at) == (OrderStatus.DELIVERED, START + timedelta(days=1))
    assert delivered.delivery_message == "the files"
    [event] = order_service.events(OrderDelivered)
    assert (event.order_id, event.buyer_email, event.delivered_at) == (
        order.order_id,
        "bea@example.com",
        START + timedelta(days=1),
    )


def test_completing_releases_the_stored_earnings(order_service: ServiceHarness) -> None:
    order = place(order_service, price_cents=1234)
    order_service.request(DeliverOrder(order.order_id), actor_id=SELLER)
    order_service.clock.advance(hours=5)

    done: OrderView = order_service.request(CompleteOrder(order.order_id), actor_id=BUYER)

    assert (done.status, done.completed_at) == (OrderStatus.COMPLETED, START + timedelta(hours=5))
    [event] = order_service.events(OrderCompleted)
    assert event.seller_earnings_cents == order.seller_earnings_cents == 987
    assert (event.completed_at, event.gig_id, event.seller_email) == (
        done.completed_at,
        "gig-1",
        "sam@example.com",
    )


def test_a_retried_completion_pays_the_seller_once(order_service: ServiceHarness) -> None:
    order = place(order_service)
    order_service.request(DeliverOrder(order.order_id), actor_id=SELLER)

    first = order_service.request(CompleteOrder(order.order_id), actor_id=BUYER, key="complete-1")
    again = order_service.request(CompleteOrder(order.order_id), actor_id=BUYER, key="complete-1")

    assert again == first
    completions = [e for e in order_service.published if isinstance(e.event, OrderCompleted)]
    assert len({e.message_id for e in completions}) == 1
    assert get(order_service, order.order_id) == first


# Cancellation and refund.


@pytest.mark.parametrize(("actor", "party"), [(BUYER, Party.BUYER), (SELLER, Party.SELLER)])
def test_cancelling_refunds_everything_the_buyer_paid(
    order_service: ServiceHarness, actor: str, party: Party
) -> None:
    order = place(order_service, price_cents=4999)
    order_service.clock.advance(hours=1)

    cancelled: OrderView = order_service.request(CancelOrder(order.order_id, "no time"), actor_id=actor)

    assert cancelled.status is OrderStatus.CANCELLED
    assert (cancelled.cancelled_by, cancelled.cancellation_reason) == (party, "no time")
    assert cancelled.cancelled_at == START + timedelta(hours=1)
    assert cancelled.refund is not None
    assert cancelled.refund.amount_cents == order.total_cents == 5474
    assert cancelled.refund.refunded_at == cancelled.cancelled_at
    assert cancelled.refund.refund_id
    [event] = order_service.events(OrderCancelled)
    assert (event.refund_cents, event.cancelled_by, event.reason) == (5474, party, "no time")
    assert (event.buyer_email, event.seller_email) == ("bea@example.com", "sam@example.com")


def test_a_cancellation_needs_no_reason(order_service: ServiceHarness) -> None:
    order = place(order_service)
    cancelled: OrderView = order_service.request(CancelOrder(order.order_id), actor_id=BUYER)
    assert cancelled.cancellation_reason == ""
    assert order_service.events(OrderCancelled)[0].reason == ""


# Extensions.


def test_requesting_an_extension_leaves_the_due_date_until_approved(order_service: ServiceHarness) -> None:
    order = place(order_service, delivery_days=3)

    asked: OrderView = order_service.request(
        RequestExtension(order.order_id, 2, "the client changed the brief"), actor_id=SELLER
    )

    assert asked.due_at == order.due_at
    assert asked.extension is not None
    assert asked.extension.requested_due_at == order.due_at + timedelta(days=2)
    assert asked.extension.reason == "the client changed the brief"
    [event] = order_service.events(OrderExtensionRequested)
    assert (event.original_due_at, event.requested_due_at) == (order.due_at, order.due_at + timedelta(days=2))
    assert (event.reason, event.buyer_email) == ("the client changed the brief", "bea@example.com")


def test_an_approved_extension_moves_the_due_date(order_service: ServiceHarness) -> None:
    order = place(order_service, delivery_days=3)
    order_service.request(RequestExtension(order.order_id, 2, "more time"), actor_id=SELLER)

    decided: OrderView = order_service.request(
        DecideExtension(order.order_id, ExtensionDecision.APPROVED), actor_id=BUYER
    )

    assert decided.due_at == order.due_at + timedelta(days=2)
    assert decided.extension is None
    [event] = order_service.events(OrderExtensionDecided)
    assert event.decision is ExtensionDecision.APPROVED
    assert (event.original_due_at, event.requested_due_at) == (order.due_at, decided.due_at)
    assert event.seller_email == "sam@example.com"


def test_a_rejected_extension_keeps_the_due_date(order_service: ServiceHarness) -> None:
    order = place(order_service, delivery_days=3)
    order_service.request(RequestExtension(order.order_id, 2, "more time"), actor_id=SELLER)

    decided: OrderView = order_service.request(
        DecideExtension(order.order_id, ExtensionDecision.REJECTED), actor_id=BUYER
    )

    assert decided.due_at == order.due_at
    assert decided.extension is None
    [event] = order_service.events(OrderExtensionDecided)
    assert event.decision is ExtensionDecision.REJECTED
    assert event.requested_due_at == order.due_at + timedelta(days=2)


def test_after_a_decision_the_seller_may_ask_again_from_the_new_date(order_service: ServiceHarness) -> None:
    order = place(order_service, delivery_days=3)
    order_service.request(RequestExtension(order.order_id, 2, "more time"), actor_id=SELLER)
    order_service.request(DecideExtension(order.order_id, ExtensionDecision.APPROVED), actor_id=BUYER)

    again: OrderView = order_service.request(
        RequestExtension(order.order_id, 1, "a bit more"), actor_id=SELLER
    )

    assert again.extension is not None
    assert again.extension.original_due_at == order.due_at + timedelta(days=2)
    assert again.extension.requested_due_at == order.due_at + timedelta(days=3)


def test_a_pending_extension_lapses_when_the_order_is_delivered(order_service: ServiceHarness) -> None:
    order = place(order_service)
    order_service.request(RequestExtension(order.order_id, 2, "more time"), actor_id=SELLER)

    delivered: OrderView = order_service.request(DeliverOrder(order.order_id), actor_id=SELLER)

    assert delivered.extension is None
    assert delivered.due_at == order.due_at
    error = refused(
        order_service.request, DecideExtension(order.order_id, ExtensionDecision.APPROVED), actor_id=BUYER
    )
    assert (error.code, error.field) == ("invalid-state", "status")


# Reading orders.


def test_an_order_is_seen_by_its_buyer_and_its_seller_only(order_service: ServiceHarness) -> None:
    order = place(order_service)

    assert get(order_service, order.order_id, BUYER) == get(order_service, order.order_id, SELLER) == order
    for actor, code in ((STRANGER, "not-found"), (None, "unauthenticated")):
        error = refused(order_service.request, GetOrder(order.order_id), actor_id=actor)
        assert error.code == code
    error = refused(get, order_service, "no-such-order")
    assert (error.code, error.field) == ("not-found", "order_id")


def test_a_user_lists_their_orders_as_buyer_and_as_seller_newest_first(order_service: ServiceHarness) -> None:
    bought = place(order_service, buyer=BUYER, seller=SELLER)
    order_service.clock.advance(minutes=1)
    sold = place(order_service, buyer=STRANGER, seller=BUYER)
    order_service.clock.advance(minutes=1)
    place(order_service, buyer=STRANGER, seller=SELLER)

    page: OrdersPage = order_service.request(ListOrders(), actor_id=BUYER)

    assert [o.order_id for o in page.items] == [sold.order_id, bought.order_id]
    assert (page.total, page.page, page.page_size) == (2, 1, ORDERS_PER_PAGE)


def test_orders_are_listed_a_page_at_a_time(order_service: ServiceHarness) -> None:
    placed = []
    for _ in range(ORDERS_PER_PAGE + 1):
        placed.append(place(order_service).order_id)
        order_service.clock.advance(minutes=1)

    first: OrdersPage = order_service.request(ListOrders(page=1), actor_id=BUYER)
    second: OrdersPage = order_service.request(ListOrders(page=2), actor_id=BUYER)
    third: OrdersPage = order_service.request(ListOrders(page=3), actor_id=BUYER)

    assert [o.order_id for o in first.items + second.items] == placed[::-1]
    assert (len(first.items), len(second.items), third.items) == (ORDERS_PER_PAGE, 1, ())
    assert first.total == second.total == ORDERS_PER_PAGE + 1


def test_an_anonymous_user_has_no_orders_to_list(order_service: ServiceHarness) -> None:
    error = refused(order_service.request, ListOrders(), actor_id=None)
    assert error.code == "unauthenticated"


# Reviews kept on the order.


@pytest.mark.parametrize("kind", list(ReviewKind))
def test_a_review_is_kept_on_its_side_of_the_order(order_service: ServiceHarness, kind: ReviewKind) -> None:
    order = completed(order_service)
    event = review_added(order, kind, rating=4, comment="fine")

    assert order_service.deliver(event) == []

    stored = get(order_service, order.order_id)
    mine, other = (
        (stored.buyer_review, stored.seller_review)
        if kind is ReviewKind.BUYER
        else (stored.seller_review, stored.buyer_review)
    )
    assert other is None
    assert mine is not None
    assert (mine.review_id, mine.kind, mine.rating, mine.comment) == ("review-1", kind, 4, "fine")
    assert (mine.reviewer_id, mine.reviewee_id) == (event.reviewer_id, event.reviewee_id)


def test_both_reviews_give_the_same_order_whatever_their_order_of_arrival() -> None:
    outcomes = []
    for kinds in ((ReviewKind.BUYER, ReviewKind.SELLER), (ReviewKind.SELLER, ReviewKind.BUYER)):
        for h in running(OrderService):
            order = completed(h)
            for kind in kinds:
                h.deliver(review_added(order, kind, review_id=f"review-{kind}"))
            outcomes.append(get(h, order.order_id))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0].buyer_review is not None
    assert outcomes[0].seller_review is not None


def test_a_redelivered_review_is_kept_once(order_service: ServiceHarness) -> None:
    order = completed(order_service)
    event = review_added(order, ReviewKind.BUYER)
    first = order_service.deliver(event, message_id="msg-review-1")
    stored = get(order_service, order.order_id)

    again = order_service.deliver(event, message_id="msg-review-1")
    resent = order_service.deliver(event, message_id="msg-review-2")  # the same review in a new message

    assert first == again == resent == []
    assert get(order_service, order.order_id) == stored


def test_a_second_different_review_of_a_side_is_dead_lettered(order_service: ServiceHarness) -> None:
    order = completed(order_service)
    order_service.deliver(review_added(order, ReviewKind.BUYER, review_id="review-1", rating=5))
    stored = get(order_service, order.order_id)

    with pytest.raises(PermanentError, match="conflict"):
        order_service.deliver(review_added(order, ReviewKind.BUYER, review_id="review-2", rating=1))

    assert get(order_service, order.order_id) == stored


def test_a_review_of_an_unknown_order_is_dead_lettered(order_service: ServiceHarness) -> None:
    order = completed(order_service)
    unknown = attrs.evolve(review_added(order, ReviewKind.BUYER), order_id="no-such-order")
    with pytest.raises(PermanentError, match="not-found"):
        order_service.deliver(unknown)


def test_a_review_of_an_uncompleted_order_is_dead_lettered(order_service: ServiceHarness) -> None:
    order = place(order_service)
    with pytest.raises(PermanentError, match="invalid-state"):
        order_service.deliver(review_added(order, ReviewKind.BUYER))
    assert get(order_service, order.order_id).buyer_review is None


@pytest.mark.parametrize(
    ("mismatch", "field"),
    [({"reviewer_id": STRANGER}, "reviewer_id"), ({"gig_id": "another-gig"}, "gig_id")],
)
def test_a_review_that_does_not_match_the_order_is_dead_lettered(
    order_service: ServiceHarness, mismatch: dict[str, Any], field: str
) -> None:
    order = completed(order_service)
    mismatched = attrs.evolve(review_added(order, ReviewKind.BUYER), **mismatch)
    with pytest.raises(PermanentError, match=f"invalid.*{field}"):
        order_service.deliver(mismatched)
    assert get(order_service, order.order_id).buyer_review is None


# Through the gateway: the facts of a placement are gathered from gig, chat and users.


class FakeServices:
    """Stands in for `ServiceClient`: order and chat are real actors, users and gig answer from views."""

    def __init__(self, harnesses: dict[str, ServiceHarness], views: dict[str, Any]) -> None:
        self.harnesses = harnesses
        self.views = views

    def send(self, service: str, body: Any, expect: type[Any], *, actor_id: str | None = None) -> Any:
        if service in self.harnesses:
            reply = self.harnesses[service].request(body, actor_id=actor_id)
        else:
            reply = self.views.get(body.user_id if isinstance(body, GetUser) else body.gig_id)
            if reply is None:
                raise not_found(service, "id")
        assert isinstance(reply, expect)
        return reply


def user(user_id: str, username: str, status: SellerStatus = SellerStatus.BUYER) -> UserView:
    return UserView(user_id, username, f"{username}@example.com", "Chile", None, status, START)


def gig(gig_id: str, status: GigStatus = GigStatus.ACTIVE, seller_id: str = SELLER) -> GigView:
    return GigView(
        gig_id=gig_id,
        seller_id=seller_id,
        seller_username="sam",
        title="A logo in a day",
        description="Any logo",
        category=GigCategory.DESIGN,
        tags=(),
        price_cents=2500,
        delivery_days=2,
        status=status,
        ratings_count=0,
        ratings_sum=0,
        rating_categories=(0, 0, 0, 0, 0),
        created_at=START,
    )


@pytest.fixture
def services(order_service: ServiceHarness) -> Iterator[FakeServices]:
    views = {
        BUYER: user(BUYER, "bea"),
        SELLER: user(SELLER, "sam", SellerStatus.SELLER),
        "gig-1": gig("gig-1"),
        "paused-gig": gig("paused-gig", GigStatus.PAUSED),
    }
    for chat in running(ChatService, public_url="https://market.example.com"):
        yield FakeServices({"order": order_service, "chat": chat}, views)


def orders(services: FakeServices, user_id: str | None = BUYER) -> Orders:
    return Orders(cast(ServiceClient, services), user_id)


def accepted_offer(services: FakeServices, *, accept: bool = True) -> OfferView:
    chat = services.harnesses["chat"]
    started = chat.request(StartConversation(SELLER, "sam", "bea", "gig-1"), actor_id=BUYER)
    sent: OfferView = chat.request(
        SendOffer(
            started.conversation_id, "gig-1", "Logo and cards", 9000, 6, "Both", "bea@x.com", "bea", "sam"
        ),
        actor_id=SELLER,
    )
    if not accept:
        return sent
    decided: OfferView = chat.request(AcceptOffer(sent.offer_id), actor_id=BUYER)
    return decided


def test_the_gateway_orders_an_active_gig_on_its_terms(services: FakeServices) -> None:
    order = orders(services).place(gig_id="gig-1")

    assert (order.gig_title, order.price_cents, order.delivery_days) == ("A logo in a day", 2500, 2)
    assert (order.buyer_username, order.seller_username, order.offer_id) == ("bea", "sam", None)
    assert order.total_cents == 2500 + 138 + 200  # 137.5 cents of fee rounds up, plus the small-order fee
    [placed] = services.harnesses["order"].events(OrderPlaced)
    assert (placed.buyer_email, placed.seller_email) == ("bea@example.com", "sam@example.com")


def test_the_gateway_orders_only_an_active_gig(services: FakeServices) -> None:
    error = refused(orders(services).place, gig_id="paused-gig")
    assert (error.code, error.field) == ("invalid-state", "gig_id")
    error = refused(orders(services, SELLER).place, gig_id="gig-1")
    assert (error.code, error.field) == ("forbidden", "seller_id")
    assert services.harnesses["order"].events(OrderPlaced) == []


def test_the_gateway_orders_an_accepted_offer_on_its_terms_once(services: FakeServices) -> None:
    offer = accepted_offer(services)

    order = orders(services).place_from_offer(offer_id=offer.offer_id)

    assert (order.offer_id, order.gig_title, order.price_cents, order.delivery_days) == (
        offer.offer_id,
        "Logo and cards",
        9000,
        6,
    )
    error = refused(orders(services).place_from_offer, offer_id=offer.offer_id)
    assert (error.code, error.field) == ("conflict", "offer_id")


def test_the_gateway_orders_only_an_offer_its_buyer_accepted(services: FakeServices) -> None:
    pending = accepted_offer(services, accept=False)
    error = refused(orders(services).place_from_offer, offer_id=pending.offer_id)
    assert (error.code, error.field) == ("invalid-state", "status")

    accepted = accepted_offer(services)
    error = refused(orders(services, SELLER).place_from_offer, offer_id=accepted.offer_id)
    assert (error.code, error.field) == ("forbidden", "buyer_id")
    error = refused(orders(services, STRANGER).place_from_offer, offer_id=accepted.offer_id)
    assert (error.code, error.field) == ("not-found", "offer_id")
    assert services.harnesses["order"].events(OrderPlaced) == []


def test_the_gateway_takes_an_order_through_its_life(services: FakeServices) -> None:
    order = orders(services).place(gig_id="gig-1")
    as_seller, as_buyer = orders(services, SELLER), orders(services, BUYER)

    as_seller.request_extension(order_id=order.order_id, extra_days=1, reason="more time")
    as_buyer.decide_extension(order_id=order.order_id, decision=ExtensionDecision.APPROVED)
    as_seller.deliver(order_id=order.order_id, message="done")
    done = as_buyer.complete(order_id=order.order_id)

    assert done.status is OrderStatus.COMPLETED
    assert done.due_at == order.due_at + timedelta(days=1)
    assert as_seller.get(order_id=order.order_id) == done
    assert [o.order_id for o in as_buyer.list().items] == [order.order_id]
    other = as_buyer.place(gig_id="gig-1")
    assert as_seller.cancel(order_id=other.order_id, reason="ill").status is OrderStatus.CANCELLED


def test_the_gateway_asks_for_a_signed_in_user(services: FakeServices) -> None:
    error = refused(orders(services, None).place, gig_id="gig-1")
    assert error.code == "unauthenticated"


# Replies fit the codec's body limit, however long what people wrote.

LONGEST_NAME = "\U0001f600" * MAX_NAME_LENGTH  # four bytes a character in UTF-8


def longest_ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):08d}".ljust(MAX_ID_LENGTH, "~")


def place_longest(h: ServiceHarness, buyer: str, seller: str, offers: Callable[[], str]) -> OrderView:
    command = PlaceOrder(
        gig_id=offers(),
        gig_title=LONGEST_NAME,
        seller_id=seller,
        seller_username=LONGEST_NAME,
        seller_email="sam@example.com",
        buyer_username=LONGEST_NAME,
        buyer_email="bea@example.com",
        price_cents=MAX_PRICE_CENTS,
        delivery_days=MAX_DELIVERY_DAYS,
        offer_id=offers(),
    )
    reply: OrderView = h.request(command, actor_id=buyer)
    return reply


def test_the_longest_order_fits_in_a_reply() -> None:
    buyer, seller, offers = longest_ids("buyer")(), longest_ids("seller")(), longest_ids("offer")
    for h in running(OrderService, new_id=longest_ids("id")):
        order = place_longest(h, buyer, seller, offers)
        h.request(DeliverOrder(order.order_id, "\U0001f600" * MAX_NOTE_LENGTH), actor_id=seller)
        h.request(CompleteOrder(order.order_id), actor_id=buyer)
        for kind in ReviewKind:
            # The longest comment an event may carry, longer than the review service accepts.
            h.deliver(
                attrs.evolve(
                    review_added(order, kind, review_id=longest_ids(f"review-{kind}")()),
                    comment="\U0001f600" * MAX_TEXT_LENGTH,
                )
            )

        longest = get(h, order.order_id, buyer)
        assert longest.buyer_review is not None
        assert longest.seller_review is not None
        assert len(protocol.encode_reply(longest)) <= DEFAULT_MAX_SIZE


def test_a_page_of_the_longest_orders_fits_in_a_reply() -> None:
    buyer, seller, offers = longest_ids("buyer")(), longest_ids("seller")(), longest_ids("offer")
    for h in running(OrderService, new_id=longest_ids("id")):
        for _ in range(ORDERS_PER_PAGE):
            place_longest(h, buyer, seller, offers)

        page: OrdersPage = h.request(ListOrders(), actor_id=seller)
        assert len(page.items) == ORDERS_PER_PAGE
        assert len(protocol.encode_reply(page)) <= DEFAULT_MAX_SIZE


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x07"])
def test_what_people_write_on_an_order_has_no_control_characters(control: str) -> None:
    for make, field in (
        (lambda text: DeliverOrder("order-1", text), "message"),
        (lambda text: CancelOrder("order-1", text), "reason"),
        (lambda text: RequestExtension("order-1", 1, text), "reason"),
    ):
        with pytest.raises(ValidationError) as caught:
            make(f"late{control}")
        assert caught.value.field == field
