"""The client API of reviews: a party of a completed order reviews the other; anyone reads buyers' reviews.

Before `AddReview` the gateway asks the order service for the order (which it
shows only to its parties) and passes on its parties, gig and status.
"""

from __future__ import annotations

from ..commands.order import GetOrder, OrderView
from ..commands.review import AddReview, ListReviewsByGig, ListReviewsBySeller, ReviewPage, ReviewView
from ..errors import DomainError
from .client import ServiceClient

ORDER = "order"
REVIEW = "review"


class Reviews:
    """Reviews as seen by `user_id` (None: an anonymous visitor, who may only read)."""

    def __init__(self, client: ServiceClient, user_id: str | None) -> None:
        self._client = client
        self._user_id = user_id

    def add(self, *, order_id: str, rating: int, comment: str = "") -> ReviewView:
        """The signed-in party of a completed order reviews the other party."""
        actor = self._signed_in()
        order = self._client.send(ORDER, GetOrder(order_id), OrderView, actor_id=actor)
        command = AddReview(
            order_id=order.order_id,
            gig_id=order.gig_id,
            buyer_id=order.buyer_id,
            seller_id=order.seller_id,
            order_status=order.status,
            rating=rating,
            comment=comment,
        )
        return self._client.send(REVIEW, command, ReviewView, actor_id=actor)

    def of_gig(self, *, gig_id: str, page: int = 1) -> ReviewPage:
        """What buyers said of a gig, newest first."""
        query = ListReviewsByGig(gig_id=gig_id, page=page)
        return self._client.send(REVIEW, query, ReviewPage, actor_id=self._user_id)

    def of_seller(self, *, seller_id: str, page: int = 1) -> ReviewPage:
        """What buyers said of a seller, newest first."""
        query = ListReviewsBySeller(seller_id=seller_id, page=page)
        return self._client.send(REVIEW, query, ReviewPage, actor_id=self._user_id)

    def _signed_in(self) -> str:
        if self._user_id is None:
            raise DomainError("unauthenticated", "sign in first")
        return self._user_id
