"""Hypothesis strategies for the domain: valid values, one strategy per event class, and envelopes.

Every strategy draws only values that the validators accept, so that a failure
in a property test points at the code under test, not at the strategy.
`EVENT_STRATEGIES` has one entry per class of `marketplace.events.REGISTRY`
(a test checks it); `events()` draws any of them. At the end, the arguments
of the marketplace state machine's operations (`tests/properties`), and
`drains()`, how a cascade of events drains on the stepping memory transport:
in which order, with which faults.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from marketplace.codec import Envelope
from marketplace.commands.gig import MIN_PRICE_CENTS
from marketplace.events import (
    MAX_DELIVERY_DAYS,
    MAX_SELLERS_PER_REQUEST,
    Event,
    ExtensionDecision,
    GigCreated,
    GigDeleted,
    GigReviewed,
    OfferSent,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderExtensionDecided,
    OrderExtensionRequested,
    OrderPlaced,
    Party,
    PasswordChanged,
    PasswordChangeReason,
    PasswordResetRequested,
    ReviewAdded,
    ReviewKind,
    SellersProvided,
    SellersRequested,
    SellerSummary,
    UserRegistered,
    VerificationEmailRequested,
    VerificationReason,
)
from tests.properties.drain import FAULTS, Action, Drain, Move

_VISIBLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
_ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
_LABEL_CHARS = string.ascii_lowercase + string.digits


def ids() -> st.SearchStrategy[str]:
    """Ids: mostly uuid4 hex, as the services make them, sometimes any visible ASCII."""
    return st.uuids(version=4).map(lambda u: u.hex) | st.text(_VISIBLE_ASCII, min_size=1, max_size=128)


def names() -> st.SearchStrategy[str]:
    """Usernames, titles, countries: printable text that is not blank."""
    printable = st.characters(exclude_categories=("C", "Z")) | st.just(" ")
    return st.text(printable, min_size=1, max_size=40).filter(str.strip)


def texts(*, blank: bool = False) -> st.SearchStrategy[str]:
    """Free text (any Unicode but lone surrogates), blank only when `blank`."""
    strategy = st.text(max_size=300)
    return strategy if blank else strategy.filter(str.strip)


def _labels() -> st.SearchStrategy[str]:
    inner = st.text(_LABEL_CHARS + "-", max_size=8).map(lambda s: s.strip("-"))
    return st.tuples(st.sampled_from(_LABEL_CHARS), inner).map("".join)


def domains() -> st.SearchStrategy[str]:
    """Host names with at least two labels and an alphabetic top-level label."""
    tld = st.text(string.ascii_lowercase, min_size=2, max_size=6)
    return st.tuples(st.lists(_labels(), min_size=1, max_size=3), tld).map(
        lambda parts: ".".join([*parts[0], parts[1]])
    )


def emails() -> st.SearchStrategy[str]:
    """Well-formed ASCII e-mail addresses (dot-atom local part, host-name domain)."""
    local = st.lists(st.text(_ATEXT, min_size=1, max_size=10), min_size=1, max_size=3).map(".".join)
    return st.tuples(local, domains()).map("@".join)


def links() -> st.SearchStrategy[str]:
    """Absolute http(s) URLs, some with a token in the query string as e-mail links have."""
    path = st.text(string.ascii_letters + string.digits + "-_/", max_size=30)
    query = st.none() | st.text(string.ascii_letters + string.digits, min_size=1, max_size=40)
    return st.builds(
        lambda scheme, host, p, q: f"{scheme}://{host}/{p}" + (f"?token={q}" if q else ""),
        st.sampled_from(["http", "https"]),
        domains(),
        path,
        query,
    )


def cents(max_value: int = 10**9) -> st.SearchStrategy[int]:
    """Amounts of money in cents."""
    return st.integers(min_value=0, max_value=max_value)


def ratings() -> st.SearchStrategy[int]:
    """Ratings from 1 to 5."""
    return st.integers(min_value=1, max_value=5)


def utc_datetimes() -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes in UTC, over the whole range datetime can hold."""
    return st.datetimes(timezones=st.just(UTC))


def _later_pair() -> st.SearchStrategy[tuple[datetime, datetime]]:
    """Two UTC datetimes, the second strictly later than the first."""
    naive = st.datetimes(max_value=datetime.max - timedelta(days=1))
    return st.tuples(
        naive, st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=1))
    ).map(lambda p: (p[0].replace(tzinfo=UTC), (p[0] + p[1]).replace(tzinfo=UTC)))


def user_registered() -> st.SearchStrategy[UserRegistered]:
    """UserRegistered events."""
    return st.builds(
        UserRegistered,
        user_id=ids(),
        username=names(),
        email=emails(),
        country=names(),
        profile_picture_url=st.none() | links(),
        registered_at=utc_datetimes(),
    )


def verification_email_requested() -> st.SearchStrategy[VerificationEmailRequested]:
    """VerificationEmailRequested events."""
    return st.builds(
        VerificationEmailRequested,
        user_id=ids(),
        username=names(),
        email=emails(),
        verify_link=links(),
        reason=st.sampled_from(VerificationReason),
    )


