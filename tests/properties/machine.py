"""The marketplace as a Hypothesis state machine: gateway operations as rules, a plain model, invariants.

Each rule is what users do through the gateway: sign up, become a seller,
create, pause, resume or delete a gig, send, accept and order a custom offer,
order a gig (a few times in a row, sometimes), deliver, ask for and decide an
extension, complete every delivered order (a client's burst, a minute apart),
cancel, review, search the market; one rule tries what the model says must be
refused (review twice, deliver someone else's order, order a paused gig...),
and one puts a message nobody can decode on a queue. The model says beforehand whether each
operation is refused, and with which code; the reply is checked against it.

A rule starts at quiescence and ends once its cascade of events is settled:
on the stepping memory transport, drained step by step as the rule's drawn
`Drain` says, with its faults; on RabbitMQ, by waiting until nothing is owed,
in flight or queued. After every step one invariant compares the services
with each other (the users service's figures with the order, gig and review
services' records) and with the model, the e-mails sent with those the
operations call for, the dead letters with the bad messages sent on purpose
and, when the machine drives two systems, the two with each other.

Rules draw their arguments from the model's current state (`_among`), so that
most steps move a story on; a few caps per example keep always-possible rules
from crowding the others out. A subclass says which systems it drives
(`start`) and which drains it draws (`drains`): see `tests/properties/test_*`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from attrs import frozen
from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from marketplace.commands.auth import SignedUp
from marketplace.commands.chat import OfferView
from marketplace.commands.gig import GigCategory, GigStatus, GigView
from marketplace.commands.order import OrderStatus, OrderSummary, OrderView
from marketplace.commands.review import ReviewView
from marketplace.commands.users import SellerView
from marketplace.errors import DomainError
from marketplace.events import ExtensionDecision, Party, ReviewKind
from marketplace.gateway.gigs import Gigs
from marketplace.mail import OutgoingEmail
from tests import strategies
from tests.marketplace.harness import FakeClock
from transports import dead_letter_reason

from .drain import ACTOR_CRASHES, FAULT_EVENTS, Action, Drain, Move
from .model import (
    Attempt,
    CustomOffer,
    EmailKind,
    ExpectedEmail,
    Gig,
    Job,
    Jobs,
    Listing,
    Model,
    Offer,
    Order,
    Rating,
    Ratings,
    User,
)
from .observation import Observation, differences, observe, search
from .systems import PASSWORD, SteppedMemory, System

T = TypeVar("T")

ANN, BOB = User("ann"), User("bob")
PEOPLE = (ANN, BOB, User("cat"), User("dan"))
"""Who may sign up: ann and bob do when the market opens, the others when a rule says."""
MAX_LIVE_GIGS = 4
"""Gigs not deleted at once (ann, a seller from the start, can always create one, or delete one)."""
MAX_OFFERS = 4
MAX_ORDERS = 12
MAX_BAD_MESSAGES = 2
"""Undecodable messages sent per example."""
MAX_REFUSALS = 3
"""Refused attempts per example: enough to try each kind often, few enough to leave room for stories."""
MAX_GIG_CHANGES = 4
"""Pauses, resumes and deletions per example: rules always possible would otherwise crowd out the stories."""
CONSUMERS = ("gig", "notification", "order", "users")
"""The services that consume events: where a bad message can be sent."""

EMAIL_SUBJECTS: dict[EmailKind, re.Pattern[str]] = {
    kind: re.compile(pattern)
    for kind, pattern in {
        EmailKind.VERIFY: r"Verify your e-mail address",
        EmailKind.OFFER: r"Custom offer from .+",
        EmailKind.ORDER_RECEIVED: r"You received an order: .+",
        EmailKind.RECEIPT: r"Your receipt for .+",
        EmailKind.DELIVERED: r"Your order is ready for review: .+",
        EmailKind.EXTENSION_REQUESTED: r"Extension requested: .+",
        EmailKind.EXTENSION_APPROVED: r"Extension approved: .+",
        EmailKind.EXTENSION_REJECTED: r"Extension rejected: .+",
        EmailKind.COMPLETED: r"Order completed, payment released: .+",
        EmailKind.CANCELLED_FOR_BUYER: r"Order cancelled, refund issued: .+",
        EmailKind.CANCELLED_FOR_SELLER: r"Order cancelled: .+",
    }.items()
}
"""What each kind of e-mail's subject looks like."""
_ABOUT = re.compile(r"/(?:orders|offers)/([0-9a-f]+)")


def classify(email: OutgoingEmail) -> ExpectedEmail:
    """Which kind of e-mail `email` is, to whom, about which order or offer (by the link in its body)."""
    kinds = [kind for kind, subject in EMAIL_SUBJECTS.items() if subject.fullmatch(email.subject)]
    assert len(kinds) == 1, f"an e-mail of no known kind: {email.subject!r}"
    about = _ABOUT.search(email.body)
    return ExpectedEmail(kinds[0], email.to, about.group(1) if about else None)


@frozen(repr=False)
class Refusal:
    """An operation refused with `code`."""

    code: str

    def __repr__(self) -> str:
        return f"Refusal({self.code!r})"


DRAINS: st.SearchStrategy[Drain] = st.runner().flatmap(lambda machine: machine.drains)
"""The drain of a rule's cascade, drawn as the machine running the rule says."""


