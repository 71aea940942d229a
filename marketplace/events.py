"""The events the services publish to each other: what happened, named in the past tense.

Each event carries every fact its consumers need (see
`shared/design/event-catalog.md`), so that no consumer has to ask another
service: an event that leads to an e-mail carries its recipients' addresses
and names, and the figures a consumer stores (seller earnings, completion
time) are computed by the producer, never by the consumer.

Secrets: no password, password hash or token travels in an event. The only
exceptions are `VerificationEmailRequested.verify_link` and
`PasswordResetRequested.reset_link`: the e-mail must contain the link, the
link embeds a single-use, expiring token, and only the notification service
receives those two events.

Wire names and versions: an event's wire name is its class name and its shape
has a `VERSION` (starting at 1); `REGISTRY` maps wire names to classes. How
they travel is the codec's business (`marketplace.codec`), not the classes'.
Money is integer cents (USD); timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from attrs import Attribute, field, frozen

from .validation import (
    ValidationError,
    cents,
    email,
    identifier,
    int_between,
    link,
    member_of,
    name,
    optional,
    rating,
    text,
    tuple_of,
    utc_datetime,
)

MAX_SELLERS_PER_REQUEST = 50
"""How many sellers seeding may ask for at once: 50 of the longest still fit in the codec's 64 KiB."""
MAX_DELIVERY_DAYS = 365


class Party(StrEnum):
    """A side of an order."""

    BUYER = "buyer"
    SELLER = "seller"


class ReviewKind(StrEnum):
    """Who wrote a review: `buyer` is a buyer rating the seller, `seller` a seller rating the buyer."""

    BUYER = "buyer"
    SELLER = "seller"


class VerificationReason(StrEnum):
    """Why a verification e-mail is sent."""

    SIGN_UP = "sign_up"
    RESEND = "resend"


class PasswordChangeReason(StrEnum):
    """How a password came to change: through a reset link or by the signed-in user."""

    RESET = "reset"
    CHANGE = "change"


class ExtensionDecision(StrEnum):
    """The buyer's answer to a request to extend an order's due date."""

    APPROVED = "approved"
    REJECTED = "rejected"


class Event:
    """Base of every event: its wire name is its class name, its shape has a `VERSION`."""

    __slots__ = ()
    VERSION: ClassVar[int] = 1
    # Declared (attrs sets it on each subclass) so that type checkers see any event as an attrs instance.
    __attrs_attrs__: ClassVar[Any]


def _equals_price_plus_fee(instance: Any, attribute: Attribute[Any], value: int) -> None:
    """The buyer pays the price plus the service fee, nothing else."""
    if value != instance.price_cents + instance.service_fee_cents:
        raise ValidationError(attribute.name, "must equal price_cents + service_fee_cents")


def _not_above_price(instance: Any, attribute: Attribute[Any], value: int) -> None:
    """The seller earns a share of the price, never more than the price."""
    if value > instance.price_cents:
        raise ValidationError(attribute.name, "must not exceed price_cents")


def _later_than_original(instance: Any, attribute: Attribute[Any], value: datetime) -> None:
    """A requested due date after the original one: an extension moves the date forward."""
    if value <= instance.original_due_at:
        raise ValidationError(attribute.name, "must be later than original_due_at")


# auth -> users


@frozen
class UserRegistered(Event):
    """A user signed up; users creates the buyer profile from it."""

    user_id: str = field(validator=identifier)
    username: str = field(validator=name)
    email: str = field(validator=email)
    country: str = field(validator=name)
    profile_picture_url: str | None = field(validator=optional(link))
    registered_at: datetime = field(validator=utc_datetime)


# auth -> notification


@frozen
class VerificationEmailRequested(Event):
    """A verification e-mail is due (sign-up or resend); `verify_link` holds a single-use token."""

    user_id: str = field(validator=identifier)
    username: str = field(validator=name)
    email: str = field(validator=email)
    verify_link: str = field(validator=link)
    reason: VerificationReason = field(validator=member_of(VerificationReason))


@frozen
class PasswordResetRequested(Event):
    """A user asked to reset a password; `reset_link` holds a single-use token valid until `expires_at`."""

    user_id: str = field(validator=identifier)
    username: str = field(validator=name)
    email: str = field(validator=email)
    reset_link: str = field(validator=link)
    expires_at: datetime = field(validator=utc_datetime)


@frozen
class PasswordChanged(Event):
    """A user's password changed, through a reset link or by the signed-in user."""

    user_id: str = field(validator=identifier)
    username: str = field(validator=name)
    email: str = field(validator=email)
    reason: PasswordChangeReason = field(validator=member_of(PasswordChangeReason))
    changed_at: datetime = field(validator=utc_datetime)


# gig <-> users


@frozen
class SellersRequested(Event):
    """Gig seeding asked users for up to `count` sellers; answered by SellersProvided."""

    request_id: str = field(validator=identifier)
    count: int = field(validator=int_between(1, MAX_SELLERS_PER_REQUEST))


@frozen
class SellerSummary:
    """What gig needs to know of a seller to create a gig for it."""

    seller_id: str = field(validator=identifier)
    username: str = field(validator=name)
    email: str = field(validator=email)


