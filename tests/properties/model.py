"""A plain-Python model of the marketplace: what each operation should do, and what should then be true.

The model knows the rules of the domain (`shared/design/event-catalog.md`),
not the code: it imports nothing from `marketplace` but the enums of the
client API. The state machine asks it, before each operation, whether the
operation should be refused (and with which code), tells it what the
operation answered (the ids the system gave), and compares the figures it
derives from its plain records with what the services show.

Things are named by small handles (`User('ann')`, `Gig(1)`, `Order(3)`,
`Offer(1)`), whose reprs make a failing program readable and replayable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

from marketplace.commands.chat import OfferStatus
from marketplace.commands.gig import GigStatus
from marketplace.commands.order import OrderStatus
from marketplace.events import ExtensionDecision, Party, ReviewKind

STARS = 5


# Handles.


class _Shown:
    """A value Hypothesis prints as its `repr` (it would print a dataclass field by field)."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@dataclass(frozen=True, repr=False, order=True)
class User(_Shown):
    """A user, by username."""

    name: str

    def __repr__(self) -> str:
        return f"User({self.name!r})"

    @property
    def email(self) -> str:
        """The user's address."""
        return f"{self.name}@example.com"


@dataclass(frozen=True, repr=False, order=True)
class _Numbered(_Shown):
    """The n-th thing of its kind, shown as `Kind(n)` (two kinds never compare equal)."""

    number: int

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.number})"


class Gig(_Numbered):
    """The n-th gig created."""


class Offer(_Numbered):
    """The n-th custom offer sent."""


class Order(_Numbered):
    """The n-th order placed."""


class Attempt(_Shown):
    """An operation and its arguments that the model expects refused: `Attempt('review', Order(1), side)`."""

    __slots__ = ("arguments", "operation")

    def __init__(self, operation: str, *arguments: object) -> None:
        self.operation = operation
        self.arguments = arguments

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attempt) and (self.operation, self.arguments) == (
            other.operation,
            other.arguments,
        )

    def __hash__(self) -> int:
        return hash((self.operation, self.arguments))

    def __repr__(self) -> str:
        shown = [f"{type(a).__name__}.{a.name}" if isinstance(a, Enum) else repr(a) for a in self.arguments]
        return f"Attempt({', '.join([repr(self.operation), *shown])})"


# What the marketplace should hold.


@dataclass
class Account:
    """A signed-up user; `seller` once they became one."""

    user: User
    user_id: str
    seller: bool = False


@dataclass
class Listing:
    """A gig and where it stands."""

    gig: Gig
    gig_id: str
    seller: User
    title: str
    price_cents: int
    delivery_days: int
    status: GigStatus = GigStatus.ACTIVE


@dataclass
class CustomOffer:
    """A seller's custom offer to a buyer, for one of the seller's gigs."""

    offer: Offer
    offer_id: str
    gig: Gig
    buyer: User
    seller: User
    price_cents: int
    delivery_days: int
    status: OfferStatus = OfferStatus.PENDING
    ordered: bool = False


@dataclass(frozen=True)
class Rating:
    """One party's review of the other on an order."""

    review_id: str
    rating: int
    comment: str
    created_at: datetime


@dataclass
class Job:
    """An order, its figures, and where it stands."""

    order: Order
    order_id: str
    gig: Gig
    gig_id: str
    gig_title: str
    buyer: User
    seller: User
    price_cents: int
    placed_at: datetime
    due_at: datetime
    status: OrderStatus = OrderStatus.PLACED
    extension_days: int | None = None
    """Days of the extension the seller asked for, while the buyer has not decided."""
    completed_at: datetime | None = None
    buyer_review: Rating | None = None
    seller_review: Rating | None = None

    @property
    def service_fee_cents(self) -> int:
        """5.5 % of the price, half up, plus 200 cents under 5000 cents."""
        return service_fee_cents(self.price_cents)

    @property
    def total_cents(self) -> int:
        """What the buyer pays."""
        return self.price_cents + self.service_fee_cents

    @property
    def seller_earnings_cents(self) -> int:
        """80 % of the price, half up."""
        return seller_earnings_cents(self.price_cents)

    def review(self, kind: ReviewKind) -> Rating | None:
        """The review `kind`'s side wrote."""
        return self.buyer_review if kind is ReviewKind.BUYER else self.seller_review


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def service_fee_cents(price_cents: int) -> int:
    """The buyer's service fee: 5.5 % of the price (half up), plus 200 cents under 5000 cents."""
    return _half_up(price_cents * 55, 1000) + (200 if price_cents < 5000 else 0)


