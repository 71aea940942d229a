"""The review service: each party of a completed order reviews the other, once.

The buyer's review rates the seller (`kind` buyer), the seller's rates the
buyer (`kind` seller). The order's facts (its parties, gig and status) come
in the command from the gateway, which asked the order service. Each review
is announced as `ReviewAdded`, which users (the seller's rating figures) and
order (the review stored on the order) both receive.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from attrs import frozen

from ..commands.order import OrderStatus
from ..commands.review import (
    REVIEWS_PER_PAGE,
    AddReview,
    ListReviewsByGig,
    ListReviewsBySeller,
    ReviewPage,
    ReviewView,
)
from ..errors import DomainError, conflict, forbidden, invalid_state
from ..events import ReviewAdded, ReviewKind
from ..service import Service, Work, handles

REVIEWS = "reviews"
"""Reviews by review id."""
REVIEWED_SIDES = "reviewed_sides"
"""The review of each side of an order, by `side_key`: one per side."""


def side_key(order_id: str, kind: ReviewKind) -> str:
    """The key of the review that `kind`'s side wrote on an order."""
    return f"{order_id} {kind}"  # ids are visible ASCII: a space cannot occur inside one


@frozen
class Review:
    """A party's review of the other party of an order."""

    review_id: str
    order_id: str
    gig_id: str
    reviewer_id: str
    reviewee_id: str
    kind: ReviewKind
    rating: int
    comment: str
    created_at: datetime


class ReviewService(Service):
    """Takes each party's review of a completed order, once per side, and lists what buyers said."""

    name = "review"
    publishes = frozenset({ReviewAdded})

    @handles(AddReview)
    def do_add_review(self, work: Work, command: AddReview) -> ReviewView:
        """A party of a completed order reviews the other party, once."""
        reviewer_id = _signed_in(work)
        if reviewer_id == command.buyer_id:
            kind, reviewee_id = ReviewKind.BUYER, command.seller_id
        elif reviewer_id == command.seller_id:
            kind, reviewee_id = ReviewKind.SELLER, command.buyer_id
        else:
            raise forbidden("only the order's buyer or seller reviews it", "order_id")
        if command.order_status is not OrderStatus.COMPLETED:
            raise invalid_state(
                f"only a completed order can be reviewed; it is {command.order_status}", "order_status"
            )
        key = side_key(command.order_id, kind)
        if work.get(REVIEWED_SIDES, key) is not None:
            raise conflict(f"the order's {kind} already reviewed it", "order_id")
        review = Review(
            review_id=work.new_id(),
            order_id=command.order_id,
            gig_id=command.gig_id,
            reviewer_id=reviewer_id,
            reviewee_id=reviewee_id,
            kind=kind,
            rating=command.rating,
            comment=command.comment,
            created_at=work.now,
        )
        work.put(REVIEWS, review.review_id, review)
        work.put(REVIEWED_SIDES, key, review.review_id)
        work.emit(
            ReviewAdded(
                review_id=review.review_id,
                order_id=review.order_id,
                gig_id=review.gig_id,
                reviewer_id=review.reviewer_id,
                reviewee_id=review.reviewee_id,
                kind=review.kind,
                rating=review.rating,
                comment=review.comment,
                created_at=review.created_at,
            )
        )
        return _view(review)

    @handles(ListReviewsByGig)
    def do_list_reviews_by_gig(self, work: Work, query: ListReviewsByGig) -> ReviewPage:
        """What buyers said of a gig."""
        return _page(work, lambda r: r.kind is ReviewKind.BUYER and r.gig_id == query.gig_id, page=query.page)

    @handles(ListReviewsBySeller)
    def do_list_reviews_by_seller(self, work: Work, query: ListReviewsBySeller) -> ReviewPage:
        """What buyers said of a seller."""
        return _page(
            work, lambda r: r.kind is ReviewKind.BUYER and r.reviewee_id == query.seller_id, page=query.page
        )


def _signed_in(work: Work) -> str:
    """The signed-in user's id; anonymous requests are refused."""
    if work.actor_id is None:
        raise DomainError("unauthenticated", "sign in first")
    return work.actor_id


def _page(work: Work, wanted: Callable[[Review], bool], *, page: int) -> ReviewPage:
    """Page `page` of the reviews that are `wanted`, newest first."""
    reviews = sorted(
        (review for review in work.values(REVIEWS) if wanted(review)),
        key=lambda review: (review.created_at, review.review_id),
        reverse=True,
    )
    start = (page - 1) * REVIEWS_PER_PAGE
    return ReviewPage(
        items=tuple(_view(review) for review in reviews[start : start + REVIEWS_PER_PAGE]),
        total=len(reviews),
        page=page,
        page_size=REVIEWS_PER_PAGE,
    )


def _view(review: Review) -> ReviewView:
    """A review as anyone sees it."""
    return ReviewView(
        review_id=review.review_id,
        order_id=review.order_id,
        gig_id=review.gig_id,
        reviewer_id=review.reviewer_id,
        reviewee_id=review.reviewee_id,
        kind=review.kind,
        rating=review.rating,
        comment=review.comment,
        created_at=review.created_at,
    )