def _among(choose: Callable[[Model], Sequence[T]]) -> st.SearchStrategy[T]:
    """One of what the machine's model offers now (a precondition makes sure there is one)."""
    return st.runner().flatmap(lambda machine: st.sampled_from(choose(machine.model)))


NEWCOMERS = _among(lambda model: [user for user in PEOPLE if user not in model.accounts])
BUYERS_ONLY = _among(Model.buyers_only)
SELLERS = _among(Model.sellers)
LIVE_GIGS = _among(lambda model: model.gigs(GigStatus.ACTIVE, GigStatus.PAUSED))
GIGS_AND_BUYERS = _among(Model.gigs_and_buyers)
BUYERS_AND_GIGS = _among(Model.buyers_and_gigs)
PENDING_OFFERS = _among(Model.pending_offers)
ORDERABLE_OFFERS = _among(Model.orderable_offers)
PLACED_ORDERS = _among(lambda model: model.orders(OrderStatus.PLACED))
EXTENDABLE_ORDERS = _among(Model.extendable_orders)
ORDERS_AWAITING_DECISION = _among(Model.orders_awaiting_decision)
BUYERS_WITH_DELIVERIES = _among(Model.buyers_with_delivered_orders)
REVIEWABLE_ORDERS = _among(lambda model: sorted({order for order, _side in model.reviewable()}))
"""Completed orders that one side at least has not reviewed yet."""
SIDES = st.sampled_from([str(side) for side in Party])
"""A party of an order, by name (so that a printed program shows `'buyer'`, which it can run again)."""
DECISIONS = st.sampled_from([str(decision) for decision in ExtensionDecision])
REFUSED_ATTEMPTS = _among(Model.refused_attempts)
STATUS_CHANGES: dict[GigStatus, Callable[[Gigs, str], object]] = {
    GigStatus.PAUSED: lambda gigs, gig_id: gigs.pause(gig_id=gig_id),
    GigStatus.ACTIVE: lambda gigs, gig_id: gigs.resume(gig_id=gig_id),
    GigStatus.DELETED: lambda gigs, gig_id: gigs.delete(gig_id=gig_id),
}
"""How a gig's seller gives it each status."""