def seller_earnings_cents(price_cents: int) -> int:
    """What the seller earns: 80 % of the price, half up."""
    return _half_up(price_cents * 80, 100)


# E-mails.


class EmailKind(StrEnum):
    """The kinds of e-mail the marketplace sends."""

    VERIFY = "verify"
    OFFER = "offer"
    ORDER_RECEIVED = "order-received"
    RECEIPT = "receipt"
    DELIVERED = "delivered"
    EXTENSION_REQUESTED = "extension-requested"
    EXTENSION_APPROVED = "extension-approved"
    EXTENSION_REJECTED = "extension-rejected"
    COMPLETED = "completed"
    CANCELLED_FOR_BUYER = "cancelled-for-buyer"
    CANCELLED_FOR_SELLER = "cancelled-for-seller"


@dataclass(frozen=True, order=True)
class ExpectedEmail:
    """An e-mail of `kind` to `to`, about an order or offer (its id) or about nothing in particular."""

    kind: EmailKind
    to: str
    about: str | None = None

    def __repr__(self) -> str:
        about = f" about {self.about}" if self.about else ""
        return f"<{self.kind} to {self.to}{about}>"


# Figures the services keep, derived here from the records.


@dataclass(frozen=True)
class Jobs:
    """A seller's jobs by where they stand, and what the completed ones earned."""

    ongoing: int
    completed: int
    cancelled: int
    earnings_cents: int

    @classmethod
    def of(cls, orders: Iterable[tuple[OrderStatus, int]]) -> Jobs:
        """The figures of these orders, each given as its status and what it earns the seller."""
        counts: Counter[OrderStatus] = Counter()
        earnings = 0
        for status, seller_earnings_cents in orders:
            counts[status] += 1
            if status is OrderStatus.COMPLETED:
                earnings += seller_earnings_cents
        return cls(
            ongoing=counts[OrderStatus.PLACED] + counts[OrderStatus.DELIVERED],
            completed=counts[OrderStatus.COMPLETED],
            cancelled=counts[OrderStatus.CANCELLED],
            earnings_cents=earnings,
        )


@dataclass(frozen=True)
class Ratings:
    """How many ratings, their sum, and how many gave 1, 2, ... 5 stars."""

    count: int
    sum: int
    categories: tuple[int, ...]

    @classmethod
    def of(cls, stars: Iterable[int]) -> Ratings:
        """The figures of these ratings."""
        counts = Counter(stars)
        return cls(
            count=sum(counts.values()),
            sum=sum(rating * n for rating, n in counts.items()),
            categories=tuple(counts[rating] for rating in range(1, STARS + 1)),
        )


# Refusals.

CONFLICT = "conflict"
FORBIDDEN = "forbidden"
INVALID_STATE = "invalid-state"
NOT_FOUND = "not-found"


