"""Commands, queries and replies of the review service: each party of a completed order reviews the other.

The gateway asks the order service for the order first (`GetOrder`, which
answers only the order's parties) and puts its facts into `AddReview`; the
review service trusts them, as only the gateway sends commands. The lists of
reviews are public: they show what buyers said of a seller and of a gig.
"""

from __future__ import annotations

from datetime import datetime

from attrs import field, frozen

from ..events import ReviewKind
from ..validation import (
    cents,
    identifier,
    int_between,
    member_of,
    plain_text,
    rating,
    text,
    tuple_of,
    utc_datetime,
)
from . import Command, Query, Reply
from .order import OrderStatus

MAX_COMMENT_LENGTH = 1000
REVIEWS_PER_PAGE = 10
"""Reviews in one page of a list: a page of the longest reviews fits the codec's body limit."""
MAX_PAGE = 10_000


# Commands.


@frozen
class AddReview(Command):
    """The signed-in party of an order reviews the other party; the order's facts come from the gateway."""

    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    buyer_id: str = field(validator=identifier)
    seller_id: str = field(validator=identifier)
    order_status: OrderStatus = field(validator=member_of(OrderStatus))
    rating: int = field(validator=rating)
    comment: str = field(default="", validator=plain_text(blank=True, max_length=MAX_COMMENT_LENGTH))


# Queries.


@frozen
class ListReviewsByGig(Query):
    """What buyers said of a gig, newest first; any caller."""

    gig_id: str = field(validator=identifier)
    page: int = field(default=1, validator=int_between(1, MAX_PAGE))


@frozen
class ListReviewsBySeller(Query):
    """What buyers said of a seller, newest first; any caller."""

    seller_id: str = field(validator=identifier)
    page: int = field(default=1, validator=int_between(1, MAX_PAGE))


# Replies.


@frozen
class ReviewView(Reply):
    """A review: who rated whom (`kind` says which side wrote it), for which order and gig."""

    review_id: str = field(validator=identifier)
    order_id: str = field(validator=identifier)
    gig_id: str = field(validator=identifier)
    reviewer_id: str = field(validator=identifier)
    reviewee_id: str = field(validator=identifier)
    kind: ReviewKind = field(validator=member_of(ReviewKind))
    rating: int = field(validator=rating)
    comment: str = field(validator=text(blank=True, max_length=MAX_COMMENT_LENGTH))
    created_at: datetime = field(validator=utc_datetime)


@frozen
class ReviewPage(Reply):
    """One page of reviews, newest first; `total` counts them all."""

    items: tuple[ReviewView, ...] = field(validator=tuple_of(ReviewView, max_length=REVIEWS_PER_PAGE))
    total: int = field(validator=cents)
    page: int = field(validator=int_between(1, MAX_PAGE))
    page_size: int = field(validator=int_between(1, REVIEWS_PER_PAGE))