@frozen
class SellersProvided(Event):
    """Users answered SellersRequested `request_id` with these sellers (possibly fewer than asked)."""

    request_id: str = field(validator=identifier)
    sellers: tuple[SellerSummary, ...] = field(
        validator=tuple_of(SellerSummary, max_length=MAX_SELLERS_PER_REQUEST)
    )


@frozen
class GigReviewed(Event):
    """A buyer's rating of a seller applies to this gig; forwarded by users from ReviewAdded."""

    review_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    rating: int = field(validator=rating)


@frozen
class GigCreated(Event):
    """A seller created a gig."""

    gig_id: str = field(validator=identifier)
    seller_id: str = field(validator=identifier)


@frozen
class GigDeleted(Event):
    """A seller deleted a gig (a soft delete: its history stays)."""

    gig_id: str = field(validator=identifier)
    seller_id: str = field(validator=identifier)


# chat -> notification


@frozen
class OfferSent(Event):
    """A seller sent a buyer a custom offer in a chat conversation."""

    offer_id: str = field(validator=identifier)
    conversation_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    buyer_email: str = field(validator=email)
    price_cents: int = field(validator=cents)
    delivery_days: int = field(validator=int_between(1, MAX_DELIVERY_DAYS))
    description: str = field(validator=text())
    offer_link: str = field(validator=link)


# order -> users, notification


@frozen
class OrderPlaced(Event):
    """A buyer placed an order; the figures were computed once, by the order service."""

    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    buyer_email: str = field(validator=email)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    seller_email: str = field(validator=email)
    price_cents: int = field(validator=cents)
    service_fee_cents: int = field(validator=cents)
    total_cents: int = field(validator=[cents, _equals_price_plus_fee])
    seller_earnings_cents: int = field(validator=[cents, _not_above_price])
    placed_at: datetime = field(validator=utc_datetime)
    due_at: datetime = field(validator=utc_datetime)


@frozen
class OrderDelivered(Event):
    """The seller delivered an order; it awaits the buyer's review."""

    order_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    buyer_email: str = field(validator=email)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    delivered_at: datetime = field(validator=utc_datetime)


@frozen
class OrderExtensionRequested(Event):
    """The seller asked the buyer to move an order's due date."""

    order_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    buyer_email: str = field(validator=email)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    original_due_at: datetime = field(validator=utc_datetime)
    requested_due_at: datetime = field(validator=[utc_datetime, _later_than_original])
    reason: str = field(validator=text())


@frozen
class OrderExtensionDecided(Event):
    """The buyer approved or rejected an extension; the due date moved only if approved."""

    order_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    seller_email: str = field(validator=email)
    decision: ExtensionDecision = field(validator=member_of(ExtensionDecision))
    original_due_at: datetime = field(validator=utc_datetime)
    requested_due_at: datetime = field(validator=[utc_datetime, _later_than_original])


@frozen
class OrderCompleted(Event):
    """The buyer accepted the delivery; the seller's earnings are released."""

    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    seller_email: str = field(validator=email)
    seller_earnings_cents: int = field(validator=cents)
    completed_at: datetime = field(validator=utc_datetime)


@frozen
class OrderCancelled(Event):
    """The buyer or the seller cancelled an order before delivery; the buyer is refunded."""

    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    gig_title: str = field(validator=name)
    buyer_id: str = field(validator=identifier)
    buyer_username: str = field(validator=name)
    buyer_email: str = field(validator=email)
    seller_id: str = field(validator=identifier)
    seller_username: str = field(validator=name)
    seller_email: str = field(validator=email)
    cancelled_by: Party = field(validator=member_of(Party))
    reason: str = field(validator=text(blank=True))
    refund_cents: int = field(validator=cents)
    cancelled_at: datetime = field(validator=utc_datetime)


# review -> users, order


@frozen
class ReviewAdded(Event):
    """A party of a completed order reviewed the other party (`kind` says which side wrote it)."""

    review_id: str = field(validator=identifier)
    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    reviewer_id: str = field(validator=identifier)
    reviewee_id: str = field(validator=identifier)
    kind: ReviewKind = field(validator=member_of(ReviewKind))
    rating: int = field(validator=rating)
    comment: str = field(validator=text(blank=True))
    created_at: datetime = field(validator=utc_datetime)


EVENT_TYPES: tuple[type[Event], ...] = (
    UserRegistered,
    VerificationEmailRequested,
    PasswordResetRequested,
    PasswordChanged,
    SellersRequested,
    SellersProvided,
    GigReviewed,
    GigCreated,
    GigDeleted,
    OfferSent,
    OrderPlaced,
    OrderDelivered,
    OrderExtensionRequested,
    OrderExtensionDecided,
    OrderCompleted,
    OrderCancelled,
    ReviewAdded,
)
"""Every event class, in catalog order."""

REGISTRY: Mapping[str, type[Event]] = MappingProxyType({cls.__name__: cls for cls in EVENT_TYPES})
"""Wire name -> event class; the wire name is the class name."""


def wire_name(event: Event | type[Event]) -> str:
    """The name under which `event` (an event or its class) travels."""
    cls = event if isinstance(event, type) else type(event)
    return cls.__name__