def password_reset_requested() -> st.SearchStrategy[PasswordResetRequested]:
    """PasswordResetRequested events."""
    return st.builds(
        PasswordResetRequested,
        user_id=ids(),
        username=names(),
        email=emails(),
        reset_link=links(),
        expires_at=utc_datetimes(),
    )


def password_changed() -> st.SearchStrategy[PasswordChanged]:
    """PasswordChanged events."""
    return st.builds(
        PasswordChanged,
        user_id=ids(),
        username=names(),
        email=emails(),
        reason=st.sampled_from(PasswordChangeReason),
        changed_at=utc_datetimes(),
    )


def sellers_requested() -> st.SearchStrategy[SellersRequested]:
    """SellersRequested events."""
    return st.builds(
        SellersRequested, request_id=ids(), count=st.integers(min_value=1, max_value=MAX_SELLERS_PER_REQUEST)
    )


def seller_summaries() -> st.SearchStrategy[SellerSummary]:
    """Sellers as SellersProvided lists them."""
    return st.builds(SellerSummary, seller_id=ids(), username=names(), email=emails())


def sellers_provided() -> st.SearchStrategy[SellersProvided]:
    """SellersProvided events (with small lists: the size does not change how a seller is coded)."""
    return st.builds(
        SellersProvided,
        request_id=ids(),
        sellers=st.lists(seller_summaries(), max_size=5).map(tuple),
    )


def gig_reviewed() -> st.SearchStrategy[GigReviewed]:
    """GigReviewed events."""
    return st.builds(GigReviewed, review_id=ids(), gig_id=ids(), rating=ratings())


def gig_created() -> st.SearchStrategy[GigCreated]:
    """GigCreated events."""
    return st.builds(GigCreated, gig_id=ids(), seller_id=ids())


def gig_deleted() -> st.SearchStrategy[GigDeleted]:
    """GigDeleted events."""
    return st.builds(GigDeleted, gig_id=ids(), seller_id=ids())


def offer_sent() -> st.SearchStrategy[OfferSent]:
    """OfferSent events."""
    return st.builds(
        OfferSent,
        offer_id=ids(),
        conversation_id=ids(),
        gig_id=ids(),
        gig_title=names(),
        seller_id=ids(),
        seller_username=names(),
        buyer_id=ids(),
        buyer_username=names(),
        buyer_email=emails(),
        price_cents=cents(),
        delivery_days=st.integers(min_value=1, max_value=MAX_DELIVERY_DAYS),
        description=texts(),
        offer_link=links(),
    )


@st.composite
def _order_placed(draw: st.DrawFn) -> OrderPlaced:
    price = draw(cents())
    fee = draw(cents())
    return OrderPlaced(
        order_id=draw(ids()),
        gig_id=draw(ids()),
        gig_title=draw(names()),
        buyer_id=draw(ids()),
        buyer_username=draw(names()),
        buyer_email=draw(emails()),
        seller_id=draw(ids()),
        seller_username=draw(names()),
        seller_email=draw(emails()),
        price_cents=price,
        service_fee_cents=fee,
        total_cents=price + fee,
        seller_earnings_cents=draw(cents(max_value=price)),
        placed_at=draw(utc_datetimes()),
        due_at=draw(utc_datetimes()),
    )


def order_placed() -> st.SearchStrategy[OrderPlaced]:
    """OrderPlaced events, their figures consistent (total = price + fee, earnings <= price)."""
    return _order_placed()


def order_delivered() -> st.SearchStrategy[OrderDelivered]:
    """OrderDelivered events."""
    return st.builds(
        OrderDelivered,
        order_id=ids(),
        gig_title=names(),
        buyer_id=ids(),
        buyer_username=names(),
        buyer_email=emails(),
        seller_id=ids(),
        seller_username=names(),
        delivered_at=utc_datetimes(),
    )


def order_extension_requested() -> st.SearchStrategy[OrderExtensionRequested]:
    """OrderExtensionRequested events, the requested date after the original one."""
    return st.builds(
        lambda dates, **fields: OrderExtensionRequested(
            original_due_at=dates[0], requested_due_at=dates[1], **fields
        ),
        _later_pair(),
        order_id=ids(),
        gig_title=names(),
        buyer_id=ids(),
        buyer_username=names(),
        buyer_email=emails(),
        seller_id=ids(),
        seller_username=names(),
        reason=texts(),
    )


def order_extension_decided() -> st.SearchStrategy[OrderExtensionDecided]:
    """OrderExtensionDecided events, approved or rejected."""
    return st.builds(
        lambda dates, **fields: OrderExtensionDecided(
            original_due_at=dates[0], requested_due_at=dates[1], **fields
        ),
        _later_pair(),
        order_id=ids(),
        gig_title=names(),
        buyer_id=ids(),
        buyer_username=names(),
        seller_id=ids(),
        seller_username=names(),
        seller_email=emails(),
        decision=st.sampled_from(ExtensionDecision),
    )


