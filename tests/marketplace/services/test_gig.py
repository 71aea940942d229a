"""The gig service: sellers' gigs, search, soft deletes, ratings and seeding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from marketplace.codec import Envelope
from marketplace.commands import Command, Done, Query
from marketplace.commands.gig import (
    MAX_PAGE_SIZE,
    CreateGig,
    DeleteGig,
    GetGig,
    GigCategory,
    GigPage,
    GigStatus,
    GigView,
    ListSellerGigs,
    PauseGig,
    ResumeGig,
    SearchGigs,
    SeedGigs,
    UpdateGig,
)
from marketplace.commands.users import GetSeller
from marketplace.errors import DomainError
from marketplace.events import (
    MAX_DELIVERY_DAYS,
    GigCreated,
    GigDeleted,
    GigReviewed,
    SellersProvided,
    SellersRequested,
    SellerSummary,
)
from marketplace.gateway.gigs import Gigs
from marketplace.services.gig import GigService
from marketplace.services.users import UsersService
from marketplace.validation import ValidationError
from tests.marketplace.harness import START, ServiceHarness, running
from tests.marketplace.services.test_users import HarnessClient, make_seller, register
from transports import PermanentError

SUE = "seller-sue"
TOM = "seller-tom"
BOB = "buyer-bob"


@pytest.fixture
def gigs() -> Iterator[ServiceHarness]:
    yield from running(GigService)


@pytest.fixture
def users() -> Iterator[ServiceHarness]:
    yield from running(UsersService)


def new_gig(seller_id: str = SUE, **changes: Any) -> CreateGig:
    command = CreateGig(
        seller_id=seller_id,
        seller_username=seller_id.rpartition("-")[2],
        title="I will design a minimalist logo",
        description="Three concepts and unlimited revisions.",
        category=GigCategory.DESIGN,
        tags=("logo", "branding"),
        price_cents=5_000,
        delivery_days=3,
    )
    return attrs.evolve(command, **changes)


def create(gigs: ServiceHarness, seller_id: str = SUE, **changes: Any) -> GigView:
    view: GigView = gigs.request(new_gig(seller_id, **changes), actor_id=seller_id)
    gigs.clock.advance(minutes=1)
    return view


def refusal(gigs: ServiceHarness, body: Command | Query, actor_id: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as caught:
        gigs.request(body, actor_id=actor_id)
    return caught.value


def search(gigs: ServiceHarness, **criteria: Any) -> GigPage:
    page: GigPage = gigs.request(SearchGigs(**criteria))
    return page


def titles(page: GigPage) -> list[str]:
    return [gig.title for gig in page.items]


def envelope(event: Any, message_id: str = "msg-dup") -> Envelope:
    return Envelope.start(event, producer="test", message_id=message_id, occurred_at=START)


# Creating gigs.


def test_a_seller_creates_a_gig_and_announces_it(gigs: ServiceHarness) -> None:
    view = create(gigs)

    assert view == GigView(
        gig_id=view.gig_id,
        seller_id=SUE,
        seller_username="sue",
        title="I will design a minimalist logo",
        description="Three concepts and unlimited revisions.",
        category=GigCategory.DESIGN,
        tags=("logo", "branding"),
        price_cents=5_000,
        delivery_days=3,
        status=GigStatus.ACTIVE,
        ratings_count=0,
        ratings_sum=0,
        rating_categories=(0, 0, 0, 0, 0),
        created_at=START,
    )
    assert gigs.events(GigCreated) == [GigCreated(gig_id=view.gig_id, seller_id=SUE)]
    assert gigs.request(GetGig(view.gig_id)) == view


def test_nobody_creates_a_gig_in_someone_elses_name(gigs: ServiceHarness) -> None:
    error = refusal(gigs, new_gig(SUE), actor_id=TOM)

    assert (error.code, error.field) == ("forbidden", "seller_id")
    assert gigs.events(GigCreated) == []


def test_an_anonymous_visitor_cannot_create_a_gig(gigs: ServiceHarness) -> None:
    error = refusal(gigs, new_gig(SUE))

    assert (error.code, error.field) == ("unauthenticated", None)


def test_the_same_create_request_retried_creates_one_gig(gigs: ServiceHarness) -> None:
    first = gigs.request(new_gig(), actor_id=SUE, key="k1")
    again = gigs.request(new_gig(), actor_id=SUE, key="k1")

    assert first == again
    assert search(gigs).total == 1
    announced = [e for e in gigs.published if isinstance(e.event, GigCreated)]
    assert len({e.message_id for e in announced}) == 1


def test_the_same_delete_request_retried_deletes_and_announces_once(gigs: ServiceHarness) -> None:
    gig = create(gigs)

    first = gigs.request(DeleteGig(gig.gig_id), actor_id=SUE, key="k1")
    again = gigs.request(DeleteGig(gig.gig_id), actor_id=SUE, key="k1")

    assert first == again == Done()
    announced = [e for e in gigs.published if isinstance(e.event, GigDeleted)]
    assert len({e.message_id for e in announced}) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price_cents": 499}, "price_cents"),
        ({"price_cents": 10_000_001}, "price_cents"),
        ({"delivery_days": 0}, "delivery_days"),
        ({"delivery_days": MAX_DELIVERY_DAYS + 1}, "delivery_days"),
        ({"tags": ("a", "b", "c", "d", "e", "f")}, "tags"),
        ({"tags": ("Logo", "logo")}, "tags"),
        ({"tags": ("x" * 31,)}, "tags"),
        ({"title": " "}, "title"),
        ({"description": ""}, "description"),
        ({"category": "design"}, "category"),
    ],
)
def test_a_gig_refuses_values_out_of_bounds(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        new_gig(**changes)

    assert caught.value.field == field


# Changing gigs.


def test_a_seller_updates_only_the_fields_given(gigs: ServiceHarness) -> None:
    gig = create(gigs)

    view = gigs.request(UpdateGig(gig.gig_id, price_cents=7_500, tags=()), actor_id=SUE)

    assert view == attrs.evolve(gig, price_cents=7_500, tags=())
    assert gigs.request(GetGig(gig.gig_id)) == view


def test_only_its_seller_may_change_a_gig(gigs: ServiceHarness) -> None:
    gig = create(gigs)

    for command in (UpdateGig(gig.gig_id, title="Mine now"), PauseGig(gig.gig_id), DeleteGig(gig.gig_id)):
        error = refusal(gigs, command, actor_id=TOM)
        assert (error.code, error.field) == ("forbidden", "gig_id")
    assert gigs.request(GetGig(gig.gig_id)) == gig


def test_changing_an_unknown_gig_is_not_found(gigs: ServiceHarness) -> None:
    error = refusal(gigs, UpdateGig("nope", title="New"), actor_id=SUE)

    assert (error.code, error.field) == ("not-found", "gig_id")


def test_a_paused_gig_leaves_search_and_returns_when_resumed(gigs: ServiceHarness) -> None:
    gig = create(gigs)

    paused = gigs.request(PauseGig(gig.gig_id), actor_id=SUE)
    assert paused.status is GigStatus.PAUSED
    assert search(gigs).total == 0
    assert gigs.request(GetGig(gig.gig_id)).status is GigStatus.PAUSED

    resumed = gigs.request(ResumeGig(gig.gig_id), actor_id=SUE)
    assert resumed.status is GigStatus.ACTIVE
    assert search(gigs).items == (resumed,)


def test_pausing_a_paused_gig_or_resuming_an_active_one_is_refused(gigs: ServiceHarness) -> None:
    active = create(gigs)
    paused = create(gigs)
    gigs.request(PauseGig(paused.gig_id), actor_id=SUE)

    for command in (ResumeGig(active.gig_id), PauseGig(paused.gig_id)):
        error = refusal(gigs, command, actor_id=SUE)
        assert (error.code, error.field) == ("invalid-state", "status")


def test_a_paused_gig_can_still_be_updated(gigs: ServiceHarness) -> None:
    gig = create(gigs)
    gigs.request(PauseGig(gig.gig_id), actor_id=SUE)

    view = gigs.request(UpdateGig(gig.gig_id, delivery_days=5), actor_id=SUE)

    assert (view.status, view.delivery_days) == (GigStatus.PAUSED, 5)


# Deleting gigs.


def test_a_deleted_gig_leaves_search_and_is_announced(gigs: ServiceHarness) -> None:
    gig = create(gigs)

    assert gigs.request(DeleteGig(gig.gig_id), actor_id=SUE) == Done()

    assert gigs.events(GigDeleted) == [GigDeleted(gig_id=gig.gig_id, seller_id=SUE)]
    assert search(gigs).total == 0
    assert gigs.request(ListSellerGigs(SUE), actor_id=SUE).total == 0


def test_a_paused_gig_can_be_deleted(gigs: ServiceHarness) -> None:
    gig = create(gigs)
    gigs.request(PauseGig(gig.gig_id), actor_id=SUE)

    gigs.request(DeleteGig(gig.gig_id), actor_id=SUE)

    assert gigs.events(GigDeleted) == [GigDeleted(gig_id=gig.gig_id, seller_id=SUE)]


def test_a_deleted_gig_is_kept_for_its_seller_and_hidden_from_others(gigs: ServiceHarness) -> None:
    gig = create(gigs)
    gigs.request(DeleteGig(gig.gig_id), actor_id=SUE)

    assert gigs.request(GetGig(gig.gig_id), actor_id=SUE) == attrs.evolve(gig, status=GigStatus.DELETED)
    for actor_id in (TOM, None):
        error = refusal(gigs, GetGig(gig.gig_id), actor_id=actor_id)
        assert (error.code, error.field) == ("not-found", "gig_id")


def test_a_deleted_gig_cannot_be_changed_or_deleted_again(gigs: ServiceHarness) -> None:
    gig = create(gigs)
    gigs.request(DeleteGig(gig.gig_id), actor_id=SUE)

    for command in (DeleteGig(gig.gig_id), UpdateGig(gig.gig_id, title="Back"), ResumeGig(gig.gig_id)):
        error = refusal(gigs, command, actor_id=SUE)
        assert (error.code, error.field) == ("invalid-state", "status")
    assert len(gigs.events(GigDeleted)) == 1


# Ratings.


def test_ratings_accrue_to_the_gig(gigs: ServiceHarness) -> None:
    gig = create(gigs)

    for number, rating in enumerate((5, 4, 5)):
        assert gigs.deliver(GigReviewed(review_id=f"r{number}", gig_id=gig.gig_id, rating=rating)) == []

    view = gigs.request(GetGig(gig.gig_id))
    assert (view.ratings_count, view.ratings_sum, view.rating_categories) == (3, 14, (0, 0, 0, 1, 2))


def test_a_rating_of_a_deleted_gig_still_applies(gigs: ServiceHarness) -> None:
    gig = create(gigs)
    gigs.request(DeleteGig(gig.gig_id), actor_id=SUE)

    gigs.deliver(GigReviewed(review_id="r1", gig_id=gig.gig_id, rating=3))

    assert gigs.request(GetGig(gig.gig_id), actor_id=SUE).ratings_sum == 3


def test_a_duplicated_rating_counts_once(gigs: ServiceHarness) -> None:
    gig = create(gigs)
    reviewed = envelope(GigReviewed(review_id="r1", gig_id=gig.gig_id, rating=5))

    gigs.deliver_envelope(reviewed)
    gigs.deliver_envelope(reviewed)

    assert gigs.request(GetGig(gig.gig_id)).ratings_count == 1


def test_a_rating_of_an_unknown_gig_is_dead_lettered_and_creates_nothing(gigs: ServiceHarness) -> None:
    with pytest.raises(PermanentError, match="gig_id"):
        gigs.deliver(GigReviewed(review_id="r1", gig_id="ghost", rating=5))

    error = refusal(gigs, GetGig("ghost"))
    assert (error.code, error.field) == ("not-found", "gig_id")


# Searching.


def test_search_finds_only_active_gigs(gigs: ServiceHarness) -> None:
    active = create(gigs, title="Active")
    paused = create(gigs, title="Paused")
    deleted = create(gigs, title="Deleted")
    gigs.request(PauseGig(paused.gig_id), actor_id=SUE)
    gigs.request(DeleteGig(deleted.gig_id), actor_id=SUE)

    assert search(gigs).items == (active,)


def test_search_text_needs_every_word_in_title_description_or_tags_in_any_case(gigs: ServiceHarness) -> None:
    create(gigs, title="Logo design", description="Clean vector marks.", tags=("branding",))
    create(gigs, title="Website", description="A fast LOGO-friendly site.", tags=())
    create(gigs, title="Blog posts", description="Articles.", tags=("SEO",))

    assert titles(search(gigs, text="logo")) == ["Logo design", "Website"]
    assert titles(search(gigs, text="LOGO Branding")) == ["Logo design"]
    assert titles(search(gigs, text="seo")) == ["Blog posts"]
    assert titles(search(gigs, text="logo seo")) == []


def test_search_filters_by_category_price_and_delivery_time(gigs: ServiceHarness) -> None:
    create(gigs, title="Cheap logo", category=GigCategory.DESIGN, price_cents=1_000, delivery_days=1)
    create(gigs, title="Dear logo", category=GigCategory.DESIGN, price_cents=90_000, delivery_days=10)
    create(gigs, title="App", category=GigCategory.PROGRAMMING, price_cents=50_000, delivery_days=30)

    assert titles(search(gigs, category=GigCategory.DESIGN)) == ["Cheap logo", "Dear logo"]
    assert titles(search(gigs, min_price_cents=1_001)) == ["Dear logo", "App"]
    assert titles(search(gigs, max_price_cents=50_000)) == ["Cheap logo", "App"]
    assert titles(search(gigs, min_price_cents=1_000, max_price_cents=1_000)) == ["Cheap logo"]
    assert titles(search(gigs, max_delivery_days=10)) == ["Cheap logo", "Dear logo"]
    assert titles(search(gigs, category=GigCategory.DESIGN, max_delivery_days=5, text="logo")) == [
        "Cheap logo"
    ]


def test_search_pages_are_in_creation_order_and_count_every_match(gigs: ServiceHarness) -> None:
    for number in range(5):
        create(gigs, title=f"Gig {number}")

    pages = [search(gigs, page=page, page_size=2) for page in (1, 2, 3, 4)]

    assert [titles(page) for page in pages] == [["Gig 0", "Gig 1"], ["Gig 2", "Gig 3"], ["Gig 4"], []]
    assert {(page.total, page.page_size) for page in pages} == {(5, 2)}
    assert [page.page for page in pages] == [1, 2, 3, 4]


def test_gigs_created_at_the_same_moment_are_ordered_by_id(gigs: ServiceHarness) -> None:
    first = gigs.request(new_gig(title="First"), actor_id=SUE)
    second = gigs.request(new_gig(title="Second"), actor_id=SUE)

    assert search(gigs).items == tuple(sorted((first, second), key=lambda gig: gig.gig_id))


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        ({"min_price_cents": 2_000, "max_price_cents": 1_000}, "max_price_cents"),
        ({"page": 0}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": MAX_PAGE_SIZE + 1}, "page_size"),
        ({"text": ""}, "text"),
        ({"max_delivery_days": 0}, "max_delivery_days"),
    ],
)
def test_search_refuses_criteria_out_of_bounds(criteria: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SearchGigs(**criteria)

    assert caught.value.field == field


def test_a_seller_lists_their_paused_gigs_and_others_see_only_active_ones(gigs: ServiceHarness) -> None:
    active = create(gigs, title="Active")
    paused = create(gigs, title="Paused")
    deleted = create(gigs, title="Deleted")
    create(gigs, TOM, title="Tom's")
    gigs.request(PauseGig(paused.gig_id), actor_id=SUE)
    gigs.request(DeleteGig(deleted.gig_id), actor_id=SUE)

    own = gigs.request(ListSellerGigs(SUE), actor_id=SUE)
    seen = gigs.request(ListSellerGigs(SUE), actor_id=TOM)

    assert own.items == (active, attrs.evolve(paused, status=GigStatus.PAUSED))
    assert seen.items == (active,)
    assert gigs.request(ListSellerGigs(SUE)).items == (active,)


# Seeding.


def seed(gigs: ServiceHarness, count: int) -> str:
    assert gigs.request(SeedGigs(count), actor_id=BOB) == Done()
    request: SellersRequested = gigs.events(SellersRequested)[-1]
    assert request.count == count
    return request.request_id


def summary(seller_id: str) -> SellerSummary:
    username = seller_id.rpartition("-")[2]
    return SellerSummary(seller_id=seller_id, username=username, email=f"{username}@example.com")


def test_seeding_gives_each_provided_seller_one_demo_gig(gigs: ServiceHarness) -> None:
    request_id = seed(gigs, 2)

    published = gigs.deliver(SellersProvided(request_id=request_id, sellers=(summary(SUE), summary(TOM))))

    created = [e.event for e in published if isinstance(e.event, GigCreated)]
    assert len(created) == len(published)
    assert [event.seller_id for event in created] == [SUE, TOM]
    for event in created:
        gig = gigs.request(GetGig(event.gig_id))
        assert (gig.seller_id, gig.status) == (event.seller_id, GigStatus.ACTIVE)
        assert gig.seller_username == event.seller_id.rpartition("-")[2]
    assert search(gigs).total == 2


def test_a_second_answer_to_the_same_seeding_request_creates_nothing(gigs: ServiceHarness) -> None:
    request_id = seed(gigs, 1)
    answer = SellersProvided(request_id=request_id, sellers=(summary(SUE),))
    gigs.deliver(answer)

    assert gigs.deliver(answer) == []
    assert search(gigs).total == 1


def test_a_duplicated_seeding_answer_republishes_the_same_gigs(gigs: ServiceHarness) -> None:
    request_id = seed(gigs, 1)
    answer = envelope(SellersProvided(request_id=request_id, sellers=(summary(SUE),)))

    first = gigs.deliver_envelope(answer)
    again = gigs.deliver_envelope(answer)

    assert first == again
    assert search(gigs).total == 1


def test_seeding_creates_no_more_gigs_than_asked(gigs: ServiceHarness) -> None:
    request_id = seed(gigs, 1)

    gigs.deliver(SellersProvided(request_id=request_id, sellers=(summary(SUE), summary(TOM))))

    assert [gig.seller_id for gig in search(gigs).items] == [SUE]


def test_seeding_with_no_sellers_creates_nothing(gigs: ServiceHarness) -> None:
    request_id = seed(gigs, 3)

    assert gigs.deliver(SellersProvided(request_id=request_id, sellers=())) == []


def test_a_seller_always_gets_the_same_demo_gig(gigs: ServiceHarness) -> None:
    for _ in range(2):
        gigs.deliver(SellersProvided(request_id=seed(gigs, 1), sellers=(summary(SUE),)))

    first, second = search(gigs).items
    assert first.gig_id != second.gig_id
    assert attrs.evolve(first, gig_id="same") == attrs.evolve(second, gig_id="same")
    assert "sue" in first.description


def test_an_answer_to_a_request_never_sent_is_dead_lettered(gigs: ServiceHarness) -> None:
    with pytest.raises(PermanentError, match="request_id"):
        gigs.deliver(SellersProvided(request_id="never-asked", sellers=(summary(SUE),)))

    assert search(gigs).total == 0


def test_the_same_seeding_request_retried_asks_for_sellers_once(gigs: ServiceHarness) -> None:
    gigs.request(SeedGigs(2), actor_id=BOB, key="k1")
    gigs.request(SeedGigs(2), actor_id=BOB, key="k1")

    asked = [e for e in gigs.published if isinstance(e.event, SellersRequested)]
    assert len({e.message_id for e in asked}) == 1


def test_an_anonymous_visitor_cannot_seed(gigs: ServiceHarness) -> None:
    error = refusal(gigs, SeedGigs(1))

    assert (error.code, error.field) == ("unauthenticated", None)


def test_seeding_runs_end_to_end_between_gig_and_users(gigs: ServiceHarness, users: ServiceHarness) -> None:
    make_seller(users, SUE)
    make_seller(users, TOM)
    register(users, BOB)
    request_id = seed(gigs, 5)

    (provided,) = users.deliver(SellersRequested(request_id=request_id, count=5))
    for announced in gigs.deliver(provided.event):
        users.deliver(announced.event)

    assert [gig.seller_id for gig in gigs.events(GigCreated)] == [SUE, TOM]
    assert [users.request(GetSeller(s)).total_gigs for s in (SUE, TOM)] == [1, 1]


# The gateway's facade.


def test_the_gateway_lets_a_seller_create_a_gig_under_their_username(
    gigs: ServiceHarness, users: ServiceHarness
) -> None:
    make_seller(users, SUE)
    client = HarnessClient(users=users, gig=gigs)

    view = Gigs(client, SUE).create(
        title="Logo", description="A logo.", category=GigCategory.DESIGN, price_cents=900, delivery_days=2
    )

    assert (view.seller_id, view.seller_username, view.tags) == (SUE, "sue", ())
    assert Gigs(client, None).get(gig_id=view.gig_id) == view
    assert Gigs(client, None).search(text="logo").items == (view,)
    assert Gigs(client, TOM).of_seller(seller_id=SUE).items == (view,)
    paused = Gigs(client, SUE).pause(gig_id=view.gig_id)
    assert Gigs(client, SUE).resume(gig_id=view.gig_id) == attrs.evolve(paused, status=GigStatus.ACTIVE)
    assert Gigs(client, SUE).update(gig_id=view.gig_id, price_cents=1_000).price_cents == 1_000
    assert Gigs(client, SUE).delete(gig_id=view.gig_id) == Done()


def test_the_gateway_refuses_gig_creation_by_a_user_who_is_not_a_seller(
    gigs: ServiceHarness, users: ServiceHarness
) -> None:
    register(users, BOB)
    client = HarnessClient(users=users, gig=gigs)

    with pytest.raises(DomainError) as caught:
        Gigs(client, BOB).create(
            title="Logo", description="A logo.", category=GigCategory.DESIGN, price_cents=900, delivery_days=2
        )

    assert (caught.value.code, caught.value.field) == ("forbidden", "user_id")
    assert gigs.events(GigCreated) == []


def test_the_gateway_asks_a_signed_in_user_to_seed(gigs: ServiceHarness) -> None:
    with pytest.raises(DomainError) as caught:
        Gigs(HarnessClient(gig=gigs), None).seed(count=3)

    assert caught.value.code == "unauthenticated"
    assert Gigs(HarnessClient(gig=gigs), BOB).seed(count=3) == Done()
    assert gigs.events(SellersRequested)[0].count == 3
