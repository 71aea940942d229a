"""The users service: buyer and seller profiles, the figures events keep, seeding's sellers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.codec import Envelope
from marketplace.commands import Command, Query
from marketplace.commands.users import (
    BecomeSeller,
    BuyerView,
    GetBuyer,
    GetSeller,
    GetUser,
    SellerStatus,
    SellerView,
    UpdateSeller,
    UserView,
)
from marketplace.errors import DomainError
from marketplace.events import (
    Event,
    GigCreated,
    GigDeleted,
    GigReviewed,
    OrderCancelled,
    OrderCompleted,
    OrderPlaced,
    Party,
    ReviewAdded,
    ReviewKind,
    SellersProvided,
    SellersRequested,
    SellerSummary,
    UserRegistered,
)
from marketplace.gateway.client import ServiceClient
from marketplace.gateway.profiles import Profiles
from marketplace.services.users import UsersService
from marketplace.validation import ValidationError
from tests.marketplace.harness import START, ServiceHarness, running
from transports import PermanentError

R = TypeVar("R")

SUE = "seller-sue"
BOB = "buyer-bob"
ANN = "buyer-ann"


@pytest.fixture
def users() -> Iterator[ServiceHarness]:
    yield from running(UsersService)


# Building events and commands.


def registered(user_id: str, username: str | None = None) -> UserRegistered:
    username = username or user_id.rpartition("-")[2]
    return UserRegistered(
        user_id=user_id,
        username=username,
        email=f"{username}@example.com",
        country="Portugal",
        profile_picture_url=None,
        registered_at=START,
    )


def register(users: ServiceHarness, *user_ids: str) -> None:
    for user_id in user_ids:
        users.deliver(registered(user_id))


def make_seller(users: ServiceHarness, user_id: str = SUE) -> SellerView:
    register(users, user_id)
    view: SellerView = users.request(BECOME_SELLER, actor_id=user_id)
    return view


BECOME_SELLER = BecomeSeller(
    full_name="Sue Smith",
    description="Logos and brand identities.",
    skills=("logo design", "illustration"),
    languages=("English", "Portuguese"),
)


def placed(order_id: str, *, seller_id: str = SUE, buyer_id: str = BOB) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        gig_id=f"gig-{order_id}",
        gig_title="A logo in a day",
        buyer_id=buyer_id,
        buyer_username="bob",
        buyer_email="bob@example.com",
        seller_id=seller_id,
        seller_username="sue",
        seller_email="sue@example.com",
        price_cents=10_000,
        service_fee_cents=550,
        total_cents=10_550,
        seller_earnings_cents=8_000,
        placed_at=START,
        due_at=START + timedelta(days=3),
    )


def completed(
    order_id: str,
    *,
    gig_id: str | None = None,
    seller_id: str = SUE,
    buyer_id: str = BOB,
    earnings: int = 8_000,
    days: int = 2,
) -> OrderCompleted:
    return OrderCompleted(
        order_id=order_id,
        gig_id=gig_id or f"gig-{order_id}",
        gig_title="A logo in a day",
        buyer_id=buyer_id,
        seller_id=seller_id,
        seller_username="sue",
        seller_email="sue@example.com",
        seller_earnings_cents=earnings,
        completed_at=START + timedelta(days=days),
    )


def cancelled(order_id: str, *, seller_id: str = SUE) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        gig_id=f"gig-{order_id}",
        gig_title="A logo in a day",
        buyer_id=BOB,
        buyer_username="bob",
        buyer_email="bob@example.com",
        seller_id=seller_id,
        seller_username="sue",
        seller_email="sue@example.com",
        cancelled_by=Party.BUYER,
        reason="",
        refund_cents=10_550,
        cancelled_at=START + timedelta(days=1),
    )


def review(
    review_id: str, *, rating: int, kind: ReviewKind = ReviewKind.BUYER, gig_id: str = "gig-1"
) -> ReviewAdded:
    reviewer, reviewee = (BOB, SUE) if kind is ReviewKind.BUYER else (SUE, BOB)
    return ReviewAdded(
        review_id=review_id,
        order_id=f"order-{review_id}",
        gig_id=gig_id,
        reviewer_id=reviewer,
        reviewee_id=reviewee,
        kind=kind,
        rating=rating,
        comment="",
        created_at=START + timedelta(days=3),
    )


def seller(users: ServiceHarness, seller_id: str = SUE) -> SellerView:
    view: SellerView = users.request(GetSeller(seller_id))
    return view


def buyer(users: ServiceHarness, buyer_id: str = BOB) -> BuyerView:
    view: BuyerView = users.request(GetBuyer(buyer_id), actor_id=buyer_id)
    return view


def refusal(users: ServiceHarness, body: Command | Query, actor_id: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as caught:
        users.request(body, actor_id=actor_id)
    return caught.value


def envelope(event: Event, message_id: str = "msg-dup") -> Envelope:
    return Envelope.start(event, producer="test", message_id=message_id, occurred_at=START)


# Signing up.


def test_registered_user_gets_a_buyer_profile(users: ServiceHarness) -> None:
    register(users, BOB)

    assert users.request(GetUser(BOB)) == UserView(
        user_id=BOB,
        username="bob",
        email="bob@example.com",
        country="Portugal",
        profile_picture_url=None,
        status=SellerStatus.BUYER,
        registered_at=START,
    )


def test_a_second_registration_of_a_user_keeps_the_profile(users: ServiceHarness) -> None:
    make_seller(users)
    register(users, BOB)
    users.deliver(completed("o1"))

    users.deliver(registered(BOB, username="robert"))

    assert buyer(users).username == "bob"
    assert buyer(users).purchased_gigs == {"gig-o1"}


def test_a_duplicated_registration_is_applied_once(users: ServiceHarness) -> None:
    users.deliver_envelope(envelope(registered(BOB)))
    users.deliver_envelope(envelope(registered(BOB)))

    assert users.request(GetUser(BOB)).username == "bob"


def test_an_unknown_user_is_not_found(users: ServiceHarness) -> None:
    error = refusal(users, GetUser("nobody"))

    assert (error.code, error.field) == ("not-found", "user_id")


# Becoming a seller.


def test_a_buyer_becomes_a_seller_with_empty_figures(users: ServiceHarness) -> None:
    view = make_seller(users)

    assert view == SellerView(
        seller_id=SUE,
        username="sue",
        country="Portugal",
        profile_picture_url=None,
        full_name="Sue Smith",
        description="Logos and brand identities.",
        skills=("logo design", "illustration"),
        languages=("English", "Portuguese"),
        became_seller_at=START,
        ongoing_jobs=0,
        completed_jobs=0,
        cancelled_jobs=0,
        total_earnings_cents=0,
        total_gigs=0,
        ratings_count=0,
        ratings_sum=0,
        rating_categories=(0, 0, 0, 0, 0),
        recent_delivery=None,
    )
    assert users.request(GetUser(SUE)).status is SellerStatus.SELLER


def test_becoming_a_seller_twice_is_a_conflict(users: ServiceHarness) -> None:
    make_seller(users)

    error = refusal(users, BECOME_SELLER, actor_id=SUE)

    assert (error.code, error.field) == ("conflict", "user_id")


def test_the_same_become_seller_request_retried_is_applied_once(users: ServiceHarness) -> None:
    register(users, SUE)

    first = users.request(BECOME_SELLER, actor_id=SUE, key="k1")
    again = users.request(BECOME_SELLER, actor_id=SUE, key="k1")

    assert first == again


def test_an_unregistered_user_cannot_become_a_seller(users: ServiceHarness) -> None:
    error = refusal(users, BECOME_SELLER, actor_id="stranger")

    assert (error.code, error.field) == ("not-found", "user_id")


def test_an_anonymous_visitor_cannot_become_a_seller(users: ServiceHarness) -> None:
    error = refusal(users, BECOME_SELLER)

    assert (error.code, error.field) == ("unauthenticated", None)


def test_a_seller_profile_refuses_the_same_skill_twice() -> None:
    with pytest.raises(ValidationError) as caught:
        BecomeSeller(full_name="Sue", description="Logos.", skills=("Logo", "logo"))

    assert caught.value.field == "skills"


def test_a_seller_profile_refuses_a_blank_full_name() -> None:
    with pytest.raises(ValidationError) as caught:
        BecomeSeller(full_name="  ", description="Logos.")

    assert caught.value.field == "full_name"


def test_a_seller_updates_only_the_fields_given(users: ServiceHarness) -> None:
    make_seller(users)

    view = users.request(UpdateSeller(description="Logos, icons and fonts.", skills=()), actor_id=SUE)

    assert (view.full_name, view.description, view.skills) == ("Sue Smith", "Logos, icons and fonts.", ())
    assert view.languages == ("English", "Portuguese")
    assert seller(users) == view


def test_a_buyer_who_is_not_a_seller_cannot_update_a_seller_profile(users: ServiceHarness) -> None:
    register(users, BOB)

    error = refusal(users, UpdateSeller(full_name="Bob"), actor_id=BOB)

    assert (error.code, error.field) == ("not-found", "user_id")


# Reading profiles.


def test_anyone_may_read_a_seller_profile_which_hides_the_address(users: ServiceHarness) -> None:
    make_seller(users)

    view = users.request(GetSeller(SUE), actor_id=None)

    assert view.username == "sue"
    assert not hasattr(view, "email")


def test_a_buyer_has_no_seller_profile(users: ServiceHarness) -> None:
    register(users, BOB)

    error = refusal(users, GetSeller(BOB))

    assert (error.code, error.field) == ("not-found", "seller_id")


def test_a_buyer_reads_their_own_profile(users: ServiceHarness) -> None:
    register(users, BOB)

    view = buyer(users)

    assert (view.buyer_id, view.email, view.status) == (BOB, "bob@example.com", SellerStatus.BUYER)
    assert view.purchased_gigs == frozenset()


@pytest.mark.parametrize("actor_id", [ANN, None])
def test_nobody_else_may_read_a_buyers_profile(users: ServiceHarness, actor_id: str | None) -> None:
    register(users, BOB, ANN)

    error = refusal(users, GetBuyer(BOB), actor_id=actor_id)

    assert (error.code, error.field) == ("forbidden", "buyer_id")


# Orders.


def test_a_placed_order_gives_the_seller_an_ongoing_job(users: ServiceHarness) -> None:
    make_seller(users)

    users.deliver(placed("o1"))

    assert seller(users).ongoing_jobs == 1


def test_a_completed_order_pays_the_seller_once(users: ServiceHarness) -> None:
    make_seller(users)
    register(users, BOB)
    users.deliver(placed("o1"))
    done = envelope(completed("o1", earnings=8_000, days=2))

    users.deliver_envelope(done)
    users.deliver_envelope(done)

    figures = seller(users)
    assert (figures.ongoing_jobs, figures.completed_jobs, figures.total_earnings_cents) == (0, 1, 8_000)
    assert figures.recent_delivery == START + timedelta(days=2)


def test_a_completed_order_adds_the_gig_to_the_buyers_purchases_once(users: ServiceHarness) -> None:
    make_seller(users)
    register(users, BOB)

    users.deliver(completed("o1", gig_id="gig-logo"))
    users.deliver(completed("o2", gig_id="gig-logo"))
    users.deliver(completed("o3", gig_id="gig-icon"))

    assert buyer(users).purchased_gigs == {"gig-logo", "gig-icon"}


def test_the_recent_delivery_is_the_latest_completion_whatever_the_arrival_order(
    users: ServiceHarness,
) -> None:
    make_seller(users)
    register(users, BOB)

    users.deliver(completed("late", days=9))
    users.deliver(completed("early", days=1))

    assert seller(users).recent_delivery == START + timedelta(days=9)


def test_a_cancelled_order_is_no_longer_ongoing(users: ServiceHarness) -> None:
    make_seller(users)
    users.deliver(placed("o1"))

    users.deliver(cancelled("o1"))

    figures = seller(users)
    assert (figures.ongoing_jobs, figures.cancelled_jobs, figures.total_earnings_cents) == (0, 1, 0)


def test_a_completion_before_its_placement_never_shows_negative_ongoing_jobs(users: ServiceHarness) -> None:
    make_seller(users)
    register(users, BOB)

    users.deliver(completed("o1"))
    assert seller(users).ongoing_jobs == 0
    users.deliver(placed("o1"))

    assert (seller(users).ongoing_jobs, seller(users).completed_jobs) == (0, 1)


@pytest.mark.parametrize("event", [placed("o1"), cancelled("o1"), completed("o1")], ids=type)
def test_an_order_of_an_unknown_seller_is_dead_lettered(users: ServiceHarness, event: Event) -> None:
    register(users, BOB)

    with pytest.raises(PermanentError, match="seller_id"):
        users.deliver(event)


def test_a_completed_order_of_an_unknown_buyer_is_dead_lettered_and_changes_nothing(
    users: ServiceHarness,
) -> None:
    make_seller(users)

    with pytest.raises(PermanentError, match="buyer_id"):
        users.deliver(completed("o1"))

    assert seller(users).completed_jobs == 0


# Gigs.


def test_gigs_created_and_deleted_count_for_their_seller(users: ServiceHarness) -> None:
    make_seller(users)

    users.deliver(GigCreated(gig_id="g1", seller_id=SUE))
    users.deliver(GigCreated(gig_id="g2", seller_id=SUE))
    users.deliver(GigDeleted(gig_id="g1", seller_id=SUE))

    assert seller(users).total_gigs == 1


def test_a_duplicated_gig_creation_counts_once(users: ServiceHarness) -> None:
    make_seller(users)
    created = envelope(GigCreated(gig_id="g1", seller_id=SUE))

    users.deliver_envelope(created)
    users.deliver_envelope(created)

    assert seller(users).total_gigs == 1


@pytest.mark.parametrize(
    "event", [GigCreated(gig_id="g1", seller_id=BOB), GigDeleted(gig_id="g1", seller_id=BOB)], ids=type
)
def test_a_gig_of_an_unknown_seller_is_dead_lettered(users: ServiceHarness, event: Event) -> None:
    register(users, BOB)

    with pytest.raises(PermanentError, match="seller_id"):
        users.deliver(event)


# Seeding.


def test_sellers_requested_are_provided_up_to_the_count_asked(users: ServiceHarness) -> None:
    register(users, BOB)
    for seller_id in ("seller-a", "seller-b", "seller-c"):
        make_seller(users, seller_id)

    published = users.deliver(SellersRequested(request_id="req-1", count=2))

    assert [e.event for e in published] == [
        SellersProvided(
            request_id="req-1",
            sellers=(
                SellerSummary(seller_id="seller-a", username="a", email="a@example.com"),
                SellerSummary(seller_id="seller-b", username="b", email="b@example.com"),
            ),
        )
    ]


def test_sellers_requested_when_there_are_none_is_answered_with_none(users: ServiceHarness) -> None:
    register(users, BOB)

    published = users.deliver(SellersRequested(request_id="req-1", count=5))

    assert [e.event for e in published] == [SellersProvided(request_id="req-1", sellers=())]


def test_a_duplicated_sellers_request_republishes_the_same_answer(users: ServiceHarness) -> None:
    make_seller(users)
    request = envelope(SellersRequested(request_id="req-1", count=5))

    first = users.deliver_envelope(request)
    again = users.deliver_envelope(request)

    assert first == again
    assert first[0].causation_id == "msg-dup"


# Reviews.


def test_a_buyers_review_rates_the_seller_and_goes_on_to_the_gig(users: ServiceHarness) -> None:
    make_seller(users)
    register(users, BOB)

    published = users.deliver(review("r1", rating=4, gig_id="gig-7"))
    users.deliver(review("r2", rating=5))
    users.deliver(review("r3", rating=4))

    assert [e.event for e in published] == [GigReviewed(review_id="r1", gig_id="gig-7", rating=4)]
    figures = seller(users)
    assert (figures.ratings_count, figures.ratings_sum, figures.rating_categories) == (3, 13, (0, 0, 0, 2, 1))


def test_a_sellers_review_rates_the_buyer_and_no_seller_figure(users: ServiceHarness) -> None:
    make_seller(users)
    register(users, BOB)

    published = users.deliver(review("r1", rating=2, kind=ReviewKind.SELLER))

    assert published == []
    assert seller(users).ratings_count == 0
    assert (buyer(users).ratings_count, buyer(users).ratings_sum) == (1, 2)


def test_a_duplicated_review_counts_once_and_forwards_the_same_rating(users: ServiceHarness) -> None:
    make_seller(users)
    added = envelope(review("r1", rating=5))

    first = users.deliver_envelope(added)
    again = users.deliver_envelope(added)

    assert first == again
    assert seller(users).ratings_count == 1


def test_a_review_of_an_unknown_seller_is_dead_lettered_and_not_forwarded(users: ServiceHarness) -> None:
    register(users, BOB)

    with pytest.raises(PermanentError, match="reviewee_id"):
        users.deliver(review("r1", rating=5))

    assert users.events(GigReviewed) == []


# Figures do not depend on the order events arrive in.

ORDER_AND_REVIEW_EVENTS: tuple[Event, ...] = (
    placed("o1"),
    completed("o1", earnings=8_000, days=3),
    placed("o2"),
    cancelled("o2"),
    placed("o3"),
    completed("o3", earnings=4_000, days=5),
    placed("o4"),
    GigCreated(gig_id="g1", seller_id=SUE),
    GigCreated(gig_id="g2", seller_id=SUE),
    GigDeleted(gig_id="g1", seller_id=SUE),
    review("r1", rating=5),
    review("r2", rating=3),
    review("r3", rating=2, kind=ReviewKind.SELLER),
)


@given(st.permutations(ORDER_AND_REVIEW_EVENTS))
def test_seller_figures_do_not_depend_on_the_arrival_order(events: list[Event]) -> None:
    users = ServiceHarness(UsersService)
    try:
        make_seller(users)
        register(users, BOB)
        for event in events:
            users.deliver(event)
        figures = seller(users)
    finally:
        users.stop()

    assert (figures.ongoing_jobs, figures.completed_jobs, figures.cancelled_jobs) == (1, 2, 1)
    assert (figures.total_earnings_cents, figures.total_gigs) == (12_000, 1)
    assert (figures.ratings_count, figures.ratings_sum, figures.rating_categories) == (2, 8, (0, 0, 1, 0, 1))
    assert figures.recent_delivery == START + timedelta(days=5)


# The gateway's facade.


class HarnessClient(ServiceClient):
    """A ServiceClient that hands each request to the harness of the service it is meant for."""

    def __init__(self, **harnesses: ServiceHarness) -> None:
        self._harnesses = harnesses

    def send(
        self,
        service: str,
        body: Command | Query,
        expect: type[R],
        *,
        actor_id: str | None = None,
        correlation_id: str | None = None,
    ) -> R:
        reply: Any = self._harnesses[service].request(body, actor_id=actor_id)
        assert isinstance(reply, expect)
        return reply


def test_profiles_lets_a_signed_in_user_become_a_seller_and_read_profiles(users: ServiceHarness) -> None:
    register(users, SUE)
    client = HarnessClient(users=users)

    opened = Profiles(client, SUE).become_seller(full_name="Sue Smith", description="Logos.")

    assert Profiles(client, None).seller(seller_id=SUE) == opened
    assert Profiles(client, SUE).buyer().status is SellerStatus.SELLER


def test_profiles_refuses_an_anonymous_visitor_their_own_profile(users: ServiceHarness) -> None:
    with pytest.raises(DomainError) as caught:
        Profiles(HarnessClient(users=users), None).buyer()

    assert caught.value.code == "unauthenticated"
