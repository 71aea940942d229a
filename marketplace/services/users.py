"""The users service: buyer profiles from sign-ups, seller profiles and their figures.

Every registered user has a buyer profile (`UserProfile`); a user who became a
seller also has a `SellerProfile`, whose figures (jobs, earnings, gigs,
ratings) follow the events of the order, gig and review services. Those
figures are plain counts, sums and maxima, so that the events of one order
give the same figures in whatever order they arrive. An event about a seller
or buyer that does not exist refers to something that never existed: it is
refused and dead-lettered rather than creating a profile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attrs import evolve, frozen

from ..commands.users import (
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
from ..errors import DomainError, conflict, forbidden, not_found
from ..events import (
    GigCreated,
    GigDeleted,
    GigReviewed,
    OrderCancelled,
    OrderCompleted,
    OrderPlaced,
    ReviewAdded,
    ReviewKind,
    SellersProvided,
    SellersRequested,
    SellerSummary,
    UserRegistered,
)
from ..service import Service, Work, handles
from ..validation import MAX_RATING

USERS = "users"
"""Collection of buyer profiles, by user id."""
SELLERS = "sellers"
"""Collection of seller profiles, by user id."""


@frozen
class UserProfile:
    """A registered user, as a buyer: who they are, what they bought, how sellers rated them."""

    user_id: str
    username: str
    email: str
    country: str
    profile_picture_url: str | None
    registered_at: datetime
    purchased_gigs: frozenset[str] = frozenset()
    ratings_count: int = 0
    ratings_sum: int = 0


@frozen
class SellerProfile:
    """A user who sells: the public profile and the figures that events keep up to date."""

    seller_id: str
    full_name: str
    description: str
    skills: tuple[str, ...]
    languages: tuple[str, ...]
    became_seller_at: datetime
    ongoing_jobs: int = 0
    completed_jobs: int = 0
    cancelled_jobs: int = 0
    total_earnings_cents: int = 0
    total_gigs: int = 0
    ratings_count: int = 0
    ratings_sum: int = 0
    rating_categories: tuple[int, ...] = (0,) * MAX_RATING
    recent_delivery: datetime | None = None

    def rated(self, rating: int) -> SellerProfile:
        """This seller with one more rating of `rating` stars."""
        categories = list(self.rating_categories)
        categories[rating - 1] += 1
        return evolve(
            self,
            ratings_count=self.ratings_count + 1,
            ratings_sum=self.ratings_sum + rating,
            rating_categories=tuple(categories),
        )


class UsersService(Service):
    """Keeps buyer and seller profiles; answers seeding's request for sellers."""

    name = "users"
    publishes = frozenset({SellersProvided, GigReviewed})

    # Sign-up and becoming a seller.

    @handles(UserRegistered)
    def when_user_registered(self, work: Work, event: UserRegistered) -> None:
        """A new user gets a buyer profile; a repeated registration keeps the profile as it is."""
        if work.get(USERS, event.user_id) is not None:
            return
        work.put(
            USERS,
            event.user_id,
            UserProfile(
                user_id=event.user_id,
                username=event.username,
                email=event.email,
                country=event.country,
                profile_picture_url=event.profile_picture_url,
                registered_at=event.registered_at,
            ),
        )

    @handles(BecomeSeller)
    def do_become_seller(self, work: Work, command: BecomeSeller) -> SellerView:
        """The signed-in buyer opens a seller profile, once."""
        user = _user(work, _signed_in(work), field="user_id")
        if work.get(SELLERS, user.user_id) is not None:
            raise conflict("already a seller", "user_id")
        seller = SellerProfile(
            seller_id=user.user_id,
            full_name=command.full_name,
            description=command.description,
            skills=command.skills,
            languages=command.languages,
            became_seller_at=work.now,
        )
        work.put(SELLERS, seller.seller_id, seller)
        return _seller_view(user, seller)

    @handles(UpdateSeller)
    def do_update_seller(self, work: Work, command: UpdateSeller) -> SellerView:
        """The signed-in seller changes the fields given in the command."""
        user = _user(work, _signed_in(work), field="user_id")
        seller = _seller(work, user.user_id, field="user_id")
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("full_name", command.full_name),
                ("description", command.description),
                ("skills", command.skills),
                ("languages", command.languages),
            )
            if value is not None
        }
        seller = evolve(seller, **changes)
        work.put(SELLERS, seller.seller_id, seller)
        return _seller_view(user, seller)

    # Orders.

    @handles(OrderPlaced)
    def when_order_placed(self, work: Work, event: OrderPlaced) -> None:
        """The seller has one more ongoing job."""
        seller = _seller(work, event.seller_id)
        work.put(SELLERS, seller.seller_id, evolve(seller, ongoing_jobs=seller.ongoing_jobs + 1))

    @handles(OrderCompleted)
    def when_order_completed(self, work: Work, event: OrderCompleted) -> None:
        """The job is done: the seller is paid, and the buyer has bought the gig."""
        seller = _seller(work, event.seller_id)
        buyer = _user(work, event.buyer_id, field="buyer_id")
        latest = event.completed_at
        if seller.recent_delivery is not None and seller.recent_delivery > latest:
            latest = seller.recent_delivery
        seller = evolve(
            seller,
            ongoing_jobs=seller.ongoing_jobs - 1,
            completed_jobs=seller.completed_jobs + 1,
            total_earnings_cents=seller.total_earnings_cents + event.seller_earnings_cents,
            recent_delivery=latest,
        )
        work.put(SELLERS, seller.seller_id, seller)
        work.put(USERS, buyer.user_id, evolve(buyer, purchased_gigs=buyer.purchased_gigs | {event.gig_id}))

    @handles(OrderCancelled)
    def when_order_cancelled(self, work: Work, event: OrderCancelled) -> None:
        """The job is off: one ongoing job fewer, one cancelled more."""
        seller = _seller(work, event.seller_id)
        seller = evolve(
            seller, ongoing_jobs=seller.ongoing_jobs - 1, cancelled_jobs=seller.cancelled_jobs + 1
        )
        work.put(SELLERS, seller.seller_id, seller)

    # Gigs.

    @handles(GigCreated)
    def when_gig_created(self, work: Work, event: GigCreated) -> None:
        """The seller has one more gig."""
        seller = _seller(work, event.seller_id)
        work.put(SELLERS, seller.seller_id, evolve(seller, total_gigs=seller.total_gigs + 1))

    @handles(GigDeleted)
    def when_gig_deleted(self, work: Work, event: GigDeleted) -> None:
        """The seller has one gig fewer (a paused gig still counts; a deleted one does not)."""
        seller = _seller(work, event.seller_id)
        work.put(SELLERS, seller.seller_id, evolve(seller, total_gigs=seller.total_gigs - 1))

    @handles(SellersRequested)
    def when_sellers_requested(self, work: Work, event: SellersRequested) -> None:
        """Seeding asked for sellers: answer with up to `count` of them, in id order."""
        sellers: list[SellerProfile] = work.values(SELLERS)[: event.count]
        summaries = []
        for seller in sellers:
            user = _user(work, seller.seller_id)
            summaries.append(SellerSummary(seller_id=user.user_id, username=user.username, email=user.email))
        work.emit(SellersProvided(request_id=event.request_id, sellers=tuple(summaries)))

    # Reviews.

    @handles(ReviewAdded)
    def when_review_added(self, work: Work, event: ReviewAdded) -> None:
        """A buyer's rating counts for the seller and goes on to the gig; a seller's counts for the buyer."""
        if event.kind is ReviewKind.BUYER:
            seller = _seller(work, event.reviewee_id, field="reviewee_id")
            work.put(SELLERS, seller.seller_id, seller.rated(event.rating))
            work.emit(GigReviewed(review_id=event.review_id, gig_id=event.gig_id, rating=event.rating))
        else:
            buyer = _user(work, event.reviewee_id, field="reviewee_id")
            buyer = evolve(
                buyer, ratings_count=buyer.ratings_count + 1, ratings_sum=buyer.ratings_sum + event.rating
            )
            work.put(USERS, buyer.user_id, buyer)

    # Queries.

    @handles(GetUser)
    def do_get_user(self, work: Work, query: GetUser) -> UserView:
        """The internal facts of a user, for any caller (the gateway gathers them for commands)."""
        user = _user(work, query.user_id)
        return UserView(
            user_id=user.user_id,
            username=user.username,
            email=user.email,
            country=user.country,
            profile_picture_url=user.profile_picture_url,
            status=_status(work, user.user_id),
            registered_at=user.registered_at,
        )

    @handles(GetSeller)
    def do_get_seller(self, work: Work, query: GetSeller) -> SellerView:
        """A seller's public profile and figures, for any caller."""
        seller = _seller(work, query.seller_id, field="seller_id")
        return _seller_view(_user(work, seller.seller_id, field="seller_id"), seller)

    @handles(GetBuyer)
    def do_get_buyer(self, work: Work, query: GetBuyer) -> BuyerView:
        """A buyer's own profile; nobody else may see it."""
        if work.actor_id != query.buyer_id:
            raise forbidden("only the buyer may see their profile", "buyer_id")
        buyer = _user(work, query.buyer_id, field="buyer_id")
        return BuyerView(
            buyer_id=buyer.user_id,
            username=buyer.username,
            email=buyer.email,
            country=buyer.country,
            profile_picture_url=buyer.profile_picture_url,
            status=_status(work, buyer.user_id),
            registered_at=buyer.registered_at,
            purchased_gigs=buyer.purchased_gigs,
            ratings_count=buyer.ratings_count,
            ratings_sum=buyer.ratings_sum,
        )