class MarketplaceMachine(RuleBasedStateMachine):
    """Gateway operations on one or more running marketplaces, checked against a plain model."""

    drains: ClassVar[st.SearchStrategy[Drain]] = strategies.drains()
    """How rules drain their cascades on a stepped system (RabbitMQ ignores the moves)."""
    faults_seen: ClassVar[Counter[Action]] = Counter()
    """How often each fault was applied, over every example of this class (each subclass has its own)."""
    runs_by_steps: ClassVar[Counter[int]] = Counter()
    """How many examples of this class ran each number of steps (the opening of the market is the first)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.faults_seen = Counter()
        cls.runs_by_steps = Counter()

    def start(self) -> list[System]:
        """The systems this machine drives, running on `self.clock`."""
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.model = Model(now=self.clock.now)
        self._moves: list[Move] = []
        self._observed: list[Observation] | None = None
        self._bad_messages = 0
        self._refusals = 0
        self._gig_changes = 0
        self._rules_run = 0
        self.systems = self.start()

    def teardown(self) -> None:
        """Count the steps this example ran; stop every system (all of them, even if one fails to stop)."""
        self.runs_by_steps[self._rules_run] += 1
        with ExitStack() as stopping:
            for system in self.systems:
                stopping.callback(system.stop)

    def record_fault(self, action: Action) -> None:
        """A drain applied a fault: say so in the statistics, and count it."""
        if currently_in_test_context():  # a printed program also runs outside Hypothesis
            event(FAULT_EVENTS[action])
        self.faults_seen[action] += 1

    # Opening the market.

    @initialize(drain=DRAINS)
    def open_the_market(self, drain: Drain) -> None:
        """A market with a little history: ann sells a gig, bob ordered it twice, ann delivered both."""
        self._begin(drain)
        self._sign_up(ANN)
        self._sign_up(BOB)
        self._become_seller(ANN)
        self._create_gig(ANN, 2_500, 3)
        for order in (Order(1), Order(2)):
            self._tick()
            self._place_order(BOB, Gig(1))
            self._deliver(order, ANN)

    # Accounts.

    @precondition(lambda self: len(self.model.accounts) < len(PEOPLE))
    @rule(user=NEWCOMERS, drain=DRAINS)
    def sign_up(self, user: User, drain: Drain) -> None:
        """Someone signs up, verifies their address with the e-mailed link, and signs in."""
        self._begin(drain)
        self._sign_up(user)

    @precondition(lambda self: bool(self.model.buyers_only()))
    @rule(user=BUYERS_ONLY, drain=DRAINS)
    def become_seller(self, user: User, drain: Drain) -> None:
        """A user becomes a seller."""
        self._begin(drain)
        self._become_seller(user)

    # Gigs.

    @precondition(lambda self: len(self.model.gigs(GigStatus.ACTIVE, GigStatus.PAUSED)) < MAX_LIVE_GIGS)
    @rule(
        seller=SELLERS,
        price_cents=strategies.gig_prices(),
        delivery_days=strategies.delivery_days(),
        drain=DRAINS,
    )
    def create_gig(self, seller: User, price_cents: int, delivery_days: int, drain: Drain) -> None:
        """A seller offers a gig."""
        self._begin(drain)
        self._create_gig(seller, price_cents, delivery_days)

    @precondition(lambda self: self._gig_changes < MAX_GIG_CHANGES)
    @rule(gig=LIVE_GIGS, drain=DRAINS)
    def pause_or_resume_gig(self, gig: Gig, drain: Drain) -> None:
        """The seller pauses their active gig, or resumes their paused one."""
        self._begin(drain)
        self._gig_changes += 1
        paused = self.model.gig_of(gig).status is GigStatus.PAUSED
        self._set_status(gig, GigStatus.ACTIVE if paused else GigStatus.PAUSED)

    @precondition(
        lambda self: (
            self._gig_changes < MAX_GIG_CHANGES
            and len(self.model.gigs(GigStatus.ACTIVE, GigStatus.PAUSED)) > 1
        )
    )
    @rule(gig=LIVE_GIGS, drain=DRAINS)
    def delete_gig(self, gig: Gig, drain: Drain) -> None:
        """The seller deletes one of the gigs on the market (while others remain)."""
        self._begin(drain)
        self._gig_changes += 1
        self._set_status(gig, GigStatus.DELETED)

    # Custom offers.

    @precondition(lambda self: len(self.model.offers) < MAX_OFFERS and bool(self.model.gigs_and_buyers()))
    @rule(
        gig_and_buyer=GIGS_AND_BUYERS,
        price_cents=strategies.gig_prices(),
        delivery_days=strategies.delivery_days(),
        drain=DRAINS,
    )
    def send_offer(
        self, gig_and_buyer: tuple[Gig, User], price_cents: int, delivery_days: int, drain: Drain
    ) -> None:
        """A buyer starts a conversation about a gig; its seller sends them a custom offer."""
        self._begin(drain)
        self._send_offer(*gig_and_buyer, price_cents, delivery_days)

    @precondition(lambda self: bool(self.model.pending_offers()))
    @rule(offer=PENDING_OFFERS, drain=DRAINS)
    def accept_offer(self, offer: Offer, drain: Drain) -> None:
        """The buyer accepts a custom offer."""
        self._begin(drain)
        self._accept_offer(offer)

    # Placing orders.

    @precondition(lambda self: len(self.model.jobs) < MAX_ORDERS and bool(self.model.buyers_and_gigs()))
    @rule(buyer_and_gig=BUYERS_AND_GIGS, times=st.integers(min_value=1, max_value=3), drain=DRAINS)
    def place_orders(self, buyer_and_gig: tuple[User, Gig], times: int, drain: Drain) -> None:
        """A user orders an active gig of someone else's, once or a few times in a row."""
        self._begin(drain)
        for n in range(times):
            if n:
                self._tick()
            self._place_order(*buyer_and_gig)

    @precondition(lambda self: len(self.model.jobs) < MAX_ORDERS and bool(self.model.orderable_offers()))
    @rule(offer=ORDERABLE_OFFERS, drain=DRAINS)
    def order_offer(self, offer: Offer, drain: Drain) -> None:
        """The buyer orders the custom offer they accepted."""
        self._begin(drain)
        self._order_offer(offer)

    # The life of an order.

    @precondition(lambda self: bool(self.model.orders(OrderStatus.PLACED)))
    @rule(order=PLACED_ORDERS, drain=DRAINS)
    def deliver(self, order: Order, drain: Drain) -> None:
        """The seller delivers a placed order."""
        self._begin(drain)
        self._deliver(order, self.model.jobs[order].seller)

    @precondition(lambda self: bool(self.model.extendable_orders()))
    @rule(order=EXTENDABLE_ORDERS, extra_days=strategies.extension_days(), drain=DRAINS)
    def request_extension(self, order: Order, extra_days: int, drain: Drain) -> None:
        """The seller asks for more time on a placed order."""
        self._begin(drain)
        self._request_extension(order, extra_days)

    @precondition(lambda self: bool(self.model.orders_awaiting_decision()))
    @rule(order=ORDERS_AWAITING_DECISION, decision=DECISIONS, drain=DRAINS)
    def decide_extension(self, order: Order, decision: str, drain: Drain) -> None:
        """The buyer approves or rejects the extension the seller asked for."""
        self._begin(drain)
        self._decide_extension(order, ExtensionDecision(decision))

    @precondition(lambda self: bool(self.model.buyers_with_delivered_orders()))
    @rule(buyer=BUYERS_WITH_DELIVERIES, drain=DRAINS)
    def complete_delivered_orders(self, buyer: User, drain: Drain) -> None:
        """A buyer completes every order delivered to them, in a burst a minute apart; then the events run."""
        self._begin(drain)
        for n, order in enumerate(self.model.delivered_orders_of(buyer)):
            if n:
                self._tick()
            self._complete(order)
        self._settle()

    @precondition(lambda self: bool(self.model.orders(OrderStatus.PLACED)))
    @rule(order=PLACED_ORDERS, side=SIDES, drain=DRAINS)
    def cancel(self, order: Order, side: str, drain: Drain) -> None:
        """The buyer or the seller cancels a placed order."""
        self._begin(drain)
        self._cancel(order, Party(side))

    # Reviews.

    @precondition(lambda self: bool(self.model.reviewable()))
    @rule(
        order=REVIEWABLE_ORDERS,
        side=SIDES,
        rating=strategies.ratings(),
        comment=strategies.review_comments(),
        drain=DRAINS,
    )
    def review(self, order: Order, side: str, rating: int, comment: str, drain: Drain) -> None:
        """A party of a completed order reviews the other (refused if they did already)."""
        self._begin(drain)
        self._review(order, Party(side), rating, comment)

    # Searching.

    @rule(
        max_price_cents=st.none() | strategies.gig_prices(),
        max_delivery_days=st.none() | strategies.delivery_days(),
    )
    def search_the_market(self, max_price_cents: int | None, max_delivery_days: int | None) -> None:
        """Someone looks for gigs within a budget and a time: the active ones that fit, oldest first."""
        self._begin(Drain())  # a query: nothing to drain
        expected = [
            self.model.gig_of(gig).gig_id
            for gig in self.model.gigs_within(max_price_cents, max_delivery_days)
        ]
        for system in self.systems:
            found = search(
                system.market, max_price_cents=max_price_cents, max_delivery_days=max_delivery_days
            )
            _agree(
                f"the gigs found on {system.name} for at most {max_price_cents} cents "
                f"and {max_delivery_days} days",
                gig_service=[gig.gig_id for gig in found],
                model=expected,
            )

    # Refusals and bad input.

    @precondition(lambda self: self._refusals < MAX_REFUSALS and bool(self.model.refused_attempts()))
    @rule(attempt=REFUSED_ATTEMPTS, drain=DRAINS)
    def try_something_refused(self, attempt: Attempt, drain: Drain) -> None:
        """Someone tries what the rules forbid (review twice, deliver someone else's order...): refused."""
        self._begin(drain)
        operations: dict[str, Callable[..., None]] = {
            "sign_up": self._sign_up,
            "become_seller": self._become_seller,
            "create_gig": lambda seller: self._create_gig(seller, 1_000, 1),
            "set_status": self._set_status,
            "send_offer": lambda gig, buyer: self._send_offer(gig, buyer, 1_000, 1),
            "accept_offer": self._accept_offer,
            "place_order": self._place_order,
            "order_offer": self._order_offer,
            "deliver": self._deliver,
            "request_extension": lambda order: self._request_extension(order, 1),
            "decide_extension": lambda order: self._decide_extension(order, ExtensionDecision.APPROVED),
            "complete": self._complete,
            "cancel": self._cancel,
            "review": lambda order, side: self._review(order, side, 3, ""),
        }
        refused = self._refusals
        operations[attempt.operation](*attempt.arguments)
        assert self._refusals == refused + 1, f"{attempt!r} was not refused"
        self._settle()

    @precondition(lambda self: self._bad_messages < MAX_BAD_MESSAGES)
    @rule(consumer=st.sampled_from(CONSUMERS), drain=DRAINS)
    def send_an_undecodable_message(self, consumer: str, drain: Drain) -> None:
        """A message that is not an event lands on a service's queue: dead-lettered once, as undecodable."""
        self._begin(drain)
        self._bad_messages += 1
        message_id = f"undecodable-{self._bad_messages}"
        for system in self.systems:
            system.send_undecodable(consumer, message_id)
        self._settle(spare=frozenset({message_id}))
        self.model.send_bad_message()
        for system in self.systems:
            letters = [
                (letter.message_id, dead_letter_reason(letter))
                for letter in system.take_dead_letters(consumer)
            ]
            assert letters == [(message_id, "undecodable")], (
                f"dead letters of {consumer} on {system.name}: {letters}"
            )

    # The invariant: the services agree with each other and with the model.

    @invariant()
    def the_services_agree_with_each_other_and_with_the_model(self) -> None:
        """Every check below holds after every step (one invariant, so that a printed program stays short)."""
        self.sellers_jobs_and_earnings_are_what_their_orders_imply()
        self.sellers_gig_counts_are_their_active_and_paused_gigs()
        self.ratings_are_what_the_reviews_say()
        self.orders_keep_the_reviews_the_review_service_has()
        self.buyers_purchased_gigs_are_the_gigs_of_their_completed_orders()
        self.sellers_recent_delivery_is_their_latest_completion()
        self.gigs_orders_and_offers_stand_where_the_model_says()
        self.the_emails_sent_are_those_the_operations_call_for()
        self.nothing_is_dead_lettered_but_the_bad_messages()
        self.every_crashed_actor_was_restarted()
        self.every_system_ends_in_the_same_state()

    def sellers_jobs_and_earnings_are_what_their_orders_imply(self) -> None:
        """Ongoing, completed and cancelled jobs and earnings: users service = order service = model."""
        for system, seen in self._observations():
            for seller in self.model.sellers():
                view = seen.sellers[seller]
                _agree(
                    f"{seller}'s jobs and earnings on {system.name}",
                    users_service=Jobs(
                        view.ongoing_jobs, view.completed_jobs, view.cancelled_jobs, view.total_earnings_cents
                    ),
                    order_service=_jobs(seen.orders_of[seller], self.model.user_id(seller)),
                    model=self.model.jobs_of(seller),
                )

    def sellers_gig_counts_are_their_active_and_paused_gigs(self) -> None:
        """A seller's total gigs: users service = the gigs the gig service lists for them = model."""
        for system, seen in self._observations():
            for seller in self.model.sellers():
                _agree(
                    f"{seller}'s gig count on {system.name}",
                    users_service=seen.sellers[seller].total_gigs,
                    gig_service=len(seen.seller_gigs[seller]),
                    model=self.model.total_gigs(seller),
                )
                listed = sorted(gig.gig_id for gig in seen.seller_gigs[seller])
                expected = sorted(
                    self.model.gig_of(gig).gig_id for gig in self.model.gigs() if self._lists(gig, seller)
                )
                _agree(f"{seller}'s gigs on {system.name}", gig_service=listed, model=expected)

    def ratings_are_what_the_reviews_say(self) -> None:
        """Ratings (count, sum, stars) of sellers, gigs, buyers: users and gig services = reviews = model."""
        for system, seen in self._observations():
            for seller in self.model.sellers():
                view = seen.sellers[seller]
                _agree(
                    f"{seller}'s ratings on {system.name}",
                    users_service=Ratings(view.ratings_count, view.ratings_sum, view.rating_categories),
                    review_service=Ratings.of(review.rating for review in seen.seller_reviews[seller]),
                    model=self.model.seller_ratings(seller),
                )
            for gig in self.model.gigs():
                gig_view = seen.gigs[gig]
                _agree(
                    f"{gig}'s ratings on {system.name}",
                    gig_service=Ratings(
                        gig_view.ratings_count, gig_view.ratings_sum, gig_view.rating_categories
                    ),
                    review_service=Ratings.of(review.rating for review in seen.gig_reviews[gig]),
                    model=self.model.gig_ratings(gig),
                )
            for buyer in self.model.users():
                buyer_view = seen.buyers[buyer]
                buyer_id = self.model.user_id(buyer)
                _agree(
                    f"{buyer}'s ratings as a buyer on {system.name}",
                    users_service=(buyer_view.ratings_count, buyer_view.ratings_sum),
                    order_service=_counted(
                        order.seller_review.rating
                        for order in seen.orders.values()
                        if order.buyer_id == buyer_id and order.seller_review
                    ),
                    model=_counted(
                        job.seller_review.rating
                        for job in self.model.jobs.values()
                        if job.buyer == buyer and job.seller_review
                    ),
                )

    def orders_keep_the_reviews_the_review_service_has(self) -> None:
        """Each order's reviews: order service = review service (buyers' reviews) = model."""
        for system, seen in self._observations():
            for kind in ReviewKind:
                on_orders = sorted(
                    (seen.orders[order].order_id, *_order_review_facts(review))
                    for order in self.model.orders()
                    if (review := _side(seen.orders[order], kind)) is not None
                )
                in_model = sorted(
                    (job.order_id, rating.review_id, rating.rating, rating.comment, rating.created_at)
                    for job in self.model.jobs.values()
                    if (rating := job.review(kind)) is not None
                )
                versions: dict[str, object] = {"order_service": on_orders, "model": in_model}
                if kind is ReviewKind.BUYER:
                    versions["review_service"] = sorted(
                        {
                            (
                                review.order_id,
                                review.review_id,
                                review.rating,
                                review.comment,
                                review.created_at,
                            )
                            for reviews in seen.gig_reviews.values()
                            for review in reviews
                        }
                    )
                _agree(f"the {kind}s' reviews kept on orders on {system.name}", **versions)

    def buyers_purchased_gigs_are_the_gigs_of_their_completed_orders(self) -> None:
        """A buyer's purchased gigs: users service = their completed orders' gigs (order service) = model."""
        for system, seen in self._observations():
            for buyer in self.model.users():
                buyer_id = self.model.user_id(buyer)
                _agree(
                    f"{buyer}'s purchased gigs on {system.name}",
                    users_service=seen.buyers[buyer].purchased_gigs,
                    order_service=frozenset(
                        order.gig_id
                        for order in seen.orders_of[buyer]
                        if order.buyer_id == buyer_id and order.status is OrderStatus.COMPLETED
                    ),
                    model=self.model.purchased_gigs(buyer),
                )

    def sellers_recent_delivery_is_their_latest_completion(self) -> None:
        """A seller's recent delivery: users service = latest completion in the order service = model."""
        for system, seen in self._observations():
            for seller in self.model.sellers():
                seller_id = self.model.user_id(seller)
                _agree(
                    f"{seller}'s recent delivery on {system.name}",
                    users_service=seen.sellers[seller].recent_delivery,
                    order_service=max(
                        (
                            o.completed_at
                            for o in seen.orders.values()
                            if o.seller_id == seller_id and o.completed_at
                        ),
                        default=None,
                    ),
                    model=self.model.recent_delivery(seller),
                )

    def gigs_orders_and_offers_stand_where_the_model_says(self) -> None:
        """Each gig's status, each order's state and figures, each offer's status are the model's."""
        for system, seen in self._observations():
            for gig in self.model.gigs():
                _agree(
                    f"{gig}'s status on {system.name}",
                    gig_service=seen.gigs[gig].status,
                    model=self.model.gig_of(gig).status,
                )
            for order, job in self.model.jobs.items():
                _agree(
                    f"{order} on {system.name}",
                    order_service=_order_facts(seen.orders[order]),
                    model=self._job_facts(job),
                )
            for offer, record in self.model.offers.items():
                _agree(
                    f"{offer} on {system.name}",
                    chat_service=_offer_facts(seen.offers[offer]),
                    model=self._offer_facts(record),
                )

    def the_emails_sent_are_those_the_operations_call_for(self) -> None:
        """Every e-mail the model expects was sent once, to the right address, and no other."""
        for system, seen in self._observations():
            sent = Counter(classify(email) for email in seen.emails)
            missing, extra = self.model.emails - sent, sent - self.model.emails
            assert not missing and not extra, (
                f"the e-mails sent on {system.name} are not those expected: "
                f"missing {sorted(missing.elements())}, unexpected {sorted(extra.elements())}"
            )

    def nothing_is_dead_lettered_but_the_bad_messages(self) -> None:
        """Dead letters are the bad messages sent on purpose, each once."""
        for system, seen in self._observations():
            _agree(
                f"the dead letters on {system.name}",
                transport=seen.dead_letters,
                model=self.model.dead_letters,
            )

    def every_crashed_actor_was_restarted(self) -> None:
        """Each actor crash injected restarted that service once (and nothing else crashed)."""
        for system in self.systems:
            if isinstance(system, SteppedMemory):
                restarts = sum(
                    runner.supervisor.restarts for runner in system.app.runners if runner.supervisor
                )
                crashes = sum(system.drainer.applied[action] for action in ACTOR_CRASHES)
                _agree(f"the actor restarts on {system.name}", supervisors=restarts, crashes_injected=crashes)

    def every_system_ends_in_the_same_state(self) -> None:
        """Two systems driven by the same operations show the same state and sent the same e-mails."""
        observed = self._observations()
        (first, seen), *others = observed
        for other, other_seen in others:
            found = differences(seen, other_seen)
            assert not found, f"{first.name} and {other.name} differ:\n" + "\n".join(found)

    # The operations, each refused or not as the model says; the reply is checked against the model.

    def _sign_up(self, user: User) -> None:
        result = self._each(
            lambda s: s.market.accounts.sign_up(
                username=user.name, email=user.email, password=PASSWORD, country="Spain"
            )
        )
        if self._refused(result, self.model.refusal_to_sign_up(user), f"{user} signs up"):
            return
        assert isinstance(result, SignedUp)
        self.model.sign_up(user, result.user_id)
        self._settle()
        for system in self.systems:
            system.sign_in(user)

    def _become_seller(self, user: User) -> None:
        result = self._each(
            lambda s: s.session(user).profile.become_seller(
                full_name=f"{user.name.title()} Smith", description="Careful work, on time."
            )
        )
        if self._refused(result, self.model.refusal_to_become_seller(user), f"{user} becomes a seller"):
            return
        assert isinstance(result, SellerView)
        self._same(f"{user}'s seller profile", result.seller_id, self.model.user_id(user))
        self.model.become_seller(user)
        self._settle()

    def _create_gig(self, seller: User, price_cents: int, delivery_days: int) -> None:
        gig = self.model.next_gig()
        title = f"Gig {gig.number} of {seller.name}"
        result = self._each(
            lambda s: s.session(seller).gigs.create(
                title=title,
                description="Whatever it takes.",
                category=GigCategory.PROGRAMMING,
                price_cents=price_cents,
                delivery_days=delivery_days,
            )
        )
        if self._refused(result, self.model.refusal_to_create_gig(seller), f"{seller} creates {gig}"):
            return
        assert isinstance(result, GigView)
        self._same(
            f"{gig} created",
            (result.seller_id, result.title, result.price_cents, result.delivery_days, result.status),
            (self.model.user_id(seller), title, price_cents, delivery_days, GigStatus.ACTIVE),
        )
        self.model.create_gig(Listing(gig, result.gig_id, seller, title, price_cents, delivery_days))
        self._settle()

    def _set_status(self, gig: Gig, status: GigStatus) -> None:
        listing = self.model.gig_of(gig)
        refusal = self.model.refusal_to_set_status(gig, status)
        result = self._each(lambda s: STATUS_CHANGES[status](s.session(listing.seller).gigs, listing.gig_id))
        if self._refused(result, refusal, f"{listing.seller} makes {gig} {status}"):
            return
        self.model.set_status(gig, status)
        self._settle()

    def _send_offer(self, gig: Gig, buyer: User, price_cents: int, delivery_days: int) -> None:
        listing = self.model.gig_of(gig)
        seller = listing.seller
        seller_id = self.model.user_id(seller)

        def send(system: System) -> OfferView:
            conversation = system.session(buyer).chat.start(seller_id=seller_id, gig_id=listing.gig_id)
            return system.session(seller).chat.send_offer(
                conversation_id=conversation.conversation_id,
                gig_id=listing.gig_id,
                price_cents=price_cents,
                delivery_days=delivery_days,
                description="A custom job, just for you.",
            )

        result = self._each(send)
        if self._refused(
            result, self.model.refusal_to_send_offer(gig, buyer), f"an offer to {buyer} for {gig}"
        ):
            return
        assert isinstance(result, OfferView)
        offer = CustomOffer(
            self.model.next_offer(), result.offer_id, gig, buyer, seller, price_cents, delivery_days
        )
        self._same("the offer sent", _offer_facts(result), self._offer_facts(offer))
        self.model.send_offer(offer)
        self._settle()

    def _accept_offer(self, offer: Offer) -> None:
        record = self.model.offers[offer]
        refusal = self.model.refusal_to_accept(offer)
        result = self._each(lambda s: s.session(record.buyer).chat.accept_offer(offer_id=record.offer_id))
        if self._refused(result, refusal, f"{record.buyer} accepts {offer}"):
            return
        assert isinstance(result, OfferView)
        self.model.accept(offer)
        self._same("the offer accepted", _offer_facts(result), self._offer_facts(record))
        self._settle()

    def _place_order(self, buyer: User, gig: Gig) -> None:
        listing = self.model.gig_of(gig)
        result = self._each(lambda s: s.session(buyer).orders.place(gig_id=listing.gig_id))
        if self._refused(result, self.model.refusal_to_order(buyer, gig), f"{buyer} orders {gig}"):
            return
        self._placed(result, buyer, gig, listing.price_cents, listing.delivery_days)

    def _order_offer(self, offer: Offer) -> None:
        record = self.model.offers[offer]
        result = self._each(
            lambda s: s.session(record.buyer).orders.place_from_offer(offer_id=record.offer_id)
        )
        if self._refused(result, self.model.refusal_to_order_offer(offer), f"{record.buyer} orders {offer}"):
            return
        self._placed(result, record.buyer, record.gig, record.price_cents, record.delivery_days, offer)

    def _placed(
        self,
        result: object,
        buyer: User,
        gig: Gig,
        price_cents: int,
        delivery_days: int,
        offer: Offer | None = None,
    ) -> None:
        assert isinstance(result, OrderView)
        listing = self.model.gig_of(gig)
        now = self.model.now
        job = Job(
            order=self.model.next_order(),
            order_id=result.order_id,
            gig=gig,
            gig_id=listing.gig_id,
            gig_title=listing.title,
            buyer=buyer,
            seller=listing.seller,
            price_cents=price_cents,
            placed_at=now,
            due_at=now + timedelta(days=delivery_days),
        )
        self.model.place(job, offer)
        self._check_order(result, job.order)
        self._settle()

    def _deliver(self, order: Order, by: User) -> None:
        job = self.model.jobs[order]
        refusal = self.model.refusal_to_deliver(order, by)
        result = self._each(
            lambda s: s.session(by).orders.deliver(order_id=job.order_id, message="Here it is.")
        )
        if self._refused(result, refusal, f"{by} delivers {order}"):
            return
        self.model.deliver(order)
        self._check_order(result, order)
        self._settle()

    def _request_extension(self, order: Order, extra_days: int) -> None:
        job = self.model.jobs[order]
        refusal = self.model.refusal_to_request_extension(order)
        result = self._each(
            lambda s: s.session(job.seller).orders.request_extension(
                order_id=job.order_id, extra_days=extra_days, reason="More work than planned."
            )
        )
        if self._refused(result, refusal, f"{job.seller} asks more time for {order}"):
            return
        self.model.request_extension(order, extra_days)
        self._check_order(result, order)
        self._settle()

    def _decide_extension(self, order: Order, decision: ExtensionDecision) -> None:
        job = self.model.jobs[order]
        refusal = self.model.refusal_to_decide_extension(order)
        result = self._each(
            lambda s: s.session(job.buyer).orders.decide_extension(order_id=job.order_id, decision=decision)
        )
        if self._refused(result, refusal, f"{job.buyer} decides on an extension of {order}"):
            return
        self.model.decide_extension(order, decision)
        self._check_order(result, order)
        self._settle()

    def _complete(self, order: Order) -> None:
        """The buyer completes `order`; its events are left for the rule to settle."""
        job = self.model.jobs[order]
        refusal = self.model.refusal_to_complete(order)
        result = self._each(lambda s: s.session(job.buyer).orders.complete(order_id=job.order_id))
        if self._refused(result, refusal, f"{job.buyer} completes {order}"):
            return
        self.model.complete(order)
        self._check_order(result, order)

    def _cancel(self, order: Order, side: Party) -> None:
        job = self.model.jobs[order]
        by = self.model.party(order, side)
        refusal = self.model.refusal_to_cancel(order)
        result = self._each(
            lambda s: s.session(by).orders.cancel(order_id=job.order_id, reason="Plans changed.")
        )
        if self._refused(result, refusal, f"{by} cancels {order}"):
            return
        self.model.cancel(order)
        self._check_order(result, order)
        self._settle()

    def _review(self, order: Order, side: Party, rating: int, comment: str) -> None:
        job = self.model.jobs[order]
        kind = ReviewKind.BUYER if side is Party.BUYER else ReviewKind.SELLER
        by = self.model.party(order, side)
        refusal = self.model.refusal_to_review(order, kind)
        result = self._each(
            lambda s: s.session(by).reviews.add(order_id=job.order_id, rating=rating, comment=comment)
        )
        if self._refused(result, refusal, f"{by} reviews {order}"):
            return
        assert isinstance(result, ReviewView)
        reviewee = job.seller if kind is ReviewKind.BUYER else job.buyer
        self._same(
            f"{by}'s review of {order}",
            _review_facts(result),
            (
                job.order_id,
                kind,
                self.model.user_id(by),
                self.model.user_id(reviewee),
                rating,
                comment,
                self.model.now,
            ),
        )
        self.model.review(order, kind, Rating(result.review_id, rating, comment, self.model.now))
        self._settle()

    # Running an operation on every system, and settling.

    def _begin(self, drain: Drain) -> None:
        """A rule starts: a minute passes; `drain` says how its cascades drain."""
        self._rules_run += 1
        self._moves = list(drain.moves)
        self._tick()

    def _tick(self) -> None:
        self.clock.advance(minutes=1)
        self.model.now = self.clock.now
        self._observed = None

    def _settle(self, *, spare: frozenset[str] = frozenset()) -> None:
        for system in self.systems:
            system.settle(self._moves, spare=spare)
        self._observed = None

    def _each(self, operation: Callable[[System], T]) -> T | Refusal:
        """Run `operation` on every system: its reply, or its refusal, the same on all."""
        results: list[T | Refusal] = []
        for system in self.systems:
            try:
                results.append(operation(system))
            except DomainError as error:
                results.append(Refusal(error.code))
        self._observed = None
        first = results[0]
        for system, result in zip(self.systems[1:], results[1:], strict=True):
            assert result == first, f"{system.name} answered {result!r}, {self.systems[0].name} {first!r}"
        return first

    def _refused(self, result: object, refusal: str | None, what: str) -> bool:
        """Whether `result` is a refusal, which it must be exactly when the model says so, with its code."""
        if refusal is None:
            assert not isinstance(result, Refusal), f"{what}: refused ({result.code}), the model would accept"
            return False
        assert result == Refusal(refusal), f"{what}: the model expects a refusal ({refusal}), got {result!r}"
        self._refusals += 1
        return True

    def _same(self, what: str, actual: object, expected: object) -> None:
        _agree(what, reply=actual, model=expected)

    def _observations(self) -> list[tuple[System, Observation]]:
        """What each system shows now (read once per step)."""
        if self._observed is None:
            self._observed = [observe(system, self.model) for system in self.systems]
        return list(zip(self.systems, self._observed, strict=True))

    # Facts compared.

    def _check_order(self, view: object, order: Order) -> None:
        assert isinstance(view, OrderView)
        _agree(
            f"the reply about {order}",
            reply=_order_facts(view),
            model=self._job_facts(self.model.jobs[order]),
        )

    def _job_facts(self, job: Job) -> tuple[object, ...]:
        return (
            job.order_id,
            job.gig_id,
            job.gig_title,
            self.model.user_id(job.buyer),
            self.model.user_id(job.seller),
            job.status,
            job.price_cents,
            job.service_fee_cents,
            job.total_cents,
            job.seller_earnings_cents,
            job.placed_at,
            job.due_at,
            job.completed_at,
            job.extension_days,
        )

    def _offer_facts(self, offer: CustomOffer) -> tuple[object, ...]:
        return (
            offer.offer_id,
            self.model.gig_of(offer.gig).gig_id,
            self.model.user_id(offer.buyer),
            self.model.user_id(offer.seller),
            offer.price_cents,
            offer.delivery_days,
            offer.status,
        )

    def _lists(self, gig: Gig, seller: User) -> bool:
        listing = self.model.gig_of(gig)
        return listing.seller == seller and listing.status is not GigStatus.DELETED


