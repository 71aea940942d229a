"""The review service: each party of a completed order reviews the other, once; buyers' reviews are listed."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, cast

import pytest

from marketplace import protocol
from marketplace.codec import DEFAULT_MAX_SIZE
from marketplace.commands.order import (
    CompleteOrder,
    DeliverOrder,
    GetOrder,
    OrderStatus,
    OrderView,
    PlaceOrder,
)
from marketplace.commands.review import (
    MAX_COMMENT_LENGTH,
    REVIEWS_PER_PAGE,
    AddReview,
    ListReviewsByGig,
    ListReviewsBySeller,
    ReviewPage,
    ReviewView,
)
from marketplace.errors import DomainError
from marketplace.events import ReviewAdded, ReviewKind
from marketplace.gateway.client import ServiceClient
from marketplace.gateway.reviews import Reviews
from marketplace.services.order import OrderService
from marketplace.services.review import ReviewService
from marketplace.validation import MAX_ID_LENGTH, ValidationError
from tests.marketplace.harness import START, ServiceHarness, running

BUYER = "buyer-1"
SELLER = "seller-1"
STRANGER = "stranger-1"


@pytest.fixture
def reviews() -> Iterator[ServiceHarness]:
    yield from running(ReviewService)


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    return caught.value


def review(
    h: ServiceHarness,
    actor: str | None = BUYER,
    *,
    order_id: str = "order-1",
    gig_id: str = "gig-1",
    seller_id: str = SELLER,
    status: OrderStatus = OrderStatus.COMPLETED,
    rating: int = 5,
    comment: str = "Quick and careful",
    key: str | None = None,
) -> ReviewView:
    reply: ReviewView = h.request(
        AddReview(
            order_id=order_id,
            gig_id=gig_id,
            buyer_id=BUYER,
            seller_id=seller_id,
            order_status=status,
            rating=rating,
            comment=comment,
        ),
        actor_id=actor,
        key=key,
    )
    return reply


# Adding a review.


def test_the_buyer_of_a_completed_order_reviews_its_seller(reviews: ServiceHarness) -> None:
    added = review(reviews, BUYER, rating=4, comment="Good work")

    assert (added.kind, added.reviewer_id, added.reviewee_id) == (ReviewKind.BUYER, BUYER, SELLER)
    assert (added.order_id, added.gig_id, added.rating, added.comment) == ("order-1", "gig-1", 4, "Good work")
    assert added.created_at == START
    [event] = reviews.events(ReviewAdded)
    assert event.review_id == added.review_id
    assert (event.kind, event.reviewer_id, event.reviewee_id) == (ReviewKind.BUYER, BUYER, SELLER)
    assert (event.order_id, event.gig_id, event.rating, event.comment) == ("order-1", "gig-1", 4, "Good work")
    assert event.created_at == START


def test_the_seller_of_a_completed_order_reviews_its_buyer(reviews: ServiceHarness) -> None:
    added = review(reviews, SELLER, rating=3)

    assert (added.kind, added.reviewer_id, added.reviewee_id) == (ReviewKind.SELLER, SELLER, BUYER)
    [event] = reviews.events(ReviewAdded)
    assert (event.kind, event.reviewee_id, event.rating) == (ReviewKind.SELLER, BUYER, 3)


def test_only_a_party_of_the_order_reviews_it(reviews: ServiceHarness) -> None:
    error = refused(review, reviews, STRANGER)
    assert (error.code, error.field) == ("forbidden", "order_id")
    assert reviews.events(ReviewAdded) == []


def test_an_anonymous_user_cannot_review(reviews: ServiceHarness) -> None:
    error = refused(review, reviews, None)
    assert error.code == "unauthenticated"


@pytest.mark.parametrize("status", [OrderStatus.PLACED, OrderStatus.DELIVERED, OrderStatus.CANCELLED])
@pytest.mark.parametrize("actor", [BUYER, SELLER])
def test_only_a_completed_order_is_reviewed(reviews: ServiceHarness, status: OrderStatus, actor: str) -> None:
    error = refused(review, reviews, actor, status=status)
    assert (error.code, error.field) == ("invalid-state", "order_status")
    assert reviews.events(ReviewAdded) == []


@pytest.mark.parametrize("actor", [BUYER, SELLER])
def test_each_side_reviews_an_order_once(reviews: ServiceHarness, actor: str) -> None:
    review(reviews, actor, rating=5)

    error = refused(review, reviews, actor, rating=1)

    assert (error.code, error.field) == ("conflict", "order_id")
    assert len(reviews.events(ReviewAdded)) == 1


def test_the_other_side_still_reviews_after_the_first(reviews: ServiceHarness) -> None:
    by_buyer, by_seller = review(reviews, BUYER), review(reviews, SELLER)
    assert (by_buyer.kind, by_seller.kind) == (ReviewKind.BUYER, ReviewKind.SELLER)
    assert [e.review_id for e in reviews.events(ReviewAdded)] == [by_buyer.review_id, by_seller.review_id]


def test_a_side_reviews_each_of_its_orders(reviews: ServiceHarness) -> None:
    first, second = review(reviews, order_id="order-1"), review(reviews, order_id="order-2")
    assert first.review_id != second.review_id


def test_a_retried_review_is_added_once(reviews: ServiceHarness) -> None:
    first = review(reviews, key="review-1")
    again = review(reviews, key="review-1")

    assert again == first
    # The retry republishes the recorded event (same message id), which consumers skip.
    assert len({e.message_id for e in reviews.published}) == 1
    page: ReviewPage = reviews.request(ListReviewsByGig("gig-1"))
    assert page.total == 1


@pytest.mark.parametrize(
    ("rating", "comment", "field"),
    [(0, "", "rating"), (6, "", "rating"), (5, "x" * (MAX_COMMENT_LENGTH + 1), "comment")],
)
def test_a_review_rates_from_one_to_five_with_a_short_comment(rating: int, comment: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AddReview("order-1", "gig-1", BUYER, SELLER, OrderStatus.COMPLETED, rating, comment)
    assert caught.value.field == field


def test_a_review_may_have_no_comment(reviews: ServiceHarness) -> None:
    assert review(reviews, comment="").comment == ""


# Listing what buyers said.


def test_anyone_reads_what_buyers_said_of_a_gig_newest_first(reviews: ServiceHarness) -> None:
    older = review(reviews, order_id="order-1", gig_id="gig-1")
    reviews.clock.advance(hours=1)
    newer = review(reviews, order_id="order-2", gig_id="gig-1")
    review(
        reviews, SELLER, order_id="order-2", gig_id="gig-1"
    )  # a seller rating the buyer: not about the gig
    review(reviews, order_id="order-3", gig_id="gig-2")

    page: ReviewPage = reviews.request(ListReviewsByGig("gig-1"), actor_id=None)

    assert page.items == (newer, older)
    assert (page.total, page.page, page.page_size) == (2, 1, REVIEWS_PER_PAGE)


def test_anyone_reads_what_buyers_said_of_a_seller(reviews: ServiceHarness) -> None:
    of_seller = review(reviews, order_id="order-1", gig_id="gig-1")
    reviews.clock.advance(hours=1)
    of_another_gig = review(reviews, order_id="order-2", gig_id="gig-2")
    review(reviews, SELLER, order_id="order-1")
    review(reviews, order_id="order-3", seller_id="seller-2")

    page: ReviewPage = reviews.request(ListReviewsBySeller(SELLER), actor_id=None)

    assert page.items == (of_another_gig, of_seller)
    assert page.total == 2
    nobody: ReviewPage = reviews.request(ListReviewsBySeller(BUYER), actor_id=STRANGER)
    assert (nobody.items, nobody.total) == ((), 0)


def test_reviews_are_listed_a_page_at_a_time(reviews: ServiceHarness) -> None:
    added = []
    for n in range(REVIEWS_PER_PAGE + 1):
        added.append(review(reviews, order_id=f"order-{n}"))
        reviews.clock.advance(minutes=1)

    first: ReviewPage = reviews.request(ListReviewsBySeller(SELLER, page=1))
    second: ReviewPage = reviews.request(ListReviewsBySeller(SELLER, page=2))

    assert list(first.items + second.items) == added[::-1]
    assert (len(first.items), len(second.items)) == (REVIEWS_PER_PAGE, 1)
    assert first.total == second.total == REVIEWS_PER_PAGE + 1
    assert second.items[0].created_at == START
    assert first.items[0].created_at == START + timedelta(minutes=REVIEWS_PER_PAGE)


# Through the gateway: the order's facts come from the order service, and the review lands on the order.


class FakeServices:
    """Stands in for `ServiceClient`: requests go straight to the order and review actors."""

    def __init__(self, harnesses: dict[str, ServiceHarness]) -> None:
        self.harnesses = harnesses

    def send(self, service: str, body: Any, expect: type[Any], *, actor_id: str | None = None) -> Any:
        reply = self.harnesses[service].request(body, actor_id=actor_id)
        assert isinstance(reply, expect)
        return reply


@pytest.fixture
def services(reviews: ServiceHarness) -> Iterator[FakeServices]:
    for orders in running(OrderService):
        yield FakeServices({"order": orders, "review": reviews})


def gateway(services: FakeServices, user_id: str | None) -> Reviews:
    return Reviews(cast(ServiceClient, services), user_id)


def an_order(services: FakeServices, *, complete: bool = True) -> OrderView:
    orders = services.harnesses["order"]
    order: OrderView = orders.request(
        PlaceOrder("gig-1", "Logo", SELLER, "sam", "sam@x.com", "bea", "bea@x.com", 2500, 2), actor_id=BUYER
    )
    if complete:
        orders.request(DeliverOrder(order.order_id), actor_id=SELLER)
        order = orders.request(CompleteOrder(order.order_id), actor_id=BUYER)
    return order


def test_the_gateway_reviews_a_completed_order_and_the_order_keeps_it(services: FakeServices) -> None:
    order = an_order(services)

    added = gateway(services, BUYER).add(order_id=order.order_id, rating=5, comment="Lovely")

    assert (added.kind, added.reviewee_id, added.gig_id) == (ReviewKind.BUYER, SELLER, "gig-1")
    [announced] = [e for e in services.harnesses["review"].published if isinstance(e.event, ReviewAdded)]
    orders = services.harnesses["order"]
    orders.deliver_envelope(announced)
    kept: OrderView = orders.request(GetOrder(order.order_id), actor_id=SELLER)
    assert kept.buyer_review is not None
    assert (kept.buyer_review.review_id, kept.buyer_review.rating) == (added.review_id, 5)
    assert gateway(services, None).of_gig(gig_id="gig-1").items == (added,)
    assert gateway(services, None).of_seller(seller_id=SELLER).items == (added,)


def test_the_gateway_refuses_reviews_of_others_orders_and_of_unfinished_ones(services: FakeServices) -> None:
    unfinished, finished = an_order(services, complete=False), an_order(services)

    error = refused(gateway(services, BUYER).add, order_id=unfinished.order_id, rating=5)
    assert (error.code, error.field) == ("invalid-state", "order_status")
    error = refused(gateway(services, STRANGER).add, order_id=finished.order_id, rating=5)
    assert (error.code, error.field) == ("not-found", "order_id")
    error = refused(gateway(services, None).add, order_id=finished.order_id, rating=5)
    assert error.code == "unauthenticated"
    assert services.harnesses["review"].events(ReviewAdded) == []


# Replies fit the codec's body limit, however long what people wrote.


def longest_ids(prefix: str) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):08d}".ljust(MAX_ID_LENGTH, "~")


def test_a_page_of_the_longest_reviews_fits_in_a_reply() -> None:
    buyer, seller, gig, orders = (
        longest_ids("buyer")(),
        longest_ids("seller")(),
        longest_ids("gig")(),
        longest_ids("order"),
    )
    for h in running(ReviewService, new_id=longest_ids("id")):
        for _ in range(REVIEWS_PER_PAGE):
            longest = AddReview(
                orders(), gig, buyer, seller, OrderStatus.COMPLETED, 5, "\U0001f600" * MAX_COMMENT_LENGTH
            )
            h.request(longest, actor_id=buyer)

        page: ReviewPage = h.request(ListReviewsByGig(gig))
        assert len(page.items) == REVIEWS_PER_PAGE
        assert len(protocol.encode_reply(page)) <= DEFAULT_MAX_SIZE


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x07"])
def test_a_comment_has_no_control_characters(control: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AddReview("order-1", "gig-1", BUYER, SELLER, OrderStatus.COMPLETED, 5, f"good{control}")
    assert caught.value.field == "comment"