def _signed_in(work: Work) -> str:
    """The signed-in user's id; anonymous requests are refused."""
    if work.actor_id is None:
        raise DomainError("unauthenticated", "sign in first")
    return work.actor_id


def _user(work: Work, user_id: str, *, field: str = "user_id") -> UserProfile:
    """The profile of `user_id`, or not-found naming `field`."""
    user: UserProfile | None = work.get(USERS, user_id)
    if user is None:
        raise not_found("user", field)
    return user


def _seller(work: Work, seller_id: str, *, field: str = "seller_id") -> SellerProfile:
    """The seller profile of `seller_id`, or not-found naming `field`."""
    seller: SellerProfile | None = work.get(SELLERS, seller_id)
    if seller is None:
        raise not_found("seller", field)
    return seller


def _status(work: Work, user_id: str) -> SellerStatus:
    """Whether `user_id` sells."""
    return SellerStatus.SELLER if work.get(SELLERS, user_id) is not None else SellerStatus.BUYER


def _seller_view(user: UserProfile, seller: SellerProfile) -> SellerView:
    """The public view of a seller."""
    return SellerView(
        seller_id=seller.seller_id,
        username=user.username,
        country=user.country,
        profile_picture_url=user.profile_picture_url,
        full_name=seller.full_name,
        description=seller.description,
        skills=seller.skills,
        languages=seller.languages,
        became_seller_at=seller.became_seller_at,
        # Counts only dip below zero while a completion or deletion is ahead of its creation.
        ongoing_jobs=max(seller.ongoing_jobs, 0),
        completed_jobs=seller.completed_jobs,
        cancelled_jobs=seller.cancelled_jobs,
        total_earnings_cents=seller.total_earnings_cents,
        total_gigs=max(seller.total_gigs, 0),
        ratings_count=seller.ratings_count,
        ratings_sum=seller.ratings_sum,
        rating_categories=seller.rating_categories,
        recent_delivery=seller.recent_delivery,
    )
