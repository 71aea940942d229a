"""The client API of orders: ordering a gig or an accepted offer, and the order's life after.

Before `PlaceOrder` the gateway gathers the terms (from the gig, which must be
active, or from the chat offer, which must be accepted and the signed-in
user's) and both parties' names and addresses (from users). The money
figures are not among them: the order service computes those.
"""

from __future__ import annotations

from ..commands.chat import GetOffer, OfferStatus, OfferView
from ..commands.gig import GetGig, GigStatus, GigView
from ..commands.order import (
    CancelOrder,
    CompleteOrder,
    DecideExtension,
    DeliverOrder,
    GetOrder,
    ListOrders,
    OrdersPage,
    OrderView,
    PlaceOrder,
    RequestExtension,
)
from ..commands.users import GetUser, UserView
from ..errors import DomainError, forbidden, invalid_state
from ..events import ExtensionDecision
from .client import ServiceClient

CHAT = "chat"
GIG = "gig"
ORDER = "order"
USERS = "users"


class Orders:
    """Orders as seen by `user_id` (every order operation needs a signed-in user)."""

    def __init__(self, client: ServiceClient, user_id: str | None) -> None:
        self._client = client
        self._user_id = user_id

    def place(self, *, gig_id: str) -> OrderView:
        """The signed-in buyer orders an active gig at its price and delivery time."""
        actor = self._signed_in()
        gig = self._client.send(GIG, GetGig(gig_id), GigView, actor_id=actor)
        if gig.status is not GigStatus.ACTIVE:
            raise invalid_state(f"only an active gig can be ordered; it is {gig.status}", "gig_id")
        return self._place(
            gig_id=gig.gig_id,
            gig_title=gig.title,
            seller_id=gig.seller_id,
            price_cents=gig.price_cents,
            delivery_days=gig.delivery_days,
            offer_id=None,
        )

    def place_from_offer(self, *, offer_id: str) -> OrderView:
        """The signed-in buyer orders a custom offer they accepted, on the offer's terms."""
        actor = self._signed_in()
        offer = self._client.send(CHAT, GetOffer(offer_id), OfferView, actor_id=actor)
        if offer.buyer_id != actor:
            raise forbidden("only the offer's buyer orders it", "buyer_id")
        if offer.status is not OfferStatus.ACCEPTED:
            raise invalid_state(
                f"only an accepted offer can be ordered; this one is {offer.status}", "status"
            )
        return self._place(
            gig_id=offer.gig_id,
            gig_title=offer.gig_title,
            seller_id=offer.seller_id,
            price_cents=offer.price_cents,
            delivery_days=offer.delivery_days,
            offer_id=offer.offer_id,
        )

    def deliver(self, *, order_id: str, message: str = "") -> OrderView:
        """The seller delivers a placed order."""
        return self._send(DeliverOrder(order_id=order_id, message=message))

    def request_extension(self, *, order_id: str, extra_days: int, reason: str) -> OrderView:
        """The seller asks the buyer to move the due date `extra_days` later."""
        return self._send(RequestExtension(order_id=order_id, extra_days=extra_days, reason=reason))

    def decide_extension(self, *, order_id: str, decision: ExtensionDecision) -> OrderView:
        """The buyer approves or rejects the pending extension request."""
        return self._send(DecideExtension(order_id=order_id, decision=decision))

    def complete(self, *, order_id: str) -> OrderView:
        """The buyer accepts the delivery; the seller is paid."""
        return self._send(CompleteOrder(order_id=order_id))

    def cancel(self, *, order_id: str, reason: str = "") -> OrderView:
        """Either party cancels an order not yet delivered; the buyer is refunded."""
        return self._send(CancelOrder(order_id=order_id, reason=reason))

    def get(self, *, order_id: str) -> OrderView:
        """One order, for its buyer or its seller."""
        return self._send(GetOrder(order_id=order_id))

    def list(self, *, page: int = 1) -> OrdersPage:
        """The signed-in user's orders as buyer or seller, newest first."""
        return self._client.send(ORDER, ListOrders(page=page), OrdersPage, actor_id=self._signed_in())

    def _place(
        self,
        *,
        gig_id: str,
        gig_title: str,
        seller_id: str,
        price_cents: int,
        delivery_days: int,
        offer_id: str | None,
    ) -> OrderView:
        actor = self._signed_in()
        buyer = self._client.send(USERS, GetUser(actor), UserView, actor_id=actor)
        seller = self._client.send(USERS, GetUser(seller_id), UserView, actor_id=actor)
        command = PlaceOrder(
            gig_id=gig_id,
            gig_title=gig_title,
            seller_id=seller_id,
            seller_username=seller.username,
            seller_email=seller.email,
            buyer_username=buyer.username,
            buyer_email=buyer.email,
            price_cents=price_cents,
            delivery_days=delivery_days,
            offer_id=offer_id,
        )
        return self._send(command)

    def _send(
        self,
        body: PlaceOrder
        | DeliverOrder
        | RequestExtension
        | DecideExtension
        | CompleteOrder
        | CancelOrder
        | GetOrder,
    ) -> OrderView:
        return self._client.send(ORDER, body, OrderView, actor_id=self._signed_in())

    def _signed_in(self) -> str:
        if self._user_id is None:
            raise DomainError("unauthenticated", "sign in first")
        return self._user_id