def order_completed() -> st.SearchStrategy[OrderCompleted]:
    """OrderCompleted events."""
    return st.builds(
        OrderCompleted,
        order_id=ids(),
        gig_id=ids(),
        gig_title=names(),
        buyer_id=ids(),
        seller_id=ids(),
        seller_username=names(),
        seller_email=emails(),
        seller_earnings_cents=cents(),
        completed_at=utc_datetimes(),
    )


def order_cancelled() -> st.SearchStrategy[OrderCancelled]:
    """OrderCancelled events, by either party."""
    return st.builds(
        OrderCancelled,
        order_id=ids(),
        gig_id=ids(),
        gig_title=names(),
        buyer_id=ids(),
        buyer_username=names(),
        buyer_email=emails(),
        seller_id=ids(),
        seller_username=names(),
        seller_email=emails(),
        cancelled_by=st.sampled_from(Party),
        reason=texts(blank=True),
        refund_cents=cents(),
        cancelled_at=utc_datetimes(),
    )


def review_added() -> st.SearchStrategy[ReviewAdded]:
    """ReviewAdded events of both kinds."""
    return st.builds(
        ReviewAdded,
        review_id=ids(),
        order_id=ids(),
        gig_id=ids(),
        reviewer_id=ids(),
        reviewee_id=ids(),
        kind=st.sampled_from(ReviewKind),
        rating=ratings(),
        comment=texts(blank=True),
        created_at=utc_datetimes(),
    )


EVENT_STRATEGIES: Mapping[type[Event], Callable[[], st.SearchStrategy[Event]]] = {
    UserRegistered: user_registered,
    VerificationEmailRequested: verification_email_requested,
    PasswordResetRequested: password_reset_requested,
    PasswordChanged: password_changed,
    SellersRequested: sellers_requested,
    SellersProvided: sellers_provided,
    GigReviewed: gig_reviewed,
    GigCreated: gig_created,
    GigDeleted: gig_deleted,
    OfferSent: offer_sent,
    OrderPlaced: order_placed,
    OrderDelivered: order_delivered,
    OrderExtensionRequested: order_extension_requested,
    OrderExtensionDecided: order_extension_decided,
    OrderCompleted: order_completed,
    OrderCancelled: order_cancelled,
    ReviewAdded: review_added,
}
"""Event class -> the strategy that draws it."""


def events() -> st.SearchStrategy[Event]:
    """Any event of any class."""
    return st.one_of(*(strategy() for strategy in EVENT_STRATEGIES.values()))


def envelopes(event: st.SearchStrategy[Event] | None = None) -> st.SearchStrategy[Envelope]:
    """Envelopes around `event` (any event by default), first of a flow or caused by another message."""
    return st.builds(
        Envelope,
        message_id=ids(),
        occurred_at=utc_datetimes(),
        producer=st.sampled_from(["auth", "users", "gig", "chat", "order", "review"]),
        correlation_id=ids(),
        causation_id=st.none() | ids(),
        event=events() if event is None else event,
    )


# The marketplace's state machine (tests/properties): its operations' arguments, and how cascades drain.


def gig_prices() -> st.SearchStrategy[int]:
    """Prices of gigs and offers, in cents: under and over the 5000 cents of the small-order surcharge."""
    return st.integers(min_value=MIN_PRICE_CENTS, max_value=20_000)


def delivery_days() -> st.SearchStrategy[int]:
    """Days to deliver a gig or an offer."""
    return st.integers(min_value=1, max_value=14)


def extension_days() -> st.SearchStrategy[int]:
    """Extra days a seller asks for."""
    return st.integers(min_value=1, max_value=7)


def review_comments() -> st.SearchStrategy[str]:
    """What a reviewer writes (sometimes nothing)."""
    return st.sampled_from(["", "Great work.", "Slow, but worth it."])


def moves(actions: Collection[Action]) -> st.SearchStrategy[Move]:
    """A move of a drain: which pending step, and one of `actions` (mostly a plain delivery) with it.

    Where `actions` hold queues, moves may also release them before the drain's end.
    """
    chosen = set(actions) | ({Action.RELEASE} if Action.HOLD in actions else set())
    faults = sorted(chosen - {Action.DELIVER}, key=list(Action).index)
    # A plain delivery first, so that moves shrink to it, and as often as all faults together.
    choices = [Action.DELIVER] * max(1, len(faults)) + faults
    return st.builds(Move, pick=st.integers(min_value=0, max_value=7), action=st.sampled_from(choices))


def drains(
    actions: Collection[Action] = FAULTS, *, min_moves: int = 0, max_moves: int = 12
) -> st.SearchStrategy[Drain]:
    """How to drain the cascades of one operation: `min_moves` to `max_moves` moves with `actions`."""
    return st.lists(moves(actions), min_size=min_moves, max_size=max_moves).map(Drain)