def _order_facts(view: OrderView) -> tuple[object, ...]:
    return (
        view.order_id,
        view.gig_id,
        view.gig_title,
        view.buyer_id,
        view.seller_id,
        view.status,
        view.price_cents,
        view.service_fee_cents,
        view.total_cents,
        view.seller_earnings_cents,
        view.placed_at,
        view.due_at,
        view.completed_at,
        view.extension.extra_days if view.extension else None,
    )


def _offer_facts(view: OfferView) -> tuple[object, ...]:
    return (
        view.offer_id,
        view.gig_id,
        view.buyer_id,
        view.seller_id,
        view.price_cents,
        view.delivery_days,
        view.status,
    )


def _review_facts(view: ReviewView) -> tuple[object, ...]:
    return (
        view.order_id,
        view.kind,
        view.reviewer_id,
        view.reviewee_id,
        view.rating,
        view.comment,
        view.created_at,
    )


def _side(order: OrderView, kind: ReviewKind) -> Any:
    return order.buyer_review if kind is ReviewKind.BUYER else order.seller_review


def _order_review_facts(review: Any) -> tuple[object, ...]:
    return (review.review_id, review.rating, review.comment, review.created_at)


def _jobs(orders: Sequence[OrderSummary], seller_id: str) -> Jobs:
    """A seller's jobs as their orders in the order service imply."""
    return Jobs.of(
        (order.status, order.seller_earnings_cents) for order in orders if order.seller_id == seller_id
    )


def _counted(ratings: Any) -> tuple[int, int]:
    stars = list(ratings)
    return len(stars), sum(stars)


def _agree(what: str, **versions: object) -> None:
    """Every version of `what` is the same; otherwise an `AssertionError` shows them all."""
    values = list(versions.values())
    if any(value != values[0] for value in values[1:]):
        shown = "\n".join(f"  {source.replace('_', ' ')}: {value!r}" for source, value in versions.items())
        raise AssertionError(f"{what} disagree:\n{shown}")