@dataclass
class Model:
    """What the marketplace should hold after the operations so far, and the e-mails it should have sent."""

    now: datetime
    accounts: dict[User, Account] = field(default_factory=dict)
    listings: dict[Gig, Listing] = field(default_factory=dict)
    offers: dict[Offer, CustomOffer] = field(default_factory=dict)
    jobs: dict[Order, Job] = field(default_factory=dict)
    emails: Counter[ExpectedEmail] = field(default_factory=Counter)
    dead_letters: int = 0

    # What there is to choose from: what an operation can be done with now (and is not refused).

    def users(self) -> list[User]:
        """Every signed-up user."""
        return sorted(self.accounts)

    def sellers(self) -> list[User]:
        """The users who became sellers."""
        return [user for user in self.users() if self.accounts[user].seller]

    def buyers_only(self) -> list[User]:
        """The users who did not become sellers."""
        return [user for user in self.users() if not self.accounts[user].seller]

    def gigs(self, *statuses: GigStatus) -> list[Gig]:
        """The gigs with one of `statuses` (any status when none given)."""
        return [
            gig
            for gig, listing in sorted(self.listings.items())
            if not statuses or listing.status in statuses
        ]

    def gigs_within(self, max_price_cents: int | None, max_delivery_days: int | None) -> list[Gig]:
        """The active gigs within a budget and a time (`None`: no limit)."""
        return [
            gig
            for gig in self.gigs(GigStatus.ACTIVE)
            if (max_price_cents is None or self.listings[gig].price_cents <= max_price_cents)
            and (max_delivery_days is None or self.listings[gig].delivery_days <= max_delivery_days)
        ]

    def orders(self, *statuses: OrderStatus) -> list[Order]:
        """The orders with one of `statuses` (any status when none given)."""
        return [order for order, job in sorted(self.jobs.items()) if not statuses or job.status in statuses]

    def gigs_and_buyers(self) -> list[tuple[Gig, User]]:
        """Each gig that is not deleted, with each user who may deal with its seller."""
        return [
            (gig, user)
            for gig in self.gigs(GigStatus.ACTIVE, GigStatus.PAUSED)
            for user in self.users()
            if user != self.listings[gig].seller
        ]

    def buyers_and_gigs(self) -> list[tuple[User, Gig]]:
        """Each user with each active gig they may order."""
        return [
            (user, gig) for gig, user in self.gigs_and_buyers() if self.refusal_to_order(user, gig) is None
        ]

    def pending_offers(self) -> list[Offer]:
        """The offers waiting for their buyer's answer."""
        return [
            offer for offer, record in sorted(self.offers.items()) if record.status is OfferStatus.PENDING
        ]

    def orderable_offers(self) -> list[Offer]:
        """The accepted offers not ordered yet."""
        return [offer for offer in sorted(self.offers) if self.refusal_to_order_offer(offer) is None]

    def extendable_orders(self) -> list[Order]:
        """Placed orders without a pending extension request."""
        return [order for order in self.orders() if self.refusal_to_request_extension(order) is None]

    def orders_awaiting_decision(self) -> list[Order]:
        """Placed orders with a pending extension request."""
        return [order for order in self.orders() if self.refusal_to_decide_extension(order) is None]

    def reviewable(self) -> list[tuple[Order, Party]]:
        """Each completed order with each side that has not reviewed it yet."""
        return [
            (order, side)
            for order in self.orders(OrderStatus.COMPLETED)
            for side in Party
            if self.refusal_to_review(order, _kind(side)) is None
        ]

    def buyers_with_delivered_orders(self, at_least: int = 1) -> list[User]:
        """Buyers with at least `at_least` delivered orders waiting for their completion."""
        waiting = Counter(job.buyer for job in self.jobs.values() if job.status is OrderStatus.DELIVERED)
        return sorted(buyer for buyer, count in waiting.items() if count >= at_least)

    def delivered_orders_of(self, buyer: User) -> list[Order]:
        """The delivered orders of `buyer`, oldest first."""
        return [order for order in self.orders(OrderStatus.DELIVERED) if self.jobs[order].buyer == buyer]

    def refused_attempts(self) -> list[Attempt]:
        """Operations the marketplace should refuse now, each with its arguments."""
        attempts = [Attempt("sign_up", user) for user in self.users()]
        attempts += [Attempt("become_seller", user) for user in self.sellers()]
        attempts += [Attempt("create_gig", user) for user in self.buyers_only()]
        attempts += [
            Attempt("set_status", gig, status)
            for gig in self.gigs()
            for status in GigStatus
            if self.refusal_to_set_status(gig, status)
        ]
        attempts += [
            Attempt(operation, *arguments)
            for gig in self.gigs()
            for user in self.users()
            for operation, arguments, refusal in (
                ("send_offer", (gig, user), self.refusal_to_send_offer(gig, user)),
                ("place_order", (user, gig), self.refusal_to_order(user, gig)),
            )
            if refusal
        ]
        attempts += [
            Attempt("accept_offer", offer) for offer in sorted(self.offers) if self.refusal_to_accept(offer)
        ]
        attempts += [
            Attempt("order_offer", offer)
            for offer in sorted(self.offers)
            if self.refusal_to_order_offer(offer)
        ]
        for order in self.orders():
            attempts += [
                Attempt("deliver", order, by) for by in self.users() if self.refusal_to_deliver(order, by)
            ]
            attempts += [
                Attempt(operation, order)
                for operation, refusal in (
                    ("request_extension", self.refusal_to_request_extension(order)),
                    ("decide_extension", self.refusal_to_decide_extension(order)),
                    ("complete", self.refusal_to_complete(order)),
                )
                if refusal
            ]
            attempts += [Attempt("cancel", order, side) for side in Party if self.refusal_to_cancel(order)]
            attempts += [
                Attempt("review", order, side) for side in Party if self.refusal_to_review(order, _kind(side))
            ]
        return attempts

    def gig_of(self, gig: Gig) -> Listing:
        """The record of `gig`."""
        return self.listings[gig]

    def user_id(self, user: User) -> str:
        """The id the system gave `user`."""
        return self.accounts[user].user_id

    # Accounts.

    def refusal_to_sign_up(self, user: User) -> str | None:
        """Usernames (and addresses) are unique."""
        return CONFLICT if user in self.accounts else None

    def sign_up(self, user: User, user_id: str) -> None:
        """`user` has an account; a verification e-mail is on its way."""
        self.accounts[user] = Account(user, user_id)
        self._expect(EmailKind.VERIFY, user)

    def refusal_to_become_seller(self, user: User) -> str | None:
        """One becomes a seller once."""
        return CONFLICT if self.accounts[user].seller else None

    def become_seller(self, user: User) -> None:
        """`user` sells now."""
        self.accounts[user].seller = True

    # Gigs.

    def refusal_to_create_gig(self, seller: User) -> str | None:
        """Only sellers create gigs."""
        return None if self.accounts[seller].seller else FORBIDDEN

    def next_gig(self) -> Gig:
        """The handle the next gig gets."""
        return Gig(len(self.listings) + 1)

    def create_gig(self, listing: Listing) -> None:
        """A new active gig."""
        self.listings[listing.gig] = listing

    def refusal_to_set_status(self, gig: Gig, status: GigStatus) -> str | None:
        """Pause an active gig, resume a paused one, delete one that is not deleted."""
        current = self.listings[gig].status
        allowed = {
            GigStatus.PAUSED: {GigStatus.ACTIVE},
            GigStatus.ACTIVE: {GigStatus.PAUSED},
            GigStatus.DELETED: {GigStatus.ACTIVE, GigStatus.PAUSED},
        }[status]
        return None if current in allowed else INVALID_STATE

    def set_status(self, gig: Gig, status: GigStatus) -> None:
        """The gig's seller paused, resumed or deleted it."""
        self.listings[gig].status = status

    # Custom offers.

    def refusal_to_send_offer(self, gig: Gig, buyer: User) -> str | None:
        """Nobody talks business with themself; a deleted gig is not found by a buyer."""
        listing = self.listings[gig]
        if buyer == listing.seller:
            return FORBIDDEN
        return NOT_FOUND if listing.status is GigStatus.DELETED else None

    def next_offer(self) -> Offer:
        """The handle the next offer gets."""
        return Offer(len(self.offers) + 1)

    def send_offer(self, offer: CustomOffer) -> None:
        """The buyer is e-mailed the offer."""
        self.offers[offer.offer] = offer
        self._expect(EmailKind.OFFER, offer.buyer, offer.offer_id)

    def refusal_to_accept(self, offer: Offer) -> str | None:
        """An offer is accepted (or declined) once."""
        return None if self.offers[offer].status is OfferStatus.PENDING else INVALID_STATE

    def accept(self, offer: Offer) -> None:
        """The buyer accepted the offer."""
        self.offers[offer].status = OfferStatus.ACCEPTED

    # Placing orders.

    def refusal_to_order(self, buyer: User, gig: Gig) -> str | None:
        """Only an active gig is ordered, not by its seller; a deleted gig exists only for its seller."""
        listing = self.listings[gig]
        if listing.status is GigStatus.DELETED and buyer != listing.seller:
            return NOT_FOUND
        if listing.status is not GigStatus.ACTIVE:
            return INVALID_STATE
        return FORBIDDEN if buyer == listing.seller else None

    def refusal_to_order_offer(self, offer: Offer) -> str | None:
        """Only an accepted offer can be ordered, and only once."""
        record = self.offers[offer]
        if record.status is not OfferStatus.ACCEPTED:
            return INVALID_STATE
        return CONFLICT if record.ordered else None

    def next_order(self) -> Order:
        """The handle the next order gets."""
        return Order(len(self.jobs) + 1)

    def place(self, job: Job, offer: Offer | None = None) -> None:
        """The seller hears of the order, the buyer gets the receipt."""
        self.jobs[job.order] = job
        if offer is not None:
            self.offers[offer].ordered = True
        self._expect(EmailKind.ORDER_RECEIVED, job.seller, job.order_id)
        self._expect(EmailKind.RECEIPT, job.buyer, job.order_id)

    # The life of an order.

    def refusal_to_deliver(self, order: Order, by: User) -> str | None:
        """The seller delivers a placed order; the buyer may not; to others the order does not exist."""
        job = self.jobs[order]
        if by not in (job.buyer, job.seller):
            return NOT_FOUND
        if by != job.seller:
            return FORBIDDEN
        return None if job.status is OrderStatus.PLACED else INVALID_STATE

    def deliver(self, order: Order) -> None:
        """The buyer is asked to review the delivery; a pending extension lapses."""
        job = self.jobs[order]
        job.status = OrderStatus.DELIVERED
        job.extension_days = None
        self._expect(EmailKind.DELIVERED, job.buyer, job.order_id)

    def refusal_to_request_extension(self, order: Order) -> str | None:
        """A placed order without a pending request."""
        job = self.jobs[order]
        if job.status is not OrderStatus.PLACED or job.extension_days is not None:
            return INVALID_STATE
        return None

    def request_extension(self, order: Order, extra_days: int) -> None:
        """The buyer is asked to decide."""
        job = self.jobs[order]
        job.extension_days = extra_days
        self._expect(EmailKind.EXTENSION_REQUESTED, job.buyer, job.order_id)

    def refusal_to_decide_extension(self, order: Order) -> str | None:
        """A placed order with a pending request."""
        job = self.jobs[order]
        if job.status is not OrderStatus.PLACED or job.extension_days is None:
            return INVALID_STATE
        return None

    def decide_extension(self, order: Order, decision: ExtensionDecision) -> None:
        """An approval moves the due date; the seller hears the decision either way."""
        job = self.jobs[order]
        assert job.extension_days is not None
        if decision is ExtensionDecision.APPROVED:
            job.due_at += timedelta(days=job.extension_days)
            kind = EmailKind.EXTENSION_APPROVED
        else:
            kind = EmailKind.EXTENSION_REJECTED
        job.extension_days = None
        self._expect(kind, job.seller, job.order_id)

    def refusal_to_complete(self, order: Order) -> str | None:
        """Only a delivered order can be completed."""
        return None if self.jobs[order].status is OrderStatus.DELIVERED else INVALID_STATE

    def complete(self, order: Order) -> None:
        """The seller is paid now, and told so."""
        job = self.jobs[order]
        job.status = OrderStatus.COMPLETED
        job.completed_at = self.now
        self._expect(EmailKind.COMPLETED, job.seller, job.order_id)

    def refusal_to_cancel(self, order: Order) -> str | None:
        """Only an order not yet delivered can be cancelled."""
        return None if self.jobs[order].status is OrderStatus.PLACED else INVALID_STATE

    def cancel(self, order: Order) -> None:
        """The buyer is refunded; both parties are told."""
        job = self.jobs[order]
        job.status = OrderStatus.CANCELLED
        job.extension_days = None
        self._expect(EmailKind.CANCELLED_FOR_BUYER, job.buyer, job.order_id)
        self._expect(EmailKind.CANCELLED_FOR_SELLER, job.seller, job.order_id)

    # Reviews.

    def refusal_to_review(self, order: Order, kind: ReviewKind) -> str | None:
        """A completed order, each side once."""
        job = self.jobs[order]
        if job.status is not OrderStatus.COMPLETED:
            return INVALID_STATE
        return CONFLICT if job.review(kind) is not None else None

    def review(self, order: Order, kind: ReviewKind, rating: Rating) -> None:
        """The review is kept on the order; a buyer's rates the seller and the gig, a seller's the buyer."""
        job = self.jobs[order]
        if kind is ReviewKind.BUYER:
            job.buyer_review = rating
        else:
            job.seller_review = rating

    # Bad input.

    def send_bad_message(self) -> None:
        """A message nobody can decode: dead-lettered, once."""
        self.dead_letters += 1

    # Derived figures.

    def jobs_of(self, seller: User) -> Jobs:
        """The seller's jobs: placed or delivered, completed, cancelled; and the earnings of the completed."""
        return Jobs.of(
            (job.status, job.seller_earnings_cents) for job in self.jobs.values() if job.seller == seller
        )

    def total_gigs(self, seller: User) -> int:
        """The seller's gigs, active or paused."""
        return sum(
            listing.seller == seller and listing.status is not GigStatus.DELETED
            for listing in self.listings.values()
        )

    def seller_ratings(self, seller: User) -> Ratings:
        """What the seller's buyers rated them."""
        return Ratings.of(
            job.buyer_review.rating for job in self.jobs.values() if job.seller == seller and job.buyer_review
        )

    def gig_ratings(self, gig: Gig) -> Ratings:
        """What the buyers of the gig rated it."""
        return Ratings.of(
            job.buyer_review.rating for job in self.jobs.values() if job.gig == gig and job.buyer_review
        )

    def buyer_ratings(self, buyer: User) -> Ratings:
        """What the buyer's sellers rated them."""
        return Ratings.of(
            job.seller_review.rating for job in self.jobs.values() if job.buyer == buyer and job.seller_review
        )

    def recent_delivery(self, seller: User) -> datetime | None:
        """When the seller's latest completed order was completed."""
        return max(
            (job.completed_at for job in self.jobs.values() if job.seller == seller and job.completed_at),
            default=None,
        )

    def purchased_gigs(self, buyer: User) -> frozenset[str]:
        """The ids of the gigs of the buyer's completed orders."""
        return frozenset(
            job.gig_id
            for job in self.jobs.values()
            if job.buyer == buyer and job.status is OrderStatus.COMPLETED
        )

    def party(self, order: Order, side: Party) -> User:
        """The buyer or the seller of `order`."""
        job = self.jobs[order]
        return job.buyer if side is Party.BUYER else job.seller

    def _expect(self, kind: EmailKind, to: User, about: str | None = None) -> None:
        self.emails[ExpectedEmail(kind, to.email, about)] += 1


def _kind(side: Party) -> ReviewKind:
    """The kind of review `side` writes."""
    return ReviewKind.BUYER if side is Party.BUYER else ReviewKind.SELLER
